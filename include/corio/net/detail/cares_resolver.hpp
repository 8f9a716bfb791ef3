// SPDX-License-Identifier: MIT
#pragma once

// The c-ares backend of corio::net::resolver: one channel per resolver, driven by the loop with
// no thread. c-ares says through its socket-state callback which sockets it wants watched; each
// is polled through the ring (IORING_OP_POLL_ADD, re-armed after each completion), and a timer
// in the loop's heap stands for `ares_timeout`. Compiled only when corio was configured with
// c-ares (CORIO_HAVE_CARES, set by the corio::core target).
#if defined(CORIO_HAVE_CARES)

#include <corio/detail/assert.hpp>
#include <corio/detail/cancel_state.hpp>
#include <corio/detail/cancellation_point.hpp>
#include <corio/detail/cancelled_error.hpp>
#include <corio/detail/intrusive_list.hpp>
#include <corio/detail/promise_base.hpp>
#include <corio/detail/timer_heap.hpp>
#include <corio/io/event_loop.hpp>
#include <corio/io/operation_kind.hpp>
#include <corio/net/address.hpp>
#include <corio/net/detail/lookup_result.hpp>
#include <corio/net/resolve_error.hpp>
#include <corio/net/resolver_options.hpp>

#include <ares.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <iterator>
#include <list>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace corio::detail {

/// The positive answers of one resolver, each kept for its DNS TTL, at most `capacity` names:
/// a new name evicts the oldest entry when the cache is full, and an expired entry goes when it
/// is next looked up. Negative answers (NXDOMAIN, no data, timeouts) are never kept: the next
/// lookup asks again.
class resolve_cache {
public:
    using time_point = event_loop::time_point;

    explicit resolve_cache(std::size_t capacity) noexcept : capacity_(capacity) {}

    /// The addresses of `key` while its TTL lasts at `now`.
    [[nodiscard]] std::optional<std::vector<net::address>> find(const std::string& key,
                                                                time_point now) {
        const auto it = entries_.find(key);
        if (it == entries_.end())
            return std::nullopt;
        if (it->second.expiry <= now) {
            erase(it);
            return std::nullopt;
        }
        return it->second.addresses;
    }

    /// Keeps `addresses` for `key` until `expiry`, replacing what was there.
    void put(const std::string& key, std::vector<net::address> addresses, time_point expiry) {
        if (capacity_ == 0)
            return;
        if (const auto it = entries_.find(key); it != entries_.end())
            erase(it);
        else if (entries_.size() >= capacity_)
            erase(entries_.find(order_.front()));
        order_.push_back(key);
        try {
            entries_.emplace(key, entry{std::move(addresses), expiry, std::prev(order_.end())});
        } catch (...) {
            order_.pop_back();
            throw;
        }
    }

    void clear() noexcept {
        entries_.clear();
        order_.clear();
    }
    [[nodiscard]] std::size_t size() const noexcept { return entries_.size(); }

private:
    struct entry {
        std::vector<net::address> addresses;
        time_point expiry;
        std::list<std::string>::iterator order;
    };
    using map = std::unordered_map<std::string, entry>;

    void erase(map::iterator it) noexcept {
        order_.erase(it->second.order);
        entries_.erase(it);
    }

    map entries_;
    std::list<std::string> order_; // the keys, oldest first
    std::size_t capacity_;
};

class cares_resolver;
class cares_lookup;

/// One c-ares query (`ares_getaddrinfo`) and the lookups waiting for it. Owned by the backlog
/// until it is sent, then by c-ares: its callback always comes (with ARES_EDESTRUCTION when the
/// channel goes), and frees it.
struct cares_query {
    cares_resolver* owner = nullptr;
    std::string name;
    intrusive_list<cares_lookup> waiters;
    bool counted = false; ///< takes one of the `max_queries` places
};

/// A lookup waiting for a c-ares query: the awaiter, in the awaiting coroutine's frame. Lookups
/// of one name that overlap share a query; each is a waiter in its list.
///
/// **Resumption**: through the loop's ready queue, never inside c-ares (a callback that
/// resumed a coroutine could re-enter the channel).
/// **Cancellation**: a cancelled lookup leaves the query's list at once and resumes (through
/// the ready queue) with `cancelled_error`. The query goes on without it: c-ares calls back
/// into the query, never into a lookup, so nothing points at a frame that is gone; its answer
/// still fills the cache.
class cares_lookup : public list_hook, cancel_target, cancellation_point {
public:
    cares_lookup(cares_resolver& resolver, std::string name) noexcept
        : resolver_(resolver), name_(std::move(name)) {
        on_cancel = &on_cancelled;
    }
    cares_lookup(const cares_lookup&) = delete;
    cares_lookup& operator=(const cares_lookup&) = delete;
    cares_lookup(cares_lookup&&) = delete;
    cares_lookup& operator=(cares_lookup&&) = delete;
    ~cares_lookup();

    [[nodiscard]] bool await_ready() const noexcept { return false; }
    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> h);
    lookup_result await_resume() {
        if (cancelled_) {
            cancel_->consume();
            throw cancelled_error{};
        }
        return std::move(result_);
    }

private:
    friend class cares_resolver;

    /// Called by the resolver with the query's answer.
    void finish(lookup_result result) noexcept;
    static void on_cancelled(cancel_target* t) noexcept;

    cares_resolver& resolver_;
    std::string name_;
    cares_query* query_ = nullptr; // the query waited for, while linked in its list
    std::coroutine_handle<> waiter_;
    lookup_result result_;
    bool starting_ = false; // inside ares_getaddrinfo, which may answer before we suspend
    bool done_ = false;
    bool cancelled_ = false;
};

/// The c-ares channel of one resolver, its socket pollers, its timer, its queries in flight (at
/// most `max_queries`, the rest in a backlog) and its cache.
///
/// **Poll lifecycle**: sockets are polled, one single-shot IORING_OP_POLL_ADD each, re-armed
/// after every completion, only while a lookup waits (`polling_`), and only once c-ares has
/// returned from starting it (a hosts-file answer costs no poll). When the last waiting lookup
/// finishes or is cancelled, every poll in flight is cancelled and the timer removed; each
/// cancelled poll counts as an orphan of the loop until its completion arrives, so the loop's
/// drain waits for it, and the resolver may be destroyed at any time (its pollers then free
/// themselves on their last completion). A socket c-ares closes has its poll cancelled the same
/// way (the ring holds a reference to the file: the poll would otherwise never end), and a
/// socket whose wanted events grow (a TCP connection with a query to write) has its poll
/// cancelled and re-armed with the new mask.
/// **Thread-safety**: the loop's thread only.
class cares_resolver {
public:
    cares_resolver(event_loop& loop, const net::resolver_options& options)
        : loop_(loop), max_queries_(options.max_queries), cache_(options.cache_size) {
        if (options.max_queries == 0)
            throw std::invalid_argument("corio::net::resolver: max_queries must be at least 1");
        if (options.timeout && options.timeout->count() <= 0)
            throw std::invalid_argument("corio::net::resolver: the timeout must be positive");
        if (options.tries && *options.tries < 1)
            throw std::invalid_argument("corio::net::resolver: tries must be at least 1");
        // Process-wide, once (it is not thread-safe); a no-op on Linux, but the API asks for it.
        static const int library = ares_library_init(ARES_LIB_INIT_ALL);
        if (library != ARES_SUCCESS)
            throw std::runtime_error(std::string("corio::net::resolver: c-ares: ") +
                                     ares_strerror(library));
        ares_options opts{};
        int mask = ARES_OPT_SOCK_STATE_CB;
        opts.sock_state_cb = &on_sock_state;
        opts.sock_state_cb_data = this;
        if (options.timeout) {
            opts.timeout = static_cast<int>(
                std::min<std::chrono::milliseconds::rep>(options.timeout->count(), INT_MAX));
            mask |= ARES_OPT_TIMEOUTMS;
        }
        if (options.tries) {
            opts.tries = *options.tries;
            mask |= ARES_OPT_TRIES;
        }
        std::vector<char*> domains; // c-ares copies them
        if (options.search_domains) {
            for (const std::string& d : *options.search_domains)
                domains.push_back(const_cast<char*>(d.c_str()));
            opts.domains = domains.data();
            opts.ndomains = static_cast<int>(domains.size());
            mask |= ARES_OPT_DOMAINS;
        }
        const int rc = ares_init_options(&channel_, &opts, mask);
        if (rc != ARES_SUCCESS)
            throw std::runtime_error(std::string("corio::net::resolver: c-ares: ") +
                                     ares_strerror(rc));
        try {
            configure(options);
        } catch (...) {
            ares_destroy(channel_);
            throw;
        }
        timer_.owner = this;
        timer_.fire = &on_timer;
    }

    cares_resolver(const cares_resolver&) = delete;
    cares_resolver& operator=(const cares_resolver&) = delete;

    ~cares_resolver() {
        // Fails every query still in flight (ARES_EDESTRUCTION: lookups waiting, if any, resume
        // with an error) and closes every socket (on_sock_state frees or orphans each poller).
        ares_destroy(channel_);
        for (cares_query* q : backlog_) { // never sent: fail their lookups (if any) here
            while (cares_lookup* w = q->waiters.pop_front()) {
                w->query_ = nullptr;
                w->finish(lookup_result::failure(net::resolve_errc::failed,
                                                 "the resolver was destroyed during the lookup"));
                waiter_gone();
            }
            delete q;
        }
        loop_.remove_timer(timer_);
        for (auto& [fd, p] : pollers_) { // c-ares closed them all; this is only a safety net
            p->owner = nullptr;
            if (p->in_flight)
                cancel_poll(*p);
            else
                delete p;
        }
    }

    /// The cached addresses of `key` (a `name_key`), while their TTL lasts.
    [[nodiscard]] std::optional<std::vector<net::address>> cached(const std::string& key) {
        return cache_.find(key, loop_.now());
    }
    /// Waits for the addresses of `key` (a `name_key`).
    [[nodiscard]] cares_lookup lookup(std::string key) noexcept {
        return cares_lookup{*this, std::move(key)};
    }
    void clear_cache() noexcept { cache_.clear(); }
    [[nodiscard]] std::size_t cache_size() const noexcept { return cache_.size(); }
    [[nodiscard]] event_loop& loop() const noexcept { return loop_; }

private:
    friend class cares_lookup;

    /// Polls one socket of the channel through the ring; its address is the SQE's user_data.
    /// Heap-allocated: it may outlive the resolver by one cancelled completion.
    struct poller : io::completion {
        cares_resolver* owner; ///< null once c-ares closed the socket or the resolver is gone
        event_loop* loop;
        ares_socket_t fd;
        short wanted = 0;        ///< POLLIN / POLLOUT, as c-ares asks
        short armed = 0;         ///< the mask of the poll in flight
        bool in_flight = false;  ///< a poll is in the ring
        bool cancelling = false; ///< ... and a cancel was sent for it (an orphan of the loop)
        bool busy = false;       ///< inside ares_process_fd for this socket
        bool broken = false;     ///< the kernel refused to poll it: not re-armed

        poller(cares_resolver* r, ares_socket_t s) noexcept : owner(r), loop(&r->loop_), fd(s) {
            complete = &on_poll;
        }
    };
    struct timeout_timer : timer_node {
        cares_resolver* owner = nullptr;
    };

    void configure(const net::resolver_options& options) {
        if (!options.servers.empty()) {
            std::vector<ares_addr_port_node> nodes(options.servers.size());
            for (std::size_t i = 0; i < nodes.size(); ++i) {
                const net::address& a = options.servers[i];
                ares_addr_port_node& n = nodes[i];
                n.next = i + 1 < nodes.size() ? &nodes[i + 1] : nullptr;
                n.family = a.family();
                if (a.is_v4())
                    std::memcpy(&n.addr.addr4,
                                &reinterpret_cast<const sockaddr_in*>(a.data())->sin_addr,
                                sizeof n.addr.addr4);
                else
                    std::memcpy(&n.addr.addr6,
                                &reinterpret_cast<const sockaddr_in6*>(a.data())->sin6_addr,
                                sizeof n.addr.addr6);
                n.udp_port = n.tcp_port = a.port(); // 0: the default, 53
            }
            const int rc = ares_set_servers_ports(channel_, nodes.data());
            if (rc != ARES_SUCCESS)
                throw std::runtime_error(std::string("corio::net::resolver: setting the DNS "
                                                     "servers: ") +
                                         ares_strerror(rc));
        }
        // What the timeout error will say: the tries in effect, options or resolv.conf.
        ares_options saved{};
        int saved_mask = 0;
        int tries = 0;
        if (ares_save_options(channel_, &saved, &saved_mask) == ARES_SUCCESS) {
            tries = saved.tries;
            ares_destroy_options(&saved);
        }
        int servers = 0;
        ares_addr_port_node* list = nullptr;
        if (ares_get_servers_ports(channel_, &list) == ARES_SUCCESS) {
            for (const ares_addr_port_node* n = list; n != nullptr; n = n->next)
                ++servers;
            ares_free_data(list);
        }
        timeout_reason_ =
            "DNS timeout after " + std::to_string(tries) + (tries == 1 ? " try" : " tries");
        if (servers > 1)
            timeout_reason_ += " of each of " + std::to_string(servers) + " servers";
    }

    // --- lookups -------------------------------------------------------------------------

    /// Links `w` to the query for its name, making one unless a query with waiters is in
    /// flight (a query every lookup abandoned is not joined: it may be near its end). The query
    /// goes to c-ares at once while fewer than `max_queries` are in flight, else to the back of
    /// the backlog. c-ares may answer at once (the hosts file, a bad name): then `w` is done on
    /// return.
    void start(cares_lookup& w) {
        const auto it = queries_.find(w.name_);
        if (it != queries_.end() && !it->second->waiters.empty()) {
            link(*it->second, w);
            after_start();
            return;
        }
        auto q = std::make_unique<cares_query>();
        q->owner = this;
        q->name = w.name_;
        queries_.insert_or_assign(w.name_, q.get()); // replaces an abandoned one
        const bool now = active_ < max_queries_;
        if (!now) {
            try {
                backlog_.push_back(q.get());
            } catch (...) {
                queries_.erase(w.name_);
                throw;
            }
        }
        cares_query* query = q.release(); // the backlog's or c-ares's from here on
        link(*query, w);
        if (now)
            send(*query);
        after_start();
    }

    /// Polls start only once c-ares has returned: a lookup it answered at once (the hosts
    /// file) costs no poll at all.
    void after_start() noexcept {
        if (waiting_ > 0 && !polling_)
            resume_polling();
        sync_timer();
    }

    /// Hands `q` to c-ares, which owns it until its callback.
    void send(cares_query& q) noexcept {
        q.counted = true;
        ++active_;
        const std::string name = q.name; // the callback may come at once, and free `q`
        ares_addrinfo_hints hints{};
        hints.ai_family = AF_UNSPEC;
        ares_getaddrinfo(channel_, name.c_str(), nullptr, &hints, &on_result, &q);
    }

    /// Sends queries from the backlog while places are free; drops those nobody waits for.
    /// Called after c-ares returns, never from inside it.
    void pump() noexcept {
        while (active_ < max_queries_ && !backlog_.empty()) {
            cares_query* q = backlog_.front();
            backlog_.pop_front();
            if (q->waiters.empty()) {
                forget(*q);
                delete q;
                continue;
            }
            send(*q);
        }
    }

    /// Takes `q` out of the table of queries in flight (unless a newer one replaced it).
    void forget(const cares_query& q) noexcept {
        if (const auto it = queries_.find(q.name); it != queries_.end() && it->second == &q)
            queries_.erase(it);
    }

    /// `q` no longer takes a place among `max_queries`.
    void release_place(cares_query& q) noexcept {
        if (std::exchange(q.counted, false))
            --active_;
    }

    void link(cares_query& q, cares_lookup& w) noexcept {
        q.waiters.push_back(w);
        w.query_ = &q;
        ++waiting_;
    }

    /// `w` was cancelled: it leaves its query, which goes on without it.
    void leave(cares_lookup& w) noexcept {
        cares_query& q = *w.query_;
        q.waiters.erase(w);
        w.query_ = nullptr;
        if (q.waiters.empty())
            release_place(q); // abandoned: its place goes to the backlog
        waiter_gone();
        pump();
        sync_timer();
    }

    /// Also called from inside c-ares (a query's callback): must not call back into it.
    void waiter_gone() noexcept {
        if (--waiting_ == 0 && polling_)
            pause_polling();
    }

    static void on_result(void* arg, int status, int /*timeouts*/, ares_addrinfo* info) noexcept {
        const std::unique_ptr<cares_query> q(static_cast<cares_query*>(arg));
        cares_resolver& self = *q->owner;
        lookup_result result = self.make_result(status, q->name, info);
        if (info != nullptr)
            ares_freeaddrinfo(info);
        self.forget(*q);
        self.release_place(*q);
        while (q->waiters.size() > 1) { // a copy for each but the last, which takes the result
            cares_lookup* w = q->waiters.pop_front();
            w->query_ = nullptr;
            lookup_result copy;
            try {
                copy = result;
            } catch (...) {
                copy = lookup_result::failure(net::resolve_errc::failed, "out of memory");
            }
            w->finish(std::move(copy));
            self.waiter_gone();
        }
        if (cares_lookup* w = q->waiters.pop_front()) {
            w->query_ = nullptr;
            w->finish(std::move(result));
            self.waiter_gone();
        }
    }

    /// The answer as addresses or an error, and into the cache when it has a TTL.
    lookup_result make_result(int status, const std::string& name,
                              const ares_addrinfo* info) noexcept {
        try {
            switch (status) {
            case ARES_SUCCESS: break;
            case ARES_ENOTFOUND: return lookup_result::failure(net::resolve_errc::not_found);
            case ARES_ENODATA: return lookup_result::failure(net::resolve_errc::no_addresses);
            case ARES_ETIMEOUT:
                return lookup_result::failure(net::resolve_errc::timeout, timeout_reason_);
            case ARES_ESERVFAIL: return lookup_result::failure(net::resolve_errc::server_failure);
            case ARES_ENOTIMP:
                return lookup_result::failure(net::resolve_errc::server_failure,
                                              "the DNS server does not implement the query "
                                              "(NOTIMP)");
            case ARES_EREFUSED: return lookup_result::failure(net::resolve_errc::refused);
            case ARES_EFORMERR:
                return lookup_result::failure(net::resolve_errc::bad_response,
                                              "the DNS server found the query malformed "
                                              "(FORMERR)");
            case ARES_EBADRESP: return lookup_result::failure(net::resolve_errc::bad_response);
            case ARES_ECONNREFUSED:
                return lookup_result::failure(net::resolve_errc::server_unreachable,
                                              "no DNS server could be reached (connection "
                                              "refused)");
            case ARES_EBADNAME: return lookup_result::failure(net::resolve_errc::bad_name);
            case ARES_EDESTRUCTION:
                return lookup_result::failure(net::resolve_errc::failed,
                                              "the resolver was destroyed during the lookup");
            case ARES_ENOMEM:
                return lookup_result::failure(net::resolve_errc::failed, "out of memory");
            default:
                return lookup_result::failure(net::resolve_errc::failed,
                                              std::string("c-ares: ") + ares_strerror(status));
            }
            lookup_result r;
            int ttl = INT_MAX; // the answer lasts as long as its shortest record (CNAMEs too)
            for (const ares_addrinfo_node* n = info != nullptr ? info->nodes : nullptr;
                 n != nullptr; n = n->ai_next) {
                if (n->ai_family != AF_INET && n->ai_family != AF_INET6)
                    continue;
                add_unique(r.addresses, net::address::from_sockaddr(n->ai_addr, n->ai_addrlen));
                ttl = std::min(ttl, n->ai_ttl);
            }
            for (const ares_addrinfo_cname* c = info != nullptr ? info->cnames : nullptr;
                 c != nullptr; c = c->next)
                ttl = std::min(ttl, c->ttl);
            if (r.addresses.empty())
                return lookup_result::failure(net::resolve_errc::no_addresses);
            if (ttl > 0)
                cache_.put(name, r.addresses, loop_.now() + std::chrono::seconds(ttl));
            return r;
        } catch (...) {
            return lookup_result::failure(net::resolve_errc::failed, "out of memory");
        }
    }

    // --- sockets and the timer -----------------------------------------------------------

    static void on_sock_state(void* data, ares_socket_t fd, int readable, int writable) noexcept {
        auto* self = static_cast<cares_resolver*>(data);
        const auto wanted =
            static_cast<short>((readable != 0 ? POLLIN : 0) | (writable != 0 ? POLLOUT : 0));
        const auto it = self->pollers_.find(fd);
        if (wanted == 0) { // c-ares is closing the socket
            if (it == self->pollers_.end())
                return;
            poller* p = it->second;
            self->pollers_.erase(it);
            p->owner = nullptr;
            p->wanted = 0;
            if (p->in_flight)
                self->cancel_poll(*p); // freed by its completion
            else if (!p->busy)
                delete p; // else freed when ares_process_fd returns to on_poll
            return;
        }
        poller* p = nullptr;
        if (it != self->pollers_.end()) {
            p = it->second;
        } else {
            try {
                auto fresh = std::make_unique<poller>(self, fd);
                self->pollers_.emplace(fd, fresh.get());
                p = fresh.release();
            } catch (...) {
                return; // out of memory: the socket goes unpolled; its queries time out
            }
        }
        p->wanted = wanted;
        if (p->in_flight) {
            if ((wanted & ~p->armed) != 0)
                self->cancel_poll(*p); // re-armed with the new mask when the cancel completes
        } else if (!p->busy) {
            self->arm(*p);
        }
    }

    static void on_poll(io::completion* c, int res, std::uint32_t /*flags*/) noexcept {
        auto* p = static_cast<poller*>(c);
        p->in_flight = false;
        if (std::exchange(p->cancelling, false))
            p->loop->orphan_finished();
        cares_resolver* self = p->owner;
        if (self == nullptr) {
            delete p;
            return;
        }
        if (res > 0) {
            const bool trouble = (res & (POLLERR | POLLHUP)) != 0;
            const ares_socket_t readable =
                (p->wanted & POLLIN) != 0 && ((res & POLLIN) != 0 || trouble) ? p->fd
                                                                              : ARES_SOCKET_BAD;
            const ares_socket_t writable =
                (p->wanted & POLLOUT) != 0 && ((res & POLLOUT) != 0 || trouble) ? p->fd
                                                                                : ARES_SOCKET_BAD;
            p->busy = true;
            ares_process_fd(self->channel_, readable, writable);
            p->busy = false;
            if (p->owner == nullptr) { // c-ares closed the socket meanwhile
                delete p;
                p = nullptr;
            }
        } else if (res < 0 && res != -ECANCELED && res != -EINTR) {
            // A poll the kernel refuses would fail again at once: leave the socket alone, and
            // let c-ares's timeout end its queries. (Cancelled or interrupted: armed again.)
            p->broken = true;
        }
        if (p != nullptr)
            self->arm(*p);
        self->pump();
        self->sync_timer();
    }

    static void on_timer(timer_node* t) noexcept {
        cares_resolver* self = static_cast<timeout_timer*>(t)->owner;
        ares_process_fd(self->channel_, ARES_SOCKET_BAD, ARES_SOCKET_BAD); // timeouts only
        // A poll whose submission the ring refused (ENOMEM, EAGAIN) is tried again now that
        // the query was sent again: a refusal costs one timeout, as a lost datagram does.
        for (auto& [fd, p] : self->pollers_)
            self->arm(*p);
        self->pump();
        self->sync_timer();
    }

    /// Submits a poll for what c-ares wants of `p`, while a lookup waits.
    void arm(poller& p) noexcept {
        if (p.in_flight || p.wanted == 0 || p.broken || !polling_)
            return;
        io::op_args a{};
        a.fd = p.fd;
        a.flags = p.wanted;
        try {
            loop_.start_io(io::op_kind::poll, a, p);
        } catch (...) {
            return; // refused: unpolled until c-ares's next timeout (on_timer arms it again)
        }
        p.in_flight = true;
        p.armed = p.wanted;
    }

    /// Cancels the poll in flight of `p`; it counts as an orphan of the loop (so the loop's
    /// drain waits for it) until its completion arrives.
    void cancel_poll(poller& p) noexcept {
        if (!p.in_flight || p.cancelling)
            return;
        p.cancelling = true;
        loop_.adopt_orphan();
        try {
            loop_.cancel_io(p);
        } catch (...) {
            // The ring is broken: the poll still completes on its own, or never.
        }
    }

    void resume_polling() noexcept {
        polling_ = true;
        for (auto& [fd, p] : pollers_)
            arm(*p);
    }

    void pause_polling() noexcept {
        polling_ = false;
        for (auto& [fd, p] : pollers_)
            cancel_poll(*p);
        loop_.remove_timer(timer_);
    }

    /// Sets the timer to c-ares's next timeout while polling.
    void sync_timer() noexcept {
        loop_.remove_timer(timer_);
        if (!polling_)
            return;
        timeval tv{};
        if (ares_timeout(channel_, nullptr, &tv) == nullptr)
            return; // no query in flight
        timer_.deadline =
            loop_.now() + std::chrono::seconds(tv.tv_sec) + std::chrono::microseconds(tv.tv_usec);
        try {
            loop_.add_timer(timer_);
        } catch (...) {
            CORIO_ASSERT(false, "corio::net::resolver could not schedule its DNS timeout");
        }
    }

    event_loop& loop_;
    ares_channel channel_ = nullptr;
    std::unordered_map<ares_socket_t, poller*> pollers_;    // the sockets c-ares wants polled
    std::unordered_map<std::string, cares_query*> queries_; // by name, sent or in the backlog
    std::deque<cares_query*> backlog_;                      // waiting for a place, oldest first
    std::size_t active_ = 0;                                // queries taking a place
    std::size_t max_queries_;
    resolve_cache cache_;
    timeout_timer timer_;
    std::string timeout_reason_;
    std::size_t waiting_ = 0; // lookups linked to a query
    bool polling_ = false;    // sockets polled and the timer set: while lookups wait
};

inline cares_lookup::~cares_lookup() {
    if (query_ != nullptr) // a frame destroyed while it waited (never through corio's own paths)
        resolver_.leave(*this);
}

template <class Promise>
bool cares_lookup::await_suspend(std::coroutine_handle<Promise> h) {
    if (cancel_pending(h)) {
        cancelled_ = true;
        return false;
    }
    waiter_ = h;
    starting_ = true;
    resolver_.start(*this);
    starting_ = false;
    if (done_)
        return false; // answered at once
    if (cancel_ != nullptr)
        cancel_->arm(this);
    return true;
}

inline void cares_lookup::finish(lookup_result result) noexcept {
    result_ = std::move(result);
    done_ = true;
    if (cancel_ != nullptr)
        cancel_->disarm(this);
    if (!starting_)
        resolver_.loop().schedule(waiter_);
}

inline void cares_lookup::on_cancelled(cancel_target* t) noexcept {
    auto* self = static_cast<cares_lookup*>(t);
    self->cancelled_ = true;
    self->resolver_.leave(*self);
    self->resolver_.loop().schedule(self->waiter_);
}

} // namespace corio::detail

#endif // CORIO_HAVE_CARES

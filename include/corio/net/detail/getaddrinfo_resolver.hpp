// SPDX-License-Identifier: MIT
#pragma once

// The fallback backend of corio::net::resolver, for builds without c-ares: getaddrinfo on the
// loop's blocking pool, one pool job per lookup. Always compiled, so that both backends are
// tested in every build.

#include <corio/detail/blocking_pool.hpp>
#include <corio/detail/cancel_state.hpp>
#include <corio/detail/cancellation_point.hpp>
#include <corio/detail/cancelled_error.hpp>
#include <corio/detail/promise_base.hpp>
#include <corio/io/event_loop.hpp>
#include <corio/io/operation_kind.hpp>
#include <corio/net/address.hpp>
#include <corio/net/detail/lookup_result.hpp>
#include <corio/net/resolve_error.hpp>
#include <corio/net/resolver_options.hpp>

#include <netdb.h>
#include <sys/socket.h>

#include <cerrno>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace corio::detail {

/// The lookup_result for getaddrinfo's error `rc` (`err`: errno, for EAI_SYSTEM).
inline lookup_result getaddrinfo_failure(int rc, int err) {
    switch (rc) {
    case EAI_NONAME: return lookup_result::failure(net::resolve_errc::not_found);
#if defined(EAI_NODATA) && defined(EAI_ADDRFAMILY) // glibc's extensions (_GNU_SOURCE)
    case EAI_NODATA:
    case EAI_ADDRFAMILY: return lookup_result::failure(net::resolve_errc::no_addresses);
#endif
    case EAI_AGAIN:
        return lookup_result::failure(net::resolve_errc::timeout,
                                      "DNS timeout or temporary failure (getaddrinfo: EAI_AGAIN)");
    case EAI_FAIL:
        return lookup_result::failure(net::resolve_errc::server_failure,
                                      "the DNS server failed (getaddrinfo: EAI_FAIL)");
    case EAI_MEMORY: return lookup_result::failure(net::resolve_errc::failed, "out of memory");
    case EAI_SYSTEM:
        return lookup_result::failure(net::resolve_errc::failed,
                                      std::string("getaddrinfo: ") + std::strerror(err));
    default:
        return lookup_result::failure(net::resolve_errc::failed,
                                      std::string("getaddrinfo: ") + ::gai_strerror(rc));
    }
}

/// getaddrinfo's addresses for `name` (both families, in its order), or why there are none.
/// Blocks: runs on the blocking pool.
inline lookup_result getaddrinfo_blocking(const std::string& name) noexcept {
    try {
        addrinfo hints{};
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM; // one entry per address, not one per socket type
        addrinfo* list = nullptr;
        const int rc = ::getaddrinfo(name.c_str(), nullptr, &hints, &list);
        if (rc != 0)
            return getaddrinfo_failure(rc, errno);
        const std::unique_ptr<addrinfo, void (*)(addrinfo*)> owner(list, &::freeaddrinfo);
        lookup_result r;
        for (const addrinfo* a = list; a != nullptr; a = a->ai_next)
            if (a->ai_family == AF_INET || a->ai_family == AF_INET6)
                add_unique(r.addresses, net::address::from_sockaddr(a->ai_addr, a->ai_addrlen));
        if (r.addresses.empty())
            return lookup_result::failure(net::resolve_errc::no_addresses);
        return r;
    } catch (...) {
        return lookup_result::failure(net::resolve_errc::failed, "out of memory");
    }
}

/// A blocking lookup function: `getaddrinfo_blocking`, or a stand-in in tests.
using blocking_lookup_fn = lookup_result (*)(const std::string&) noexcept;

/// A lookup running on the blocking pool: the awaiter, in the awaiting coroutine's frame; the
/// pool job it waits for is on the heap.
///
/// **Resumption**: on the loop's thread, when the job's result is posted back.
/// **Cancellation**: unlike `to_thread`, a cancellation point (a lookup makes nothing that
/// could leak): the awaiter lets go of the job and resumes (through the ready queue) with
/// `cancelled_error`. The job runs to its end on the pool and frees itself; until then it
/// counts as an orphan of the loop, so the loop's drain waits for it.
class getaddrinfo_lookup : cancel_target, cancellation_point {
public:
    getaddrinfo_lookup(event_loop& loop, blocking_lookup_fn fn, std::string name) noexcept
        : loop_(loop), fn_(fn), name_(std::move(name)) {
        on_cancel = &on_cancelled;
    }
    getaddrinfo_lookup(const getaddrinfo_lookup&) = delete;
    getaddrinfo_lookup& operator=(const getaddrinfo_lookup&) = delete;
    getaddrinfo_lookup(getaddrinfo_lookup&&) = delete;
    getaddrinfo_lookup& operator=(getaddrinfo_lookup&&) = delete;
    ~getaddrinfo_lookup() {
        if (job_ != nullptr) // a frame destroyed while it waited (never through corio's own paths)
            abandon();
    }

    [[nodiscard]] bool await_ready() const noexcept { return false; }

    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> h) {
        if (cancel_pending(h)) {
            cancelled_ = true;
            return false;
        }
        auto j = std::make_unique<job>();
        j->run = &job::run_on_pool;
        j->done = &job::finished;
        j->loop = &loop_;
        j->fn = fn_;
        j->name = name_;
        j->waiter = this;
        waiter_ = h;
        loop_.start_blocking(*j);
        job_ = j.release();
        if (cancel_ != nullptr)
            cancel_->arm(this);
        return true;
    }

    lookup_result await_resume() {
        if (cancelled_) {
            cancel_->consume();
            throw cancelled_error{};
        }
        return std::move(result_);
    }

private:
    struct job : blocking_job {
        event_loop* loop = nullptr;
        blocking_lookup_fn fn = nullptr;
        std::string name;
        lookup_result result;
        getaddrinfo_lookup* waiter = nullptr; // null once abandoned; loop thread only

        static void run_on_pool(blocking_job* b) noexcept { // a worker thread
            auto* self = static_cast<job*>(b);
            self->result = self->fn(self->name);
            self->loop->finish_blocking(*self); // back to the loop's thread: allocates nothing
        }

        static void finished(blocking_job* b) noexcept { // the loop's thread
            auto* self = static_cast<job*>(b);
            event_loop& loop = *self->loop;
            getaddrinfo_lookup* w = self->waiter;
            if (w == nullptr) { // abandoned: the orphan ends here
                loop.orphan_finished();
                delete self;
                return;
            }
            w->result_ = std::move(self->result);
            w->job_ = nullptr;
            delete self;
            if (w->cancel_ != nullptr)
                w->cancel_->disarm(w);
            w->waiter_.resume();
        }
    };

    void abandon() noexcept {
        job_->waiter = nullptr;
        job_ = nullptr;
        loop_.adopt_orphan();
    }

    static void on_cancelled(cancel_target* t) noexcept {
        auto* self = static_cast<getaddrinfo_lookup*>(t);
        self->abandon();
        self->cancelled_ = true;
        self->loop_.schedule(self->waiter_);
    }

    event_loop& loop_;
    blocking_lookup_fn fn_;
    std::string name_;
    job* job_ = nullptr; // the job in flight, until it is back or abandoned
    std::coroutine_handle<> waiter_;
    lookup_result result_;
    bool cancelled_ = false;
};

/// The getaddrinfo backend: each lookup is a job on the loop's blocking pool. getaddrinfo
/// reports no TTL, so nothing is cached, and it reads only the system's configuration.
class getaddrinfo_resolver {
public:
    /// **Errors**: `std::invalid_argument` when `options` asks for what getaddrinfo cannot do
    /// (servers, search domains).
    getaddrinfo_resolver(event_loop& loop, const net::resolver_options& options,
                         blocking_lookup_fn fn = &getaddrinfo_blocking)
        : loop_(loop), fn_(fn) {
        if (!options.servers.empty() || options.search_domains)
            throw std::invalid_argument(
                "corio::net::resolver: DNS servers and search domains can be chosen only with "
                "c-ares; corio was built without it (getaddrinfo reads /etc/resolv.conf)");
    }

    [[nodiscard]] std::optional<std::vector<net::address>>
    cached(const std::string& /*key*/) const {
        return std::nullopt;
    }
    [[nodiscard]] getaddrinfo_lookup lookup(std::string key) const noexcept {
        return getaddrinfo_lookup{loop_, fn_, std::move(key)};
    }
    void clear_cache() noexcept {}
    [[nodiscard]] std::size_t cache_size() const noexcept { return 0; }
    [[nodiscard]] event_loop& loop() const noexcept { return loop_; }

private:
    event_loop& loop_;
    blocking_lookup_fn fn_;
};

} // namespace corio::detail

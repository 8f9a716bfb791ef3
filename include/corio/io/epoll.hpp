// SPDX-License-Identifier: MIT
#pragma once

#include <corio/detail/blocking_pool.hpp>
#include <corio/io/driver.hpp>
#include <corio/io/operation_kind.hpp>

#include <fcntl.h>
#include <liburing.h> // IORING_CQE_F_MORE (the flag both drivers post multishot results with)
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <map>
#include <memory>
#include <system_error>
#include <utility>
#include <vector>

namespace corio::io {

/// How the epoll driver runs reads and writes of regular files, which epoll cannot wait for:
/// on the loop's blocking pool, as libuv does.
struct file_offload {
    void* loop = nullptr;
    /// Runs `job` on the pool (may throw: nothing was queued then).
    void (*submit)(void* loop, detail::blocking_job& job) = nullptr;
    /// Hands a job that has run back to the loop's thread (any thread).
    void (*finish)(void* loop, detail::blocking_job& job) noexcept = nullptr;
};

/// The epoll driver: the same operations as the ring, by readiness. One epoll instance per
/// loop. A descriptor is registered one of two ways:
/// - for good, edge-triggered (EPOLLET), when its operations name an owner (`op_args::owner`:
///   a `tcp_stream` or `tcp_listener` that keeps it for its whole life). A wait then costs no
///   `epoll_ctl`: the driver remembers what the last attempt found (no data; no room) and an
///   edge says when that changed. A new owner on the same number (the old one closed its
///   descriptor behind the driver's back and the kernel reused the number) registers again.
/// - one-shot (EPOLLONESHOT, armed for every wait) otherwise, so that a descriptor closed and
///   its number reused behind the loop's back can never leave a stale registration that
///   swallows events.
/// The registration is re-made (MOD, or ADD when the number was closed and reused meanwhile)
/// whenever the way changes, and the kernel then reports what is ready already, so switching
/// never loses an event.
///
/// - An operation is tried at once (MSG_DONTWAIT for sockets; descriptors it waits on are put
///   in non-blocking mode, as libuv and tokio do); only EAGAIN makes it wait. Its result goes
///   to the next reap, never straight to the caller, so a coroutine is never resumed inside
///   its own `co_await`.
/// - Multishot accept, poll and receive keep posting completions (with IORING_CQE_F_MORE)
///   until cancelled; a ready listener is accepted from until EAGAIN.
/// - Receives that select a provided buffer (`op_args::buf_group`) take it from the
///   registered ring (`register_buffer_ring`) as the kernel would: one buffer per completion,
///   named in its flags; a dry ring ends the receive with -ENOBUFS.
/// - `timeout` operations sit in the driver's timer map and bound `epoll_pwait2`'s timeout.
/// - Regular files go through the blocking pool (`file_offload`).
/// - `cancel`: a waiting operation ends with -ECANCELED at once; one that already has its
///   result (queued for the reap, or on the pool) keeps it.
class epoll_driver final : public driver {
public:
    explicit epoll_driver(file_offload offload) : offload_(offload) {
        epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
        if (epfd_ < 0)
            throw std::system_error(errno, std::system_category(), "corio: epoll_create1");
    }
    ~epoll_driver() override {
        for (auto& fs : fds_)
            if (fs)
                while (waiter* w = fs->head)
                    release(unlink(w));
        for (auto& [deadline, w] : timers_)
            delete w;
        for (waiter* w : spare_)
            delete w;
        ::close(epfd_);
    }

    [[nodiscard]] corio::backend kind() const noexcept override { return corio::backend::epoll; }

    void start(op_kind kind, const op_args& args, completion* c) override { begin(kind, args, c); }
    void start_own(op_kind kind, const op_args& args, completion* c) override {
        begin(kind, args, c);
    }

    void cancel(completion& c) override {
        auto* w = static_cast<waiter*>(c.driver_data);
        if (w == nullptr)
            return; // it has its result already (queued, or on the pool): that result stands
        if (w->timed)
            timers_.erase(w->timer);
        else
            unlink(w);
        finish(w, -ECANCELED);
    }

    void submit_nowait() override {
        try_untried();
        collect(0);
    }

    void submit_and_wait(const __kernel_timespec* timeout) override {
        try_untried();
        if (!ready_.empty() || !backlog_.empty()) {
            collect(0); // completions are waiting for the reap: only look, do not block
            return;
        }
        std::int64_t ns = -1;
        if (timeout != nullptr)
            ns = timeout->tv_sec * 1'000'000'000LL + timeout->tv_nsec;
        if (!timers_.empty()) {
            const auto until = timers_.begin()->first - clock::now();
            const std::int64_t t =
                std::max<std::int64_t>(0, std::chrono::nanoseconds(until).count());
            ns = ns < 0 ? t : std::min(ns, t);
        }
        collect(ns);
    }

    void reap(std::vector<cqe_record>& out) override {
        out.insert(out.end(), ready_.begin(), ready_.end());
        ready_.clear();
        inline_budget_ = inline_budget; // for what completes while the loop dispatches
    }
    std::vector<cqe_record>& backlog() noexcept override { return backlog_; }

    [[nodiscard]] int register_buffer_ring(io_uring_buf_ring* br, unsigned entries,
                                           std::uint16_t group) noexcept override {
        if (br == nullptr || entries == 0 || entries > 32768 || (entries & (entries - 1)) != 0)
            return -EINVAL;
        if (buffers(group) != nullptr)
            return -EEXIST;
        try {
            groups_.push_back({br, entries - 1, 0, group});
        } catch (...) {
            return -ENOMEM;
        }
        return 0;
    }
    void unregister_buffer_ring(std::uint16_t group) noexcept override {
        std::erase_if(groups_, [group](const buffer_group& g) { return g.id == group; });
    }

private:
    using clock = std::chrono::steady_clock;
    struct fd_state;

    /// An operation waiting for readiness (or a timeout waiting for its deadline).
    struct waiter {
        completion* target = nullptr;
        op_args args{};
        op_kind kind = op_kind::nop;
        std::uint32_t events = 0; // EPOLLIN, EPOLLOUT or a poll mask
        fd_state* fd = nullptr;
        waiter* prev = nullptr;
        waiter* next = nullptr;
        std::multimap<clock::time_point, waiter*>::iterator timer{};
        bool timed = false;
        /// Its attempt waits for the end of the turn (`try_untried`): needed (nothing says
        /// the socket is empty) or speculative (the last read emptied it).
        enum class untried_t : std::uint8_t { no, needed, speculative } untried = untried_t::no;
    };

    /// Whether a read on a socket that the last read emptied is tried at the end of the turn
    /// anyway, instead of waiting for its edge: while such tries mostly find data (a busy loop,
    /// whose peers answer within a turn, as with many connections), since a try that succeeds
    /// saves the `epoll_wait` the edge costs. Decided again every 32 tries; while off, one such
    /// read in 8 still tries, to notice when the peers get faster than a turn.
    struct speculation {
        unsigned tries = 0;
        unsigned hits = 0;
        unsigned skipped = 0;
        bool on = true;

        [[nodiscard]] bool wanted() noexcept { return on || ++skipped % 8 == 0; }
        void record(bool hit) noexcept {
            hits += hit ? 1 : 0;
            if (++tries == 32) {
                on = hits * 2 > tries;
                tries = hits = 0;
            }
        }
    };

    /// What the driver knows of one descriptor number: its waiters, in arrival order, and
    /// whether it was added to the epoll set.
    struct fd_state {
        int fd = -1;
        waiter* head = nullptr;
        waiter* tail = nullptr;
        bool in_set = false;
        /// Registered for good, edge-triggered, for this owner (0: one-shot).
        std::uint64_t owner = 0;
        /// The last read found the descriptor empty (EAGAIN, or less than it asked for from a
        /// stream socket) and no readiness came since: the next read waits at once instead of
        /// trying first. Edge-triggered, that is exact (the edge comes with the next byte);
        /// one-shot, a hint: wrong, it costs one turn, never a lost byte (the one-shot reports
        /// data that is already there).
        bool drained = false;
        /// The same for writes: the last one found no room (EAGAIN).
        bool full = false;
        /// The peer shut its side down or sent urgent data (EPOLLRDHUP, EPOLLPRI, or an error
        /// or hang-up): a short read may then stop at the end of the stream or the urgent mark
        /// and leave the socket readable with no edge to come, so only EAGAIN says drained.
        bool only_eagain_drains = false;
    };

    /// A registered ring of provided buffers, taken from as the kernel would: from `head` up to
    /// the tail its owner publishes when it gives buffers back.
    struct buffer_group {
        io_uring_buf_ring* ring = nullptr;
        unsigned mask = 0;
        std::uint16_t head = 0;
        std::uint16_t id = 0;
    };

    /// A regular-file read or write on the blocking pool.
    struct file_job : detail::blocking_job {
        epoll_driver* owner = nullptr;
        completion* target = nullptr;
        op_args args{};
        op_kind kind = op_kind::read;
        int res = 0;
    };

    static int result(long rc) noexcept { return rc < 0 ? -errno : static_cast<int>(rc); }
    /// Whether a result (`result(rc)`, taken at once: errno does not last) says "try later".
    static bool would_block(int res) noexcept { return res == -EAGAIN || res == -EWOULDBLOCK; }

    void begin(op_kind kind, const op_args& a, completion* c) {
        switch (kind) {
        case op_kind::nop: post(c, 0); return;
        case op_kind::cancel: return; // (cancels go through cancel())
        case op_kind::timeout: {
            waiter* w = make(kind, a, c);
            const auto d =
                std::chrono::seconds(a.ts.tv_sec) + std::chrono::nanoseconds(a.ts.tv_nsec);
            w->timed = true;
            w->timer =
                timers_.emplace(clock::now() + std::chrono::duration_cast<clock::duration>(d), w);
            c->driver_data = w;
            return;
        }
        case op_kind::close: {
            close_waiters(a.fd);
            post(c, result(::close(a.fd)));
            return;
        }
        case op_kind::read:
        case op_kind::write: {
            struct stat st {};
            if (::fstat(a.fd, &st) == 0 && (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode))) {
                offload(kind, a, c);
                return;
            }
            nonblocking(a.fd);
            break;
        }
        case op_kind::accept:
        case op_kind::connect: nonblocking(a.fd); break;
        case op_kind::recv:
            if (a.multishot && a.buf_group < 0) {
                post(c, -EINVAL); // (as the kernel: a multishot receive needs a buffer group)
                return;
            }
            break;
        case op_kind::send:
        case op_kind::poll: break;
        }
        if (kind == op_kind::connect) {
            const int rc = ::connect(a.fd, static_cast<const sockaddr*>(a.buf), a.len);
            if (rc == 0 || errno != EINPROGRESS) {
                post(c, result(rc));
                return;
            }
            wait(make(kind, a, c), EPOLLOUT);
            return;
        }
        if (kind == op_kind::poll) {
            wait(make(kind, a, c), static_cast<std::uint32_t>(a.flags));
            return;
        }
        const std::uint32_t events =
            kind == op_kind::send || kind == op_kind::write ? EPOLLOUT : EPOLLIN;
        waiter* w = make(kind, a, c);
        const bool unready = known_unready(a.fd, events);
        if (kind == op_kind::recv && a.buf_group < 0 && registered_for(a) &&
            (!unready || speculation_.wanted())) {
            // A read on a registered stream: tried at the end of the turn, after what else the
            // turn does, as the ring submits its reads. A busy peer's next bytes are often
            // there by then, where a try now would find the socket empty (a recv that fails).
            w->untried = unready ? waiter::untried_t::speculative : waiter::untried_t::needed;
            wait(w, events);
            untried_.push_back(w->fd);
            return;
        }
        if (unready) {
            wait(w, events);
            return;
        }
        if (!attempt(*w)) {
            release(w); // done at once
            return;
        }
        wait(w, events);
    }

    /// Runs the system call of `w` (or, for a multishot accept, as many as are ready). Posts
    /// what completed; returns true while `w` must go on waiting.
    bool attempt(waiter& w) {
        const op_args& a = w.args;
        long rc = 0;
        switch (w.kind) {
        case op_kind::recv:
            if (a.buf_group >= 0)
                return receive_selected(w);
            rc = ::recv(a.fd, a.buf, a.len, a.flags | MSG_DONTWAIT);
            break;
        case op_kind::send: rc = ::send(a.fd, a.buf, a.len, a.flags | MSG_DONTWAIT); break;
        case op_kind::read:
            rc = a.offset == static_cast<std::uint64_t>(-1)
                     ? ::read(a.fd, a.buf, a.len)
                     : ::pread(a.fd, a.buf, a.len, static_cast<off_t>(a.offset));
            break;
        case op_kind::write:
            rc = a.offset == static_cast<std::uint64_t>(-1)
                     ? ::write(a.fd, a.buf, a.len)
                     : ::pwrite(a.fd, a.buf, a.len, static_cast<off_t>(a.offset));
            break;
        case op_kind::accept:
            for (;;) {
                rc = ::accept4(a.fd, static_cast<sockaddr*>(a.buf), a.addr_len, a.flags);
                if (would_block(result(rc)))
                    return true;
                if (!a.multishot || rc < 0)
                    break;
                post(w.target, static_cast<int>(rc), IORING_CQE_F_MORE);
            }
            break;
        case op_kind::connect: {
            int err = 0;
            socklen_t len = sizeof err;
            rc = ::getsockopt(a.fd, SOL_SOCKET, SO_ERROR, &err, &len);
            if (rc == 0)
                rc = err == 0 ? 0 : (errno = err, -1);
            break;
        }
        default:
            rc = -1;
            errno = EINVAL;
            break;
        }
        const int res = result(rc);
        if (w.kind == op_kind::recv || w.kind == op_kind::read) {
            note_read(a.fd, res, a.len);
        } else if (w.kind == op_kind::send || w.kind == op_kind::write) {
            if (would_block(res) || known_unready(a.fd, EPOLLOUT))
                state_of(a.fd).full = would_block(res);
        }
        if (would_block(res))
            return true;
        finish_inline(w, res);
        return false;
    }

    /// Whether the descriptor of `a` is registered for good for its owner (no syscall to wait).
    [[nodiscard]] bool registered_for(const op_args& a) const noexcept {
        const fd_state* fs = find(a.fd);
        return a.owner != 0 && fs != nullptr && fs->owner == a.owner && fs->in_set;
    }

    /// Runs the attempts left for the end of the turn; those that find nothing go on waiting.
    void try_untried() {
        for (fd_state* fs : untried_) {
            for (waiter *w = fs->head, *next = nullptr; w != nullptr; w = next) {
                next = w->next;
                const auto why = std::exchange(w->untried, waiter::untried_t::no);
                if (why == waiter::untried_t::no)
                    continue;
                const bool waits = attempt(*w);
                if (why == waiter::untried_t::speculative)
                    speculation_.record(!waits);
                if (!waits)
                    release(unlink(w));
            }
        }
        untried_.clear();
    }

    /// A receive into a buffer of the group `w` selects from: one buffer per completion, and
    /// for a multishot receive as many as the socket has data for. Returns true while `w` must
    /// go on waiting.
    bool receive_selected(waiter& w) {
        const op_args& a = w.args;
        buffer_group* g = buffers(static_cast<std::uint16_t>(a.buf_group));
        for (;;) {
            if (g == nullptr || g->head == io_uring_smp_load_acquire(&g->ring->tail)) {
                finish_inline(w, -ENOBUFS); // dry (or no such group), as the kernel says
                return false;
            }
            const io_uring_buf& b = g->ring->bufs[g->head & g->mask];
            // NOLINTNEXTLINE(performance-no-int-to-ptr): the ring holds addresses as integers
            void* into = reinterpret_cast<void*>(b.addr);
            const int res = result(::recv(a.fd, into, b.len, a.flags | MSG_DONTWAIT));
            note_read(a.fd, res, b.len);
            if (would_block(res))
                return true;
            if (res <= 0) { // the end of the stream, or an error: no buffer taken
                finish_inline(w, res);
                return false;
            }
            ++g->head;
            const std::uint32_t flags =
                IORING_CQE_F_BUFFER | (std::uint32_t{b.bid} << IORING_CQE_BUFFER_SHIFT);
            if (!a.multishot) {
                finish_inline(w, res, flags);
                return false;
            }
            post(w.target, res, flags | IORING_CQE_F_MORE);
            if (known_unready(a.fd, EPOLLIN))
                return true; // a short read: the socket is empty (the next edge says when not)
        }
    }

    /// Remembers what a read of `len` bytes that ended with `res` says of `fd`: an empty one
    /// (EAGAIN, or short, unless the peer's end or urgent data may have cut it short) means
    /// drained. (0 bytes is the end of the stream, which stays readable: never drained.)
    void note_read(int fd, int res, std::uint32_t len) {
        const fd_state* fs = find(fd);
        const bool short_read = res > 0 && static_cast<std::uint32_t>(res) < len &&
                                (fs == nullptr || !fs->only_eagain_drains);
        const bool empty = would_block(res) || short_read;
        if (empty || known_unready(fd, EPOLLIN))
            state_of(fd).drained = empty;
    }

    [[nodiscard]] buffer_group* buffers(std::uint16_t group) noexcept {
        for (buffer_group& g : groups_)
            if (g.id == group)
                return &g;
        return nullptr;
    }

    /// The last attempt in the direction of `events` (EPOLLIN or EPOLLOUT) found `fd` not
    /// ready, and no readiness came since.
    [[nodiscard]] bool known_unready(int fd, std::uint32_t events) const noexcept {
        const fd_state* fs = find(fd);
        return fs != nullptr && (events == EPOLLIN ? fs->drained : fs->full);
    }

    /// Posts the (last) result of `w`, which is not linked anywhere.
    void finish_inline(waiter& w, int res, std::uint32_t flags = 0) {
        w.target->driver_data = nullptr;
        post(w.target, res, flags);
    }
    /// Posts the result of `w` and frees it.
    void finish(waiter* w, int res) {
        finish_inline(*w, res);
        release(w);
    }

    /// Queues a result. While the loop dispatches, results go straight into the batch it
    /// dispatches from (a send that completes at once resumes its coroutine in the same turn,
    /// without another look at epoll), up to `inline_budget` per turn; past it they wait for
    /// the next turn, which looks at epoll first, so a chain of operations that always
    /// complete at once cannot starve the other descriptors.
    void post(completion* c, int res, std::uint32_t flags = 0) {
        if (inline_budget_ > 0) {
            --inline_budget_;
            backlog_.push_back({c, res, flags});
        } else {
            ready_.push_back({c, res, flags});
        }
    }

    // --- readiness -------------------------------------------------------------------------

    [[nodiscard]] fd_state* find(int fd) const noexcept {
        return fd >= 0 && static_cast<std::size_t>(fd) < fds_.size() ? fds_[fd].get() : nullptr;
    }

    fd_state& state_of(int fd) {
        if (fd < 0)
            throw std::system_error(EBADF, std::system_category(), "corio: epoll wait");
        const auto i = static_cast<std::size_t>(fd);
        if (i >= fds_.size())
            fds_.resize(std::max(i + 1, fds_.size() * 2));
        if (!fds_[i]) {
            fds_[i] = std::make_unique<fd_state>();
            fds_[i]->fd = fd;
        }
        return *fds_[i];
    }

    void wait(waiter* w, std::uint32_t events) {
        fd_state& fs = state_of(w->args.fd);
        w->events = events;
        w->fd = &fs;
        w->prev = fs.tail;
        (fs.tail != nullptr ? fs.tail->next : fs.head) = w;
        fs.tail = w;
        w->target->driver_data = w;
        const std::uint64_t owner = w->args.owner;
        if (owner != 0 && fs.owner == owner && fs.in_set)
            return; // registered for good: the edge will come
        arm(fs, owner);
    }

    waiter* unlink(waiter* w) noexcept {
        fd_state& fs = *w->fd;
        (w->prev != nullptr ? w->prev->next : fs.head) = w->next;
        (w->next != nullptr ? w->next->prev : fs.tail) = w->prev;
        w->prev = w->next = nullptr;
        w->fd = nullptr;
        return w;
    }

    /// Registers `fs`: for good and edge-triggered on behalf of `owner`, or (`owner` 0) one-shot
    /// for what its waiters want.
    void arm(fd_state& fs, std::uint64_t owner) {
        std::uint32_t wanted = 0;
        for (waiter* w = fs.head; w != nullptr; w = w->next)
            wanted |= w->events;
        if (wanted == 0 && owner == 0)
            return;
        // One-shot, armed for every new wait, never assumed armed: the descriptor may have been
        // closed behind the driver's back and its number reused (the kernel then dropped the
        // registration; MOD says so with ENOENT).
        epoll_event ev{};
        ev.events = owner != 0 ? EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLPRI | EPOLLET
                               : wanted | EPOLLONESHOT;
        ev.data.ptr = &fs;
        int op = fs.in_set ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
        int rc = ::epoll_ctl(epfd_, op, fs.fd, &ev);
        if (rc < 0 && ((op == EPOLL_CTL_MOD && errno == ENOENT) ||
                       (op == EPOLL_CTL_ADD && errno == EEXIST))) {
            // The number was closed and reused (MOD finds nothing), or is registered through
            // another descriptor of the same file (ADD finds it): the other one works.
            op = op == EPOLL_CTL_MOD ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
            rc = ::epoll_ctl(epfd_, op, fs.fd, &ev);
        }
        if (rc == 0) {
            fs.in_set = true;
            if (owner != fs.owner)
                fs.only_eagain_drains = false; // (another socket's, or polled one-shot)
            fs.owner = owner;
            return;
        }
        const int err = errno;
        fs.in_set = false;
        fs.owner = 0;
        if (err == EPERM) {
            // Not pollable (a regular file, /dev/null): always ready, as poll(2) says.
            ready(fs, wanted);
            return;
        }
        while (waiter* w = fs.head) // EBADF and the like: every waiter fails with it
            finish(unlink(w), -err);
    }

    /// Runs the waiters of `fs` that `events` made ready, then re-arms for those left.
    void ready(fd_state& fs, std::uint32_t events) {
        const bool trouble = (events & (EPOLLERR | EPOLLHUP)) != 0;
        if (trouble || (events & (EPOLLRDHUP | EPOLLPRI)) != 0)
            fs.only_eagain_drains = true;
        if (trouble || (events & EPOLLIN) != 0)
            fs.drained = false;
        if (trouble || (events & EPOLLOUT) != 0)
            fs.full = false;
        waiter* last = fs.tail; // waiters added meanwhile (none are, but be safe) wait
        for (waiter *w = fs.head, *next = nullptr; w != nullptr; w = next) {
            next = w == last ? nullptr : w->next;
            if ((w->events & events) == 0 && !trouble)
                continue;
            if (w->kind == op_kind::poll) {
                const auto mask = static_cast<int>(events & (w->events | EPOLLERR | EPOLLHUP));
                if (w->args.multishot) {
                    post(w->target, mask, IORING_CQE_F_MORE);
                    continue;
                }
                finish(unlink(w), mask);
                continue;
            }
            if (!attempt(*w))
                release(unlink(w));
        }
        if (fs.owner == 0)
            arm(fs, 0); // (edge-triggered, it stays registered)
    }

    /// Fails every waiter on a descriptor that is being closed (no readiness would come).
    void close_waiters(int fd) {
        fd_state* found = find(fd);
        if (found == nullptr)
            return;
        fd_state& fs = *found;
        while (waiter* w = fs.head)
            finish(unlink(w), -EBADF);
        fs.in_set = false; // closing the last descriptor of the file leaves the set
        fs.owner = 0;
    }

    /// Waits up to `ns` nanoseconds (-1: no limit) for readiness, then runs what is ready and
    /// posts expired timeouts.
    void collect(std::int64_t ns) {
        inline_budget_ = inline_budget; // readiness results go to the coming dispatch
        const int max = static_cast<int>(events_.size());
        int n = 0;
        if (ns < 0) {
            n = ::epoll_wait(epfd_, events_.data(), max, -1);
        } else if (ns == 0) {
            n = ::epoll_wait(epfd_, events_.data(), max, 0);
        } else if (pwait2_) { // nanosecond timeouts (Linux 5.11)
            const timespec ts{static_cast<std::time_t>(ns / 1'000'000'000),
                              static_cast<long>(ns % 1'000'000'000)};
            n = ::epoll_pwait2(epfd_, events_.data(), max, &ts, nullptr);
            if (n < 0 && errno == ENOSYS) {
                pwait2_ = false;
                collect(ns);
                return;
            }
        } else { // milliseconds, rounded up: never early
            n = ::epoll_wait(
                epfd_, events_.data(), max,
                static_cast<int>(std::min<std::int64_t>((ns + 999'999) / 1'000'000, INT32_MAX)));
        }
        if (n < 0) {
            if (errno != EINTR)
                throw std::system_error(errno, std::system_category(), "corio: epoll_wait");
            n = 0;
        }
        for (int i = 0; i < n; ++i)
            ready(*static_cast<fd_state*>(events_[i].data.ptr), events_[i].events);
        if (!timers_.empty()) {
            const auto now = clock::now();
            while (!timers_.empty() && timers_.begin()->first <= now) {
                waiter* w = timers_.begin()->second;
                timers_.erase(timers_.begin());
                finish(w, -ETIME);
            }
        }
    }

    // --- nodes and the rest ------------------------------------------------------------------

    waiter* make(op_kind kind, const op_args& a, completion* c) {
        waiter* w = nullptr;
        if (!spare_.empty()) {
            w = spare_.back();
            spare_.pop_back();
            *w = waiter{};
        } else {
            w = new waiter{};
        }
        w->target = c;
        w->args = a;
        w->kind = kind;
        return w;
    }
    void release(waiter* w) noexcept {
        if (spare_.size() < 1024) {
            try {
                spare_.push_back(w);
                return;
            } catch (...) {
            }
        }
        delete w;
    }

    /// Puts `fd` in non-blocking mode (a read or accept after readiness must never block).
    static void nonblocking(int fd) noexcept {
        const int flags = ::fcntl(fd, F_GETFL);
        if (flags >= 0 && (flags & O_NONBLOCK) == 0)
            ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    }

    void offload(op_kind kind, const op_args& a, completion* c) {
        auto job = std::make_unique<file_job>();
        job->owner = this;
        job->target = c;
        job->args = a;
        job->kind = kind;
        job->run = [](detail::blocking_job* j) noexcept {
            auto* f = static_cast<file_job*>(j);
            const op_args& x = f->args;
            const bool at = x.offset != static_cast<std::uint64_t>(-1);
            const auto off = static_cast<off_t>(x.offset);
            f->res =
                f->kind == op_kind::read
                    ? result(at ? ::pread(x.fd, x.buf, x.len, off) : ::read(x.fd, x.buf, x.len))
                    : result(at ? ::pwrite(x.fd, x.buf, x.len, off) : ::write(x.fd, x.buf, x.len));
            f->owner->offload_.finish(f->owner->offload_.loop, *f);
        };
        job->done = [](detail::blocking_job* j) noexcept {
            std::unique_ptr<file_job> f{static_cast<file_job*>(j)};
            f->owner->post(f->target, f->res);
        };
        offload_.submit(offload_.loop, *job);
        (void)job.release(); // the pool has it; `done` frees it
    }

    file_offload offload_;
    int epfd_ = -1;
    std::vector<std::unique_ptr<fd_state>> fds_;
    std::multimap<clock::time_point, waiter*> timers_;
    std::vector<cqe_record> ready_;   // results waiting for the reap
    std::vector<cqe_record> backlog_; // what the loop dispatches from
    std::vector<waiter*> spare_;
    std::vector<buffer_group> groups_;
    std::vector<fd_state*> untried_; // descriptors with attempts left for the end of the turn
    speculation speculation_;
    static constexpr int inline_budget = 256;
    int inline_budget_ = inline_budget;
    std::array<epoll_event, 256> events_{};
    bool pwait2_ = true;
};

} // namespace corio::io

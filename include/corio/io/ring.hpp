// SPDX-License-Identifier: MIT
#pragma once

#include <corio/io/driver.hpp>
#include <corio/io/operation_kind.hpp>
#include <corio/io/torture.hpp>

#include <liburing.h>

#include <array>
#include <bitset>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace corio::detail {

/// Says why io_uring_setup was refused, in words an operator can act on.
inline std::string io_uring_unavailable_reason(int err) {
    std::string why = "corio: io_uring is unavailable: io_uring_setup failed with ";
    why += err == EPERM ? "EPERM (operation not permitted)" : "ENOSYS (not implemented)";
    std::ifstream sysctl("/proc/sys/kernel/io_uring_disabled");
    int disabled = 0;
    if (sysctl >> disabled && disabled != 0) {
        why += disabled == 2 ? "; the sysctl kernel.io_uring_disabled=2 disables it for everyone"
                             : "; the sysctl kernel.io_uring_disabled=1 restricts it to "
                               "CAP_SYS_ADMIN and the io_uring_group";
        return why;
    }
    std::ifstream status("/proc/self/status");
    for (std::string line; std::getline(status, line);) {
        if (line.rfind("Seccomp:", 0) == 0 && line.find('2') != std::string::npos) {
            why += "; this process runs under a seccomp filter that blocks the io_uring system "
                   "calls (Docker 25+ and containerd 2 default profiles do; allow io_uring_setup, "
                   "io_uring_enter and io_uring_register)";
            return why;
        }
    }
    why += err == ENOSYS ? "; the kernel was built without io_uring (CONFIG_IO_URING) or "
                           "predates it (Linux 5.1)"
                         : "; a security policy (seccomp, LSM) refuses it";
    return why;
}

} // namespace corio::detail

namespace corio::io {

/// The io_uring instance of one event loop (its `driver` on the io_uring backend): set-up with
/// feature fallback, SQE preparation for the operation kinds, batched submission and
/// completion reaping. Not thread-safe: it belongs to the loop's thread.
class ring final : public driver {
public:
    /// Sets the ring up with the best flags the kernel takes, dropping them one by one on
    /// EINVAL and shrinking on ENOMEM.
    /// **Errors**: `std::system_error`; when io_uring is refused (EPERM/ENOSYS) its message says
    /// why (sysctl, seccomp) instead of a bare errno.
    ring(unsigned sq_entries, unsigned cq_entries) {
#if defined(CORIO_TORTURE)
        if (torture_.active()) { // the tiny ring: the CQ overflows under any load
            sq_entries = 8;
            cq_entries = 16;
        }
#endif
        static constexpr std::array<unsigned, 5> flag_sets = {
            IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG |
                IORING_SETUP_SUBMIT_ALL, // 6.1
            IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG |
                IORING_SETUP_SUBMIT_ALL,                                                     // 6.0
            IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG | IORING_SETUP_SUBMIT_ALL, // 5.19
            IORING_SETUP_SUBMIT_ALL,                                                         // 5.18
            0,
        };
        int rc = -EINVAL;
        for (unsigned flags : flag_sets) {
            for (unsigned sq = sq_entries; sq >= 8; sq /= 2) {
                io_uring_params params{};
                params.flags = flags | IORING_SETUP_CQSIZE;
                params.cq_entries = cq_entries * sq / sq_entries;
                rc = io_uring_queue_init_params(sq, &ring_, &params);
                if (rc != -ENOMEM)
                    break; // ENOMEM (memlock limits on old kernels): try a smaller ring
            }
            if (rc == 0) {
                setup_flags_ = ring_.flags;
                features_ = ring_.features;
                break;
            }
            if (rc == -EPERM || rc == -ENOSYS)
                throw std::system_error(-rc, std::system_category(),
                                        corio::detail::io_uring_unavailable_reason(-rc));
            if (rc != -EINVAL)
                throw std::system_error(-rc, std::system_category(), "corio: io_uring_setup");
        }
        if (rc != 0)
            throw std::system_error(-rc, std::system_category(), "corio: io_uring_setup");
        io_uring_register_ring_fd(&ring_); // saves an fd lookup per enter; optional
        io_uring_ring_dontfork(&ring_);    // a forked child must not scribble on our rings
        probe();
    }
    ~ring() override {
#if defined(CORIO_TORTURE)
        torture_.check_drained();
#endif
        io_uring_queue_exit(&ring_);
    }

    /// The IORING_SETUP_* flags the kernel accepted, and its IORING_FEAT_* features.
    [[nodiscard]] unsigned setup_flags() const noexcept { return setup_flags_; }
    [[nodiscard]] unsigned features() const noexcept { return features_; }
    /// Whether the kernel implements an operation kind (probed once at set-up).
    [[nodiscard]] bool supports(op_kind k) const noexcept {
        return supported_.test(static_cast<std::size_t>(k));
    }

    [[nodiscard]] corio::backend kind() const noexcept override { return corio::backend::io_uring; }

    /// True when the kernel implements every operation kind corio uses; else the name of the
    /// first missing one in `missing`.
    [[nodiscard]] bool supports_all(const char*& missing) const noexcept {
        for (const auto& [kind, name] : op_names())
            if (!supports(kind)) {
                missing = name;
                return false;
            }
        return true;
    }

    /// Prepares the SQE of an operation of the loop's users (what CORIO_TORTURE may torture).
    void start(op_kind kind, const op_args& args, completion* c) override {
#if defined(CORIO_TORTURE)
        op_args a = args;
        const torture::fault f = torture_.on_start(kind, a);
        switch (f) {
        case torture::fault::refuse: throw torture_.refusal();
        case torture::fault::interrupt:
        case torture::fault::cancel:
            // A NOP stands in for the operation, which then ends with -EINTR or -ECANCELED
            // having done nothing.
            torture_.fake(c, f == torture::fault::interrupt ? -EINTR : -ECANCELED);
            prepare(op_kind::nop, {}, c);
            return;
        case torture::fault::none: break;
        }
        prepare(kind, a, c);
#else
        prepare(kind, args, c);
#endif
    }

    void start_own(op_kind kind, const op_args& args, completion* c) override {
        prepare(kind, args, c);
    }

    /// Submits IORING_OP_ASYNC_CANCEL for `c` at once: the request must reach the kernel
    /// before the address of `c` can belong to a later operation.
    void cancel(completion& c) override {
        op_args a{};
        a.target = reinterpret_cast<std::uint64_t>(&c);
        prepare(op_kind::cancel, a, nullptr);
        submit_now();
    }

    /// Prepares an SQE for `kind`; flushes the submission queue first when it is full.
    void prepare(op_kind kind, const op_args& a, completion* c) {
        io_uring_sqe* sqe = get_sqe();
        switch (kind) {
        case op_kind::nop: io_uring_prep_nop(sqe); break;
        case op_kind::timeout:
            io_uring_prep_timeout(sqe, const_cast<__kernel_timespec*>(&a.ts), 0, 0);
            break;
        case op_kind::read: io_uring_prep_read(sqe, a.fd, a.buf, a.len, a.offset); break;
        case op_kind::write: io_uring_prep_write(sqe, a.fd, a.buf, a.len, a.offset); break;
        case op_kind::recv:
            if (a.multishot)
                io_uring_prep_recv_multishot(sqe, a.fd, nullptr, 0, a.flags);
            else
                io_uring_prep_recv(sqe, a.fd, a.buf, a.len, a.flags);
            if (a.buf_group >= 0) {
                sqe->flags |= IOSQE_BUFFER_SELECT;
                sqe->buf_group = static_cast<std::uint16_t>(a.buf_group);
            }
            break;
        case op_kind::send: io_uring_prep_send(sqe, a.fd, a.buf, a.len, a.flags); break;
        case op_kind::accept:
            if (a.multishot)
                io_uring_prep_multishot_accept(sqe, a.fd, static_cast<sockaddr*>(a.buf), a.addr_len,
                                               a.flags);
            else
                io_uring_prep_accept(sqe, a.fd, static_cast<sockaddr*>(a.buf), a.addr_len, a.flags);
            break;
        case op_kind::connect:
            io_uring_prep_connect(sqe, a.fd, static_cast<const sockaddr*>(a.buf), a.len);
            break;
        case op_kind::close: io_uring_prep_close(sqe, a.fd); break;
        case op_kind::poll:
            if (a.multishot)
                io_uring_prep_poll_multishot(sqe, a.fd, static_cast<unsigned>(a.flags));
            else
                io_uring_prep_poll_add(sqe, a.fd, static_cast<unsigned>(a.flags));
            break;
        case op_kind::cancel: io_uring_prep_cancel64(sqe, a.target, 0); break;
        }
        io_uring_sqe_set_data(sqe, c);
#if defined(CORIO_TORTURE)
        if (c != nullptr)
            torture_.submitted(c);
#endif
    }

    /// Submits what is prepared and returns at once, also running deferred completion work, so
    /// that reaping finds what is ready. Skips the system call when there is nothing to do.
    void submit_nowait() override {
        if (io_uring_sq_ready(&ring_) == 0 && !completions_pending_in_kernel())
            return;
#if defined(CORIO_TORTURE)
        if (torture_.interrupt_enter())
            return; // as an io_uring_enter interrupted by a signal: the next turn goes on
#endif
        enter([this] { return io_uring_submit_and_get_events(&ring_); });
    }

    /// Submits what is prepared and waits until a completion arrives or `timeout` passes
    /// (null: no limit). One system call. Interrupted and timed-out waits simply return.
    void submit_and_wait(const __kernel_timespec* timeout) override {
#if defined(CORIO_TORTURE)
        if (torture_.interrupt_enter())
            return; // as an io_uring_enter interrupted by a signal: the next turn goes on
#endif
        io_uring_cqe* cqe = nullptr;
        enter(
            [&] {
                return timeout == nullptr
                           ? io_uring_submit_and_wait(&ring_, 1)
                           : io_uring_submit_and_wait_timeout(
                                 &ring_, &cqe, 1, const_cast<__kernel_timespec*>(timeout), nullptr);
            },
            /*waits=*/true);
    }

    /// Submits what is prepared right away (used by cancellation, which must reach the kernel
    /// before any later operation can reuse the cancelled one's address).
    void submit_now() {
        enter([this] { return io_uring_submit(&ring_); });
    }

    /// Copies every available completion into `out` and frees their CQ slots.
    void reap(std::vector<cqe_record>& out) override {
        std::array<io_uring_cqe*, 64> batch; // NOLINT(cppcoreguidelines-pro-type-member-init)
        for (;;) {
            const unsigned n = io_uring_peek_batch_cqe(&ring_, batch.data(), batch.size());
            if (n == 0)
                return;
            for (unsigned i = 0; i < n; ++i) {
                const std::uint64_t data = batch[i]->user_data;
                // 0: a cancel request's own completion (the target reports on its own CQE);
                // LIBURING_UDATA_TIMEOUT: liburing's wait timeout on kernels without EXT_ARG.
                if (data != 0 && data != LIBURING_UDATA_TIMEOUT) {
                    auto* target =
                        reinterpret_cast<completion*>(data); // NOLINT(performance-no-int-to-ptr)
                    int res = batch[i]->res;
                    std::uint32_t flags = batch[i]->flags;
#if defined(CORIO_TORTURE)
                    if (torture_.take_fake(target, res))
                        flags = 0; // the faked end of the operation
                    if ((flags & IORING_CQE_F_MORE) == 0)
                        torture_.finished(target);
#endif
                    out.push_back({target, res, flags});
                }
            }
            io_uring_cq_advance(&ring_, n);
        }
    }

private:
    /// True when the kernel holds completions that only an io_uring_enter will post
    /// (deferred task work, or an overflowed CQ).
    [[nodiscard]] bool completions_pending_in_kernel() const noexcept {
        const unsigned flags = __atomic_load_n(ring_.sq.kflags, __ATOMIC_ACQUIRE);
        return (flags & (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW)) != 0;
    }

    io_uring_sqe* get_sqe() {
        for (;;) {
            if (io_uring_sqe* sqe = io_uring_get_sqe(&ring_))
                return sqe;
            submit_now(); // SQ full: hand the batch to the kernel and take a fresh slot
        }
    }

    /// Runs one io_uring_enter-based call, retrying on EINTR. EBUSY/EAGAIN mean the kernel
    /// cannot take more until completions are reaped: the caller reaps every turn, and the CQ
    /// is sized far above the SQ, so those only happen under extreme load; reap, then retry
    /// (a call that `waits` returns instead when it reaped something: it must not block with
    /// completions in hand).
    template <class Enter>
    void enter(Enter fn, bool waits = false) {
        for (;;) {
            const int rc = fn();
            if (rc >= 0 || rc == -ETIME || rc == -EINTR)
                return;
            if (rc == -EBUSY || rc == -EAGAIN) {
                reap(backlog_);
                if (waits && !backlog_.empty())
                    return; // never block with completions in hand: the loop dispatches them
                continue;
            }
            throw std::system_error(-rc, std::system_category(), "corio: io_uring_enter");
        }
    }

public:
    /// Completions reaped but not yet dispatched: the loop reaps into it and dispatches from
    /// it; a submit that meets EBUSY while the loop dispatches appends to it.
    std::vector<cqe_record>& backlog() noexcept override { return backlog_; }

#if defined(CORIO_TORTURE)
    /// The fault injector, for tests that force one fault.
    [[nodiscard]] torture& torturer() noexcept { return torture_; }
#endif

    /// Registers a ring of provided buffers (`entries` slots at `br`) as buffer group `group`.
    /// Returns 0 or a negative errno (-EINVAL before kernel 5.19, -EEXIST for a taken group).
    [[nodiscard]] int register_buffer_ring(io_uring_buf_ring* br, unsigned entries,
                                           std::uint16_t group) noexcept override {
        io_uring_buf_reg reg{};
        reg.ring_addr = reinterpret_cast<std::uint64_t>(br);
        reg.ring_entries = entries;
        reg.bgid = group;
        return io_uring_register_buf_ring(&ring_, &reg, 0);
    }
    void unregister_buffer_ring(std::uint16_t group) noexcept override {
        (void)io_uring_unregister_buf_ring(&ring_, group);
    }

private:
    static constexpr std::array<std::pair<op_kind, const char*>, 11> op_names() noexcept {
        return {{
            {op_kind::nop, "IORING_OP_NOP"},
            {op_kind::timeout, "IORING_OP_TIMEOUT"},
            {op_kind::read, "IORING_OP_READ"},
            {op_kind::write, "IORING_OP_WRITE"},
            {op_kind::recv, "IORING_OP_RECV"},
            {op_kind::send, "IORING_OP_SEND"},
            {op_kind::accept, "IORING_OP_ACCEPT"},
            {op_kind::connect, "IORING_OP_CONNECT"},
            {op_kind::close, "IORING_OP_CLOSE"},
            {op_kind::poll, "IORING_OP_POLL_ADD"},
            {op_kind::cancel, "IORING_OP_ASYNC_CANCEL"},
        }};
    }

    void probe() {
        io_uring_probe* p = io_uring_get_probe_ring(&ring_);
        if (p == nullptr) {
            supported_.set(); // very old kernel without probing: assume the basics
            return;
        }
        const std::array<std::pair<op_kind, int>, 11> ops = {{
            {op_kind::nop, IORING_OP_NOP},
            {op_kind::timeout, IORING_OP_TIMEOUT},
            {op_kind::read, IORING_OP_READ},
            {op_kind::write, IORING_OP_WRITE},
            {op_kind::recv, IORING_OP_RECV},
            {op_kind::send, IORING_OP_SEND},
            {op_kind::accept, IORING_OP_ACCEPT},
            {op_kind::connect, IORING_OP_CONNECT},
            {op_kind::close, IORING_OP_CLOSE},
            {op_kind::poll, IORING_OP_POLL_ADD},
            {op_kind::cancel, IORING_OP_ASYNC_CANCEL},
        }};
        for (auto [kind, op] : ops)
            supported_.set(static_cast<std::size_t>(kind), io_uring_opcode_supported(p, op) != 0);
        io_uring_free_probe(p);
    }

    io_uring ring_{};
    unsigned setup_flags_ = 0;
    unsigned features_ = 0;
    std::bitset<16> supported_;
    std::vector<cqe_record> backlog_;
#if defined(CORIO_TORTURE)
    torture torture_;
#endif
};

} // namespace corio::io

// SPDX-License-Identifier: MIT
#pragma once

#include <corio/io/buffer_ring.hpp>
#include <corio/io/event_loop.hpp>
#include <corio/io/multishot.hpp>
#include <corio/io/operation_kind.hpp>
#include <corio/net/detail/input_buffer.hpp>

#include <sys/utsname.h>

#include <algorithm>
#include <cerrno>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <new>
#include <optional>
#include <span>
#include <system_error>
#include <utility>
#include <vector>

namespace corio::detail {

/// The loop's provided buffers for multishot receives (a loop service, made at first use):
/// 1,024 buffers of 2 KiB, on either backend (on epoll the driver takes from them itself).
/// Absent (`get()` is null) where io_uring lacks multishot recv (before 6.0) or refuses the
/// buffer ring; its users then read the classic way.
class recv_buffers {
public:
    static constexpr std::uint16_t group = 0xC0; // corio's buffer group in the loop's ring
    static constexpr unsigned count = 1024;
    static constexpr unsigned size = 2048;

    recv_buffers() {
        event_loop& loop = event_loop::current();
        if (loop.backend() == corio::backend::io_uring && !kernel_has_multishot_recv())
            return;
        try {
            ring_.emplace(loop.io_driver(), group, count, size);
        } catch (const std::system_error&) {
            // No buffer rings here (or the group is taken): the classic reads still work.
        }
    }

    [[nodiscard]] io::buffer_ring* get() noexcept { return ring_ ? &*ring_ : nullptr; }

private:
    static bool kernel_has_multishot_recv() noexcept {
        utsname u{};
        if (::uname(&u) != 0)
            return false;
        int major = 0;
        int minor = 0;
        if (std::sscanf(u.release, "%d.%d", &major, &minor) != 2) // NOLINT(cert-err34-c)
            return false;
        return major >= 6;
    }

    std::optional<io::buffer_ring> ring_;
};

/// One multishot receive on a socket into the loop's provided buffers: submitted once, it
/// posts a completion whenever data arrives, until the end of the stream, an error, or the
/// buffers running dry (then it is submitted again). Compared with a receive per read, the
/// kernel keeps its poll armed and takes no submission per message.
///
/// **Bounds**: the provided buffers are shared by every reader of the loop, so a reader holds
/// none: each completion's bytes are copied out (into the waiting reader's buffer, else into
/// the reader's own read-ahead) and its buffer goes back to the kernel at once. One slow reader
/// can therefore never starve the others. The read-ahead is bounded by `max_read_ahead`: past
/// it, the receive is cancelled and the kernel's socket buffer, then TCP flow control, hold the
/// rest until the reader catches up. A ring that runs dry costs one completion and one
/// resubmission per turn of a reader that waits (the buffers are back by then), never a spin.
///
/// **Lifetime**: the completion target lives on the heap, so the reader may be destroyed with
/// the receive still in the kernel: it is cancelled, and what it still delivers is given back.
/// **Thread-safety**: the loop's thread.
class recv_multishot {
    struct state;

public:
    /// What a connection may receive ahead of its reader by default.
    static constexpr std::size_t default_read_ahead = std::size_t{64} * 1024;

    /// Counts for tests and diagnostics.
    struct counters {
        std::size_t data = 0;    ///< completions that carried bytes
        std::size_t dry = 0;     ///< completions that found no free buffer (ENOBUFS)
        std::size_t submits = 0; ///< multishot receives submitted
        std::size_t paused = 0;  ///< times the read-ahead bound stopped the receive
    };

    /// Receives from `fd`, whose owner (`io::op_args::owner`, 0: none) keeps it for the
    /// receive's whole life.
    recv_multishot(int fd, std::uint64_t owner, io::buffer_ring& buffers,
                   std::size_t max_read_ahead = default_read_ahead)
        : state_(new state(fd, owner, event_loop::current("corio::net recv"), buffers,
                           std::max<std::size_t>(max_read_ahead, 1))) {}
    recv_multishot(const recv_multishot&) = delete;
    recv_multishot& operator=(const recv_multishot&) = delete;
    ~recv_multishot() { state_->release(); }

    class [[nodiscard]] read_awaiter : public io::multishot_wait<state> {
    public:
        read_awaiter(recv_multishot& r, detail::input_buffer& in) noexcept
            : io::multishot_wait<state>(*r.state_), s_(*r.state_), in_(in) {}
        /// The bytes appended to `in`; 0 at the end of the stream.
        std::size_t await_resume() {
            io::multishot_wait<state>::await_resume();
            if (target() == nullptr) // the reader went while this read waited
                throw std::system_error(EBADF, std::system_category(),
                                        "corio::net recv: the reader was destroyed");
            return s_.take(in_);
        }
        [[nodiscard]] detail::input_buffer& buffer() const noexcept { return in_; }

    private:
        state& s_;
        detail::input_buffer& in_;
    };

    /// Waits until data arrives, then appends everything that has arrived to `in`.
    /// **Cancellation**: cancellable; what arrives meanwhile waits for the next read.
    /// **Errors**: `std::system_error` for a failed receive (reset by peer...), or `EMSGSIZE`
    /// when `in` is at its limit.
    read_awaiter read(detail::input_buffer& in) noexcept { return read_awaiter{*this, in}; }

    /// Bytes received and not yet read.
    [[nodiscard]] std::size_t read_ahead() const noexcept { return state_->ahead.size(); }
    [[nodiscard]] const counters& stats() const noexcept { return state_->stats; }

private:
    struct state : io::multishot_target<state> {
        state(int fd_, std::uint64_t owner_, event_loop& loop_, io::buffer_ring& buffers_,
              std::size_t limit_) noexcept
            : io::multishot_target<state>(loop_), buffers(buffers_), limit(limit_), owner(owner_),
              fd(fd_) {}

        // Something for the reader: bytes, or the end of the stream, or an error.
        [[nodiscard]] bool ready() const noexcept {
            return delivered > 0 || !ahead.empty() || eof || error != 0;
        }

        // Before the reader waits: receive, unless the receive is live already.
        void before_wait() {
            if (!live())
                resubmit();
        }
        void resubmit() {
            io::op_args a{};
            a.fd = fd;
            a.owner = owner;
            a.buf_group = buffers.group();
            arm(io::op_kind::recv, a);
            ++stats.submits;
        }

        // What arrived for the reader: the bytes delivered into its buffer while it waited, or
        // the read-ahead, moved into `in`; then the end of the stream (every time), or the
        // error (once).
        std::size_t take(detail::input_buffer& in) {
            if (const std::size_t n = std::exchange(delivered, 0); n > 0)
                return n;
            if (!ahead.empty()) {
                const std::size_t n = ahead.size();
                if (!in.append(ahead.data(), n))
                    throw std::system_error(EMSGSIZE, std::system_category(),
                                            "corio::net recv: the input buffer is at its limit");
                ahead.clear();
                if (ahead.capacity() > limit)
                    ahead.shrink_to_fit();
                return n;
            }
            if (eof)
                return 0;
            if (error != 0)
                throw std::system_error(-std::exchange(error, 0), std::system_category(),
                                        "corio::net recv");
            return 0; // not reached: take follows ready()
        }

        // A completion while the reader is there.
        void deliver(int res, std::uint32_t flags, bool more) noexcept {
            if (res > 0 && (flags & IORING_CQE_F_BUFFER) != 0) {
                const unsigned bid = io::buffer_ring::buffer_id(flags);
                try {
                    copy_out(buffers.data(bid, static_cast<std::size_t>(res)));
                } catch (const std::bad_alloc&) {
                    error = -ENOMEM; // the bytes are lost: the stream must not go on
                }
                buffers.give_back(bid); // at once: no reader holds a provided buffer
            } else if (res == 0) {
                eof = true;
            } else if (res == -ENOBUFS) {
                ++stats.dry;
            } else if (res < 0 && res != -ECANCELED && res != -EINTR && error == 0) {
                // (-ECANCELED is ours: the read-ahead bound; -EINTR ends it having done
                // nothing: received again below)
                error = res;
            }
            if (more && ahead.size() >= limit && !stopping()) {
                // The reader is behind by the bound: stop receiving until it catches up.
                ++stats.paused;
                stop();
            }
            if (!waiting())
                return;
            if (ready()) {
                wake();
                return;
            }
            if (!live()) {
                // Dry (the buffers are back: each completion gives its own back at once) or
                // paused and caught up: receive again for the reader that waits.
                try {
                    resubmit();
                } catch (const std::exception&) {
                    error = -EIO;
                    wake();
                }
            }
        }
        // A completion after the reader went: its buffer goes back.
        void discard(int res, std::uint32_t flags) noexcept {
            if (res > 0 && (flags & IORING_CQE_F_BUFFER) != 0)
                buffers.give_back(io::buffer_ring::buffer_id(flags));
        }

        // Bytes of one completion: into the waiting reader's buffer, else the read-ahead.
        void copy_out(std::span<const std::byte> bytes) {
            ++stats.data;
            if (waiting()) {
                detail::input_buffer& in = static_cast<read_awaiter*>(waiter())->buffer();
                if (in.append(bytes.data(), bytes.size())) {
                    delivered += bytes.size();
                    return;
                }
            }
            ahead.insert(ahead.end(), reinterpret_cast<const char*>(bytes.data()),
                         reinterpret_cast<const char*>(bytes.data()) + bytes.size());
        }

        io::buffer_ring& buffers;
        std::vector<char> ahead;   // received while no reader waited
        std::size_t delivered = 0; // bytes put straight into the waiting reader's buffer
        std::size_t limit;
        counters stats;
        std::uint64_t owner;
        int fd;
        int error = 0;
        bool eof = false;
    };

    state* state_;
};

} // namespace corio::detail

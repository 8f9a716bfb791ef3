// SPDX-License-Identifier: MIT
#pragma once

#include <corio/detail/cancel_state.hpp>
#include <corio/detail/cancellation_point.hpp>
#include <corio/detail/cancelled_error.hpp>
#include <corio/io/buffer_ring.hpp>
#include <corio/io/event_loop.hpp>
#include <corio/io/operation_kind.hpp>

#include <sys/utsname.h>

#include <algorithm>
#include <cerrno>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <optional>
#include <system_error>
#include <utility>
#include <vector>

namespace corio::detail {

/// The loop's provided buffers for multishot receives (a loop service, made at first use):
/// 1,024 buffers of 2 KiB. Absent (`get()` is null) where the kernel lacks multishot recv
/// (before 6.0) or refuses the buffer ring; its users then read the classic way.
class recv_buffers {
public:
    static constexpr std::uint16_t group = 0xC0; // corio's buffer group in the loop's ring
    static constexpr unsigned count = 1024;
    static constexpr unsigned size = 2048;

    recv_buffers() {
        if (!kernel_has_multishot_recv())
            return;
        try {
            ring_.emplace(event_loop::current().io_ring(), group, count, size);
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
/// buffers running dry (then the next `read` submits it again). Compared with a receive per
/// read, the kernel keeps its poll armed and takes no submission per message.
///
/// **Lifetime**: the completion target lives on the heap, so the reader may be destroyed with
/// the receive still in the kernel: it is cancelled, and what it still delivers is given back.
/// **Thread-safety**: the loop's thread.
class recv_multishot {
    struct state;

public:
    recv_multishot(int fd, io::buffer_ring& buffers)
        : state_(new state(fd, event_loop::current("corio::net recv"), buffers)) {}
    recv_multishot(const recv_multishot&) = delete;
    recv_multishot& operator=(const recv_multishot&) = delete;
    ~recv_multishot() { state_->release(); }

    class [[nodiscard]] read_awaiter : detail::cancel_target, detail::cancellation_point {
    public:
        read_awaiter(recv_multishot& r, std::vector<char>& in, std::size_t& end) noexcept
            : s_(*r.state_), in_(in), end_(end) {
            on_cancel = &on_cancelled;
        }
        [[nodiscard]] bool await_ready() const noexcept { return s_.ready(); }
        template <class Promise>
        bool await_suspend(std::coroutine_handle<Promise> h) {
            if (cancel_pending(h))
                return false;
            if (!s_.live)
                s_.arm();
            s_.waiter = h;
            if (cancel_ != nullptr)
                cancel_->arm(this);
            return true;
        }
        /// The bytes appended to `in` at `end` (which moves past them); 0 at the end of the
        /// stream.
        std::size_t await_resume() {
            if (cancel_ != nullptr) {
                cancel_->disarm(this);
                if (cancel_->requested() && !s_.ready()) {
                    cancel_->consume();
                    throw cancelled_error{};
                }
            }
            return s_.take(in_, end_);
        }

    private:
        static void on_cancelled(detail::cancel_target* t) noexcept {
            auto* self = static_cast<read_awaiter*>(t);
            if (std::coroutine_handle<> w = std::exchange(self->s_.waiter, {}))
                event_loop::current().schedule(w);
        }
        state& s_;
        std::vector<char>& in_;
        std::size_t& end_;
    };

    /// Waits until data arrives, then appends everything that has arrived to `in` at `end`
    /// (growing `in` as needed). **Cancellation**: cancellable; what arrives meanwhile waits for
    /// the next read. **Errors**: `std::system_error` for a failed receive (reset by peer...).
    read_awaiter read(std::vector<char>& in, std::size_t& end) noexcept {
        return read_awaiter{*this, in, end};
    }

private:
    struct state : io::completion {
        struct item {
            int res;
            std::uint32_t flags;
        };

        state(int fd_, event_loop& loop_, io::buffer_ring& buffers_) noexcept
            : loop(loop_), buffers(buffers_), fd(fd_) {
            complete = &on_complete;
        }

        [[nodiscard]] bool ready() const noexcept { return head < queue.size(); }

        void arm() {
            io::op_args a{};
            a.fd = fd;
            a.multishot = true;
            a.buf_group = buffers.group();
            loop.start_io(io::op_kind::recv, a, *this);
            live = true;
        }

        // Moves the queued data into `in`; an end of stream or error is reported once the data
        // before it has been taken.
        std::size_t take(std::vector<char>& in, std::size_t& end) {
            std::size_t total = 0;
            while (head < queue.size()) {
                const item it = queue[head];
                if (it.res <= 0) {
                    if (total > 0)
                        break;
                    ++head;
                    compact();
                    if (it.res == 0)
                        return 0;
                    throw std::system_error(-it.res, std::system_category(), "corio::net recv");
                }
                ++head;
                const auto n = static_cast<std::size_t>(it.res);
                if (in.size() - end < n)
                    in.resize(std::max(in.size() * 2, end + n));
                const unsigned bid = io::buffer_ring::buffer_id(it.flags);
                std::memcpy(in.data() + end, buffers.data(bid, n).data(), n);
                buffers.give_back(bid);
                end += n;
                total += n;
            }
            compact();
            return total;
        }

        void compact() noexcept {
            if (head == queue.size()) {
                queue.clear();
                head = 0;
            }
        }

        // The reader is gone: give back what is queued; the last completion frees the state.
        void release() noexcept {
            for (std::size_t i = head; i < queue.size(); ++i)
                if (queue[i].res > 0)
                    buffers.give_back(io::buffer_ring::buffer_id(queue[i].flags));
            queue.clear();
            waiter = {};
            if (!live) {
                delete this;
                return;
            }
            orphaned = true;
            loop.adopt_orphan();
            try {
                loop.cancel_io(*this);
            } catch (...) {
                // The ring is broken: no completion will come; the state is leaked.
            }
        }

        static void on_complete(io::completion* c, int res, std::uint32_t flags) noexcept {
            auto* self = static_cast<state*>(c);
            const bool more = (flags & IORING_CQE_F_MORE) != 0;
            if (!more)
                self->live = false;
            if (self->orphaned) {
                if ((flags & IORING_CQE_F_BUFFER) != 0)
                    self->buffers.give_back(io::buffer_ring::buffer_id(flags));
                if (!more) {
                    self->loop.orphan_finished();
                    delete self;
                }
                return;
            }
            if (res == -ENOBUFS) {
                // The buffers ran dry this turn: receive again once a reader waits (they come
                // back as readers take their data).
                if (!more && self->waiter) {
                    try {
                        self->arm();
                        return;
                    } catch (const std::exception&) {
                        res = -EIO;
                    }
                } else {
                    return;
                }
            }
            self->queue.push_back({res, flags});
            if (std::coroutine_handle<> w = std::exchange(self->waiter, {}))
                w.resume();
        }

        event_loop& loop;
        io::buffer_ring& buffers;
        std::vector<item> queue;
        std::size_t head = 0;
        std::coroutine_handle<> waiter;
        int fd;
        bool live = false;
        bool orphaned = false;
    };

    state* state_;
};

} // namespace corio::detail

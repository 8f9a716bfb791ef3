// SPDX-License-Identifier: MIT
#pragma once

#include <corio/detail/assert.hpp>
#include <corio/detail/cancel_state.hpp>
#include <corio/detail/cancellation_point.hpp>
#include <corio/detail/cancelled_error.hpp>
#include <corio/detail/promise_base.hpp>
#include <corio/io/event_loop.hpp>
#include <corio/io/operation_kind.hpp>

#include <cerrno>
#include <chrono>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <span>
#include <system_error>
#include <utility>

#include <sys/socket.h>

namespace corio::io {

/// The awaiter of one kernel operation (the base every I/O call of corio is built on). It lives
/// in the suspended coroutine's frame; its address is the SQE's user_data; the loop resumes the
/// coroutine on its CQE.
///
/// **Resumption**: on the loop's thread, when the operation's own CQE arrives — also after a
/// cancellation, so the kernel never writes into a frame that is gone.
/// **Cancellation**: submits IORING_OP_ASYNC_CANCEL for this operation. If the CQE then says
/// -ECANCELED, `co_await` throws `cancelled_error`; if the operation won the race, its result
/// is returned and the request stays pending for the next cancellable suspension.
/// **Errors**: a negative result throws `std::system_error` (the errno and the operation's
/// name), unless `no_throw()` asked for the raw `-errno` instead. An operation that ends with
/// -EINTR (interrupted before it did anything) is submitted again instead, except a connect.
class [[nodiscard]] operation : completion, detail::cancel_target, detail::cancellation_point {
public:
    operation(op_kind kind, const op_args& args, const char* what) noexcept
        : args_(args), what_(what), kind_(kind) {
        complete = &on_complete;
        on_cancel = &on_cancelled;
    }
    /// Movable until awaited (it is a value until then); never copied.
    operation(operation&&) noexcept = default;
    operation(const operation&) = delete;
    operation& operator=(const operation&) = delete;
    operation& operator=(operation&&) = delete;

    /// Makes `co_await` return a negative errno instead of throwing `std::system_error`
    /// (cancellation still throws `cancelled_error`).
    [[nodiscard]] operation no_throw() && noexcept {
        throw_ = false;
        return std::move(*this);
    }

    /// Says that `owner` (`new_owner_id()`) keeps the descriptor, a stream socket or a
    /// listener, for its whole life: the epoll backend then keeps it registered between
    /// operations (`op_args::owner`).
    [[nodiscard]] operation owned_by(std::uint64_t owner) && noexcept {
        args_.owner = owner;
        return std::move(*this);
    }

    [[nodiscard]] bool await_ready() const noexcept { return false; }

    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> h) {
        if (cancel_pending(h)) {
            result_ = -ECANCELED;
            cancelled_ = true;
            return false; // never submitted
        }
        waiter_ = h;
        loop_ = &event_loop::current(what_);
        loop_->start_io(kind_, args_, *this);
        if (cancel_ != nullptr)
            cancel_->arm(this);
        return true;
    }

    int await_resume() {
        if (cancelled_ && (result_ == -ECANCELED || result_ == -EINTR)) {
            cancel_->consume();
            throw cancelled_error{};
        }
        if (result_ < 0 && throw_)
            throw std::system_error(-result_, std::system_category(), what_);
        return result_;
    }

private:
    static void on_complete(completion* c, int res, std::uint32_t) noexcept {
        auto* self = static_cast<operation*>(c);
        if (res == -EINTR && !self->cancelled_ && self->kind_ != op_kind::connect) {
            // Interrupted before it did anything: submitted again, as a blocking call is
            // retried after EINTR. (Not a connect: an interrupted one goes on in the kernel,
            // so its EINTR is reported.)
            try {
                self->loop_->start_io(self->kind_, self->args_, *self);
                return;
            } catch (const std::system_error& e) {
                res = -e.code().value(); // the ring refused: that is the operation's error
            } catch (...) {
                res = -ENOMEM;
            }
        }
        // The ring's timer completes with -ETIME when it expires: the boundary says 0.
        self->result_ = self->kind_ == op_kind::timeout && res == -ETIME ? 0 : res;
        if (self->cancel_ != nullptr)
            self->cancel_->disarm(self);
        CORIO_ASSERT(self->waiter_, "corio::io::operation: a second completion for an operation "
                                    "whose coroutine already resumed");
        std::exchange(self->waiter_, {}).resume();
    }
    static void on_cancelled(detail::cancel_target* t) noexcept {
        auto* self = static_cast<operation*>(t);
        self->cancelled_ = true;
        try {
            self->loop_->cancel_io(*self);
        } catch (...) {
            // Submitting the cancel failed (the ring is broken): the operation still completes
            // on its own, so nothing is leaked; the request stays pending.
        }
    }

    op_args args_;
    const char* what_;
    event_loop* loop_ = nullptr;
    std::coroutine_handle<> waiter_;
    int result_ = 0;
    op_kind kind_;
    bool cancelled_ = false;
    bool throw_ = true;
};

/// A no-op round trip through the ring (benchmarks, tests, a turn boundary).
[[nodiscard]] inline operation nop() { return {op_kind::nop, {}, "corio::io::nop"}; }

/// A kernel timer (IORING_OP_TIMEOUT); completes with 0 when `d` has passed. corio's own sleeps
/// use user-space timers; this is the ring's operation, for completeness of the boundary.
[[nodiscard]] inline operation timeout(std::chrono::nanoseconds d) {
    op_args a{};
    a.ts.tv_sec = d.count() / 1'000'000'000;
    a.ts.tv_nsec = d.count() % 1'000'000'000;
    return {op_kind::timeout, a, "corio::io::timeout"};
}

/// Reads into `buf` at `offset` (-1: the file position); completes with the byte count.
[[nodiscard]] inline operation read(int fd, std::span<std::byte> buf,
                                    std::uint64_t offset = static_cast<std::uint64_t>(-1)) {
    op_args a{};
    a.fd = fd;
    a.buf = buf.data();
    a.len = static_cast<std::uint32_t>(buf.size());
    a.offset = offset;
    return {op_kind::read, a, "corio::io::read"};
}

/// Writes `buf` at `offset` (-1: the file position); completes with the byte count.
[[nodiscard]] inline operation write(int fd, std::span<const std::byte> buf,
                                     std::uint64_t offset = static_cast<std::uint64_t>(-1)) {
    op_args a{};
    a.fd = fd;
    a.buf = const_cast<std::byte*>(buf.data());
    a.len = static_cast<std::uint32_t>(buf.size());
    a.offset = offset;
    return {op_kind::write, a, "corio::io::write"};
}

/// Waits until `fd` reports one of the poll `events`; completes with the revents mask.
[[nodiscard]] inline operation poll(int fd, short events) {
    op_args a{};
    a.fd = fd;
    a.flags = events;
    return {op_kind::poll, a, "corio::io::poll"};
}

/// Receives into `buf` from a socket; completes with the byte count (0: the peer closed).
[[nodiscard]] inline operation recv(int fd, std::span<std::byte> buf, int flags = 0) {
    op_args a{};
    a.fd = fd;
    a.buf = buf.data();
    a.len = static_cast<std::uint32_t>(buf.size());
    a.flags = flags;
    return {op_kind::recv, a, "corio::io::recv"};
}

/// Sends from `buf` on a socket; completes with the byte count (MSG_NOSIGNAL is always added:
/// a closed peer is an EPIPE error, never a SIGPIPE).
[[nodiscard]] inline operation send(int fd, std::span<const std::byte> buf, int flags = 0) {
    op_args a{};
    a.fd = fd;
    a.buf = const_cast<std::byte*>(buf.data());
    a.len = static_cast<std::uint32_t>(buf.size());
    a.flags = flags | MSG_NOSIGNAL;
    return {op_kind::send, a, "corio::io::send"};
}

/// Connects a socket to `addr` (which must stay valid until completion).
[[nodiscard]] inline operation connect(int fd, const sockaddr* addr, socklen_t len) {
    op_args a{};
    a.fd = fd;
    a.buf = const_cast<sockaddr*>(addr);
    a.len = len;
    return {op_kind::connect, a, "corio::io::connect"};
}

/// Closes `fd` through the ring.
[[nodiscard]] inline operation close(int fd) {
    op_args a{};
    a.fd = fd;
    return {op_kind::close, a, "corio::io::close"};
}

} // namespace corio::io

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
#include <coroutine>
#include <cstdint>
#include <deque>
#include <optional>
#include <system_error>

namespace corio::io {

/// A multishot operation (multishot accept, multishot poll): one submission, many completions.
/// Results queue up in arrival order until consumed with `next()`; the operation is live until
/// a completion arrives without `IORING_CQE_F_MORE` (on error, on `stop()`, or when the kernel
/// ends it, for instance on CQ overflow; `start()` re-arms it then).
///
/// **Lifetime**: its address is the user_data of every completion, so it must not be destroyed
/// while live: `stop()`, then consume with `next()` until it returns `std::nullopt`. Destroying
/// a live one is a fatal assertion.
/// **Thread-safety**: loop thread only.
class multishot : completion {
public:
    multishot(op_kind kind, const op_args& args, const char* what) noexcept
        : args_(args), what_(what), kind_(kind) {
        args_.multishot = true;
        complete = &on_complete;
    }
    multishot(const multishot&) = delete;
    multishot& operator=(const multishot&) = delete;
    ~multishot() {
        CORIO_ASSERT(!live_, "io::multishot destroyed while live; stop() it and consume next() "
                             "until it returns nullopt");
    }

    /// Submits the operation (with the loop's next batch). No effect while already live.
    void start() {
        if (live_)
            return;
        loop_ = &event_loop::current(what_);
        loop_->start_io(kind_, args_, *this);
        live_ = true;
        stopping_ = false;
    }

    /// Asks the kernel to end the operation; its final completion arrives later.
    void stop() {
        if (live_ && !stopping_) {
            stopping_ = true;
            loop_->cancel_io(*this);
        }
    }

    /// True from `start()` until the final completion.
    [[nodiscard]] bool live() const noexcept { return live_; }

    /// The next queued result without waiting: a value >= 0, or std::nullopt if none is queued.
    /// **Errors**: a queued negative result throws `std::system_error` (-ECANCELED after
    /// `stop()` is not an error and is skipped).
    [[nodiscard]] std::optional<int> try_next() {
        while (!results_.empty()) {
            const int r = results_.front();
            results_.pop_front();
            if (r >= 0)
                return r;
            if (r != -ECANCELED)
                throw std::system_error(-r, std::system_category(), what_);
        }
        return std::nullopt;
    }

    class next_awaiter : detail::cancel_target, detail::cancellation_point {
    public:
        explicit next_awaiter(multishot& op) noexcept : op_(op) { on_cancel = &on_cancelled; }
        [[nodiscard]] bool await_ready() const noexcept {
            return !op_.results_.empty() || !op_.live_;
        }
        template <class Promise>
        bool await_suspend(std::coroutine_handle<Promise> h) {
            if (cancel_pending(h))
                return false;
            op_.waiter_ = h;
            if (cancel_ != nullptr)
                cancel_->arm(this);
            return true;
        }
        /// The next result, or std::nullopt once the operation has ended and nothing is queued.
        std::optional<int> await_resume() {
            if (cancel_ != nullptr) {
                cancel_->disarm(this);
                if (cancel_->requested() && op_.results_.empty() && op_.live_) {
                    cancel_->consume();
                    throw cancelled_error{};
                }
            }
            return op_.try_next();
        }

    private:
        static void on_cancelled(detail::cancel_target* t) noexcept {
            auto* self = static_cast<next_awaiter*>(t);
            event_loop::current().schedule(std::exchange(self->op_.waiter_, {}));
        }
        multishot& op_;
    };

    /// Waits for the next result (a value >= 0), or std::nullopt once the operation has ended.
    /// **Cancellation**: cancelling the waiting coroutine wakes it with `cancelled_error`; the
    /// operation itself stays live (call `stop()`).
    /// **Errors**: a negative result throws `std::system_error`.
    [[nodiscard]] next_awaiter next() noexcept { return next_awaiter{*this}; }

private:
    static void on_complete(completion* c, int res, std::uint32_t flags) noexcept {
        auto* self = static_cast<multishot*>(c);
        self->results_.push_back(res);
        if ((flags & IORING_CQE_F_MORE) == 0)
            self->live_ = false;
        if (std::coroutine_handle<> w = std::exchange(self->waiter_, {}))
            w.resume();
    }
    op_args args_;
    const char* what_;
    event_loop* loop_ = nullptr;
    std::deque<int> results_;
    std::coroutine_handle<> waiter_;
    op_kind kind_;
    bool live_ = false;
    bool stopping_ = false;
};

/// A multishot poll of `fd` for `events` (POLLIN, ...): one result (the revents mask) per
/// readiness event, until stopped. Call `start()` on the loop's thread.
[[nodiscard]] inline multishot poll_multishot(int fd, short events) {
    op_args a{};
    a.fd = fd;
    a.flags = events;
    return multishot{op_kind::poll, a, "corio::io::poll_multishot"};
}

} // namespace corio::io

// SPDX-License-Identifier: MIT
#pragma once

#include <corio/detail/cancel_state.hpp>
#include <corio/detail/cancelled_error.hpp>
#include <corio/detail/promise_base.hpp>

#include <coroutine>

namespace corio::detail {

/// What every cancellable awaiter shares: it finds the awaiting chain's cancellation state when
/// it suspends, and delivers a pending request as `cancelled_error` when it resumes.
class cancellation_point {
protected:
    /// Records the chain of `h`; true when a request is already pending (do not suspend).
    template <class Promise>
    bool cancel_pending(std::coroutine_handle<Promise> h) noexcept {
        cancel_ = cancel_state_of(h);
        return cancel_ != nullptr && cancel_->requested();
    }

    /// Throws `cancelled_error`, consuming the request, when one is pending.
    void throw_if_cancelled() const {
        if (cancel_ != nullptr && cancel_->requested()) {
            cancel_->consume();
            throw cancelled_error{};
        }
    }

    cancel_state* cancel_ = nullptr;
};

} // namespace corio::detail

// SPDX-License-Identifier: MIT
#pragma once

#include <corio/detail/cancel_state.hpp>
#include <corio/detail/cancellation_point.hpp>
#include <corio/io/event_loop.hpp>
#include <corio/outcome.hpp>
#include <corio/spawn.hpp>
#include <corio/task.hpp>

#include <coroutine>
#include <cstddef>
#include <exception>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <vector>

namespace corio::detail {

/// The children of one structured-concurrency scope (a gather, a task group): each runs as a
/// spawned task; the scope counts them, keeps the first failure, cancels them all on request,
/// and wakes its owner whenever one finishes. The owner waits for every child before it goes
/// on, so children never outlive the frame that started them.
class child_scope {
public:
    /// How a scope treats its children's endings.
    struct policy {
        /// The first child to fail cancels the others, and `rethrow` throws its error.
        bool cancel_on_error = false;
        /// A child that ends cancelled on its own (not by this scope) makes `rethrow` throw
        /// `cancelled_error` once all are done, without cancelling its siblings (asyncio's
        /// gather); otherwise it is simply done (asyncio's TaskGroup).
        bool rethrow_child_cancel = false;
    };

    explicit child_scope(policy p) noexcept : policy_(p) {}
    child_scope(const child_scope&) = delete;
    child_scope& operator=(const child_scope&) = delete;

    [[nodiscard]] std::size_t running() const noexcept { return running_; }
    [[nodiscard]] bool failed() const noexcept { return static_cast<bool>(first_error_); }
    [[nodiscard]] const std::exception_ptr& first_error() const noexcept { return first_error_; }
    /// The slot of the first child to finish (its index, when all were started at once).
    [[nodiscard]] std::size_t first_done() const noexcept { return first_done_; }
    /// True once the scope cancels its children (after a failure, when it cancels on errors,
    /// or after the owner's cancellation): start no more.
    [[nodiscard]] bool stopping() const noexcept { return cancelling_; }
    /// True once the owner's own cancellation reached the scope.
    [[nodiscard]] bool cancelled() const noexcept { return cancelled_; }

    /// Makes room for `n` children running at once.
    void reserve(std::size_t n) { handles_.reserve(n); }

    /// Starts the child `make(slot)` returns (a task that ends with `child_done(slot, ...)`,
    /// see `run_child`) in a free slot.
    template <class MakeChild>
    void start(MakeChild make) {
        std::size_t slot = handles_.size();
        if (!free_slots_.empty()) {
            slot = free_slots_.back();
            free_slots_.pop_back();
        } else {
            handles_.emplace_back();
        }
        handles_[slot] = corio::spawn(make(slot));
        ++running_;
        if (cancelling_)
            handles_[slot].cancel();
    }

    /// Cancels every running child, once; later children are cancelled as they start.
    void cancel_all() noexcept {
        if (cancelling_)
            return; // a child cleaning up after the first cancel is not cancelled again
        cancelling_ = true;
        for (join_handle<>& h : handles_)
            h.cancel();
    }

    /// The owner is gone without waiting (a task group destroyed unjoined): from now on the
    /// children's failures go to the loop's exception handler, as a detached task's would.
    void orphan() noexcept { orphaned_ = true; }

    /// Called by a child as its last act.
    void child_done(std::size_t slot, std::exception_ptr error) noexcept {
        if (orphaned_ && error)
            event_loop::current().call_exception_handler(error);
        --running_;
        if (first_done_ == npos)
            first_done_ = slot;
        handles_[slot].detach(); // the child is about to finish; its frame goes with it
        free_slots_.push_back(slot);
        if (error) {
            if (is_cancellation(error)) {
                if (!cancelling_)            // after our own cancel_all(), it is what we asked for
                    child_cancelled_ = true; // on its own: not a failure, siblings go on
            } else if (!cancelling_ && !first_error_) {
                first_error_ = std::move(error);
                if (policy_.cancel_on_error)
                    cancel_all();
            } else if (cancelling_ && !orphaned_ && !policy_.cancel_on_error) {
                // It failed while unwinding from our cancel (a when_any's loser, a settled
                // gather cancelled by its owner): the owner throws something else and keeps no
                // outcome, so only the handler can see it. (A gather or task group rethrows
                // its first failure and drops the ones its cancel caused, by design.)
                event_loop::current().call_exception_handler(error);
            }
        }
        if (std::coroutine_handle<> owner = std::exchange(owner_, {}))
            event_loop::current().schedule(owner);
    }

    /// Waits until a child finishes (or returns at once when none runs). If the owner is
    /// cancelled meanwhile, the children are cancelled and the owner keeps waiting for them:
    /// `throw_if_cancelled()` after the last one delivers the cancellation.
    class [[nodiscard]] completion_awaiter : cancel_target, public cancellation_point {
    public:
        explicit completion_awaiter(child_scope& s) noexcept : scope_(s) {
            on_cancel = &on_cancelled;
        }
        [[nodiscard]] bool await_ready() const noexcept { return scope_.running_ == 0; }
        template <class Promise>
        bool await_suspend(std::coroutine_handle<Promise> h) {
            if (scope_.owner_)
                throw std::logic_error("corio: a task group (or gather) is joined by two "
                                       "coroutines at once; join it from one");
            if (cancel_pending(h))
                scope_.owner_cancelled(cancel_);
            scope_.owner_ = h;
            if (cancel_ != nullptr && !scope_.cancelled_)
                cancel_->arm(this);
            return true;
        }
        void await_resume() const noexcept {
            if (cancel_ != nullptr)
                cancel_->disarm(const_cast<completion_awaiter*>(this));
        }

    private:
        static void on_cancelled(cancel_target* t) noexcept {
            auto* self = static_cast<completion_awaiter*>(t);
            self->scope_.owner_cancelled(self->cancel_);
        }
        child_scope& scope_;
    };

    completion_awaiter next_completion() noexcept { return completion_awaiter{*this}; }

    /// After the last child: throws the first failure (per the policy), which wins over
    /// everything after it, even the owner's cancellation or a deadline that passed while the
    /// siblings were unwinding from it (that request stays pending for the owner's next
    /// suspension); else `cancelled_error` (consuming the request) if the owner was
    /// cancelled; else `cancelled_error` if a child ended cancelled on its own (per the policy).
    void rethrow() {
        if (first_error_ && policy_.cancel_on_error) {
            cancelled_ = false;
            owner_cancel_ = nullptr;
            std::rethrow_exception(first_error_);
        }
        if (cancelled_) {
            cancelled_ = false; // delivered: a later join starts afresh
            cancel_state* cancel = std::exchange(owner_cancel_, nullptr);
            if (cancel != nullptr && cancel->requested()) {
                cancel->consume();
                throw cancelled_error{};
            }
        }
        if (child_cancelled_ && policy_.rethrow_child_cancel)
            throw cancelled_error{};
    }

private:
    static bool is_cancellation(const std::exception_ptr& e) noexcept {
        try {
            std::rethrow_exception(e);
        } catch (const cancelled_error&) {
            return true;
        } catch (...) {
            return false;
        }
    }

private:
    void owner_cancelled(cancel_state* cancel) noexcept {
        cancelled_ = true;
        owner_cancel_ = cancel;
        cancel_all();
    }

    std::vector<join_handle<>> handles_;
    std::vector<std::size_t> free_slots_;
    std::exception_ptr first_error_;
    std::coroutine_handle<> owner_;
    cancel_state* owner_cancel_ = nullptr;
    static constexpr std::size_t npos = static_cast<std::size_t>(-1);
    std::size_t running_ = 0;
    std::size_t first_done_ = npos;
    policy policy_;
    bool cancelling_ = false;
    bool child_cancelled_ = false;
    bool orphaned_ = false;
    bool cancelled_ = false;
};

/// The body of one child: awaits `child`, stores its result in `*out` (when given), and
/// reports to the scope (a pointer, or a shared_ptr that keeps the scope alive).
template <class T, class ScopeRef>
task<> run_child(task<T> child, ScopeRef scope, std::size_t slot, outcome<T>* out) {
    event_loop& home = event_loop::current(); // the scope's loop
    std::exception_ptr error;
    try {
        if constexpr (std::is_void_v<T>) {
            co_await child;
            if (out != nullptr)
                out->emplace();
        } else {
            T value = co_await child;
            if (out != nullptr)
                out->emplace(std::move(value));
        }
    } catch (...) {
        error = std::current_exception();
        if (out != nullptr)
            out->set_error(error);
    }
    // A child that moved to another loop (`switch_to`) comes back to report to its scope.
    co_await switch_awaiter{home, /*cancellable=*/false};
    scope->child_done(slot, std::move(error));
}

} // namespace corio::detail

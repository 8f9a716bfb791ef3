// SPDX-License-Identifier: MIT
#pragma once

#include <corio/detail/cancel_state.hpp>
#include <corio/detail/cancelled_error.hpp>
#include <corio/detail/frame_allocator.hpp>
#include <corio/detail/intrusive_list.hpp>

#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <type_traits>
#include <utility>

namespace corio::detail {

class promise_base;

/// The spawned tasks alive on one loop, and where their unretrieved exceptions go. Owned by
/// the event loop; kept here so promises need not know the loop.
struct task_registry {
    intrusive_list<promise_base> live;
    /// How many spawned tasks have finished, ever: lets the loop notice that the task it runs
    /// for may have finished before it decides to block.
    std::size_t finished = 0;
    std::function<void(std::exception_ptr)> exception_handler;

    /// Hands an exception nobody will retrieve to the handler (a cancellation is not an error).
    void report(const std::exception_ptr& e) const noexcept;
};

/// What every corio coroutine promise shares: the link to its awaiter, its stored exception,
/// the cancellation state of its chain, and the bookkeeping of a spawned (root) task.
class promise_base : public list_hook {
public:
    /// How the coroutine relates to whoever awaits it; see `task`'s awaiter.
    enum class flow : std::uint8_t { lazy, inline_running, inline_done, async };

    promise_base() = default;
    promise_base(const promise_base&) = delete;
    promise_base& operator=(const promise_base&) = delete;

    /// Coroutine frames come from a per-thread recycling allocator (see frame_allocator).
    static void* operator new(std::size_t size) { return frame_allocator::allocate(size); }
    static void operator delete(void* frame, std::size_t size) noexcept {
        frame_allocator::deallocate(frame, size);
    }

    void unhandled_exception() noexcept { exception_ = std::current_exception(); }

    /// The chain's cancellation state; null when awaited from a foreign coroutine type.
    [[nodiscard]] cancel_state* cancellation() const noexcept { return cancel_; }

    /// Called from `final_suspend`: where control goes when this coroutine finishes.
    std::coroutine_handle<> on_final(std::coroutine_handle<> self) noexcept {
        if (registry_ == nullptr) {
            if (flow_ == flow::inline_running) {
                flow_ = flow::inline_done; // the awaiter's resume() returns; it goes on itself
                return std::noop_coroutine();
            }
            return continuation_;
        }
        finished_ = true;
        ++registry_->finished;
        registry_->live.erase(*this);
        --refs_;
        if (continuation_)
            return std::exchange(continuation_, {}); // a joiner is waiting: transfer to it
        if (refs_ == 0)
            destroy_root(self);
        return std::noop_coroutine();
    }

    // --- awaited task ---------------------------------------------------------------------
    void start_awaited(std::coroutine_handle<> awaiting, cancel_state* cancel) noexcept {
        continuation_ = awaiting;
        cancel_ = cancel;
        flow_ = flow::inline_running;
    }
    /// After the awaiter resumed the child inline: true when it already finished.
    bool finished_inline() noexcept {
        if (flow_ == flow::inline_done)
            return true;
        flow_ = flow::async;
        return false;
    }
    [[nodiscard]] bool started() const noexcept { return flow_ != flow::lazy || registry_; }

    // --- spawned (root) task ----------------------------------------------------------------
    void start_root(task_registry& registry) noexcept {
        registry_ = &registry;
        cancel_ = &own_cancel_;
        refs_ = 2; // the running coroutine and the handle
        registry.live.push_back(*this);
    }
    [[nodiscard]] bool finished() const noexcept { return finished_; }
    void request_cancel() noexcept { own_cancel_.request(); }
    [[nodiscard]] bool cancel_requested() const noexcept { return own_cancel_.requested(); }
    [[nodiscard]] bool has_joiner() const noexcept { return static_cast<bool>(continuation_); }
    [[nodiscard]] bool retrieved() const noexcept { return retrieved_; }
    void set_joiner(std::coroutine_handle<> joiner) noexcept { continuation_ = joiner; }
    void clear_joiner() noexcept { continuation_ = {}; }
    void mark_retrieved() noexcept { retrieved_ = true; }

    /// Drops the handle's reference; frees the frame if the coroutine is done too.
    void release_root(std::coroutine_handle<> self) noexcept {
        if (--refs_ == 0)
            destroy_root(self);
    }

protected:
    std::exception_ptr exception_;

private:
    void destroy_root(std::coroutine_handle<> self) noexcept {
        if (!retrieved_ && exception_)
            registry_->report(exception_);
        self.destroy();
    }

    cancel_state* cancel_ = nullptr;
    std::coroutine_handle<> continuation_; // the awaiter, or a root's joiner
    task_registry* registry_ = nullptr;    // set once spawned
    cancel_state own_cancel_;              // a root's own cancellation state
    flow flow_ = flow::lazy;
    std::uint8_t refs_ = 0;
    bool finished_ = false;
    bool retrieved_ = false;
};

inline void task_registry::report(const std::exception_ptr& e) const noexcept {
    try {
        std::rethrow_exception(e);
    } catch (const cancelled_error&) {
        return; // a cancelled task is not a failure (asyncio does not log it either)
    } catch (...) {
    }
    try {
        if (exception_handler)
            exception_handler(e);
    } catch (...) {
        // The handler itself failed; nothing sensible is left to do with the error.
    }
}

/// The chain's cancellation state of a coroutine about to suspend, when it is one of corio's.
template <class Promise>
cancel_state* cancel_state_of(std::coroutine_handle<Promise> h) noexcept {
    if constexpr (std::is_base_of_v<promise_base, Promise>)
        return h.promise().cancellation();
    else
        return nullptr;
}

} // namespace corio::detail

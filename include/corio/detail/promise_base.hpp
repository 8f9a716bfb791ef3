// SPDX-License-Identifier: MIT
#pragma once

#include <corio/detail/cancel_state.hpp>
#include <corio/detail/cancelled_error.hpp>
#include <corio/detail/frame_allocator.hpp>
#include <corio/detail/intrusive_list.hpp>
#include <corio/detail/per_thread.hpp>

#include <atomic>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <functional>
#include <type_traits>
#include <utility>

namespace corio::detail {

class promise_base;

/// What a runtime counts across its loops so that it can tell when all of them are idle
/// (`runtime`'s drain): tasks on their way from one loop to another, and arrivals ever.
struct transit_counts {
    std::atomic<std::size_t> moving{0};
    std::atomic<std::size_t> arrived{0};
};

/// The spawned tasks alive on one loop, and where their unretrieved exceptions go. Owned by
/// the event loop; kept here so promises need not know the loop.
struct task_registry {
    intrusive_list<promise_base> live;
    /// `live.size()`, readable from other threads (a runtime's drain reads every loop's).
    std::atomic<std::size_t> live_count{0};
    /// How many spawned tasks have finished, ever: lets the loop notice that the task it runs
    /// for may have finished before it decides to block.
    std::size_t finished = 0;
    std::function<void(std::exception_ptr)> exception_handler;

    /// How another thread reaches this loop (set by the loop, then constant): `arrive` resumes
    /// `h` there, first adopting `task` when it is a spawned task arriving from elsewhere
    /// (`spawn_on`, `switch_to`); `cancel` delivers a cancellation request to `task` there.
    struct remote_entry {
        void* loop = nullptr;
        void (*arrive)(void* loop, std::coroutine_handle<> h, promise_base* task) = nullptr;
        void (*cancel)(void* loop, promise_base& task) = nullptr;
    } remote;
    /// The runtime's counts, when the loop belongs to one.
    transit_counts* transit = nullptr;

    void add(promise_base& p) noexcept;
    void remove(promise_base& p) noexcept;

    /// Hands an exception nobody will retrieve to the handler (a cancellation is not an error).
    void report(const std::exception_ptr& e) const noexcept;
    /// The same with no loop at hand (a handle dropped after its loop was destroyed): stderr.
    static void report_without_loop(const std::exception_ptr& e) noexcept;
};

/// The registry of the calling thread's loop, or null; maintained by the loop.
inline task_registry*& current_task_registry() noexcept {
    struct tag {};
    return per_thread<task_registry*, tag>::get();
}

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
        if (is_root())
            return finish_root(self);
        if (flow_ == flow::inline_running) {
            flow_ = flow::inline_done; // the awaiter's resume() returns; it goes on itself
            return std::noop_coroutine();
        }
        return continuation_;
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
    [[nodiscard]] bool started() const noexcept { return flow_ != flow::lazy || is_root(); }

    // --- spawned (root) task ----------------------------------------------------------------
    // A spawned task may be joined, cancelled and released from any loop, and it may move
    // between loops (`switch_to`), so what those touch is atomic: where it runs (`registry_`),
    // whether it has a joiner or has finished (`join_state_`), and its references (the running
    // coroutine's and the handle's, plus one per cancellation request on its way).

    /// Makes this coroutine a spawned task that will run on the loop of `home`. The caller
    /// links it into `home` on that loop's thread (`task_registry::add`).
    void prepare_root(task_registry& home, std::coroutine_handle<> self) noexcept {
        registry_.store(&home, std::memory_order_release);
        self_ = self;
        own_cancel_.set_root(this);
        cancel_ = &own_cancel_;
        refs_.store(2, std::memory_order_relaxed);
    }
    [[nodiscard]] bool is_root() const noexcept { return static_cast<bool>(self_); }
    /// The registry of the loop the task runs on (or is travelling to).
    [[nodiscard]] task_registry* home() const noexcept {
        return registry_.load(std::memory_order_acquire);
    }
    /// Sets off to `next`: called by `switch_to` on the loop being left, which must already have
    /// unlinked the task from its registry.
    void move_to(task_registry& next) noexcept {
        registry_.store(&next, std::memory_order_release);
    }

    [[nodiscard]] bool finished() const noexcept {
        return join_state_.load(std::memory_order_acquire) == join_done;
    }
    [[nodiscard]] bool has_joiner() const noexcept {
        return join_state_.load(std::memory_order_acquire) == join_waiting;
    }
    [[nodiscard]] bool retrieved() const noexcept { return retrieved_; }
    void mark_retrieved() noexcept { retrieved_ = true; }

    /// Registers `joiner`, a coroutine of the loop of `where`, to be resumed there when the
    /// task finishes; false when it has already finished (do not suspend).
    bool join(std::coroutine_handle<> joiner, task_registry& where) noexcept {
        continuation_ = joiner;
        joiner_registry_ = &where;
        std::uint8_t expected = join_none;
        return join_state_.compare_exchange_strong(expected, join_waiting,
                                                   std::memory_order_acq_rel);
    }
    /// Withdraws the joiner (it was cancelled); false when the task finished first and the
    /// joiner's resumption is already on its way (it must then simply wait for it).
    bool unjoin() noexcept {
        std::uint8_t expected = join_waiting;
        return join_state_.compare_exchange_strong(expected, join_none, std::memory_order_acq_rel);
    }

    /// Requests cancellation from any thread: at once when the task runs on the calling
    /// thread's loop, else by a message to its loop (forwarded if the task has moved on).
    void request_cancel() noexcept {
        task_registry* where = home();
        if (where == current_task_registry() || where->remote.cancel == nullptr) {
            own_cancel_.request();
            return;
        }
        refs_.fetch_add(1, std::memory_order_relaxed); // the message's reference
        where->remote.cancel(where->remote.loop, *this);
    }
    /// A cancellation message reached the calling thread's loop.
    void deliver_cancel() noexcept {
        if (!finished()) {
            task_registry* where = home();
            if (where != current_task_registry()) { // it moved on meanwhile: follow it
                where->remote.cancel(where->remote.loop, *this);
                return;
            }
            own_cancel_.request();
        }
        release_root(self_);
    }
    [[nodiscard]] bool cancel_requested() const noexcept { return own_cancel_.requested(); }

    /// Drops a reference (the handle's, or a message's); the last one frees the frame.
    void release_root(std::coroutine_handle<> self) noexcept {
        if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1)
            destroy_root(self);
    }

protected:
    std::exception_ptr exception_;

private:
    static constexpr std::uint8_t join_none = 0;
    static constexpr std::uint8_t join_waiting = 1;
    static constexpr std::uint8_t join_done = 2;

    std::coroutine_handle<> finish_root(std::coroutine_handle<> self) noexcept {
        task_registry* here = registry_.load(std::memory_order_relaxed); // we run on it
        here->remove(*this);
        ++here->finished;
        std::coroutine_handle<> next = std::noop_coroutine();
        if (join_state_.exchange(join_done, std::memory_order_acq_rel) == join_waiting) {
            if (joiner_registry_ == here)
                next = continuation_; // a joiner on this loop: transfer to it
            else
                joiner_registry_->remote.arrive(joiner_registry_->remote.loop, continuation_,
                                                nullptr);
        }
        release_root(self);
        return next;
    }

    void destroy_root(std::coroutine_handle<> self) noexcept {
        if (!retrieved_ && exception_) {
            if (task_registry* here = current_task_registry())
                here->report(exception_);
            else
                task_registry::report_without_loop(exception_);
        }
        self.destroy();
    }

    cancel_state* cancel_ = nullptr;
    std::coroutine_handle<> continuation_;     // the awaiter, or a root's joiner
    std::atomic<task_registry*> registry_{};   // set once spawned: where it runs
    task_registry* joiner_registry_ = nullptr; // where the joiner runs
    std::coroutine_handle<> self_;             // set once spawned
    cancel_state own_cancel_;                  // a root's own cancellation state
    std::atomic<std::uint8_t> join_state_{join_none};
    std::atomic<std::uint8_t> refs_{0};
    flow flow_ = flow::lazy;
    bool retrieved_ = false;
};

inline void task_registry::add(promise_base& p) noexcept {
    live.push_back(p);
    live_count.store(live.size(), std::memory_order_relaxed);
}

inline void task_registry::remove(promise_base& p) noexcept {
    live.erase(p);
    live_count.store(live.size(), std::memory_order_relaxed);
}

inline void task_registry::report_without_loop(const std::exception_ptr& e) noexcept {
    try {
        std::rethrow_exception(e);
    } catch (const cancelled_error&) {
    } catch (const std::exception& ex) {
        std::fprintf(stderr, "corio: exception in a task nobody joined: %s\n", ex.what());
    } catch (...) {
        std::fprintf(stderr, "corio: non-standard exception in a task nobody joined\n");
    }
}

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

// SPDX-License-Identifier: MIT
#pragma once

#include <corio/detail/assert.hpp>
#include <corio/io/loop_affinity.hpp>
#include <corio/waiter_queue.hpp>

#include <coroutine>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <utility>

namespace corio {

class semaphore;

/// A permit of a `semaphore`, released when destroyed (asyncio's `async with sem:`).
class [[nodiscard]] semaphore_permit {
public:
    semaphore_permit() noexcept = default;
    explicit semaphore_permit(semaphore& s) noexcept : sem_(&s) {}
    semaphore_permit(semaphore_permit&& other) noexcept
        : sem_(std::exchange(other.sem_, nullptr)) {}
    semaphore_permit& operator=(semaphore_permit&& other) noexcept {
        if (this != &other) {
            release();
            sem_ = std::exchange(other.sem_, nullptr);
        }
        return *this;
    }
    semaphore_permit(const semaphore_permit&) = delete;
    semaphore_permit& operator=(const semaphore_permit&) = delete;
    ~semaphore_permit() { release(); }

    /// Gives the permit back early.
    void release() noexcept;
    /// True while this object holds a permit.
    [[nodiscard]] explicit operator bool() const noexcept { return sem_ != nullptr; }

private:
    semaphore* sem_ = nullptr;
};

/// A counting semaphore with FIFO waiters (asyncio.BoundedSemaphore).
///
/// **Resumption**: `release()` hands its permit straight to the longest waiter, which resumes
/// through the loop's ready queue; no newcomer can overtake a waiter.
/// **Cancellation**: a cancelled waiter leaves the queue and throws `cancelled_error`; a waiter
/// that was handed a permit keeps it (the cancellation surfaces at its next suspension), so no
/// permit is ever lost.
/// **Errors**: `std::invalid_argument` for counts that make no sense; `std::logic_error` for a
/// `release()` beyond the maximum (it is bounded, like asyncio.BoundedSemaphore). A surplus
/// `release()` while coroutines wait cannot be told from a rightful one: it admits a waiter.
/// **Thread-safety**: one loop, the first that uses it (from another, a `std::logic_error`).
class semaphore {
public:
    /// `permits` permits, at most `permits` ever available (permits >= 1).
    explicit semaphore(std::ptrdiff_t permits) : semaphore(checked_permits(permits), permits) {}
    /// `initial` permits now, at most `max` available (0 <= initial <= max, max >= 1).
    semaphore(std::ptrdiff_t initial, std::ptrdiff_t max) : count_(initial), max_(max) {
        if (max < 1 || initial < 0 || initial > max)
            throw std::invalid_argument("corio::semaphore: need 0 <= initial <= max and max >= 1, "
                                        "got initial " +
                                        std::to_string(initial) + ", max " + std::to_string(max));
    }
    semaphore(const semaphore&) = delete;
    semaphore& operator=(const semaphore&) = delete;

    /// Takes a permit without waiting; false when none is free or others are waiting.
    [[nodiscard]] bool try_acquire() {
        affinity_.check("corio::semaphore");
        if (count_ == 0 || !waiters_.empty())
            return false;
        --count_;
        return true;
    }

    /// Returns a permit: to the longest waiter if there is one.
    /// **Errors**: `std::logic_error` when it would exceed the maximum.
    void release() {
        affinity_.check("corio::semaphore");
        if (!waiters_.empty()) {
            waiters_.grant_front();
            return;
        }
        if (count_ == max_)
            throw std::logic_error("corio::semaphore::release: released more than acquired (" +
                                   std::to_string(max_) + " permits already available)");
        ++count_;
    }

    class [[nodiscard]] acquire_awaiter : detail::waiter {
    public:
        explicit acquire_awaiter(semaphore& s) noexcept : sem_(s) {}
        [[nodiscard]] bool await_ready() { return sem_.try_acquire(); }
        template <class Promise>
        bool await_suspend(std::coroutine_handle<Promise> h) {
            return sem_.waiters_.suspend(*this, h);
        }
        void await_resume() const {
            if (status() != state::idle)
                (void)finish();
        }

    protected:
        semaphore& sem_;
    };

    class [[nodiscard]] scoped_awaiter : public acquire_awaiter {
    public:
        using acquire_awaiter::acquire_awaiter;
        semaphore_permit await_resume() const {
            acquire_awaiter::await_resume();
            return semaphore_permit{sem_};
        }
    };

    /// Waits for a permit (asyncio's `await sem.acquire()`); returns at once when one is free
    /// and nobody waits.
    acquire_awaiter acquire() {
        affinity_.check("corio::semaphore");
        return acquire_awaiter{*this};
    }
    /// Waits for a permit and returns it as an RAII `semaphore_permit`.
    scoped_awaiter scoped_acquire() {
        affinity_.check("corio::semaphore");
        return scoped_awaiter{*this};
    }

    /// Permits free now.
    [[nodiscard]] std::ptrdiff_t available() const noexcept { return count_; }
    /// Coroutines waiting for a permit.
    [[nodiscard]] std::size_t waiting() const noexcept { return waiters_.size(); }

private:
    static std::ptrdiff_t checked_permits(std::ptrdiff_t permits) {
        if (permits <= 0)
            throw std::invalid_argument("corio::semaphore: permits must be at least 1, got " +
                                        std::to_string(permits) +
                                        " (use semaphore{0, max} for one that starts empty)");
        return permits;
    }

    detail::waiter_queue waiters_;
    detail::loop_affinity affinity_;
    std::ptrdiff_t count_;
    std::ptrdiff_t max_;
};

inline void semaphore_permit::release() noexcept {
    if (semaphore* s = std::exchange(sem_, nullptr)) {
        try {
            s->release(); // cannot exceed the maximum: this permit was taken from it
        } catch (...) {
            CORIO_ASSERT(false, "semaphore_permit could not hand its permit back (no loop on "
                                "this thread, or out of memory)");
        }
    }
}

} // namespace corio

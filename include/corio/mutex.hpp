// SPDX-License-Identifier: MIT
#pragma once

#include <corio/detail/assert.hpp>
#include <corio/io/loop_affinity.hpp>
#include <corio/waiter_queue.hpp>

#include <coroutine>
#include <cstddef>
#include <stdexcept>
#include <utility>

namespace corio {

class mutex;

/// Holds a `mutex` locked; unlocks it when destroyed (asyncio's `async with lock:`).
class [[nodiscard]] mutex_guard {
public:
    mutex_guard() noexcept = default;
    explicit mutex_guard(mutex& m) noexcept : m_(&m) {}
    mutex_guard(mutex_guard&& other) noexcept : m_(std::exchange(other.m_, nullptr)) {}
    mutex_guard& operator=(mutex_guard&& other) noexcept {
        if (this != &other) {
            unlock();
            m_ = std::exchange(other.m_, nullptr);
        }
        return *this;
    }
    mutex_guard(const mutex_guard&) = delete;
    mutex_guard& operator=(const mutex_guard&) = delete;
    ~mutex_guard() { unlock(); }

    /// Unlocks early.
    void unlock() noexcept;
    [[nodiscard]] explicit operator bool() const noexcept { return m_ != nullptr; }

private:
    mutex* m_ = nullptr;
};

/// A mutual-exclusion lock for coroutines (asyncio.Lock), with FIFO hand-off.
///
/// **Resumption**: `unlock()` hands the lock straight to the longest waiter, which resumes
/// through the loop's ready queue; the lock is never free in between, so nobody overtakes it.
/// **Cancellation**: a cancelled waiter leaves the queue and throws `cancelled_error`; a waiter
/// already handed the lock holds it (and must unlock it).
/// **Errors**: `unlock()` of a mutex that is not locked throws `std::logic_error`.
/// **Thread-safety**: one loop, the first that uses it (from another, a `std::logic_error`); it
/// is not a lock between threads.
class mutex {
public:
    mutex() = default;
    mutex(const mutex&) = delete;
    mutex& operator=(const mutex&) = delete;

    /// Locks without waiting; false when it is held (or others wait for it).
    [[nodiscard]] bool try_lock() {
        affinity_.check("corio::mutex");
        if (locked_)
            return false;
        locked_ = true;
        return true;
    }

    /// Unlocks, handing the lock to the longest waiter if there is one.
    /// **Errors**: `std::logic_error` when the mutex is not locked.
    void unlock() {
        affinity_.check("corio::mutex");
        if (!locked_)
            throw std::logic_error("corio::mutex::unlock: the mutex is not locked");
        if (!waiters_.empty())
            waiters_.grant_front(); // stays locked: ownership passes to the waiter
        else
            locked_ = false;
    }

    /// True while some coroutine holds the lock.
    [[nodiscard]] bool locked() const noexcept { return locked_; }
    /// Coroutines waiting for the lock.
    [[nodiscard]] std::size_t waiting() const noexcept { return waiters_.size(); }

    class [[nodiscard]] lock_awaiter : detail::waiter {
    public:
        explicit lock_awaiter(mutex& m) noexcept : m_(m) {}
        [[nodiscard]] bool await_ready() { return m_.try_lock(); }
        template <class Promise>
        bool await_suspend(std::coroutine_handle<Promise> h) {
            return m_.waiters_.suspend(*this, h);
        }
        void await_resume() const {
            if (status() != state::idle)
                (void)finish();
        }

    protected:
        mutex& m_;
    };

    class [[nodiscard]] scoped_awaiter : public lock_awaiter {
    public:
        using lock_awaiter::lock_awaiter;
        mutex_guard await_resume() const {
            lock_awaiter::await_resume();
            return mutex_guard{m_};
        }
    };

    /// Waits for the lock (asyncio's `await lock.acquire()`).
    lock_awaiter lock() { return lock_awaiter{*this}; }
    /// Waits for the lock and returns an RAII `mutex_guard`.
    scoped_awaiter scoped_lock() { return scoped_awaiter{*this}; }

private:
    detail::waiter_queue waiters_;
    detail::loop_affinity affinity_;
    bool locked_ = false;
};

inline void mutex_guard::unlock() noexcept {
    if (mutex* m = std::exchange(m_, nullptr)) {
        try {
            m->unlock(); // this guard holds the lock: only a missing loop or memory can fail
        } catch (...) {
            CORIO_ASSERT(false, "mutex_guard could not unlock (no loop on this thread, or out "
                                "of memory)");
        }
    }
}

} // namespace corio

// SPDX-License-Identifier: MIT
#include "../support/corio_test.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

using corio::cancelled_error;
using corio::join_handle;
using corio::mutex;
using corio::mutex_guard;
using corio::task;
using corio::test::contains;
using corio::test::message_of;

namespace {

/// The stress tests' seed: CORIO_TEST_SEED when set (to replay a failure), else a fixed one.
std::uint32_t test_seed() {
    if (const char* s = std::getenv("CORIO_TEST_SEED"))
        return static_cast<std::uint32_t>(std::stoul(s));
    return 0x5eed3a7eU;
}

task<> set_flag(bool& flag) {
    flag = true;
    co_return;
}

/// Locks, records `id`, and keeps the lock (the test unlocks on its behalf).
task<> lock_and_record(mutex& m, int id, std::vector<int>& order) {
    co_await m.lock();
    order.push_back(id);
}

/// Where a waiter was when it saw a cancellation.
struct probe {
    bool locked = false;
    bool cancelled_waiting = false; // the lock itself threw
    bool cancelled_holding = false; // the suspension after the lock threw
};

task<> lock_yield_unlock(mutex& m, probe& p) {
    try {
        co_await m.lock();
    } catch (const cancelled_error&) {
        p.cancelled_waiting = true;
        throw;
    }
    p.locked = true;
    try {
        co_await corio::yield_now();
    } catch (const cancelled_error&) {
        p.cancelled_holding = true;
        m.unlock();
        throw;
    }
    m.unlock();
}

task<> scoped_lock_yield(mutex& m, probe& p) {
    mutex_guard guard;
    try {
        guard = co_await m.scoped_lock();
    } catch (const cancelled_error&) {
        p.cancelled_waiting = true;
        throw;
    }
    p.locked = static_cast<bool>(guard);
    try {
        co_await corio::yield_now();
    } catch (const cancelled_error&) {
        p.cancelled_holding = true; // the guard unlocks as it is destroyed
        throw;
    }
}

task<> scoped_hold_then_throw(mutex& m) {
    mutex_guard guard = co_await m.scoped_lock();
    co_await corio::yield_now();
    throw std::runtime_error("failure while holding the lock");
}

/// Counts the coroutines inside the critical section for as long as it lives.
class inside_count {
public:
    inside_count(int& current, int& peak) noexcept : current_(current) {
        peak = std::max(peak, ++current_);
    }
    inside_count(const inside_count&) = delete;
    inside_count& operator=(const inside_count&) = delete;
    ~inside_count() { --current_; }

private:
    int& current_;
};

task<> critical_section(mutex& m, int id, std::vector<int>& entered, int& current, int& peak) {
    mutex_guard guard = co_await m.scoped_lock();
    inside_count inside{current, peak};
    entered.push_back(id);
    for (int i = 0; i < id % 3 + 1; ++i)
        co_await corio::yield_now();
}

} // namespace

CORIO_TEST_CASE("mutex: lock takes a free mutex without suspending and unlock frees it",
                "[mutex]") {
    mutex m;
    CHECK_FALSE(m.locked());
    bool other_ran = false;
    join_handle<> other = corio::spawn(set_flag(other_ran));
    co_await m.lock();
    CHECK_FALSE(other_ran); // it did not suspend
    CHECK(m.locked());
    m.unlock();
    CHECK_FALSE(m.locked());
    co_await other;
}

CORIO_TEST_CASE("mutex: try_lock succeeds only while the mutex is free", "[mutex]") {
    mutex m;
    CHECK(m.try_lock());
    CHECK(m.locked());
    CHECK_FALSE(m.try_lock());
    m.unlock();
    CHECK_FALSE(m.locked());
    CHECK(m.try_lock());
    m.unlock();
    co_return;
}

CORIO_TEST_CASE("mutex: unlock hands the lock to waiters in FIFO order and it never looks free",
                "[mutex]") {
    mutex m;
    co_await m.lock();
    std::vector<int> order;
    std::vector<join_handle<>> waiters;
    for (int i = 0; i < 5; ++i)
        waiters.push_back(corio::spawn(lock_and_record(m, i, order)));
    co_await corio::yield_now();
    CHECK(order.empty());
    for (int i = 0; i < 5; ++i) {
        m.unlock(); // hands it to waiter i
        CHECK(m.locked());
        CHECK_FALSE(m.try_lock()); // a newcomer cannot take it in between
        co_await corio::yield_now();
        REQUIRE(order.size() == static_cast<std::size_t>(i) + 1);
        CHECK(order.back() == i);
    }
    for (join_handle<>& w : waiters)
        co_await w;
    CHECK(order == std::vector<int>{0, 1, 2, 3, 4});
    CHECK(m.locked()); // the last waiter still holds it
    m.unlock();
    CHECK_FALSE(m.locked());
}

CORIO_TEST_CASE("mutex: a waiter cancelled before it is woken leaves the queue and the lock "
                "passes to the next",
                "[mutex][cancel]") {
    mutex m;
    co_await m.lock();
    probe pa;
    probe pb;
    join_handle<> a = corio::spawn(lock_yield_unlock(m, pa));
    join_handle<> b = corio::spawn(lock_yield_unlock(m, pb));
    co_await corio::yield_now();
    CHECK(a.cancel());
    CHECK_THROWS_AS(co_await a, cancelled_error);
    CHECK(pa.cancelled_waiting);
    CHECK_FALSE(pa.locked);
    CHECK(m.locked()); // still ours
    m.unlock();        // goes to b, not to the cancelled a
    CHECK(m.locked());
    co_await b;
    CHECK(pb.locked);
    CHECK_FALSE(m.locked());
}

CORIO_TEST_CASE("mutex: a waiter cancelled after it was handed the lock holds it and throws at its "
                "next suspension",
                "[mutex][cancel]") {
    mutex m;
    co_await m.lock();
    probe pa;
    probe pb;
    join_handle<> a = corio::spawn(lock_yield_unlock(m, pa));
    join_handle<> b = corio::spawn(lock_yield_unlock(m, pb));
    co_await corio::yield_now();
    m.unlock();        // a is handed the lock...
    CHECK(a.cancel()); // ...and cancelled before it resumes
    CHECK(m.locked());
    CHECK_THROWS_AS(co_await a, cancelled_error);
    CHECK(pa.locked); // its lock() returned: it owned the lock
    CHECK_FALSE(pa.cancelled_waiting);
    CHECK(pa.cancelled_holding);
    co_await b; // a unlocked while unwinding: b got the lock
    CHECK(pb.locked);
    CHECK_FALSE(m.locked());
}

CORIO_TEST_CASE("mutex: a scoped waiter cancelled after the hand-off unlocks as the cancellation "
                "unwinds",
                "[mutex][cancel]") {
    mutex m;
    co_await m.lock();
    probe pa;
    join_handle<> a = corio::spawn(scoped_lock_yield(m, pa));
    co_await corio::yield_now();
    m.unlock();
    CHECK(a.cancel());
    CHECK_THROWS_AS(co_await a, cancelled_error);
    CHECK(pa.locked);
    CHECK(pa.cancelled_holding);
    CHECK_FALSE(m.locked());
}

CORIO_TEST_CASE("mutex: a task cancelled before it waits throws at lock without taking the lock",
                "[mutex][cancel]") {
    mutex m;
    co_await m.lock();
    probe p;
    join_handle<> a = corio::spawn(lock_yield_unlock(m, p));
    CHECK(a.cancel());
    CHECK_THROWS_AS(co_await a, cancelled_error);
    CHECK(p.cancelled_waiting);
    CHECK_FALSE(p.locked);
    m.unlock();
    CHECK_FALSE(m.locked()); // nobody was waiting for it
}

CORIO_TEST_CASE("mutex: scoped_lock unlocks at scope exit and on exception", "[mutex]") {
    mutex m;
    {
        mutex_guard guard = co_await m.scoped_lock();
        CHECK(static_cast<bool>(guard));
        CHECK(m.locked());
    }
    CHECK_FALSE(m.locked());
    bool caught = false;
    try {
        mutex_guard guard = co_await m.scoped_lock();
        CHECK(m.locked());
        throw std::runtime_error("boom");
    } catch (const std::runtime_error&) {
        caught = true;
    }
    CHECK(caught);
    CHECK_FALSE(m.locked());

    // A holder that fails hands the lock to the next waiter.
    join_handle<> failing = corio::spawn(scoped_hold_then_throw(m));
    co_await corio::yield_now();
    CHECK(m.locked());
    mutex_guard mine = co_await m.scoped_lock(); // waits until `failing` unwinds
    CHECK(static_cast<bool>(mine));
    CHECK_THROWS_AS(co_await failing, std::runtime_error);
    CHECK(m.locked());
    mine.unlock();
    CHECK_FALSE(m.locked());
}

CORIO_TEST_CASE("mutex: a guard can unlock early and be moved, and unlocks once", "[mutex]") {
    mutex m;
    mutex_guard a = co_await m.scoped_lock();
    mutex_guard b = std::move(a);
    CHECK_FALSE(static_cast<bool>(a)); // NOLINT(bugprone-use-after-move)
    CHECK(static_cast<bool>(b));
    CHECK(m.locked());
    b.unlock();
    CHECK_FALSE(static_cast<bool>(b));
    CHECK_FALSE(m.locked());
    b.unlock(); // holds nothing: no second unlock (which would throw)
    CHECK_FALSE(m.locked());

    mutex other;
    mutex_guard c = co_await m.scoped_lock();
    mutex_guard d = co_await other.scoped_lock();
    c = std::move(d); // c's lock of m is released, d's lock of other moves in
    CHECK_FALSE(m.locked());
    CHECK(other.locked());
    c = mutex_guard{};
    CHECK_FALSE(other.locked());
}

TEST_CASE("mutex: unlock of a mutex that is not locked is a logic_error", "[mutex][bad-use]") {
    mutex m;
    const std::string what = message_of<std::logic_error>([&m] { m.unlock(); });
    CHECK(contains(what, "not locked"));
    CHECK(m.try_lock());
    m.unlock();
    CHECK_THROWS_AS(m.unlock(), std::logic_error); // a second unlock
    CHECK_FALSE(m.locked());
}

CORIO_TEST_CASE("mutex: 1000 contending tasks enter one at a time in arrival order",
                "[mutex][stress]") {
    mutex m;
    std::vector<int> entered;
    int current = 0;
    int peak = 0;
    std::vector<join_handle<>> tasks;
    tasks.reserve(1000);
    for (int i = 0; i < 1000; ++i)
        tasks.push_back(corio::spawn(critical_section(m, i, entered, current, peak)));
    for (join_handle<>& t : tasks)
        co_await t;
    CHECK(peak == 1);
    CHECK(current == 0);
    REQUIRE(entered.size() == 1000);
    CHECK(std::is_sorted(entered.begin(), entered.end())); // FIFO: in the order they queued
    CHECK_FALSE(m.locked());
}

namespace {

/// One stress worker's life, as the main loop and the worker see it.
struct stress_worker {
    enum class stage { created, waiting, holding, done };
    stage at = stage::created;
    bool locked = false;
    bool threw_at_lock = false;
    bool cancelled_while_waiting = false; // cancel() was called while it was in lock()
};

struct stress_tally {
    int current = 0; // inside the critical section now
    int peak = 0;
    int entries = 0;
};

/// Marks a worker done however its coroutine ends.
class done_on_exit {
public:
    explicit done_on_exit(stress_worker& w) noexcept : w_(w) {}
    done_on_exit(const done_on_exit&) = delete;
    done_on_exit& operator=(const done_on_exit&) = delete;
    ~done_on_exit() { w_.at = stress_worker::stage::done; }

private:
    stress_worker& w_;
};

task<> hold_for(stress_tally& t, int yields) {
    inside_count inside{t.current, t.peak};
    for (int i = 0; i < yields; ++i)
        co_await corio::yield_now();
}

task<> stress_body(mutex& m, stress_tally& t, stress_worker& w, int hold_yields, bool scoped) {
    done_on_exit mark_done{w};
    w.at = stress_worker::stage::waiting;
    if (scoped) {
        mutex_guard guard;
        try {
            guard = co_await m.scoped_lock();
        } catch (const cancelled_error&) {
            w.threw_at_lock = true;
            throw;
        }
        w.locked = true;
        ++t.entries;
        w.at = stress_worker::stage::holding;
        co_await hold_for(t, hold_yields); // the guard unlocks however this ends
    } else {
        try {
            co_await m.lock();
        } catch (const cancelled_error&) {
            w.threw_at_lock = true;
            throw;
        }
        w.locked = true;
        ++t.entries;
        w.at = stress_worker::stage::holding;
        try {
            co_await hold_for(t, hold_yields);
        } catch (...) {
            m.unlock();
            throw;
        }
        m.unlock();
    }
}

task<> mutex_stress(std::uint32_t seed) {
    std::mt19937 rng{seed};
    mutex m;
    stress_tally t;
    std::deque<stress_worker> workers; // stable addresses
    std::vector<join_handle<>> handles;
    std::size_t oldest = 0; // no worker before it is alive
    int try_locked = 0;
    for (int op = 0; op < 10'000; ++op) {
        const unsigned r = rng() % 100;
        if (r < 40) {
            workers.emplace_back();
            const int hold = static_cast<int>(rng() % 4);
            const bool scoped = rng() % 2 == 0;
            handles.push_back(corio::spawn(stress_body(m, t, workers.back(), hold, scoped)));
        } else if (r < 60) { // cancel a worker
            // The oldest live workers (the queue's front: the one just granted, too) or
            // recent ones (the queue's back), whatever they are doing.
            while (oldest < workers.size() && workers[oldest].at == stress_worker::stage::done)
                ++oldest;
            if (oldest < workers.size()) {
                const std::size_t live = workers.size() - oldest;
                const std::size_t span = rng() % std::min<std::size_t>(live, 4);
                const std::size_t i = rng() % 2 == 0 ? oldest + span : workers.size() - 1 - span;
                const bool waiting = workers[i].at == stress_worker::stage::waiting;
                if (handles[i].cancel() && waiting)
                    workers[i].cancelled_while_waiting = true;
            }
        } else if (r < 65) { // a non-waiting attempt from the main task
            if (m.try_lock()) {
                ++try_locked;
                CHECK(t.current == 0);
                m.unlock();
            }
        } else {
            co_await corio::yield_now();
        }
        CHECK(t.current <= 1);
    }
    for (join_handle<>& h : handles) {
        try {
            co_await h;
        } catch (const cancelled_error&) {
        }
    }
    int locked = 0;
    int threw_at_lock = 0;
    int granted_then_cancelled = 0;
    for (const stress_worker& w : workers) {
        CHECK(w.at == stress_worker::stage::done);
        CHECK(w.locked != w.threw_at_lock);
        locked += w.locked ? 1 : 0;
        threw_at_lock += w.threw_at_lock ? 1 : 0;
        if (w.cancelled_while_waiting && w.locked)
            ++granted_then_cancelled;
    }
    INFO("workers " << workers.size() << ", locked " << locked << ", threw at lock "
                    << threw_at_lock << ", granted then cancelled " << granted_then_cancelled
                    << ", try_locked " << try_locked);
    CHECK(locked == t.entries);
    CHECK(static_cast<std::size_t>(locked + threw_at_lock) == workers.size());
    CHECK(t.current == 0);
    CHECK(t.peak == 1);
    CHECK_FALSE(m.locked()); // the lock was neither lost nor left held
    CHECK(m.try_lock());
    m.unlock();
    CHECK(threw_at_lock > 0);
    CHECK(granted_then_cancelled > 0);
}

} // namespace

TEST_CASE("mutex: 10000 random operations with random cancels never lose or leak the lock",
          "[mutex][cancel][stress]") {
    const std::uint32_t seed = test_seed();
    INFO("seed " << seed << " (replay with CORIO_TEST_SEED=" << seed << ")");
    corio::test::run(mutex_stress(seed));
}

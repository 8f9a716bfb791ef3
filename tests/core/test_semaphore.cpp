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
using corio::semaphore;
using corio::semaphore_permit;
using corio::task;
using corio::test::contains;
using corio::test::message_of;

namespace {

/// The stress tests' seed: CORIO_TEST_SEED when set (to replay a failure), else a fixed one.
std::uint32_t test_seed() {
    if (const char* s = std::getenv("CORIO_TEST_SEED"))
        return static_cast<std::uint32_t>(std::stoul(s));
    return 0x5eed5e3aU;
}

task<> set_flag(bool& flag) {
    flag = true;
    co_return;
}

task<> acquire_and_record(semaphore& s, int id, std::vector<int>& order) {
    co_await s.acquire();
    order.push_back(id);
}

/// Where a waiter was when it saw a cancellation.
struct probe {
    bool acquired = false;
    bool cancelled_waiting = false; // the acquire itself threw
    bool cancelled_holding = false; // the suspension after the acquire threw
};

task<> acquire_yield_release(semaphore& s, probe& p) {
    try {
        co_await s.acquire();
    } catch (const cancelled_error&) {
        p.cancelled_waiting = true;
        throw;
    }
    p.acquired = true;
    try {
        co_await corio::yield_now();
    } catch (const cancelled_error&) {
        p.cancelled_holding = true;
        s.release();
        throw;
    }
    s.release();
}

task<> scoped_acquire_yield(semaphore& s, probe& p) {
    semaphore_permit permit;
    try {
        permit = co_await s.scoped_acquire();
    } catch (const cancelled_error&) {
        p.cancelled_waiting = true;
        throw;
    }
    p.acquired = static_cast<bool>(permit);
    try {
        co_await corio::yield_now();
    } catch (const cancelled_error&) {
        p.cancelled_holding = true; // the permit is released by its destructor
        throw;
    }
}

task<> scoped_hold_then_throw(semaphore& s) {
    semaphore_permit permit = co_await s.scoped_acquire();
    co_await corio::yield_now();
    throw std::runtime_error("failure while holding a permit");
}

/// Counts a holder for as long as it lives.
class holder_count {
public:
    holder_count(int& current, int& peak) noexcept : current_(current) {
        peak = std::max(peak, ++current_);
    }
    holder_count(const holder_count&) = delete;
    holder_count& operator=(const holder_count&) = delete;
    ~holder_count() { --current_; }

private:
    int& current_;
};

task<> contend(semaphore& s, int& current, int& peak, int hold_yields) {
    semaphore_permit permit = co_await s.scoped_acquire();
    holder_count counted{current, peak};
    for (int i = 0; i < hold_yields; ++i)
        co_await corio::yield_now();
}

} // namespace

CORIO_TEST_CASE("semaphore: acquire takes a free permit without suspending and release gives it "
                "back",
                "[semaphore]") {
    semaphore s{2};
    CHECK(s.available() == 2);
    bool other_ran = false;
    join_handle<> other = corio::spawn(set_flag(other_ran));
    co_await s.acquire();
    co_await s.acquire();
    CHECK_FALSE(other_ran); // neither acquire suspended
    CHECK(s.available() == 0);
    CHECK(s.waiting() == 0);
    s.release();
    CHECK(s.available() == 1);
    s.release();
    CHECK(s.available() == 2);
    co_await other;
}

CORIO_TEST_CASE("semaphore: try_acquire takes a permit only while one is free", "[semaphore]") {
    semaphore s{2};
    CHECK(s.try_acquire());
    CHECK(s.try_acquire());
    CHECK_FALSE(s.try_acquire());
    CHECK(s.available() == 0);
    s.release();
    CHECK(s.try_acquire());
    s.release();
    s.release();
    CHECK(s.available() == 2);
    co_return;
}

CORIO_TEST_CASE("semaphore: release wakes waiters in FIFO order, one permit each", "[semaphore]") {
    semaphore s{1};
    co_await s.acquire();
    std::vector<int> order;
    std::vector<join_handle<>> waiters;
    for (int i = 0; i < 5; ++i)
        waiters.push_back(corio::spawn(acquire_and_record(s, i, order)));
    co_await corio::yield_now();
    CHECK(s.waiting() == 5);
    CHECK(order.empty());
    for (int i = 0; i < 5; ++i) {
        s.release(); // hands the permit to waiter i
        CHECK(s.available() == 0);
        co_await corio::yield_now();
        REQUIRE(order.size() == static_cast<std::size_t>(i) + 1);
        CHECK(order.back() == i);
        CHECK(s.waiting() == static_cast<std::size_t>(4 - i));
    }
    for (join_handle<>& w : waiters)
        co_await w;
    CHECK(order == std::vector<int>{0, 1, 2, 3, 4});
    s.release(); // the last waiter's permit
    CHECK(s.available() == 1);
}

CORIO_TEST_CASE("semaphore: a permit handed to a waiter cannot be taken by a newcomer",
                "[semaphore]") {
    semaphore s{1};
    co_await s.acquire();
    std::vector<int> order;
    join_handle<> first = corio::spawn(acquire_and_record(s, 1, order));
    co_await corio::yield_now();
    s.release(); // granted to `first`, which has not run yet
    CHECK(s.available() == 0);
    CHECK_FALSE(s.try_acquire());
    join_handle<> second = corio::spawn(acquire_and_record(s, 2, order));
    co_await first;
    co_await corio::yield_now();
    CHECK(order == std::vector<int>{1});
    CHECK(s.waiting() == 1);
    s.release();
    co_await second;
    CHECK(order == std::vector<int>{1, 2});
    s.release();
    CHECK(s.available() == 1);
}

CORIO_TEST_CASE("semaphore: a waiter cancelled before it is woken leaves the queue and takes no "
                "permit",
                "[semaphore][cancel]") {
    semaphore s{1};
    co_await s.acquire();
    probe pa;
    probe pb;
    join_handle<> a = corio::spawn(acquire_yield_release(s, pa));
    join_handle<> b = corio::spawn(acquire_yield_release(s, pb));
    co_await corio::yield_now();
    CHECK(s.waiting() == 2);
    CHECK(a.cancel());
    CHECK(s.waiting() == 1); // unlinked at once
    CHECK_THROWS_AS(co_await a, cancelled_error);
    CHECK(pa.cancelled_waiting);
    CHECK_FALSE(pa.acquired);
    CHECK(s.available() == 0);
    s.release(); // goes to b, the next in line, not to the cancelled a
    co_await b;
    CHECK(pb.acquired);
    CHECK(s.available() == 1);
    CHECK(s.waiting() == 0);
}

CORIO_TEST_CASE("semaphore: a waiter cancelled after it was granted keeps the permit and throws at "
                "its next suspension",
                "[semaphore][cancel]") {
    semaphore s{1};
    co_await s.acquire();
    probe pa;
    probe pb;
    join_handle<> a = corio::spawn(acquire_yield_release(s, pa));
    join_handle<> b = corio::spawn(acquire_yield_release(s, pb));
    co_await corio::yield_now();
    s.release();       // a is granted the permit...
    CHECK(a.cancel()); // ...and cancelled before it resumes
    CHECK(s.available() == 0);
    CHECK(s.waiting() == 1);
    CHECK_THROWS_AS(co_await a, cancelled_error);
    CHECK(pa.acquired); // its acquire returned the permit
    CHECK_FALSE(pa.cancelled_waiting);
    CHECK(pa.cancelled_holding); // the cancellation surfaced at the yield after it
    co_await b;                  // a released the permit on unwinding: b got it
    CHECK(pb.acquired);
    CHECK(s.available() == 1);
}

CORIO_TEST_CASE("semaphore: a scoped waiter cancelled after it was granted releases the permit as "
                "the cancellation unwinds",
                "[semaphore][cancel]") {
    semaphore s{1};
    co_await s.acquire();
    probe pa;
    join_handle<> a = corio::spawn(scoped_acquire_yield(s, pa));
    co_await corio::yield_now();
    s.release();
    CHECK(a.cancel());
    CHECK_THROWS_AS(co_await a, cancelled_error);
    CHECK(pa.acquired);
    CHECK(pa.cancelled_holding);
    CHECK(s.available() == 1);
}

CORIO_TEST_CASE("semaphore: a task cancelled before it waits throws at acquire without a permit",
                "[semaphore][cancel]") {
    semaphore s{1};
    co_await s.acquire();
    probe p;
    join_handle<> a = corio::spawn(acquire_yield_release(s, p));
    CHECK(a.cancel()); // pending before it ever runs
    CHECK_THROWS_AS(co_await a, cancelled_error);
    CHECK(p.cancelled_waiting);
    CHECK_FALSE(p.acquired);
    CHECK(s.waiting() == 0);
    s.release();
    CHECK(s.available() == 1);
}

CORIO_TEST_CASE("semaphore: scoped_acquire releases the permit at scope exit and on exception",
                "[semaphore]") {
    semaphore s{1};
    {
        semaphore_permit permit = co_await s.scoped_acquire();
        CHECK(static_cast<bool>(permit));
        CHECK(s.available() == 0);
    }
    CHECK(s.available() == 1);
    bool caught = false;
    try {
        semaphore_permit permit = co_await s.scoped_acquire();
        CHECK(s.available() == 0);
        throw std::runtime_error("boom");
    } catch (const std::runtime_error&) {
        caught = true;
    }
    CHECK(caught);
    CHECK(s.available() == 1);

    // A holder that fails hands its permit to the next waiter.
    join_handle<> failing = corio::spawn(scoped_hold_then_throw(s));
    co_await corio::yield_now();
    CHECK(s.available() == 0);
    semaphore_permit mine = co_await s.scoped_acquire(); // waits until `failing` unwinds
    CHECK(static_cast<bool>(mine));
    CHECK_THROWS_AS(co_await failing, std::runtime_error);
    CHECK(s.available() == 0);
    mine.release();
    CHECK(s.available() == 1);
}

CORIO_TEST_CASE("semaphore: a permit can be released early and moved, and releases once",
                "[semaphore]") {
    semaphore s{2};
    semaphore_permit a = co_await s.scoped_acquire();
    semaphore_permit b = std::move(a);
    CHECK_FALSE(static_cast<bool>(a)); // NOLINT(bugprone-use-after-move)
    CHECK(static_cast<bool>(b));
    CHECK(s.available() == 1);
    b.release();
    CHECK_FALSE(static_cast<bool>(b));
    CHECK(s.available() == 2);
    b.release(); // no permit left: nothing happens
    CHECK(s.available() == 2);

    semaphore_permit c = co_await s.scoped_acquire();
    semaphore_permit d = co_await s.scoped_acquire();
    CHECK(s.available() == 0);
    c = std::move(d); // c's own permit goes back, d's moves in
    CHECK(s.available() == 1);
    c = semaphore_permit{};
    CHECK(s.available() == 2);
}

CORIO_TEST_CASE("semaphore: peak concurrency equals N under 1000 contending tasks",
                "[semaphore][stress]") {
    constexpr int n = 7;
    semaphore s{n};
    int current = 0;
    int peak = 0;
    std::vector<join_handle<>> tasks;
    tasks.reserve(1000);
    for (int i = 0; i < 1000; ++i)
        tasks.push_back(corio::spawn(contend(s, current, peak, i % 3 + 1)));
    for (join_handle<>& t : tasks)
        co_await t;
    CHECK(peak == n);
    CHECK(current == 0);
    CHECK(s.available() == n);
    CHECK(s.waiting() == 0);
}

CORIO_TEST_CASE("semaphore: semaphore{0, max} starts empty and release adds permits up to max",
                "[semaphore]") {
    semaphore s{0, 2};
    CHECK(s.available() == 0);
    CHECK_FALSE(s.try_acquire());
    std::vector<int> order;
    join_handle<> w = corio::spawn(acquire_and_record(s, 1, order));
    co_await corio::yield_now();
    CHECK(s.waiting() == 1);
    s.release(); // goes to the waiter
    co_await w;
    CHECK(order == std::vector<int>{1});
    s.release();
    s.release();
    CHECK(s.available() == 2);
    CHECK_THROWS_AS(s.release(), std::logic_error);
    CHECK(s.available() == 2);
}

TEST_CASE("semaphore: counts that make no sense are invalid_argument naming the values",
          "[semaphore][bad-use]") {
    CHECK(contains(message_of<std::invalid_argument>([] { semaphore s{0}; }), "0"));
    CHECK(contains(message_of<std::invalid_argument>([] { semaphore s{-1}; }), "-1"));
    CHECK(contains(message_of<std::invalid_argument>([] { semaphore s{-42}; }), "-42"));
    const std::string above = message_of<std::invalid_argument>([] { semaphore s{7, 5}; });
    CHECK(contains(above, "7"));
    CHECK(contains(above, "5"));
    const std::string two_one = message_of<std::invalid_argument>([] { semaphore s{2, 1}; });
    CHECK(contains(two_one, "2"));
    CHECK(contains(two_one, "1"));
    CHECK(contains(message_of<std::invalid_argument>([] { semaphore s{-3, 4}; }), "-3"));
    CHECK(contains(message_of<std::invalid_argument>([] { semaphore s{0, -9}; }), "-9"));
    CHECK_NOTHROW(semaphore{0, 1});
}

TEST_CASE("semaphore: the error of semaphore{0} suggests semaphore{0, max}",
          "[semaphore][bad-use][regression]") {
    // The one-count constructor checks its count (with this hint) before it delegates to the
    // two-count constructor, whose own check would throw without the hint.
    const std::string what = message_of<std::invalid_argument>([] { semaphore s{0}; });
    INFO("what(): " << what);
    CHECK(contains(what, "semaphore{0, max}"));
}

CORIO_TEST_CASE("semaphore: release beyond the maximum is a logic_error naming the maximum",
                "[semaphore][bad-use]") {
    semaphore s{3};
    const std::string what = message_of<std::logic_error>([&s] { s.release(); });
    CHECK(contains(what, "3"));
    CHECK(s.available() == 3);
    co_await s.acquire();
    s.release();
    CHECK_THROWS_AS(s.release(), std::logic_error);
    CHECK(s.available() == 3);
}

namespace {

struct stress_tally {
    int current = 0; // tasks holding a permit now
    int peak = 0;
    int acquisitions = 0;
};

/// One stress worker's life, as the main loop and the worker see it.
struct stress_worker {
    enum class stage { created, waiting, holding, done };
    stage at = stage::created;
    bool acquired = false;
    bool threw_at_acquire = false;
    bool cancelled_while_waiting = false; // cancel() was called while it was in acquire
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
    holder_count counted{t.current, t.peak};
    for (int i = 0; i < yields; ++i)
        co_await corio::yield_now();
}

task<> stress_body(semaphore& s, stress_tally& t, stress_worker& w, int hold_yields, bool scoped) {
    done_on_exit mark_done{w};
    w.at = stress_worker::stage::waiting;
    if (scoped) {
        semaphore_permit permit;
        try {
            permit = co_await s.scoped_acquire();
        } catch (const cancelled_error&) {
            w.threw_at_acquire = true;
            throw;
        }
        w.acquired = true;
        ++t.acquisitions;
        w.at = stress_worker::stage::holding;
        co_await hold_for(t, hold_yields); // the permit goes back however this ends
    } else {
        try {
            co_await s.acquire();
        } catch (const cancelled_error&) {
            w.threw_at_acquire = true;
            throw;
        }
        w.acquired = true;
        ++t.acquisitions;
        w.at = stress_worker::stage::holding;
        try {
            co_await hold_for(t, hold_yields);
        } catch (...) {
            s.release();
            throw;
        }
        s.release();
    }
}

task<> semaphore_stress(std::uint32_t seed) {
    constexpr int permits = 3;
    std::mt19937 rng{seed};
    semaphore s{permits};
    stress_tally t;
    std::deque<stress_worker> workers; // stable addresses
    std::vector<join_handle<>> handles;
    std::size_t oldest = 0; // no worker before it is alive
    int try_acquired = 0;
    for (int op = 0; op < 10'000; ++op) {
        const unsigned r = rng() % 100;
        if (r < 40) { // a new worker
            workers.emplace_back();
            const int hold = static_cast<int>(rng() % 4);
            const bool scoped = rng() % 2 == 0;
            handles.push_back(corio::spawn(stress_body(s, t, workers.back(), hold, scoped)));
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
            if (s.try_acquire()) {
                ++try_acquired;
                CHECK(t.current < permits);
                s.release();
            }
        } else {
            co_await corio::yield_now();
        }
        CHECK(t.current <= permits);
    }
    for (join_handle<>& h : handles) {
        try {
            co_await h;
        } catch (const cancelled_error&) {
        }
    }
    int acquired = 0;
    int threw_at_acquire = 0;
    int granted_then_cancelled = 0;
    for (const stress_worker& w : workers) {
        CHECK(w.at == stress_worker::stage::done);
        CHECK(w.acquired != w.threw_at_acquire); // one or the other, never both, never neither
        acquired += w.acquired ? 1 : 0;
        threw_at_acquire += w.threw_at_acquire ? 1 : 0;
        if (w.cancelled_while_waiting && w.acquired)
            ++granted_then_cancelled;
    }
    INFO("workers " << workers.size() << ", acquired " << acquired << ", threw at acquire "
                    << threw_at_acquire << ", granted then cancelled " << granted_then_cancelled
                    << ", try_acquired " << try_acquired);
    CHECK(acquired == t.acquisitions);
    CHECK(static_cast<std::size_t>(acquired + threw_at_acquire) == workers.size());
    CHECK(t.current == 0);
    CHECK(t.peak == permits);
    CHECK(s.available() == permits); // no permit lost, none created
    CHECK(s.waiting() == 0);
    // The stress reached both cancellation windows.
    CHECK(threw_at_acquire > 0);
    CHECK(granted_then_cancelled > 0);
}

} // namespace

TEST_CASE("semaphore: 10000 random operations with random cancels lose no permit",
          "[semaphore][cancel][stress]") {
    const std::uint32_t seed = test_seed();
    INFO("seed " << seed << " (replay with CORIO_TEST_SEED=" << seed << ")");
    corio::test::run(semaphore_stress(seed));
}

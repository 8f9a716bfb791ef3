// SPDX-License-Identifier: MIT
#include "../support/corio_test.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <random>
#include <string>
#include <vector>

using corio::cancelled_error;
using corio::event;
using corio::join_handle;
using corio::task;

namespace {

/// The stress tests' seed: CORIO_TEST_SEED when set (to replay a failure), else a fixed one.
std::uint32_t test_seed() {
    if (const char* s = std::getenv("CORIO_TEST_SEED"))
        return static_cast<std::uint32_t>(std::stoul(s));
    return 0x5eedeeeeU;
}

task<> set_flag(bool& flag) {
    flag = true;
    co_return;
}

task<> wait_and_record(event& ev, int id, std::vector<int>& order) {
    co_await ev.wait();
    order.push_back(id);
}

/// Where a waiter was when it saw a cancellation.
struct probe {
    bool returned = false;
    bool cancelled_waiting = false; // wait() itself threw
    bool cancelled_after = false;   // the suspension after wait() threw
};

task<> wait_then_yield(event& ev, probe& p) {
    try {
        co_await ev.wait();
    } catch (const cancelled_error&) {
        p.cancelled_waiting = true;
        throw;
    }
    p.returned = true;
    try {
        co_await corio::yield_now();
    } catch (const cancelled_error&) {
        p.cancelled_after = true;
        throw;
    }
}

} // namespace

CORIO_TEST_CASE("event: starts clear and set and clear change is_set", "[event]") {
    event ev;
    CHECK_FALSE(ev.is_set());
    CHECK(ev.waiting() == 0);
    ev.set();
    CHECK(ev.is_set());
    ev.set(); // setting a set event changes nothing
    CHECK(ev.is_set());
    ev.clear();
    CHECK_FALSE(ev.is_set());
    ev.clear();
    CHECK_FALSE(ev.is_set());
    co_return;
}

CORIO_TEST_CASE("event: wait on a set event returns at once without suspending", "[event]") {
    event ev;
    ev.set();
    bool other_ran = false;
    join_handle<> other = corio::spawn(set_flag(other_ran));
    co_await ev.wait();
    co_await ev.wait();
    CHECK_FALSE(other_ran); // neither wait let the ready task run
    CHECK(ev.is_set());     // waiting does not consume the flag
    co_await other;
}

CORIO_TEST_CASE("event: set wakes every waiter in the order they began waiting", "[event]") {
    event ev;
    std::vector<int> order;
    std::vector<join_handle<>> waiters;
    for (int i = 0; i < 6; ++i)
        waiters.push_back(corio::spawn(wait_and_record(ev, i, order)));
    co_await corio::yield_now();
    co_await corio::yield_now();
    CHECK(order.empty());
    CHECK(ev.waiting() == 6);
    ev.set();
    CHECK(ev.waiting() == 0);
    co_await corio::yield_now();
    CHECK(order == std::vector<int>{0, 1, 2, 3, 4, 5}); // all of them, in one turn, FIFO
    for (join_handle<>& w : waiters)
        co_await w;
}

CORIO_TEST_CASE("event: after clear later waits block until the next set", "[event]") {
    event ev;
    ev.set();
    ev.clear();
    std::vector<int> order;
    join_handle<> w = corio::spawn(wait_and_record(ev, 1, order));
    co_await corio::yield_now();
    co_await corio::yield_now();
    CHECK(order.empty());
    CHECK(ev.waiting() == 1);
    ev.set();
    co_await w;
    CHECK(order == std::vector<int>{1});
}

CORIO_TEST_CASE("event: waiters woken by set return even if it is cleared before they resume",
                "[event]") {
    event ev;
    std::vector<int> order;
    join_handle<> a = corio::spawn(wait_and_record(ev, 1, order));
    join_handle<> b = corio::spawn(wait_and_record(ev, 2, order));
    co_await corio::yield_now();
    ev.set();
    ev.clear(); // the waiters were already woken: asyncio's Event behaves the same
    co_await a;
    co_await b;
    CHECK(order == std::vector<int>{1, 2});
    CHECK_FALSE(ev.is_set());
}

CORIO_TEST_CASE("event: a waiter cancelled before set leaves the queue and throws cancelled_error",
                "[event][cancel]") {
    event ev;
    probe pa;
    probe pb;
    join_handle<> a = corio::spawn(wait_then_yield(ev, pa));
    join_handle<> b = corio::spawn(wait_then_yield(ev, pb));
    co_await corio::yield_now();
    CHECK(ev.waiting() == 2);
    CHECK(a.cancel());
    CHECK(ev.waiting() == 1); // unlinked at once
    CHECK_THROWS_AS(co_await a, cancelled_error);
    CHECK(pa.cancelled_waiting);
    CHECK_FALSE(pa.returned);
    ev.set();
    co_await b; // the others are unaffected
    CHECK(pb.returned);
    CHECK_FALSE(pb.cancelled_after);
}

CORIO_TEST_CASE("event: a waiter cancelled after set but before it resumed returns and throws at "
                "its next suspension",
                "[event][cancel]") {
    event ev;
    probe pa;
    probe pb;
    join_handle<> a = corio::spawn(wait_then_yield(ev, pa));
    join_handle<> b = corio::spawn(wait_then_yield(ev, pb));
    co_await corio::yield_now();
    ev.set();          // both are woken...
    CHECK(a.cancel()); // ...and a is cancelled before it resumes
    CHECK_THROWS_AS(co_await a, cancelled_error);
    CHECK(pa.returned); // its wait() returned
    CHECK_FALSE(pa.cancelled_waiting);
    CHECK(pa.cancelled_after);
    co_await b;
    CHECK(pb.returned);
}

CORIO_TEST_CASE("event: a task cancelled before it waits on a clear event throws at wait",
                "[event][cancel]") {
    event ev;
    probe p;
    join_handle<> a = corio::spawn(wait_then_yield(ev, p));
    CHECK(a.cancel());
    CHECK_THROWS_AS(co_await a, cancelled_error);
    CHECK(p.cancelled_waiting);
    CHECK(ev.waiting() == 0);
}

namespace {

struct stress_waiter {
    enum class stage { created, waiting, after, done };
    stage at = stage::created;
    bool returned = false;
    bool threw_at_wait = false;
    bool cancelled_while_waiting = false; // cancel() was called while it was in wait()
    bool cancelled_before_return = false; // cancel() was called before wait() returned
    bool was_set_at_start = false;
    std::uint64_t sets_at_start = 0;
    std::uint64_t sets_at_return = 0;
};

/// Marks a waiter done however its coroutine ends.
class done_on_exit {
public:
    explicit done_on_exit(stress_waiter& w) noexcept : w_(w) {}
    done_on_exit(const done_on_exit&) = delete;
    done_on_exit& operator=(const done_on_exit&) = delete;
    ~done_on_exit() { w_.at = stress_waiter::stage::done; }

private:
    stress_waiter& w_;
};

task<> stress_body(event& ev, const std::uint64_t& sets, stress_waiter& w, int yields_after) {
    done_on_exit mark_done{w};
    w.at = stress_waiter::stage::waiting;
    w.was_set_at_start = ev.is_set();
    w.sets_at_start = sets;
    try {
        co_await ev.wait();
    } catch (const cancelled_error&) {
        w.threw_at_wait = true;
        throw;
    }
    w.returned = true;
    w.sets_at_return = sets;
    w.at = stress_waiter::stage::after;
    for (int i = 0; i < yields_after; ++i)
        co_await corio::yield_now();
}

task<> event_stress(std::uint32_t seed) {
    std::mt19937 rng{seed};
    event ev;
    std::uint64_t sets = 0;
    std::deque<stress_waiter> waiters; // stable addresses
    std::vector<join_handle<>> handles;
    std::size_t oldest = 0;
    for (int op = 0; op < 10'000; ++op) {
        const unsigned r = rng() % 100;
        if (r < 40) {
            waiters.emplace_back();
            const int after = static_cast<int>(rng() % 3);
            handles.push_back(corio::spawn(stress_body(ev, sets, waiters.back(), after)));
        } else if (r < 55) { // cancel an old or a recent waiter, whatever it is doing
            while (oldest < waiters.size() && waiters[oldest].at == stress_waiter::stage::done)
                ++oldest;
            if (oldest < waiters.size()) {
                const std::size_t live = waiters.size() - oldest;
                const std::size_t span = rng() % std::min<std::size_t>(live, 4);
                const std::size_t i = rng() % 2 == 0 ? oldest + span : waiters.size() - 1 - span;
                const stress_waiter::stage at = waiters[i].at;
                if (handles[i].cancel() && at != stress_waiter::stage::after) {
                    waiters[i].cancelled_before_return = true;
                    waiters[i].cancelled_while_waiting = at == stress_waiter::stage::waiting;
                }
            }
        } else if (r < 62) {
            ++sets;
            ev.set();
            CHECK(ev.waiting() == 0);
        } else if (r < 70) {
            ev.clear();
        } else {
            co_await corio::yield_now();
        }
    }
    ++sets;
    ev.set(); // releases whoever still waits
    for (join_handle<>& h : handles) {
        try {
            co_await h;
        } catch (const cancelled_error&) {
        }
    }
    int returned = 0;
    int threw = 0;
    int woken_then_cancelled = 0;
    for (const stress_waiter& w : waiters) {
        CHECK(w.at == stress_waiter::stage::done);
        CHECK(w.returned != w.threw_at_wait);
        if (w.returned) {
            ++returned;
            // It returned because the event was set when it looked, or was set since.
            CHECK((w.was_set_at_start || w.sets_at_return > w.sets_at_start));
        } else {
            ++threw;
            CHECK(w.cancelled_before_return); // only a cancel ends a wait with an error
        }
        if (w.cancelled_while_waiting && w.returned)
            ++woken_then_cancelled;
    }
    INFO("waiters " << waiters.size() << ", returned " << returned << ", threw " << threw
                    << ", woken then cancelled " << woken_then_cancelled);
    CHECK(static_cast<std::size_t>(returned + threw) == waiters.size());
    CHECK(ev.waiting() == 0);
    CHECK(threw > 0);
    CHECK(woken_then_cancelled > 0);
}

} // namespace

TEST_CASE("event: 10000 random set, clear, wait and cancel operations wake every waiter once",
          "[event][cancel][stress]") {
    const std::uint32_t seed = test_seed();
    INFO("seed " << seed << " (replay with CORIO_TEST_SEED=" << seed << ")");
    corio::test::run(event_stress(seed));
}

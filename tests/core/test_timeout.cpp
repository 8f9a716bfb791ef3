// SPDX-License-Identifier: MIT
#include "../support/corio_test.hpp"

#include <unistd.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <random>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
using corio::cancelled_error;
using corio::join_handle;
using corio::task;
using corio::timeout_error;
using corio::test::counted;
using std::chrono::milliseconds;

namespace {

task<int> sleeps_then(milliseconds d, int v) {
    counted c;
    co_await corio::sleep_for(d);
    co_return v;
}

task<int> immediate(int v) {
    counted c;
    co_return v;
}

/// Sleeps `d`; records in `cancelled` when that sleep is cancelled.
task<int> records_cancel(milliseconds d, bool& cancelled) {
    counted c;
    try {
        co_await corio::sleep_for(d);
    } catch (const cancelled_error&) {
        cancelled = true;
        throw;
    }
    co_return 1;
}

/// Sleeps `d`; when cancelled, takes `cleanup` more (the request was consumed, so it can await
/// again), sets `unwound`, then ends with a fresh cancelled_error.
task<int> slow_to_unwind(milliseconds d, milliseconds cleanup, bool& unwound) {
    counted c;
    bool was_cancelled = false;
    try {
        co_await corio::sleep_for(d);
    } catch (const cancelled_error&) {
        was_cancelled = true;
    }
    if (was_cancelled) {
        co_await corio::sleep_for(cleanup);
        unwound = true;
        throw cancelled_error{};
    }
    co_return 1;
}

task<int> fail_after(milliseconds d) {
    counted c;
    co_await corio::sleep_for(d);
    throw std::runtime_error("inner failed");
}

task<int> fails_now(bool really) {
    counted c;
    if (really)
        throw std::runtime_error("inner failed at once");
    co_return 1;
}

/// Yields `n` times: ready, never in a cancellable wait the timer could wake.
task<int> spins(int n) {
    counted c;
    for (int i = 0; i < n; ++i)
        co_await corio::yield_now();
    co_return n;
}

task<int> waits_for_event(corio::event& ev, int v) {
    counted c;
    co_await ev.wait();
    co_return v;
}

task<> sets_after(corio::event& ev, milliseconds d) {
    co_await corio::sleep_for(d);
    ev.set();
}

task<> sleeps(milliseconds d) { co_await corio::sleep_for(d); }

task<int> joins(join_handle<int>& h) {
    int v = co_await h;
    co_return v;
}

} // namespace

// --- values and timeouts ----------------------------------------------------------------------

CLOCK_TEST_CASE("timeout: the inner value when it finishes in time", "[timeout]") {
    counted::reset();
    const auto start = clock.now();
    task<int> inner = sleeps_then(1s, 7);
    int v = co_await corio::timeout(2s, std::move(inner));
    CHECK(v == 7);
    CHECK(clock.now() - start == 1s);
    CHECK(counted::alive == 0);
    // The deadline's timer is gone: sleeping past it fires nothing stale (ASan would see it).
    co_await corio::sleep_for(5s);
    CHECK(clock.now() - start == 6s);
}

CLOCK_TEST_CASE("timeout: an inner that completes without suspending returns at once",
                "[timeout]") {
    const auto start = clock.now();
    task<int> inner = immediate(3);
    int v = co_await corio::timeout(1s, std::move(inner));
    CHECK(v == 3);
    task<int> zero = immediate(4);
    int w = co_await corio::timeout(0ms, std::move(zero)); // done before the deadline is checked
    CHECK(w == 4);
    task<int> negative = immediate(5);
    int x = co_await corio::timeout(-1s, std::move(negative));
    CHECK(x == 5);
    CHECK(clock.now() == start);
}

CLOCK_TEST_CASE("timeout: timeout_error after the inner work was cancelled and unwound",
                "[timeout]") {
    counted::reset();
    const auto start = clock.now();
    bool inner_cancelled = false;
    task<int> inner = records_cancel(1h, inner_cancelled);
    bool caught = false;
    try {
        int v = co_await corio::timeout(1500ms, std::move(inner));
        (void)v;
    } catch (const timeout_error& e) {
        caught = true;
        CHECK(inner_cancelled);
        CHECK(counted::alive == 0);
        CHECK(e.limit() == 1500ms);
        CHECK(std::string(e.what()).find("1500 ms") != std::string::npos);
    }
    CHECK(caught);
    CHECK(clock.now() - start == 1500ms);
}

CLOCK_TEST_CASE("timeout: the error waits for an inner that takes time to unwind", "[timeout]") {
    counted::reset();
    const auto start = clock.now();
    bool unwound = false;
    task<int> inner = slow_to_unwind(1h, 2s, unwound);
    CHECK_THROWS_AS(co_await corio::timeout(1s, std::move(inner)), timeout_error);
    CHECK(unwound);
    CHECK(clock.now() - start == 3s);
    CHECK(counted::alive == 0);
}

CLOCK_TEST_CASE("timeout: timeout_error what() names the limit", "[timeout]") {
    task<int> a = sleeps_then(1h, 1);
    try {
        int v = co_await corio::timeout(250ms, std::move(a));
        (void)v;
        FAIL("no timeout");
    } catch (const timeout_error& e) {
        CHECK(std::string(e.what()) == "corio::timeout: timed out after 250 ms");
    }
    task<int> b = sleeps_then(1h, 1);
    try {
        int v = co_await corio::timeout(1500us, std::move(b));
        (void)v;
        FAIL("no timeout");
    } catch (const timeout_error& e) {
        CHECK(e.limit() == 1500us);
        CHECK(std::string(e.what()) == "corio::timeout: timed out after 1500000 ns");
    }
}

CLOCK_TEST_CASE("timeout: a zero or negative limit times out work that suspends", "[timeout]") {
    const auto start = clock.now();
    task<int> a = sleeps_then(1ms, 1);
    try {
        int v = co_await corio::timeout(0ms, std::move(a));
        (void)v;
        FAIL("no timeout");
    } catch (const timeout_error& e) {
        CHECK(e.limit() == 0ns);
        CHECK(std::string(e.what()).find("0 ms") != std::string::npos);
    }
    task<int> b = sleeps_then(1ms, 1);
    CHECK_THROWS_AS(co_await corio::timeout(-5s, std::move(b)), timeout_error);
    CHECK(clock.now() == start);
}

CLOCK_TEST_CASE("timeout: a floating-point limit is rounded up to the clock's tick", "[timeout]") {
    const auto start = clock.now();
    task<int> inner = sleeps_then(1s, 1);
    try {
        int v = co_await corio::timeout(std::chrono::duration<double>(0.5), std::move(inner));
        (void)v;
        FAIL("no timeout");
    } catch (const timeout_error& e) {
        CHECK(e.limit() == 500ms);
    }
    CHECK(clock.now() - start == 500ms);
}

// Like sleep_for, a limit beyond the clock's range saturates (at 4c5eaec ceil<nanoseconds>
// overflowed: UB, in practice an immediate timeout).
CLOCK_TEST_CASE("timeout: a huge limit (hours::max()) never fires", "[timeout]") {
    task<int> inner = sleeps_then(1s, 9);
    int v = co_await corio::timeout(std::chrono::hours::max(), std::move(inner));
    CHECK(v == 9);
}

CLOCK_TEST_CASE("timeout: timeout_error is a runtime_error, not a cancelled_error", "[timeout]") {
    static_assert(std::is_base_of_v<std::runtime_error, timeout_error>);
    static_assert(!std::is_base_of_v<cancelled_error, timeout_error>);
    task<int> inner = sleeps_then(1h, 1);
    bool as_timeout = false;
    try {
        int v = co_await corio::timeout(1s, std::move(inner));
        (void)v;
    } catch (const cancelled_error&) {
        FAIL("a timeout came out as cancelled_error");
    } catch (const timeout_error&) {
        as_timeout = true;
    }
    CHECK(as_timeout);
    // The awaiting task is not left with a pending cancellation: it can sleep again.
    const auto before = clock.now();
    co_await corio::sleep_for(1s);
    CHECK(clock.now() - before == 1s);
}

CLOCK_TEST_CASE("timeout: of a task that throws rethrows its exception", "[timeout]") {
    counted::reset();
    const auto start = clock.now();
    task<int> later = fail_after(10ms);
    CHECK_THROWS_WITH(co_await corio::timeout(1s, std::move(later)), "inner failed");
    CHECK(clock.now() - start == 10ms);
    task<int> now = fails_now(true);
    CHECK_THROWS_WITH(co_await corio::timeout(1s, std::move(now)), "inner failed at once");
    CHECK(counted::alive == 0);
    co_await corio::sleep_for(2s); // both deadlines pass: nothing stale fires
}

CLOCK_TEST_CASE("timeout: an empty task is a logic_error", "[timeout]") {
    task<int> taken = sleeps_then(1ms, 1);
    task<int> thief = std::move(taken);
    CHECK_THROWS_AS(corio::timeout(1s, std::move(taken)), std::logic_error);
    co_return;
}

// --- the deadline racing the completion -------------------------------------------------------

namespace {

enum class inner_kind { task_sleep, raw_sleep, event_wait };

struct race_tally {
    int values = 0;
    int timeouts = 0;
    int tie_values = 0;
    int tie_timeouts = 0;
};

/// One round: the inner work ends `offset` ms after (negative: before) a 10 ms limit, with
/// `noise` other timers due at the deadline, queued before or after the timeout's own.
task<> race_round(inner_kind kind, int offset, int noise, bool noise_first, race_tally& tally) {
    const milliseconds limit = 10ms;
    const milliseconds work = limit + milliseconds(offset);
    std::vector<join_handle<>> others;
    for (int i = 0; i < noise; ++i)
        others.push_back(corio::spawn(sleeps(limit)));
    corio::event ev;
    join_handle<> setter;
    if (kind == inner_kind::event_wait)
        setter = corio::spawn(sets_after(ev, work));
    if (noise_first)
        co_await corio::yield_now(); // the spawned timers are queued before the timeout's

    bool got_value = false;
    bool got_timeout = false;
    bool got_other = false;
    try {
        if (kind == inner_kind::raw_sleep) {
            co_await corio::timeout(limit, corio::sleep_for(work));
        } else if (kind == inner_kind::task_sleep) {
            task<int> inner = sleeps_then(work, 1);
            int v = co_await corio::timeout(limit, std::move(inner));
            CHECK(v == 1);
        } else {
            task<int> inner = waits_for_event(ev, 2);
            int v = co_await corio::timeout(limit, std::move(inner));
            CHECK(v == 2);
        }
        got_value = true;
    } catch (const timeout_error&) {
        got_timeout = true;
    } catch (...) {
        got_other = true;
    }
    CHECK_FALSE(got_other);
    CHECK(got_value != got_timeout); // exactly one
    if (offset < 0)
        CHECK(got_value);
    if (offset >= 0)
        CHECK(got_timeout); // at equal deadlines the timeout wins (documented)
    if (got_value)
        ++(offset == 0 ? tally.tie_values : tally.values);
    if (got_timeout)
        ++(offset == 0 ? tally.tie_timeouts : tally.timeouts);
    for (join_handle<>& h : others)
        co_await h;
    if (kind == inner_kind::event_wait)
        co_await setter;
}

task<> many_races(std::uint32_t seed, race_tally& tally) {
    std::mt19937 rng{seed};
    for (int round = 0; round < 300; ++round) {
        const auto kind = static_cast<inner_kind>(rng() % 3);
        const int offset = static_cast<int>(rng() % 5) - 2;
        const int noise = static_cast<int>(rng() % 4);
        const bool noise_first = rng() % 2 == 0;
        INFO("round " << round << ": kind " << static_cast<int>(kind) << ", offset " << offset
                      << " ms, noise " << noise << (noise_first ? " first" : " after"));
        counted::reset();
        co_await race_round(kind, offset, noise, noise_first, tally);
        CHECK(counted::alive == 0);
    }
}

} // namespace

TEST_CASE("timeout: racing the completion gives exactly one of value or timeout_error",
          "[timeout][race]") {
    for (std::uint32_t seed = 1; seed <= 5; ++seed) {
        INFO("seed " << seed);
        corio::manual_clock clock;
        race_tally tally;
        corio::test::run(many_races(seed, tally), {.clock = &clock});
        CHECK(tally.values + tally.timeouts + tally.tie_values + tally.tie_timeouts == 300);
        CHECK(tally.values > 0);
        CHECK(tally.timeouts > 0);
        CHECK(tally.tie_values == 0);
    }
}

// Documented since be0da3c (4c5eaec said the value wins, which it never did: the deadline's
// timer is queued before the inner's own).
CLOCK_TEST_CASE("timeout: an inner due in the same instant as the deadline loses to the timeout",
                "[timeout][race]") {
    counted::reset();
    bool inner_cancelled = false;
    task<int> inner = records_cancel(10ms, inner_cancelled);
    CHECK_THROWS_AS(co_await corio::timeout(10ms, std::move(inner)), timeout_error);
    CHECK(inner_cancelled);
    CHECK(counted::alive == 0);
}

CLOCK_TEST_CASE("timeout: an I/O result already in when the deadline passes is returned",
                "[timeout][race][io]") {
    // A zero limit is due in the very turn that submits the nop, but the loop dispatches
    // completions before it fires timers: the operation won the race.
    int v = co_await corio::timeout(0ms, corio::io::nop());
    CHECK(v == 0);
    CHECK(corio::event_loop::current().in_flight() == 0);
}

// --- outer cancellation -----------------------------------------------------------------------

namespace {

struct seen {
    bool timeout = false;
    bool cancelled = false;
    bool inner_cancelled = false;
    bool unwound = false;
};

/// Awaits a timeout around a sleep of `work` and records what came out of it.
task<> awaits_timeout(milliseconds limit, milliseconds work, seen& s) {
    task<int> inner = records_cancel(work, s.inner_cancelled);
    try {
        int v = co_await corio::timeout(limit, std::move(inner));
        (void)v;
    } catch (const timeout_error&) {
        s.timeout = true;
        throw;
    } catch (const cancelled_error&) {
        s.cancelled = true;
        throw;
    }
}

task<> awaits_timeout_slow_unwind(milliseconds limit, milliseconds cleanup, seen& s) {
    task<int> inner = slow_to_unwind(1h, cleanup, s.unwound);
    try {
        int v = co_await corio::timeout(limit, std::move(inner));
        (void)v;
    } catch (const timeout_error&) {
        s.timeout = true;
        throw;
    } catch (const cancelled_error&) {
        s.cancelled = true;
        throw;
    }
}

} // namespace

CLOCK_TEST_CASE("timeout: an outer cancel is reported as cancelled_error, never timeout_error",
                "[timeout][cancel]") {
    counted::reset();
    const auto start = clock.now();
    seen s;
    join_handle<> h = corio::spawn(awaits_timeout(10s, 1h, s));
    co_await corio::sleep_for(1s);
    h.cancel();
    CHECK_THROWS_AS(co_await h, cancelled_error);
    CHECK(s.cancelled);
    CHECK_FALSE(s.timeout);
    CHECK(s.inner_cancelled);
    CHECK(counted::alive == 0);
    CHECK(clock.now() - start == 1s);
}

CLOCK_TEST_CASE("timeout: an outer cancel in the same instant as the deadline is cancelled_error",
                "[timeout][cancel]") {
    counted::reset();
    seen s;
    join_handle<> h = corio::spawn(awaits_timeout(1s, 1h, s));
    co_await corio::sleep_for(1s); // this timer was queued first: the cancel comes first
    h.cancel();
    CHECK_THROWS_AS(co_await h, cancelled_error);
    CHECK(s.cancelled);
    CHECK_FALSE(s.timeout);
    CHECK(counted::alive == 0);
}

CLOCK_TEST_CASE("timeout: an outer cancel while the inner unwinds from the timeout wins",
                "[timeout][cancel]") {
    counted::reset();
    const auto start = clock.now();
    seen s;
    join_handle<> h = corio::spawn(awaits_timeout_slow_unwind(1s, 1s, s));
    co_await corio::sleep_for(1500ms); // the deadline passed; the inner is still cleaning up
    h.cancel();
    CHECK_THROWS_AS(co_await h, cancelled_error);
    CHECK(s.cancelled);
    CHECK_FALSE(s.timeout);
    CHECK_FALSE(s.unwound); // its cleanup was cancelled by the outer cancel
    CHECK(clock.now() - start == 1500ms);
    CHECK(counted::alive == 0);
}

CLOCK_TEST_CASE("timeout: a deadline passing while an outer cancel unwinds is cancelled_error",
                "[timeout][cancel]") {
    counted::reset();
    const auto start = clock.now();
    seen s;
    join_handle<> h = corio::spawn(awaits_timeout_slow_unwind(1500ms, 2s, s));
    co_await corio::sleep_for(1s);
    h.cancel();
    CHECK_THROWS_AS(co_await h, cancelled_error);
    CHECK(s.cancelled);
    CHECK_FALSE(s.timeout);
    CHECK(clock.now() - start == 1500ms); // the deadline cut the cleanup short
    CHECK(counted::alive == 0);
}

CLOCK_TEST_CASE("timeout: with a cancel already pending, the inner never starts",
                "[timeout][cancel]") {
    counted::reset();
    seen s;
    join_handle<> h = corio::spawn(awaits_timeout(1s, 1h, s));
    h.cancel(); // before the task first runs
    CHECK_THROWS_AS(co_await h, cancelled_error);
    CHECK(s.cancelled);
    CHECK_FALSE(s.inner_cancelled); // it never ran
    CHECK(counted::alive == 0);
}

// --- a timeout never leaks out as a plain cancel ----------------------------------------------

CLOCK_TEST_CASE("timeout: an inner that rethrows a fresh cancelled_error is still a timeout",
                "[timeout]") {
    bool unwound = false;
    task<int> inner = slow_to_unwind(1h, 1s, unwound);
    CHECK_THROWS_AS(co_await corio::timeout(1s, std::move(inner)), timeout_error);
    CHECK(unwound);
}

CLOCK_TEST_CASE("timeout: a deadline passing while the inner is ready (not waiting) is a timeout",
                "[timeout]") {
    task<int> inner = spins(1000);
    CHECK_THROWS_AS(co_await corio::timeout(0ms, std::move(inner)), timeout_error);
    task<int> quick = spins(1000); // with a limit, a spinning inner never lets the clock move
    int v = co_await corio::timeout(1ms, std::move(quick));
    CHECK(v == 1000);
}

CLOCK_TEST_CASE("timeout: around a join, the join is abandoned and the joined task runs on",
                "[timeout]") {
    join_handle<int> target = corio::spawn(sleeps_then(10s, 3));
    task<int> inner = joins(target);
    CHECK_THROWS_AS(co_await corio::timeout(1s, std::move(inner)), timeout_error);
    CHECK_FALSE(target.done());
    int v = co_await target;
    CHECK(v == 3);
}

namespace {

task<int> swallows_cancel(milliseconds d, milliseconds after, int v) {
    counted c;
    bool was_cancelled = false;
    try {
        co_await corio::sleep_for(d);
    } catch (const cancelled_error&) {
        was_cancelled = true; // caught: the request is consumed
    }
    if (was_cancelled)
        co_await corio::sleep_for(after);
    co_return v;
}

/// A gather child awaiting a timeout; records what came out of the timeout.
task<int> child_with_timeout(bool& saw_timeout, bool& saw_cancel) {
    task<int> inner = sleeps_then(1h, 1);
    try {
        int v = co_await corio::timeout(10s, std::move(inner));
        co_return v;
    } catch (const timeout_error&) {
        saw_timeout = true;
        throw;
    } catch (const cancelled_error&) {
        saw_cancel = true;
        throw;
    }
    co_return 0;
}

} // namespace

CLOCK_TEST_CASE("timeout: an inner that swallows the cancel and returns a value returns it",
                "[timeout]") {
    const auto start = clock.now();
    task<int> inner = swallows_cancel(1h, 1s, 8);
    int v = co_await corio::timeout(1s, std::move(inner));
    CHECK(v == 8); // as asyncio.timeout: no exception came out, so no TimeoutError
    CHECK(clock.now() - start == 2s);
}

CLOCK_TEST_CASE("timeout: a gather cancelling a child inside a timeout is a cancel, not a timeout",
                "[timeout][gather]") {
    counted::reset();
    bool saw_timeout = false;
    bool saw_cancel = false;
    task<int> failing = fail_after(1s);
    task<int> waiting = child_with_timeout(saw_timeout, saw_cancel);
    auto g = corio::gather(std::move(failing), std::move(waiting));
    CHECK_THROWS_WITH(co_await g, "inner failed");
    CHECK(saw_cancel);
    CHECK_FALSE(saw_timeout);
    CHECK(counted::alive == 0);
}

// As asyncio.wait_for(task): the timeout cancels the spawned task itself and waits for it.
CLOCK_TEST_CASE("timeout: around a moved join_handle, a timeout cancels the task and awaits it",
                "[timeout]") {
    const std::size_t tasks_before = corio::event_loop::current().task_count();
    bool cancelled = false;
    join_handle<int> h = corio::spawn(records_cancel(10s, cancelled));
    CHECK_THROWS_AS(co_await corio::timeout(1s, std::move(h)), timeout_error);
    CHECK(cancelled);
    CHECK(corio::event_loop::current().task_count() == tasks_before);
    join_handle<int> quick = corio::spawn(sleeps_then(1s, 6));
    int v = co_await corio::timeout(5s, std::move(quick));
    CHECK(v == 6);
}

// --- awaitables that are not tasks ------------------------------------------------------------

CLOCK_TEST_CASE("timeout: around sleep_for", "[timeout]") {
    const auto start = clock.now();
    CHECK_THROWS_AS(co_await corio::timeout(1s, corio::sleep_for(10s)), timeout_error);
    CHECK(clock.now() - start == 1s);
    co_await corio::timeout(10s, corio::sleep_for(1s));
    CHECK(clock.now() - start == 2s);
}

CORIO_TEST_CASE("timeout: around io::read on a silent pipe, the read is cancelled through the "
                "ring before the timeout_error",
                "[timeout][io]") {
    std::array<int, 2> fds{};
    REQUIRE(::pipe(fds.data()) == 0);
    std::array<std::byte, 16> buf{};
    bool caught = false;
    try {
        auto read = corio::io::read(fds[0], buf);
        int n = co_await corio::timeout(10ms, std::move(read));
        (void)n;
    } catch (const timeout_error& e) {
        caught = true;
        CHECK(e.limit() == 10ms);
        CHECK(corio::event_loop::current().in_flight() == 0); // the read's own CQE arrived
    }
    CHECK(caught);
    // The cancelled read took nothing: the next byte written is read normally.
    const char byte = 'x';
    REQUIRE(::write(fds[1], &byte, 1) == 1);
    auto again = corio::io::read(fds[0], buf);
    int n = co_await corio::timeout(10s, std::move(again));
    CHECK(n == 1);
    CHECK(buf[0] == std::byte{'x'});
    ::close(fds[0]);
    ::close(fds[1]);
}

namespace {
task<> reads_with_timeout(int fd, bool& cancelled) {
    std::array<std::byte, 16> buf{};
    auto read = corio::io::read(fd, buf);
    try {
        int n = co_await corio::timeout(1h, std::move(read));
        (void)n;
    } catch (const cancelled_error&) {
        cancelled = true;
        throw;
    }
}
} // namespace

CORIO_TEST_CASE("timeout: an outer cancel of a timeout around io::read cancels the read",
                "[timeout][io][cancel]") {
    std::array<int, 2> fds{};
    REQUIRE(::pipe(fds.data()) == 0);
    bool cancelled = false;
    join_handle<> h = corio::spawn(reads_with_timeout(fds[0], cancelled));
    co_await corio::sleep_for(5ms);
    h.cancel();
    CHECK_THROWS_AS(co_await h, cancelled_error);
    CHECK(cancelled);
    CHECK(corio::event_loop::current().in_flight() == 0);
    ::close(fds[0]);
    ::close(fds[1]);
}

// --- nesting and composition ------------------------------------------------------------------

namespace {

/// An inner timeout inside an outer one; catches the inner's timeout and returns 42 instead.
task<int> inner_timeout(milliseconds inner_limit, milliseconds work, bool& inner_timed_out,
                        bool& inner_cancelled) {
    counted c;
    try {
        task<int> w = sleeps_then(work, 1);
        int v = co_await corio::timeout(inner_limit, std::move(w));
        co_return v;
    } catch (const timeout_error&) {
        inner_timed_out = true;
    } catch (const cancelled_error&) {
        inner_cancelled = true;
        throw;
    }
    co_return 42;
}

task<int> inner_timeout_uncaught(milliseconds inner_limit, milliseconds work) {
    task<int> w = sleeps_then(work, 1);
    int v = co_await corio::timeout(inner_limit, std::move(w));
    co_return v;
}

} // namespace

CLOCK_TEST_CASE("timeout: nested, a shorter inner limit fires the inner timeout only",
                "[timeout][nested]") {
    counted::reset();
    const auto start = clock.now();
    bool inner_timed_out = false;
    bool inner_cancelled = false;
    task<int> body = inner_timeout(1s, 10s, inner_timed_out, inner_cancelled);
    int v = co_await corio::timeout(5s, std::move(body));
    CHECK(v == 42);
    CHECK(inner_timed_out);
    CHECK_FALSE(inner_cancelled);
    CHECK(clock.now() - start == 1s);
    CHECK(counted::alive == 0);
}

CLOCK_TEST_CASE("timeout: nested, an inner timeout_error passes through the outer unchanged",
                "[timeout][nested]") {
    task<int> body = inner_timeout_uncaught(1s, 10s);
    try {
        int v = co_await corio::timeout(5s, std::move(body));
        (void)v;
        FAIL("no timeout");
    } catch (const timeout_error& e) {
        CHECK(e.limit() == 1s); // the inner's, not the outer's
    }
}

CLOCK_TEST_CASE("timeout: nested, a shorter outer limit cancels the inner timeout",
                "[timeout][nested]") {
    counted::reset();
    const auto start = clock.now();
    bool inner_timed_out = false;
    bool inner_cancelled = false;
    task<int> body = inner_timeout(5s, 10s, inner_timed_out, inner_cancelled);
    try {
        int v = co_await corio::timeout(1s, std::move(body));
        (void)v;
        FAIL("no timeout");
    } catch (const timeout_error& e) {
        CHECK(e.limit() == 1s);
    }
    CHECK_FALSE(inner_timed_out); // the inner saw a cancellation, not a timeout of its own
    CHECK(inner_cancelled);
    CHECK(clock.now() - start == 1s);
    CHECK(counted::alive == 0);
}

CLOCK_TEST_CASE("timeout: nested, equal limits give one timeout_error and a clean unwind",
                "[timeout][nested]") {
    counted::reset();
    bool inner_timed_out = false;
    bool inner_cancelled = false;
    task<int> body = inner_timeout(1s, 10s, inner_timed_out, inner_cancelled);
    CHECK_THROWS_AS(co_await corio::timeout(1s, std::move(body)), timeout_error);
    CHECK(counted::alive == 0);
}

namespace {
task<int> tracked_sleep(milliseconds d, int& cancelled) {
    counted c;
    try {
        co_await corio::sleep_for(d);
    } catch (const cancelled_error&) {
        ++cancelled;
        throw;
    }
    co_return 1;
}
} // namespace

CLOCK_TEST_CASE("timeout: around a gather cancels and awaits every child", "[timeout][gather]") {
    counted::reset();
    const auto start = clock.now();
    int cancelled = 0;
    std::vector<task<int>> children;
    for (int i = 0; i < 5; ++i)
        children.push_back(tracked_sleep(10s, cancelled));
    task<std::vector<int>> g = corio::gather(std::move(children));
    CHECK_THROWS_AS(co_await corio::timeout(1s, std::move(g)), timeout_error);
    CHECK(cancelled == 5);
    CHECK(counted::alive == 0);
    CHECK(clock.now() - start == 1s);
}

// The first failure wins: a failure before the deadline is what the gather throws, even when
// the siblings were still unwinding from it when the deadline passed (asyncio surfaces it too).
CLOCK_TEST_CASE("timeout: a gather failing before the deadline but unwinding past it throws "
                "the failure, not timeout_error",
                "[timeout][gather]") {
    counted::reset();
    const auto start = clock.now();
    bool unwound = false;
    std::vector<task<int>> children;
    children.push_back(fail_after(1s));                  // fails at 1 s
    children.push_back(slow_to_unwind(1h, 5s, unwound)); // then unwinds until 6 s
    task<std::vector<int>> g = corio::gather(std::move(children));
    std::string failure;
    bool timed_out = false;
    try {
        std::vector<int> values = co_await corio::timeout(3s, std::move(g));
    } catch (const timeout_error&) {
        timed_out = true;
    } catch (const std::runtime_error& e) {
        failure = e.what();
    }
    CHECK(!timed_out);
    CHECK(failure == "inner failed");
    CHECK(unwound); // cancelled once: the deadline did not cut the cleanup short
    CHECK(clock.now() - start == 6s);
    CHECK(counted::alive == 0);
}

CLOCK_TEST_CASE("timeout: a gather of timeouts rethrows the first timeout_error",
                "[timeout][gather]") {
    counted::reset();
    const auto start = clock.now();
    task<int> a = sleeps_then(2s, 1);
    task<int> b = sleeps_then(2s, 2);
    auto g = corio::gather(corio::timeout(1s, std::move(a)), corio::timeout(3s, std::move(b)));
    try {
        auto result = co_await g;
        (void)result;
        FAIL("no timeout");
    } catch (const timeout_error& e) {
        CHECK(e.limit() == 1s);
    }
    CHECK(counted::alive == 0);
    CHECK(clock.now() - start == 1s);
}

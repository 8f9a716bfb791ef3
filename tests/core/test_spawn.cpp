// SPDX-License-Identifier: MIT
#include "../support/corio_test.hpp"

#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using corio::cancelled_error;
using corio::join_handle;
using corio::task;
using corio::test::counted;

namespace {

task<int> after_yield(int v) {
    co_await corio::yield_now();
    co_return v;
}

task<> sleeper(std::chrono::milliseconds d, int& stage) {
    stage = 1;
    co_await corio::sleep_for(d);
    stage = 2;
}

task<> record_cancel(std::chrono::seconds d, bool& cancelled) {
    try {
        co_await corio::sleep_for(d);
    } catch (const cancelled_error&) {
        cancelled = true;
        throw;
    }
}

task<> spin_then_sleep(int& spins, bool& cancelled) {
    // Runs without suspending for a while: the cancel arrives while it is ready, not waiting.
    for (int i = 0; i < 3; ++i) {
        ++spins;
        co_await corio::yield_now();
    }
    try {
        co_await corio::sleep_for(1h);
    } catch (const cancelled_error&) {
        cancelled = true;
        throw;
    }
}

task<> inner_most(bool& reached) {
    try {
        co_await corio::sleep_for(1h);
    } catch (const cancelled_error&) {
        reached = true;
        throw;
    }
}
task<> middle(bool& reached) { co_await inner_most(reached); }
task<> outer(bool& reached) { co_await middle(reached); }

task<int> fails() {
    co_await corio::yield_now();
    throw std::runtime_error("detached failure");
}

task<> waits_for(join_handle<>& h, bool& cancelled) {
    try {
        co_await h;
    } catch (const cancelled_error&) {
        cancelled = true;
    }
}

task<> catches_and_continues(int& after) {
    try {
        co_await corio::sleep_for(1h);
    } catch (const cancelled_error&) {
    }
    co_await corio::yield_now(); // the request was consumed: awaiting works again
    after = 1;
}

} // namespace

CORIO_TEST_CASE("spawn: the task runs concurrently and join returns its value", "[spawn]") {
    join_handle<int> h = corio::spawn(after_yield(5));
    CHECK_FALSE(h.done());
    int v = co_await h;
    CHECK(v == 5);
    CHECK(h.done());
}

CORIO_TEST_CASE("spawn: ten tasks sleeping 200 ms finish together, not one after another",
                "[spawn][sleep]") {
    const auto start = std::chrono::steady_clock::now();
    std::vector<int> stages(10, 0);
    std::vector<join_handle<>> handles;
    for (int& s : stages)
        handles.push_back(corio::spawn(sleeper(200ms, s)));
    for (auto& h : handles)
        co_await h;
    const auto took = std::chrono::steady_clock::now() - start;
    for (int s : stages)
        CHECK(s == 2);
    // Sequential would be 2 s; concurrent is ~0.2 s. A generous ratio, not a tight time.
    CHECK(took < 2s);
    CHECK(took >= 200ms);
}

CORIO_TEST_CASE("cancel: a sleeping task is woken with cancelled_error", "[spawn][cancel]") {
    bool cancelled = false;
    join_handle<> h = corio::spawn(record_cancel(1h, cancelled));
    co_await corio::yield_now(); // let it reach the sleep
    CHECK(h.cancel());
    CHECK_THROWS_AS(co_await h, cancelled_error);
    CHECK(cancelled);
    CHECK(h.done());
}

CORIO_TEST_CASE("cancel: a running task sees it at its next suspension", "[spawn][cancel]") {
    int spins = 0;
    bool cancelled = false;
    join_handle<> h = corio::spawn(spin_then_sleep(spins, cancelled));
    co_await corio::yield_now(); // it has run once and is ready again
    CHECK(spins == 1);
    h.cancel();
    CHECK_THROWS_AS(co_await h, cancelled_error);
    CHECK(spins == 1); // the yield it was suspended in threw: it never spun again
    CHECK_FALSE(cancelled);
}

CORIO_TEST_CASE("cancel: a task cancelled before it first runs ends cancelled", "[spawn][cancel]") {
    bool cancelled = false;
    join_handle<> h = corio::spawn(record_cancel(1h, cancelled));
    CHECK(h.cancel());
    CHECK_THROWS_AS(co_await h, cancelled_error);
}

CORIO_TEST_CASE("cancel: after done it returns false and changes nothing", "[spawn][cancel]") {
    join_handle<int> h = corio::spawn(after_yield(3));
    int v = co_await h;
    CHECK(v == 3);
    CHECK_FALSE(h.cancel());
    CHECK(h.done());
}

CORIO_TEST_CASE("cancel: the request reaches the innermost of nested awaited tasks",
                "[spawn][cancel]") {
    bool reached = false;
    join_handle<> h = corio::spawn(outer(reached));
    co_await corio::yield_now();
    h.cancel();
    CHECK_THROWS_AS(co_await h, cancelled_error);
    CHECK(reached);
}

CORIO_TEST_CASE("cancel: a task waiting in join is woken, the joined task runs on",
                "[spawn][cancel]") {
    int stage = 0;
    join_handle<> target = corio::spawn(sleeper(20ms, stage));
    bool waiter_cancelled = false;
    join_handle<> waiter = corio::spawn(waits_for(target, waiter_cancelled));
    co_await corio::yield_now();
    waiter.cancel();
    co_await waiter;
    CHECK(waiter_cancelled);
    CHECK_FALSE(target.done());
    co_await target;
    CHECK(stage == 2);
}

CORIO_TEST_CASE("cancel: catching cancelled_error consumes the request", "[spawn][cancel]") {
    int after = 0;
    join_handle<> h = corio::spawn(catches_and_continues(after));
    co_await corio::yield_now();
    h.cancel();
    co_await h;
    CHECK(after == 1);
}

TEST_CASE("spawn: an exception of a detached task reaches the loop's exception handler",
          "[spawn]") {
    corio::event_loop loop;
    std::vector<std::string> seen;
    loop.set_exception_handler([&seen](std::exception_ptr e) {
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& ex) {
            seen.emplace_back(ex.what());
        }
    });
    struct local {
        static task<> main() {
            corio::spawn(fails()).detach();
            join_handle<int> dropped = corio::spawn(fails()); // dropped below: detaches
            co_await corio::sleep_for(1ms);
            co_await corio::sleep_for(1ms);
        }
    };
    loop.run(local::main());
    REQUIRE(seen.size() == 2);
    CHECK(seen[0] == "detached failure");
}

TEST_CASE("spawn: a joined failure is not reported to the handler", "[spawn]") {
    corio::event_loop loop;
    int reports = 0;
    loop.set_exception_handler([&reports](std::exception_ptr) { ++reports; });
    struct local {
        static task<> main() {
            join_handle<int> h = corio::spawn(fails());
            CHECK_THROWS_AS(co_await h, std::runtime_error);
        }
    };
    loop.run(local::main());
    CHECK(reports == 0);
}

TEST_CASE("spawn: a cancelled detached task is not reported as a failure", "[spawn]") {
    corio::event_loop loop;
    int reports = 0;
    loop.set_exception_handler([&reports](std::exception_ptr) { ++reports; });
    struct local {
        static task<> main() {
            bool cancelled = false;
            join_handle<> h = corio::spawn(record_cancel(1h, cancelled));
            co_await corio::yield_now();
            h.cancel();
            h.detach();
            co_await corio::yield_now();
            co_await corio::yield_now();
            CHECK(cancelled);
        }
    };
    loop.run(local::main());
    CHECK(reports == 0);
}

TEST_CASE("spawn: with no loop on the thread it is a logic_error naming the call", "[bad-use]") {
    try {
        auto h = corio::spawn(after_yield(1));
        FAIL("spawn without a loop did not throw");
    } catch (const std::logic_error& e) {
        CHECK(std::string(e.what()).find("corio::spawn") != std::string::npos);
    }
    CHECK_THROWS_AS(corio::sleep_for(1ms), std::logic_error);
    CHECK_THROWS_AS(corio::yield_now(), std::logic_error);
}

namespace {
task<> keep_counted_and_sleep(counted c) {
    (void)c;
    co_await corio::sleep_for(1h);
}
task<> spawn_leftovers(int n) {
    for (int i = 0; i < n; ++i)
        corio::spawn(keep_counted_and_sleep(counted{})).detach();
    co_await corio::yield_now();
}
task<int> nested_run() { co_return corio::run(after_yield(1)); }

task<> writes_on_cancel(int& out) {
    try {
        co_await corio::sleep_for(1h);
    } catch (const cancelled_error&) {
        out = 1; // `out` lives in main's frame: it must still exist (ASan checks)
        throw;
    }
}
task<int> leaves_a_task_referring_to_its_local() {
    int local = 0;
    corio::spawn(writes_on_cancel(local)).detach();
    co_await corio::yield_now();
    co_return 7;
}
} // namespace

TEST_CASE("run: cancels and drains leftover tasks and their destructors run", "[run]") {
    counted::reset();
    corio::test::run(spawn_leftovers(10));
    CHECK(counted::alive == 0);
    CHECK(counted::destroyed >= 10);
}

TEST_CASE("run: inside a running loop is a logic_error", "[run][bad-use]") {
    CHECK_THROWS_AS(corio::test::run(nested_run()), std::logic_error);
}

TEST_CASE("event_loop: destroying a loop with live tasks cancels and drains them", "[run]") {
    counted::reset();
    {
        corio::event_loop loop;
        loop.run(spawn_leftovers(5));
        CHECK(loop.task_count() == 5);
        CHECK(counted::alive == 5);
    }
    CHECK(counted::alive == 0);
}

TEST_CASE("run: leftovers are drained while main's frame is still alive", "[run]") {
    CHECK(corio::test::run(leaves_a_task_referring_to_its_local()) == 7);
}

CORIO_TEST_CASE("join_handle: awaiting the result twice is a logic_error", "[spawn][bad-use]") {
    join_handle<int> h = corio::spawn(after_yield(2));
    int v = co_await h;
    CHECK(v == 2);
    CHECK_THROWS_AS(co_await h, std::logic_error);
    join_handle<int> empty;
    CHECK_THROWS_AS(co_await empty, std::logic_error);
}

namespace {
task<> joins_handle(join_handle<int>& h) { [[maybe_unused]] int v = co_await h; }
} // namespace

CORIO_TEST_CASE("join_handle: two coroutines awaiting one handle at once is a logic_error",
                "[spawn][bad-use]") {
    join_handle<int> target = corio::spawn(after_yield(1));
    join_handle<> first = corio::spawn(joins_handle(target));
    co_await corio::yield_now(); // `first` now waits on target
    CHECK_THROWS_AS(co_await target, std::logic_error);
    co_await first;
    CHECK(target.done());
}

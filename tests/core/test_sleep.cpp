// SPDX-License-Identifier: MIT
#include "../support/corio_test.hpp"

#include <chrono>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using corio::task;

namespace {

task<> append_after(std::chrono::milliseconds d, int id, std::vector<int>& order) {
    co_await corio::sleep_for(d);
    order.push_back(id);
}

task<> yielder(int id, int rounds, std::vector<int>& order) {
    for (int i = 0; i < rounds; ++i) {
        order.push_back(id);
        co_await corio::yield_now();
    }
}

task<> timers_fire_in_deadline_order(corio::manual_clock& clock) {
    std::vector<int> order;
    const auto start = clock.now();
    auto c = corio::spawn(append_after(30ms, 3, order));
    auto a = corio::spawn(append_after(10ms, 1, order));
    auto b = corio::spawn(append_after(20ms, 2, order));
    auto a2 = corio::spawn(append_after(10ms, 4, order)); // same deadline as 1: after it
    co_await c;
    co_await a;
    co_await b;
    co_await a2;
    CHECK(order == std::vector<int>{1, 4, 2, 3});
    CHECK(clock.now() - start == 30ms); // paused time advanced exactly to the last deadline
}

task<> long_sleeps_take_no_real_time(corio::manual_clock& clock) {
    const auto start = clock.now();
    co_await corio::sleep_for(24h);
    CHECK(clock.now() - start == 24h);
    co_await corio::sleep_until(clock.now() + 1h);
    CHECK(clock.now() - start == 25h);
}

task<> sleep_starts_when_awaited(corio::manual_clock& clock) {
    const auto start = clock.now();
    auto s = corio::sleep_for(1s); // made now, awaited 5 s later: sleeps 1 s from then
    co_await corio::sleep_for(5s);
    co_await s;
    CHECK(clock.now() - start == 6s);
    auto zero = corio::sleep_for(0s);
    co_await corio::sleep_for(1s);
    co_await zero; // still yields once, at once
    CHECK(clock.now() - start == 7s);
}

task<> sleep_zero_and_past_deadline_still_yield() {
    std::vector<int> order;
    auto other = corio::spawn(yielder(1, 1, order));
    co_await corio::sleep_for(0ms);
    co_await corio::sleep_until(corio::event_loop::current().now() - 1h);
    order.push_back(2);
    co_await other;
    CHECK(order == std::vector<int>{1, 2});
}

} // namespace

TEST_CASE("sleep: timers fire in deadline order, FIFO among equals (manual clock)", "[sleep]") {
    corio::manual_clock clock;
    corio::test::run(timers_fire_in_deadline_order(clock), {.clock = &clock});
}

// (It takes no real time: the test's watchdog would stop a real day's wait.)
TEST_CASE("sleep: a day of sleeping on a manual clock takes no real time", "[sleep]") {
    corio::manual_clock clock;
    corio::test::run(long_sleeps_take_no_real_time(clock), {.clock = &clock});
}

TEST_CASE("sleep: sleep_for counts from the first co_await, not from when it was made", "[sleep]") {
    corio::manual_clock clock;
    corio::test::run(sleep_starts_when_awaited(clock), {.clock = &clock});
}

CORIO_TEST_CASE("sleep: sleep_for(0) and a past deadline still let others run", "[sleep]") {
    co_await sleep_zero_and_past_deadline_still_yield();
}

CORIO_TEST_CASE("yield_now: ready tasks run in FIFO order", "[yield]") {
    std::vector<int> order;
    auto a = corio::spawn(yielder(1, 3, order));
    auto b = corio::spawn(yielder(2, 3, order));
    auto c = corio::spawn(yielder(3, 3, order));
    co_await a;
    co_await b;
    co_await c;
    CHECK(order == std::vector<int>{1, 2, 3, 1, 2, 3, 1, 2, 3});
}

TEST_CASE("manual_clock: a negative advance is an invalid_argument naming the value",
          "[sleep][bad-use]") {
    corio::manual_clock clock;
    try {
        clock.advance(-5ns);
        FAIL("no exception");
    } catch (const std::invalid_argument& e) {
        CHECK(std::string(e.what()).find("-5") != std::string::npos);
    }
}

// SPDX-License-Identifier: MIT
#include "../support/corio_test.hpp"

#include <memory>
#include <stdexcept>
#include <string>

using corio::task;
using corio::test::counted;

namespace {

task<int> answer() { co_return 42; }
task<> nothing() { co_return; }

task<std::unique_ptr<int>> boxed(int v) { co_return std::make_unique<int>(v); }

task<int> level3() {
    throw std::runtime_error("from level 3");
    co_return 0;
}
task<int> level2() { co_return co_await level3() + 1; }
task<int> level1() { co_return co_await level2() + 1; }

task<int> add_one(int x) { co_return x + 1; }

task<long> many_sync_awaits(int n) {
    long sum = 0;
    for (int i = 0; i < n; ++i)
        sum += co_await add_one(i);
    co_return sum;
}

task<int> started_flag(bool& flag) {
    flag = true;
    co_return 1;
}

task<int> keeps(counted c) {
    (void)c;
    co_return 1;
}

task<int> suspends_then_returns(int v) {
    co_await corio::yield_now();
    co_return v;
}

task<long> many_async_awaits(int n) {
    long sum = 0;
    for (int i = 0; i < n; ++i)
        sum += co_await suspends_then_returns(1);
    co_return sum;
}

} // namespace

CORIO_TEST_CASE("task: returns values, void and move-only results", "[task]") {
    int v = co_await answer();
    CHECK(v == 42);
    co_await nothing();
    std::unique_ptr<int> p = co_await boxed(7);
    REQUIRE(p != nullptr);
    CHECK(*p == 7);
}

TEST_CASE("task: does not start until awaited", "[task]") {
    bool started = false;
    {
        task<int> t = started_flag(started);
        CHECK_FALSE(started);
        CHECK_FALSE(t.done());
    }
    CHECK_FALSE(started);
}

TEST_CASE("task: destroying a task never awaited frees its arguments exactly once", "[task]") {
    counted::reset();
    {
        task<int> t = keeps(counted{});
        CHECK(counted::alive == 1);
    }
    CHECK(counted::alive == 0);
}

CORIO_TEST_CASE("task: exceptions propagate through three levels of nested tasks", "[task]") {
    std::string what;
    try {
        int v = co_await level1();
        FAIL("no exception, got " << v);
    } catch (const std::runtime_error& e) {
        what = e.what();
    }
    CHECK(what == "from level 3");
}

CORIO_TEST_CASE("task: awaiting a task twice is a logic_error", "[task][bad-use]") {
    task<int> t = answer();
    int first = co_await t;
    CHECK(first == 42);
    CHECK_THROWS_AS(co_await t, std::logic_error);
    task<int> moved = std::move(t);
    task<int> empty;
    CHECK_THROWS_AS(co_await empty, std::logic_error);
}

CORIO_TEST_CASE("task: 1,000,000 synchronously completing awaits do not overflow the stack",
                "[task][stack]") {
    const long sum = co_await many_sync_awaits(1'000'000);
    CHECK(sum == 1'000'000L * 1'000'001L / 2);
}

CORIO_TEST_CASE("task: 100,000 awaits of tasks that suspend first keep the stack bounded",
                "[task][stack]") {
    const long sum = co_await many_async_awaits(100'000);
    CHECK(sum == 100'000);
}

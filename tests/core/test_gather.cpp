// SPDX-License-Identifier: MIT
#include "../support/corio_test.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

using namespace std::chrono_literals;
using corio::cancelled_error;
using corio::join_handle;
using corio::outcome;
using corio::task;
using corio::when_any_result;
using corio::test::counted;
using std::chrono::milliseconds;

namespace {

/// What a set of tracked children did: how many ran at once, which started, how they ended.
struct probe {
    int running = 0;
    int peak = 0;
    int finished = 0;
    int cancelled = 0;
    std::vector<int> started;

    void enter(int id) {
        started.push_back(id);
        ++running;
        peak = std::max(peak, running);
    }
    [[nodiscard]] bool was_started(int id) const {
        return std::find(started.begin(), started.end(), id) != started.end();
    }
};

task<int> value_after(milliseconds d, int v) {
    counted c;
    co_await corio::sleep_for(d);
    co_return v;
}

task<> nothing_after(milliseconds d, int& done) {
    counted c;
    co_await corio::sleep_for(d);
    ++done;
}

task<std::string> string_after(milliseconds d, std::string s) {
    counted c;
    co_await corio::sleep_for(d);
    co_return s;
}

task<std::unique_ptr<int>> pointer_after(milliseconds d, int v) {
    co_await corio::sleep_for(d);
    co_return std::make_unique<int>(v);
}

task<std::tuple<int, int>> pair_after(milliseconds d, int a, int b) {
    co_await corio::sleep_for(d);
    co_return std::tuple<int, int>{a, b};
}

/// Sleeps `d` and returns `v`, recording in `p` when it runs and how it ends.
task<int> tracked(probe& p, milliseconds d, int id) {
    counted c;
    p.enter(id);
    try {
        co_await corio::sleep_for(d);
    } catch (const cancelled_error&) {
        --p.running;
        ++p.cancelled;
        throw;
    }
    --p.running;
    ++p.finished;
    co_return id;
}

task<> tracked_void(probe& p, milliseconds d, int id) {
    counted c;
    p.enter(id);
    try {
        co_await corio::sleep_for(d);
    } catch (const cancelled_error&) {
        --p.running;
        ++p.cancelled;
        throw;
    }
    --p.running;
    ++p.finished;
}

/// Sleeps `d`; when cancelled, takes `cleanup` more to unwind (awaiting again: the request
/// was consumed), then ends cancelled.
task<int> slow_to_unwind(probe& p, milliseconds d, milliseconds cleanup, int id) {
    counted c;
    p.enter(id);
    bool was_cancelled = false;
    try {
        co_await corio::sleep_for(d);
    } catch (const cancelled_error&) {
        was_cancelled = true;
    }
    if (was_cancelled) {
        co_await corio::sleep_for(cleanup);
        --p.running;
        ++p.cancelled;
        throw cancelled_error{};
    }
    --p.running;
    ++p.finished;
    co_return id;
}

task<int> fail_after(milliseconds d, std::string what) {
    counted c;
    co_await corio::sleep_for(d);
    throw std::runtime_error(what);
}

task<> fail_void_after(milliseconds d, std::string what) {
    counted c;
    co_await corio::sleep_for(d);
    throw std::runtime_error(what);
}

task<int> fails_now(bool really) {
    counted c;
    if (really)
        throw std::runtime_error("failed before suspending");
    co_return 1;
}

/// When cancelled, throws a different error instead of cancelled_error.
task<int> throws_when_cancelled(milliseconds d, std::string what) {
    counted c;
    bool was_cancelled = false;
    try {
        co_await corio::sleep_for(d);
    } catch (const cancelled_error&) {
        was_cancelled = true;
    }
    if (was_cancelled)
        throw std::runtime_error(what);
    co_return 0;
}

/// Ends with cancelled_error of its own (nobody cancelled it), as a task does that joins a
/// task which was cancelled.
task<int> cancels_itself(milliseconds d) {
    counted c;
    co_await corio::sleep_for(d);
    throw cancelled_error{};
}

task<> cancels_itself_void(milliseconds d) {
    counted c;
    co_await corio::sleep_for(d);
    throw cancelled_error{};
}

std::string message_of(const std::exception_ptr& e) {
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& ex) {
        return ex.what();
    }
}

} // namespace

// --- gather: values ---------------------------------------------------------------------------

CLOCK_TEST_CASE("gather: variadic returns a tuple in argument order, std::monostate for void",
                "[gather]") {
    counted::reset();
    int done = 0;
    task<int> a = value_after(30ms, 1);
    task<> b = nothing_after(10ms, done);
    task<std::string> c = string_after(20ms, "three");
    auto g = corio::gather(std::move(a), std::move(b), std::move(c));
    static_assert(std::is_same_v<decltype(g), task<std::tuple<int, std::monostate, std::string>>>);
    std::tuple<int, std::monostate, std::string> result = co_await g;
    CHECK(std::get<0>(result) == 1);
    CHECK(std::get<2>(result) == "three");
    CHECK(done == 1);
    CHECK(counted::alive == 0);
}

CLOCK_TEST_CASE("gather: a vector returns the values in order, whatever order they finish in",
                "[gather]") {
    std::vector<task<int>> children;
    for (int i = 0; i < 6; ++i)
        children.push_back(value_after(milliseconds(60 - 10 * i), i)); // the last finishes first
    task<std::vector<int>> g = corio::gather(std::move(children));
    std::vector<int> values = co_await g;
    CHECK(values == std::vector<int>{0, 1, 2, 3, 4, 5});
}

CLOCK_TEST_CASE("gather: a vector of task<void> returns void after every child ran", "[gather]") {
    int done = 0;
    std::vector<task<>> children;
    for (int i = 0; i < 4; ++i)
        children.push_back(nothing_after(milliseconds(10 * (i + 1)), done));
    task<> g = corio::gather(std::move(children));
    static_assert(std::is_same_v<decltype(g), task<void>>);
    co_await g;
    CHECK(done == 4);
}

CLOCK_TEST_CASE("gather: an empty vector returns an empty vector at once", "[gather]") {
    const auto start = clock.now();
    std::vector<task<int>> none;
    task<std::vector<int>> g = corio::gather(std::move(none));
    std::vector<int> values = co_await g;
    CHECK(values.empty());
    std::vector<task<>> no_void;
    task<> gv = corio::gather(std::move(no_void));
    co_await gv;
    CHECK(clock.now() == start);
}

CLOCK_TEST_CASE("gather: ten children sleeping 1 s finish at t = 1 s, not 10 s", "[gather]") {
    const auto start = clock.now();
    probe p;
    std::vector<task<int>> children;
    for (int i = 0; i < 10; ++i)
        children.push_back(tracked(p, 1s, i));
    task<std::vector<int>> g = corio::gather(std::move(children));
    std::vector<int> values = co_await g;
    CHECK(clock.now() - start == 1s);
    CHECK(values.size() == 10);
    CHECK(p.peak == 10);
}

CLOCK_TEST_CASE("gather: move-only values, in a vector and in a tuple", "[gather]") {
    std::vector<task<std::unique_ptr<int>>> children;
    children.push_back(pointer_after(20ms, 1));
    children.push_back(pointer_after(10ms, 2));
    task<std::vector<std::unique_ptr<int>>> g = corio::gather(std::move(children));
    std::vector<std::unique_ptr<int>> values = co_await g;
    REQUIRE(values.size() == 2);
    CHECK(*values[0] == 1);
    CHECK(*values[1] == 2);

    task<std::unique_ptr<int>> a = pointer_after(5ms, 3);
    task<int> b = value_after(1ms, 4);
    auto t = corio::gather(std::move(a), std::move(b));
    std::tuple<std::unique_ptr<int>, int> both = co_await t;
    CHECK(*std::get<0>(both) == 3);
    CHECK(std::get<1>(both) == 4);
}

CLOCK_TEST_CASE("gather: a single child returning a tuple is not flattened", "[gather]") {
    task<std::tuple<int, int>> only = pair_after(1ms, 1, 2);
    auto g = corio::gather(std::move(only));
    static_assert(std::is_same_v<decltype(g), task<std::tuple<std::tuple<int, int>>>>);
    std::tuple<std::tuple<int, int>> result = co_await g;
    CHECK(std::get<0>(result) == std::tuple<int, int>{1, 2});
}

// --- gather: windows --------------------------------------------------------------------------

CLOCK_TEST_CASE("gather: a window never runs more than max_concurrency at once, values in order",
                "[gather][window]") {
    const auto start = clock.now();
    probe p;
    std::vector<task<int>> children;
    for (int i = 0; i < 9; ++i)
        children.push_back(tracked(p, 1s, i));
    corio::gather_options opts{.max_concurrency = 3};
    task<std::vector<int>> g = corio::gather(std::move(children), opts);
    std::vector<int> values = co_await g;
    CHECK(values == std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8});
    CHECK(p.peak == 3);
    CHECK(p.started == std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8}); // started in order
    CHECK(clock.now() - start == 3s);                                // three waves of three
}

CLOCK_TEST_CASE("gather: a window with uneven durations starts the next child as one finishes",
                "[gather][window]") {
    const auto start = clock.now();
    probe p;
    std::vector<task<int>> children;
    // Durations 5, 1, 1, 1, 1, 1 s in a window of 2: the short ones run one after another
    // beside the long one, so everything ends at 5 s.
    children.push_back(tracked(p, 5s, 0));
    for (int i = 1; i < 6; ++i)
        children.push_back(tracked(p, 1s, i));
    corio::gather_options opts{.max_concurrency = 2};
    task<std::vector<int>> g = corio::gather(std::move(children), opts);
    std::vector<int> values = co_await g;
    CHECK(values == std::vector<int>{0, 1, 2, 3, 4, 5});
    CHECK(p.peak == 2);
    CHECK(clock.now() - start == 5s);
}

CLOCK_TEST_CASE("gather: a window larger than the count runs them all at once",
                "[gather][window]") {
    const auto start = clock.now();
    probe p;
    std::vector<task<int>> children;
    for (int i = 0; i < 5; ++i)
        children.push_back(tracked(p, 1s, i));
    corio::gather_options opts{.max_concurrency = 100};
    task<std::vector<int>> g = corio::gather(std::move(children), opts);
    std::vector<int> values = co_await g;
    CHECK(values.size() == 5);
    CHECK(p.peak == 5);
    CHECK(clock.now() - start == 1s);
}

CLOCK_TEST_CASE("gather: a window of one runs the children one after another", "[gather][window]") {
    const auto start = clock.now();
    probe p;
    std::vector<task<>> children;
    for (int i = 0; i < 4; ++i)
        children.push_back(tracked_void(p, 1s, i));
    corio::gather_options opts{.max_concurrency = 1};
    task<> g = corio::gather(std::move(children), opts);
    co_await g;
    CHECK(p.peak == 1);
    CHECK(p.finished == 4);
    CHECK(clock.now() - start == 4s);
}

CLOCK_TEST_CASE("gather: ten thousand children, all at once and windowed", "[gather][window]") {
    counted::reset();
    constexpr int n = 10'000;
    std::vector<task<int>> children;
    for (int i = 0; i < n; ++i)
        children.push_back(value_after(milliseconds(i % 7), i));
    task<std::vector<int>> g = corio::gather(std::move(children));
    std::vector<int> values = co_await g;
    REQUIRE(values.size() == static_cast<std::size_t>(n));
    bool in_order = true;
    for (int i = 0; i < n; ++i)
        in_order = in_order && values[static_cast<std::size_t>(i)] == i;
    CHECK(in_order);

    std::vector<task<int>> more;
    for (int i = 0; i < n; ++i)
        more.push_back(value_after(milliseconds(i % 7), i));
    corio::gather_options opts{.max_concurrency = 64};
    task<std::vector<int>> w = corio::gather(std::move(more), opts);
    std::vector<int> windowed = co_await w;
    CHECK(windowed == values);
    CHECK(counted::alive == 0);
}

// --- gather: errors ---------------------------------------------------------------------------

CLOCK_TEST_CASE("gather: the first error cancels the others and awaits them before it is rethrown",
                "[gather][error]") {
    counted::reset();
    const auto start = clock.now();
    probe p;
    std::vector<task<int>> children;
    for (int i = 0; i < 4; ++i)
        children.push_back(tracked(p, 10s, i));
    children.push_back(fail_after(1s, "child failed"));
    task<std::vector<int>> g = corio::gather(std::move(children));
    bool caught = false;
    try {
        std::vector<int> values = co_await g;
        FAIL("gather returned although a child failed");
    } catch (const std::runtime_error& e) {
        caught = true;
        CHECK(std::string(e.what()) == "child failed");
        CHECK(counted::alive == 0); // every child's frame is gone before the error arrives
        CHECK(p.cancelled == 4);
        CHECK(p.running == 0);
    }
    CHECK(caught);
    CHECK(clock.now() - start == 1s); // the others did not run to their end
}

CLOCK_TEST_CASE("gather: the error is rethrown only after slow-to-unwind children finished",
                "[gather][error]") {
    counted::reset();
    const auto start = clock.now();
    probe p;
    std::vector<task<int>> children;
    children.push_back(slow_to_unwind(p, 1h, 2s, 0));
    children.push_back(fail_after(1s, "boom"));
    children.push_back(slow_to_unwind(p, 1h, 3s, 2));
    task<std::vector<int>> g = corio::gather(std::move(children));
    CHECK_THROWS_WITH(co_await g, "boom");
    CHECK(clock.now() - start == 4s); // 1 s to the failure, 3 s for the slowest to unwind
    CHECK(p.cancelled == 2);
    CHECK(counted::alive == 0);
}

CLOCK_TEST_CASE("gather: variadic, the first error cancels the others and awaits them",
                "[gather][error]") {
    counted::reset();
    probe p;
    task<int> a = tracked(p, 10s, 0);
    task<int> b = fail_after(1s, "tuple child failed");
    task<> c = tracked_void(p, 10s, 2);
    auto g = corio::gather(std::move(a), std::move(b), std::move(c));
    bool caught = false;
    try {
        auto result = co_await g;
        (void)result;
    } catch (const std::runtime_error& e) {
        caught = true;
        CHECK(std::string(e.what()) == "tuple child failed");
        CHECK(counted::alive == 0);
        CHECK(p.cancelled == 2);
    }
    CHECK(caught);
}

CLOCK_TEST_CASE("gather: an error raised while a child unwinds does not replace the first",
                "[gather][error]") {
    counted::reset();
    std::vector<task<int>> children;
    children.push_back(throws_when_cancelled(1h, "second"));
    children.push_back(fail_after(1s, "first"));
    children.push_back(throws_when_cancelled(1h, "third"));
    task<std::vector<int>> g = corio::gather(std::move(children));
    CHECK_THROWS_WITH(co_await g, "first");
    CHECK(counted::alive == 0);
}

CLOCK_TEST_CASE("gather: a child failing before its first suspension cancels the others",
                "[gather][error]") {
    counted::reset();
    const auto start = clock.now();
    probe p;
    std::vector<task<int>> children;
    children.push_back(tracked(p, 1h, 0));
    children.push_back(fails_now(true));
    children.push_back(tracked(p, 1h, 2));
    task<std::vector<int>> g = corio::gather(std::move(children));
    CHECK_THROWS_WITH(co_await g, "failed before suspending");
    CHECK(p.cancelled == 2);
    CHECK(counted::alive == 0);
    CHECK(clock.now() == start);
}

CLOCK_TEST_CASE("gather: an empty (moved-from) task among the children is a logic_error",
                "[gather][error]") {
    counted::reset();
    probe p;
    task<int> taken = value_after(1ms, 1);
    task<int> thief = std::move(taken);
    std::vector<task<int>> children;
    children.push_back(tracked(p, 1h, 0));
    children.push_back(std::move(taken)); // empty
    task<std::vector<int>> g = corio::gather(std::move(children));
    CHECK_THROWS_AS(co_await g, std::logic_error);
    CHECK(p.cancelled == 1);
}

CLOCK_TEST_CASE("gather: failures of children are not reported to the loop's exception handler",
                "[gather][error]") {
    int reports = 0;
    corio::event_loop::current().set_exception_handler(
        [&reports](std::exception_ptr) { ++reports; });
    std::vector<task<int>> children;
    children.push_back(fail_after(1s, "a"));
    children.push_back(throws_when_cancelled(1h, "b"));
    task<std::vector<int>> g = corio::gather(std::move(children));
    CHECK_THROWS_WITH(co_await g, "a");
    co_await corio::yield_now();
    CHECK(reports == 0);
    corio::event_loop::current().set_exception_handler(nullptr);
}

CLOCK_TEST_CASE("gather: with a window, children not yet started when one fails never start",
                "[gather][window][error]") {
    counted::reset();
    const auto start = clock.now();
    probe p;
    std::vector<task<int>> children;
    children.push_back(tracked(p, 10s, 0));
    children.push_back(fail_after(1s, "early failure"));
    for (int i = 2; i < 10; ++i)
        children.push_back(tracked(p, 1s, i));
    corio::gather_options opts{.max_concurrency = 2};
    task<std::vector<int>> g = corio::gather(std::move(children), opts);
    CHECK_THROWS_WITH(co_await g, "early failure");
    CHECK(p.started == std::vector<int>{0}); // only the first window ever ran
    CHECK(p.cancelled == 1);
    CHECK(counted::alive == 0); // the frames of the children never started are gone too
    CHECK(clock.now() - start == 1s);
}

CLOCK_TEST_CASE("gather: with a window, a failure in a later wave stops the starts there",
                "[gather][window][error]") {
    counted::reset();
    probe p;
    std::vector<task<int>> children;
    for (int i = 0; i < 4; ++i)
        children.push_back(tracked(p, 1s, i));
    children.push_back(fail_after(1s, "third wave")); // index 4: starts at 2 s, fails at 3 s
    for (int i = 5; i < 8; ++i)
        children.push_back(tracked(p, 1s, i));
    corio::gather_options opts{.max_concurrency = 2};
    task<std::vector<int>> g = corio::gather(std::move(children), opts);
    CHECK_THROWS_WITH(co_await g, "third wave");
    CHECK(p.finished == 4);
    CHECK_FALSE(p.was_started(6));
    CHECK_FALSE(p.was_started(7));
    CHECK(p.running == 0);
    CHECK(counted::alive == 0);
}

// --- gather: cancellation ---------------------------------------------------------------------

namespace {

task<> gathers_slow_children(probe& p, int n, bool& after_gather) {
    std::vector<task<int>> children;
    for (int i = 0; i < n; ++i)
        children.push_back(slow_to_unwind(p, 1h, 1s, i));
    task<std::vector<int>> g = corio::gather(std::move(children));
    std::vector<int> values = co_await g;
    after_gather = true;
}

task<> gathers_windowed(probe& p, bool& after_gather) {
    std::vector<task<int>> children;
    for (int i = 0; i < 10; ++i)
        children.push_back(tracked(p, 1s, i));
    corio::gather_options opts{.max_concurrency = 2};
    task<std::vector<int>> g = corio::gather(std::move(children), opts);
    std::vector<int> values = co_await g;
    after_gather = true;
}

task<> gathers_variadic(probe& p, bool& after_gather) {
    task<int> a = slow_to_unwind(p, 1h, 1s, 0);
    task<> b = tracked_void(p, 1h, 1);
    auto g = corio::gather(std::move(a), std::move(b), corio::sleep_for(1h));
    auto result = co_await g;
    (void)result;
    after_gather = true;
}

} // namespace

CLOCK_TEST_CASE("gather: cancelling it cancels the children, waits for them, ends cancelled",
                "[gather][cancel]") {
    counted::reset();
    const auto start = clock.now();
    probe p;
    bool after_gather = false;
    join_handle<> h = corio::spawn(gathers_slow_children(p, 5, after_gather));
    co_await corio::sleep_for(1s);
    CHECK(p.running == 5);
    CHECK(h.cancel());
    CHECK_THROWS_AS(co_await h, cancelled_error);
    CHECK(clock.now() - start == 2s); // the children took 1 s to unwind, and were waited for
    CHECK(p.cancelled == 5);
    CHECK(p.running == 0);
    CHECK_FALSE(after_gather);
    CHECK(counted::alive == 0);
}

CLOCK_TEST_CASE("gather: variadic, cancelling it cancels the children and ends cancelled",
                "[gather][cancel]") {
    counted::reset();
    const auto start = clock.now();
    probe p;
    bool after_gather = false;
    join_handle<> h = corio::spawn(gathers_variadic(p, after_gather));
    co_await corio::sleep_for(1s);
    h.cancel();
    CHECK_THROWS_AS(co_await h, cancelled_error);
    CHECK(clock.now() - start == 2s);
    CHECK(p.cancelled == 2);
    CHECK_FALSE(after_gather);
    CHECK(counted::alive == 0);
}

namespace {
task<> gathers_one_slow_one_quick(probe& p, bool& after_gather) {
    std::vector<task<int>> children;
    children.push_back(slow_to_unwind(p, 1h, 1s, 0)); // takes 1 s to clean up after the cancel
    children.push_back(tracked(p, 1h, 1));            // ends at once when cancelled
    task<std::vector<int>> g = corio::gather(std::move(children));
    std::vector<int> values = co_await g;
    after_gather = true;
}
} // namespace

// While the cancelled gather waits, each wake-up (here: the quick child ending) must not cancel
// the still-running children again (found at 4c5eaec, fixed in be0da3c).
CLOCK_TEST_CASE("gather: a cancel reaches each child once, its cleanup is not cancelled again",
                "[gather][cancel]") {
    counted::reset();
    const auto start = clock.now();
    probe p;
    bool after_gather = false;
    join_handle<> h = corio::spawn(gathers_one_slow_one_quick(p, after_gather));
    co_await corio::sleep_for(1s);
    h.cancel();
    CHECK_THROWS_AS(co_await h, cancelled_error);
    CHECK(p.cancelled == 2);          // the slow child got through its cleanup
    CHECK(clock.now() - start == 2s); // and the gather waited the 1 s it took
    CHECK(counted::alive == 0);
}

CLOCK_TEST_CASE("gather: cancelled before it first runs, it still ends cancelled and clean",
                "[gather][cancel]") {
    counted::reset();
    probe p;
    bool after_gather = false;
    join_handle<> h = corio::spawn(gathers_slow_children(p, 3, after_gather));
    h.cancel();
    CHECK_THROWS_AS(co_await h, cancelled_error);
    CHECK(p.running == 0);
    CHECK_FALSE(after_gather);
    CHECK(counted::alive == 0);
}

CLOCK_TEST_CASE("gather: a cancelled windowed gather starts no more children", "[gather][cancel]") {
    counted::reset();
    const auto start = clock.now();
    probe p;
    bool after_gather = false;
    join_handle<> h = corio::spawn(gathers_windowed(p, after_gather));
    co_await corio::sleep_for(1500ms); // 0 and 1 finished at 1 s; 2 and 3 run
    h.cancel();
    CHECK_THROWS_AS(co_await h, cancelled_error);
    CHECK(p.started == std::vector<int>{0, 1, 2, 3});
    CHECK(p.finished == 2);
    CHECK(p.cancelled == 2);
    CHECK(clock.now() - start == 1500ms);
    CHECK(counted::alive == 0);
}

// --- gather: awaitables that are not tasks ----------------------------------------------------

CLOCK_TEST_CASE("gather: awaitables that are not tasks (sleep_for, io::nop) run concurrently",
                "[gather]") {
    const auto start = clock.now();
    task<int> v = value_after(2s, 5);
    auto g =
        corio::gather(corio::sleep_for(1s), corio::io::nop(), std::move(v), corio::sleep_for(2s));
    static_assert(
        std::is_same_v<decltype(g), task<std::tuple<std::monostate, int, int, std::monostate>>>);
    std::tuple<std::monostate, int, int, std::monostate> result = co_await g;
    CHECK(std::get<1>(result) == 0); // a nop completes with 0
    CHECK(std::get<2>(result) == 5);
    CHECK(clock.now() - start == 2s);
}

CLOCK_TEST_CASE("gather: a failing io operation cancels a sleeping sibling", "[gather][error]") {
    const auto start = clock.now();
    std::array<std::byte, 8> buf{};
    auto g = corio::gather(corio::sleep_for(1h), corio::io::read(-1, buf));
    CHECK_THROWS_AS(co_await g, std::system_error); // EBADF
    CHECK(clock.now() == start);
    CHECK(corio::event_loop::current().in_flight() == 0);
}

namespace {
task<> gathers_sleep_and_read(int fd, bool& after_gather) {
    std::array<std::byte, 8> buf{};
    auto g = corio::gather(corio::sleep_for(1h), corio::io::read(fd, buf));
    auto result = co_await g;
    (void)result;
    after_gather = true;
}
} // namespace

CORIO_TEST_CASE("gather: cancelling a gather of a sleep and a silent read cancels both",
                "[gather][cancel][io]") {
    std::array<int, 2> fds{};
    REQUIRE(::pipe(fds.data()) == 0);
    bool after_gather = false;
    join_handle<> h = corio::spawn(gathers_sleep_and_read(fds[0], after_gather));
    co_await corio::sleep_for(5ms); // the read is in flight
    h.cancel();
    CHECK_THROWS_AS(co_await h, cancelled_error);
    CHECK_FALSE(after_gather);
    CHECK(corio::event_loop::current().in_flight() == 0); // the read's own CQE has arrived
    ::close(fds[0]);
    ::close(fds[1]);
}

// --- gather: join_handles --------------------------------------------------------------------

namespace {
task<int> records_cancel(milliseconds d, int v, bool& cancelled) {
    try {
        co_await corio::sleep_for(d);
    } catch (const cancelled_error&) {
        cancelled = true;
        throw;
    }
    co_return v;
}
} // namespace

CLOCK_TEST_CASE("gather: join_handles moved in are awaited like tasks", "[gather]") {
    const auto start = clock.now();
    join_handle<int> a = corio::spawn(value_after(2s, 1));
    join_handle<int> b = corio::spawn(value_after(1s, 2));
    auto g = corio::gather(std::move(a), std::move(b));
    std::tuple<int, int> result = co_await g;
    CHECK(result == std::tuple<int, int>{1, 2});
    CHECK(clock.now() - start == 2s);
}

// Only the join is a child of the gather: cancelling it leaves the spawned task running (DESIGN:
// a cancelled join leaves the task running), now detached, since its handle went into the
// gather. asyncio.gather(task) would cancel the task itself; see the report.
CLOCK_TEST_CASE("gather: a failing gather of a join_handle cancels the task and awaits it",
                "[gather][error]") {
    const auto start = clock.now();
    const std::size_t tasks_before = corio::event_loop::current().task_count();
    bool cancelled = false;
    join_handle<int> slow = corio::spawn(records_cancel(10s, 1, cancelled));
    task<int> failing = fail_after(1s, "join sibling failed");
    auto g = corio::gather(std::move(slow), std::move(failing));
    CHECK_THROWS_WITH(co_await g, "join sibling failed");
    CHECK(clock.now() - start == 1s);
    CHECK(cancelled); // asyncio cancels an awaited task too
    CHECK(corio::event_loop::current().task_count() == tasks_before);
}

// --- gather: children ending cancelled on their own -------------------------------------------

CLOCK_TEST_CASE("gather: a child ending with its own cancelled_error does not cancel siblings",
                "[gather][cancel]") {
    counted::reset();
    const auto start = clock.now();
    probe p;
    std::vector<task<int>> children;
    children.push_back(cancels_itself(1s));
    children.push_back(tracked(p, 2s, 1));
    task<std::vector<int>> g = corio::gather(std::move(children));
    CHECK_THROWS_AS(co_await g, cancelled_error); // no value for child 0
    CHECK(p.finished == 1);
    CHECK(p.cancelled == 0);
    CHECK(clock.now() - start == 2s);
    CHECK(counted::alive == 0);
}

// A child that never finished must not look like success, with or without a value type (at
// 4c5eaec gather of task<void> returned normally here).
CLOCK_TEST_CASE("gather: of task<void>, a child ending with its own cancelled_error is rethrown",
                "[gather][cancel]") {
    probe p;
    std::vector<task<>> children;
    children.push_back(cancels_itself_void(1s));
    children.push_back(tracked_void(p, 2s, 1));
    task<> g = corio::gather(std::move(children));
    CHECK_THROWS_AS(co_await g, cancelled_error);
    CHECK(p.finished == 1);
}

// --- gather_settled ---------------------------------------------------------------------------

CLOCK_TEST_CASE("gather_settled: every outcome, values and exceptions, and nothing is cancelled",
                "[gather_settled]") {
    counted::reset();
    const auto start = clock.now();
    probe p;
    std::vector<task<int>> children;
    children.push_back(tracked(p, 2s, 0));
    children.push_back(fail_after(1s, "one"));
    children.push_back(tracked(p, 3s, 2));
    children.push_back(fail_after(4s, "three"));
    task<std::vector<outcome<int>>> s = corio::gather_settled(std::move(children));
    std::vector<outcome<int>> out = co_await s;
    REQUIRE(out.size() == 4);
    CHECK(out[0].has_value());
    CHECK(out[0].value() == 0);
    CHECK(out[1].has_error());
    CHECK_FALSE(out[1].has_value());
    CHECK(message_of(out[1].error()) == "one");
    CHECK_THROWS_WITH(out[1].value(), "one");
    CHECK(out[2].value() == 2);
    CHECK(message_of(out[3].error()) == "three");
    CHECK(p.cancelled == 0);
    CHECK(p.finished == 2);
    CHECK(clock.now() - start == 4s);
    CHECK(counted::alive == 0);
}

CLOCK_TEST_CASE("gather_settled: of task<void>, outcome<void> per child", "[gather_settled]") {
    int done = 0;
    std::vector<task<>> children;
    children.push_back(nothing_after(1s, done));
    children.push_back(fail_void_after(1s, "void failure"));
    children.push_back(nothing_after(2s, done));
    task<std::vector<outcome<void>>> s = corio::gather_settled(std::move(children));
    std::vector<outcome<void>> out = co_await s;
    REQUIRE(out.size() == 3);
    CHECK(out[0].has_value());
    CHECK(out[1].has_error());
    CHECK_THROWS_WITH(out[1].value(), "void failure");
    CHECK(out[2].has_value());
    CHECK(done == 2);
}

CLOCK_TEST_CASE("gather_settled: a window bounds the children running at once",
                "[gather_settled][window]") {
    const auto start = clock.now();
    probe p;
    std::vector<task<int>> children;
    for (int i = 0; i < 6; ++i)
        children.push_back(tracked(p, 1s, i));
    corio::gather_options opts{.max_concurrency = 2};
    task<std::vector<outcome<int>>> s = corio::gather_settled(std::move(children), opts);
    std::vector<outcome<int>> out = co_await s;
    REQUIRE(out.size() == 6);
    for (int i = 0; i < 6; ++i)
        CHECK(out[static_cast<std::size_t>(i)].value() == i);
    CHECK(p.peak == 2);
    CHECK(clock.now() - start == 3s);
}

// At 4c5eaec run_window stopped the starts on any failure, also for gather_settled, whose later
// outcomes then held neither a value nor an error.
CLOCK_TEST_CASE("gather_settled: windowed, a failure does not stop the later children",
                "[gather_settled][window][error]") {
    counted::reset();
    probe p;
    std::vector<task<int>> children;
    children.push_back(fail_after(1s, "first fails"));
    for (int i = 1; i < 6; ++i)
        children.push_back(tracked(p, 1s, i));
    corio::gather_options opts{.max_concurrency = 2};
    task<std::vector<outcome<int>>> s = corio::gather_settled(std::move(children), opts);
    std::vector<outcome<int>> out = co_await s;
    REQUIRE(out.size() == 6);
    CHECK(out[0].has_error());
    for (std::size_t i = 1; i < 6; ++i) {
        INFO("child " << i);
        CHECK(out[i].has_value());
    }
    CHECK(p.started.size() == 5);
    CHECK(p.cancelled == 0);
    CHECK(p.peak <= 2);
    CHECK(counted::alive == 0);
}

namespace {
task<> settles_slow_children(probe& p, bool& after) {
    std::vector<task<int>> children;
    for (int i = 0; i < 3; ++i)
        children.push_back(slow_to_unwind(p, 1h, 1s, i));
    task<std::vector<outcome<int>>> s = corio::gather_settled(std::move(children));
    std::vector<outcome<int>> out = co_await s;
    after = true;
}
} // namespace

CLOCK_TEST_CASE("gather_settled: cancelling it cancels every child and throws cancelled_error",
                "[gather_settled][cancel]") {
    counted::reset();
    const auto start = clock.now();
    probe p;
    bool after = false;
    join_handle<> h = corio::spawn(settles_slow_children(p, after));
    co_await corio::sleep_for(1s);
    h.cancel();
    CHECK_THROWS_AS(co_await h, cancelled_error);
    CHECK(clock.now() - start == 2s);
    CHECK(p.cancelled == 3);
    CHECK_FALSE(after);
    CHECK(counted::alive == 0);
}

CLOCK_TEST_CASE("gather_settled: a child's own cancelled_error is its outcome",
                "[gather_settled][cancel]") {
    probe p;
    std::vector<task<int>> children;
    children.push_back(cancels_itself(1s));
    children.push_back(tracked(p, 2s, 1));
    task<std::vector<outcome<int>>> s = corio::gather_settled(std::move(children));
    std::vector<outcome<int>> out = co_await s;
    REQUIRE(out.size() == 2);
    CHECK(out[0].has_error());
    CHECK_THROWS_AS(out[0].value(), cancelled_error);
    CHECK(out[1].value() == 1);
}

CLOCK_TEST_CASE("gather_settled: an empty vector gives no outcomes", "[gather_settled]") {
    std::vector<task<int>> none;
    task<std::vector<outcome<int>>> s = corio::gather_settled(std::move(none));
    std::vector<outcome<int>> out = co_await s;
    CHECK(out.empty());
}

// --- when_any ---------------------------------------------------------------------------------

CLOCK_TEST_CASE("when_any: the first to finish wins, the others are cancelled and awaited",
                "[when_any]") {
    counted::reset();
    const auto start = clock.now();
    probe p;
    std::vector<task<int>> children;
    children.push_back(tracked(p, 3s, 0));
    children.push_back(tracked(p, 1s, 1));
    children.push_back(slow_to_unwind(p, 2s, 1s, 2));
    task<when_any_result<int>> w = corio::when_any(std::move(children));
    when_any_result<int> r = co_await w;
    CHECK(r.index == 1);
    CHECK(r.value == 1);
    CHECK(p.finished == 1);
    CHECK(p.cancelled == 2);
    CHECK(counted::alive == 0);
    CHECK(clock.now() - start == 2s); // child 2 took 1 s to unwind, and was waited for
}

namespace {
task<int> throws_while_unwinding(milliseconds d) {
    try {
        co_await corio::sleep_for(d);
    } catch (const cancelled_error&) {
        throw std::runtime_error("loser failed while unwinding");
    }
    co_return 0;
}
} // namespace

CLOCK_TEST_CASE("when_any: a loser that fails while unwinding reaches the exception handler",
                "[when_any][error]") {
    std::vector<std::string> reports;
    corio::event_loop::current().set_exception_handler([&reports](std::exception_ptr e) {
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& ex) {
            reports.emplace_back(ex.what());
        }
    });
    std::vector<task<int>> children;
    children.push_back(value_after(1s, 7));
    children.push_back(throws_while_unwinding(1h));
    task<when_any_result<int>> w = corio::when_any(std::move(children));
    when_any_result<int> r = co_await w;
    CHECK(r.index == 0);
    CHECK(r.value == 7);
    corio::event_loop::current().set_exception_handler(nullptr);
    REQUIRE(reports.size() == 1);
    CHECK(reports[0] == "loser failed while unwinding");
}

CLOCK_TEST_CASE("when_any: the winner's index is its position even when it is the last",
                "[when_any]") {
    std::vector<task<int>> children;
    for (int i = 0; i < 5; ++i)
        children.push_back(value_after(milliseconds(50 - 10 * i), 100 + i));
    task<when_any_result<int>> w = corio::when_any(std::move(children));
    when_any_result<int> r = co_await w;
    CHECK(r.index == 4);
    CHECK(r.value == 104);
}

CLOCK_TEST_CASE("when_any: a single task wins", "[when_any]") {
    std::vector<task<std::string>> children;
    children.push_back(string_after(1s, "only"));
    task<when_any_result<std::string>> w = corio::when_any(std::move(children));
    when_any_result<std::string> r = co_await w;
    CHECK(r.index == 0);
    CHECK(r.value == "only");
}

CLOCK_TEST_CASE("when_any: of task<void>, the value is std::monostate", "[when_any]") {
    probe p;
    std::vector<task<>> children;
    children.push_back(tracked_void(p, 2s, 0));
    children.push_back(tracked_void(p, 1s, 1));
    task<when_any_result<void>> w = corio::when_any(std::move(children));
    when_any_result<void> r = co_await w;
    static_assert(std::is_same_v<decltype(r.value), std::monostate>);
    CHECK(r.index == 1);
    CHECK(p.cancelled == 1);
}

CLOCK_TEST_CASE("when_any: a failing winner rethrows after the others unwound", "[when_any]") {
    counted::reset();
    const auto start = clock.now();
    probe p;
    std::vector<task<int>> children;
    children.push_back(slow_to_unwind(p, 10s, 1s, 0));
    children.push_back(fail_after(1s, "winner failed"));
    task<when_any_result<int>> w = corio::when_any(std::move(children));
    bool caught = false;
    try {
        when_any_result<int> r = co_await w;
        (void)r;
    } catch (const std::runtime_error& e) {
        caught = true;
        CHECK(std::string(e.what()) == "winner failed");
        CHECK(counted::alive == 0);
        CHECK(p.cancelled == 1);
    }
    CHECK(caught);
    CHECK(clock.now() - start == 2s);
}

CLOCK_TEST_CASE("when_any: a loser failing while it unwinds does not change the result",
                "[when_any]") {
    std::vector<task<int>> children;
    children.push_back(throws_when_cancelled(1h, "loser"));
    children.push_back(value_after(1s, 7));
    task<when_any_result<int>> w = corio::when_any(std::move(children));
    when_any_result<int> r = co_await w;
    CHECK(r.index == 1);
    CHECK(r.value == 7);
}

CLOCK_TEST_CASE("when_any: an empty vector throws std::invalid_argument", "[when_any]") {
    std::vector<task<int>> none;
    task<when_any_result<int>> w = corio::when_any(std::move(none));
    CHECK_THROWS_AS(co_await w, std::invalid_argument);
}

namespace {
task<> races(probe& p, bool& after) {
    std::vector<task<int>> children;
    for (int i = 0; i < 3; ++i)
        children.push_back(slow_to_unwind(p, 1h, 1s, i));
    task<when_any_result<int>> w = corio::when_any(std::move(children));
    when_any_result<int> r = co_await w;
    (void)r;
    after = true;
}
} // namespace

CLOCK_TEST_CASE("when_any: cancelling it cancels every child, waits, ends cancelled",
                "[when_any][cancel]") {
    counted::reset();
    const auto start = clock.now();
    probe p;
    bool after = false;
    join_handle<> h = corio::spawn(races(p, after));
    co_await corio::sleep_for(1s);
    h.cancel();
    CHECK_THROWS_AS(co_await h, cancelled_error);
    CHECK(clock.now() - start == 2s);
    CHECK(p.cancelled == 3);
    CHECK_FALSE(after);
    CHECK(counted::alive == 0);
}

// SPDX-License-Identifier: MIT
#include "../support/corio_test.hpp"
#include "../support/fork_child.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <limits>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
using corio::cancelled_error;
using corio::join_handle;
using corio::task;
using corio::task_group;
using corio::test::counted;
using std::chrono::milliseconds;

namespace {

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
};

task<> tracked(probe& p, milliseconds d, int id) {
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

/// When cancelled, takes `cleanup` more to unwind, then ends cancelled.
task<> slow_to_unwind(probe& p, milliseconds d, milliseconds cleanup, int id) {
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
}

task<> fail_after(milliseconds d, std::string what) {
    counted c;
    co_await corio::sleep_for(d);
    throw std::runtime_error(what);
}

task<> throws_when_cancelled(milliseconds d, std::string what) {
    counted c;
    bool was_cancelled = false;
    try {
        co_await corio::sleep_for(d);
    } catch (const cancelled_error&) {
        was_cancelled = true;
    }
    if (was_cancelled)
        throw std::runtime_error(what);
}

task<> cancels_itself(milliseconds d) {
    counted c;
    co_await corio::sleep_for(d);
    throw cancelled_error{};
}

task<> holds(counted c) {
    (void)c;
    co_await corio::sleep_for(1h);
}

/// Sleeps `before`, then spawns into its own group a child sleeping `after` (which, when
/// `depth` > 1, does the same again).
task<> spawns_later(task_group& g, probe& p, milliseconds before, milliseconds after, int depth) {
    counted c;
    co_await corio::sleep_for(before);
    if (depth > 1)
        g.spawn(spawns_later(g, p, after, after, depth - 1));
    else
        g.spawn(tracked(p, after, 100));
}

} // namespace

// --- join -------------------------------------------------------------------------------------

CLOCK_TEST_CASE("task_group: join waits for every child", "[task_group]") {
    counted::reset();
    const auto start = clock.now();
    probe p;
    task_group g;
    for (int i = 1; i <= 5; ++i)
        g.spawn(tracked(p, milliseconds(1000 * i), i));
    CHECK(g.running() == 5);
    task<> j = g.join();
    co_await j;
    CHECK(p.finished == 5);
    CHECK(p.peak == 5);
    CHECK(g.running() == 0);
    CHECK(clock.now() - start == 5s);
    CHECK(counted::alive == 0);
}

CLOCK_TEST_CASE("task_group: join with no children returns at once", "[task_group]") {
    const auto start = clock.now();
    task_group g;
    task<> j = g.join();
    co_await j;
    CHECK(clock.now() == start);
}

CLOCK_TEST_CASE("task_group: join also waits for children spawned by children during the join",
                "[task_group]") {
    counted::reset();
    const auto start = clock.now();
    probe p;
    task_group g;
    g.spawn(spawns_later(g, p, 1s, 2s, 1)); // spawns a grandchild at 1 s that ends at 3 s
    g.spawn(spawns_later(g, p, 1s, 1s, 3)); // a chain: 1 s, then 1 s, then 1 s, then 1 s
    task<> j = g.join();
    co_await j;
    CHECK(p.finished == 2);
    CHECK(clock.now() - start == 4s);
    CHECK(counted::alive == 0);
}

CLOCK_TEST_CASE("task_group: after a join, new children can be spawned and joined again",
                "[task_group]") {
    probe p;
    task_group g;
    g.spawn(tracked(p, 1s, 0));
    task<> first = g.join();
    co_await first;
    g.spawn(tracked(p, 1s, 1));
    task<> second = g.join();
    co_await second;
    CHECK(p.finished == 2);
}

// --- failures ---------------------------------------------------------------------------------

CLOCK_TEST_CASE("task_group: the first failure cancels the rest, join rethrows it after all "
                "unwound",
                "[task_group][error]") {
    counted::reset();
    const auto start = clock.now();
    probe p;
    task_group g;
    for (int i = 0; i < 3; ++i)
        g.spawn(slow_to_unwind(p, 1h, 1s, i));
    g.spawn(fail_after(1s, "group child failed"));
    bool caught = false;
    try {
        task<> j = g.join();
        co_await j;
    } catch (const std::runtime_error& e) {
        caught = true;
        CHECK(std::string(e.what()) == "group child failed");
        CHECK(counted::alive == 0);
        CHECK(p.cancelled == 3);
        CHECK(g.running() == 0);
    }
    CHECK(caught);
    CHECK(clock.now() - start == 2s); // 1 s to the failure, 1 s for the others to unwind
}

CLOCK_TEST_CASE("task_group: an error raised while a child unwinds does not replace the first",
                "[task_group][error]") {
    task_group g;
    g.spawn(throws_when_cancelled(1h, "second"));
    g.spawn(fail_after(1s, "first"));
    task<> j = g.join();
    CHECK_THROWS_WITH(co_await j, "first");
}

CLOCK_TEST_CASE("task_group: a failure before the join is rethrown by the join",
                "[task_group][error]") {
    counted::reset();
    const auto start = clock.now();
    probe p;
    task_group g;
    g.spawn(tracked(p, 10s, 0));
    g.spawn(fail_after(1s, "early"));
    co_await corio::sleep_for(5s); // the owner is busy elsewhere; the group already shut down
    CHECK(g.running() == 0);
    CHECK(p.cancelled == 1);
    task<> j = g.join();
    CHECK_THROWS_WITH(co_await j, "early");
    CHECK(clock.now() - start == 5s);
    // join keeps reporting the failure
    task<> again = g.join();
    CHECK_THROWS_WITH(co_await again, "early");
}

CLOCK_TEST_CASE("task_group: spawn after a failure throws std::logic_error and drops the task",
                "[task_group][error]") {
    counted::reset();
    task_group g;
    g.spawn(fail_after(1s, "failed"));
    co_await corio::sleep_for(2s);
    CHECK_THROWS_AS(g.spawn(holds(counted{})), std::logic_error);
    CHECK(counted::alive == 0); // the refused task's frame was freed
    CHECK(g.running() == 0);
    task<> j = g.join();
    CHECK_THROWS_WITH(co_await j, "failed");
    CHECK_THROWS_AS(g.spawn(holds(counted{})), std::logic_error);
    CHECK(counted::alive == 0);
}

CLOCK_TEST_CASE("task_group: a child ending with its own cancelled_error is not a failure",
                "[task_group][cancel]") {
    probe p;
    task_group g;
    g.spawn(cancels_itself(1s));
    g.spawn(tracked(p, 2s, 1));
    task<> j = g.join();
    co_await j; // no error: like asyncio.TaskGroup, a cancelled child is not a failure
    CHECK(p.finished == 1);
    CHECK(p.cancelled == 0);
}

CLOCK_TEST_CASE("task_group: joined failures are not reported to the loop's exception handler",
                "[task_group][error]") {
    int reports = 0;
    corio::event_loop::current().set_exception_handler(
        [&reports](std::exception_ptr) { ++reports; });
    task_group g;
    g.spawn(fail_after(1s, "a"));
    g.spawn(throws_when_cancelled(1h, "b"));
    task<> j = g.join();
    CHECK_THROWS_WITH(co_await j, "a");
    co_await corio::yield_now();
    CHECK(reports == 0);
    corio::event_loop::current().set_exception_handler(nullptr);
}

// --- cancellation -----------------------------------------------------------------------------

namespace {

task<> joins_group(probe& p, bool& after_join) {
    task_group g;
    for (int i = 0; i < 3; ++i)
        g.spawn(slow_to_unwind(p, 1h, 1s, i));
    task<> j = g.join();
    co_await j;
    after_join = true;
}

task<> joins_slow_and_quick(probe& p, bool& after_join) {
    task_group g;
    g.spawn(slow_to_unwind(p, 1h, 1s, 0)); // takes 1 s to clean up after the cancel
    g.spawn(tracked(p, 1h, 1));            // ends at once when cancelled
    task<> j = g.join();
    co_await j;
    after_join = true;
}

task<> sleeps_instead_of_joining(probe& p, bool& after_sleep) {
    task_group g;
    for (int i = 0; i < 3; ++i)
        g.spawn(tracked(p, 1h, i));
    co_await corio::sleep_for(1h); // cancelled here: the group is destroyed without a join
    after_sleep = true;
    task<> j = g.join();
    co_await j;
}

task<> leaves_without_join(probe& p, milliseconds cleanup) {
    task_group g;
    for (int i = 0; i < 3; ++i)
        g.spawn(slow_to_unwind(p, 1h, cleanup, i));
    co_await corio::sleep_for(1s); // the children are running
    CHECK(g.running() == 3);
    throw std::runtime_error("skipped the join");
}

} // namespace

CLOCK_TEST_CASE("task_group: cancelling the joiner cancels all children, waits, then throws "
                "cancelled_error",
                "[task_group][cancel]") {
    counted::reset();
    const auto start = clock.now();
    probe p;
    bool after_join = false;
    join_handle<> h = corio::spawn(joins_group(p, after_join));
    co_await corio::sleep_for(1s);
    CHECK(p.running == 3);
    h.cancel();
    CHECK_THROWS_AS(co_await h, cancelled_error);
    CHECK(p.cancelled == 3);
    CHECK(p.running == 0);
    CHECK_FALSE(after_join);
    CHECK(clock.now() - start == 2s); // the children's 1 s of cleanup was waited for
    CHECK(counted::alive == 0);
}

// As for gather: the quick child's ending must not cancel the slow child's cleanup again.
CLOCK_TEST_CASE("task_group: a cancel of the joiner reaches each child once",
                "[task_group][cancel]") {
    counted::reset();
    const auto start = clock.now();
    probe p;
    bool after_join = false;
    join_handle<> h = corio::spawn(joins_slow_and_quick(p, after_join));
    co_await corio::sleep_for(1s);
    h.cancel();
    CHECK_THROWS_AS(co_await h, cancelled_error);
    CHECK(p.cancelled == 2);
    CHECK(clock.now() - start == 2s);
    CHECK(counted::alive == 0);
}

CLOCK_TEST_CASE("task_group: cancelled outside the join, the group's children are cancelled too",
                "[task_group][cancel]") {
    counted::reset();
    probe p;
    bool after_sleep = false;
    join_handle<> h = corio::spawn(sleeps_instead_of_joining(p, after_sleep));
    co_await corio::sleep_for(1s);
    h.cancel();
    CHECK_THROWS_AS(co_await h, cancelled_error);
    CHECK_FALSE(after_sleep);
    co_await corio::yield_now(); // the orphaned children unwind on their own
    co_await corio::yield_now();
    CHECK(p.cancelled == 3);
    CHECK(counted::alive == 0);
}

CLOCK_TEST_CASE("task_group: destroyed without join, its children are cancelled and still unwind",
                "[task_group][cancel]") {
    counted::reset();
    const auto start = clock.now();
    probe p;
    task<> owner = leaves_without_join(p, 1s);
    CHECK_THROWS_WITH(co_await owner, "skipped the join");
    CHECK(p.running == 3); // not awaited: they are still cleaning up
    co_await corio::sleep_for(2s);
    CHECK(p.cancelled == 3);
    CHECK(p.running == 0);
    CHECK(counted::alive == 0);
    CHECK(clock.now() - start == 3s);
}

CLOCK_TEST_CASE("task_group: a group that goes out of scope after its children finished is fine",
                "[task_group]") {
    counted::reset();
    probe p;
    {
        task_group g;
        g.spawn(tracked(p, 1s, 0));
        co_await corio::sleep_for(2s);
        CHECK(g.running() == 0);
    }
    CHECK(p.finished == 1);
    CHECK(counted::alive == 0);
}

// --- joins by more than one task -------------------------------------------------------------

namespace {

task<> joins(task_group& g) {
    task<> j = g.join();
    co_await j;
}

task<> joins_and_flags(task_group& g, bool& done) {
    task<> j = g.join();
    co_await j;
    done = true;
}

task<> sleeps(milliseconds d) { co_await corio::sleep_for(d); }

/// Two coroutines in join() at once. Ends the (forked) process: 0 when the second join was
/// refused with logic_error or both joins completed; 2 when the first joiner's wake-up was
/// lost (the process is left at once: its teardown would touch the hung joiner's group).
task<> double_join() {
    task_group g;
    g.spawn(sleeps(10ms));
    bool first_done = false;
    join_handle<> first = corio::spawn(joins_and_flags(g, first_done));
    co_await corio::yield_now(); // `first` now waits in join
    bool refused = false;
    task<> second = g.join();
    try {
        co_await second;
    } catch (const std::logic_error&) {
        refused = true;
    }
    if (!refused) {
        for (int i = 0; i < 10 && !first_done; ++i)
            co_await corio::yield_now();
        if (!first_done)
            ::_exit(2);
    }
    co_await first;
    ::_exit(first_done ? 0 : 3);
}

} // namespace

// The scope has one owner slot: up to f272432 a second join() overwrote the first joiner, which
// was never woken (a lost wake-up); its frame then outlived the group, and the loop's teardown
// crashed cancelling it. Run in a child process, since that failure crashes.
TEST_CASE("task_group: a second concurrent join is refused or woken too, never lost",
          "[task_group][bad-use]") {
    const corio::test::child_result r = corio::test::run_in_child([] {
        corio::manual_clock clock;
        corio::run(double_join(), {.clock = &clock});
        return 4; // double_join always exits the process itself
    });
    INFO("stderr: " << r.err);
    CHECK(r.signal == 0);
    CHECK(r.exit_code == 0);
}

// Up to f272432 a cancelled join left the scope pointing at the joiner's cancel_state after that
// joiner was gone, and a later join() read it. Here the freed frame is reused (the frame cache
// is LIFO) by a task of the same kind whose cancellation is pending: the later join threw
// cancelled_error, consuming that other task's request. Under ASan: a heap-use-after-free.
CLOCK_TEST_CASE("task_group: a join after another task's cancelled join reads no stale state",
                "[task_group][cancel]") {
    probe p;
    task_group g;
    g.spawn(tracked(p, 1h, 0));
    join_handle<> first = corio::spawn(joins(g));
    co_await corio::sleep_for(1s);
    first.cancel();
    CHECK_THROWS_AS(co_await first, cancelled_error);
    CHECK(g.running() == 0);
    first = join_handle<>{}; // the first joiner's frame is freed

    task_group other;
    join_handle<> reuse = corio::spawn(joins(other)); // likely gets the freed frame
    reuse.cancel();                                   // pending: it has not run yet
    bool threw = false;
    task<> second = g.join();
    try {
        co_await second;
    } catch (const cancelled_error&) {
        threw = true;
    }
    CHECK_FALSE(threw); // nobody cancelled this task
    reuse.cancel();
    try {
        co_await reuse;
    } catch (const cancelled_error&) {
    }
}

// --- randomized stress ------------------------------------------------------------------------

namespace {

struct indexed_error : std::runtime_error {
    explicit indexed_error(int i) : std::runtime_error("child " + std::to_string(i)), index(i) {}
    int index;
};

enum class round_kind : int { gather, windowed_gather, settled, timeout_gather, group, count };

struct round_plan {
    round_kind kind = round_kind::gather;
    std::vector<int> ms;
    std::vector<bool> fails;
    std::vector<int> cleanup; // ms a cancelled child takes to unwind
    std::size_t window = 0;   // 0: all at once
    int limit = 0;            // timeout_gather
    int cancel_at = -1;       // -1: no cancel
};

struct round_counts {
    int running = 0;
    int peak = 0;
    std::vector<char> started;
};

enum class ending { none, values, error, timeout, cancelled, other };

struct round_result {
    ending how = ending::none;
    std::vector<int> values;
    std::vector<corio::outcome<int>> outcomes;
    int error_index = -1;
    std::string other;
};

/// Sleeps `ms`, then fails or returns index * 10. When cancelled, takes `cleanup` ms more to
/// unwind (0: ends at once).
task<int> stress_child(int index, int ms, bool fails, int cleanup, round_counts& k) {
    counted c;
    k.started[static_cast<std::size_t>(index)] = 1;
    ++k.running;
    k.peak = std::max(k.peak, k.running);
    bool was_cancelled = false;
    try {
        co_await corio::sleep_for(milliseconds(ms));
    } catch (const cancelled_error&) {
        was_cancelled = true;
    }
    if (was_cancelled) {
        if (cleanup > 0)
            co_await corio::sleep_for(milliseconds(cleanup));
        --k.running;
        throw cancelled_error{};
    }
    --k.running;
    if (fails)
        throw indexed_error{index};
    co_return index * 10;
}

task<> stress_child_void(int index, int ms, bool fails, int cleanup, round_counts& k) {
    int v = co_await stress_child(index, ms, fails, cleanup, k);
    (void)v;
}

std::vector<task<int>> make_children(const round_plan& plan, round_counts& k) {
    std::vector<task<int>> children;
    for (std::size_t i = 0; i < plan.ms.size(); ++i)
        children.push_back(
            stress_child(static_cast<int>(i), plan.ms[i], plan.fails[i], plan.cleanup[i], k));
    return children;
}

task<> stress_round(const round_plan& plan, round_counts& k, round_result& r) {
    try {
        corio::gather_options opts{.max_concurrency = plan.window};
        if (plan.kind == round_kind::gather || plan.kind == round_kind::windowed_gather) {
            std::vector<task<int>> children = make_children(plan, k);
            task<std::vector<int>> g = corio::gather(std::move(children), opts);
            r.values = co_await g;
            r.how = ending::values;
        } else if (plan.kind == round_kind::settled) {
            std::vector<task<int>> children = make_children(plan, k);
            task<std::vector<corio::outcome<int>>> s =
                corio::gather_settled(std::move(children), opts);
            r.outcomes = co_await s;
            r.how = ending::values;
        } else if (plan.kind == round_kind::timeout_gather) {
            std::vector<task<int>> children = make_children(plan, k);
            task<std::vector<int>> g = corio::gather(std::move(children));
            r.values = co_await corio::timeout(milliseconds(plan.limit), std::move(g));
            r.how = ending::values;
        } else {
            task_group group;
            for (std::size_t i = 0; i < plan.ms.size(); ++i)
                group.spawn(stress_child_void(static_cast<int>(i), plan.ms[i], plan.fails[i],
                                              plan.cleanup[i], k));
            task<> j = group.join();
            co_await j;
            r.how = ending::values;
        }
    } catch (const indexed_error& e) {
        r.how = ending::error;
        r.error_index = e.index;
    } catch (const corio::timeout_error&) {
        r.how = ending::timeout;
    } catch (const cancelled_error&) {
        r.how = ending::cancelled;
    } catch (const std::exception& e) {
        r.how = ending::other;
        r.other = e.what();
    }
}

task<> cancel_after(join_handle<>& h, int ms) {
    co_await corio::sleep_for(milliseconds(ms));
    h.cancel();
}

round_plan make_plan(std::mt19937& rng) {
    auto pick = [&rng](int lo, int hi) { // inclusive
        return lo + static_cast<int>(rng() % static_cast<std::uint32_t>(hi - lo + 1));
    };
    round_plan plan;
    plan.kind = static_cast<round_kind>(pick(0, static_cast<int>(round_kind::count) - 1));
    const int n = pick(1, 8);
    for (int i = 0; i < n; ++i) {
        plan.ms.push_back(pick(0, 20));
        plan.fails.push_back(pick(0, 4) == 0);
        plan.cleanup.push_back(0);
    }
    if (plan.kind == round_kind::windowed_gather)
        plan.window = static_cast<std::size_t>(pick(1, 4));
    if (plan.kind == round_kind::settled && pick(0, 1) == 0)
        plan.window = static_cast<std::size_t>(pick(1, 4));
    if (plan.kind == round_kind::timeout_gather)
        plan.limit = pick(0, 25);
    if (pick(0, 2) == 0)
        plan.cancel_at = pick(0, 25);
    // Children slow to unwind, where their cleanup cannot race an outer cancel or a deadline
    // (the round's outcome would then depend on when the unwinding ends).
    if (plan.cancel_at < 0 && plan.kind != round_kind::timeout_gather)
        for (int& c : plan.cleanup)
            c = pick(0, 3) == 0 ? pick(1, 10) : 0;
    return plan;
}

std::string describe(const round_plan& plan) {
    std::ostringstream out;
    out << "kind " << static_cast<int>(plan.kind) << ", window " << plan.window << ", limit "
        << plan.limit << ", cancel_at " << plan.cancel_at << ", children (ms, fails):";
    for (std::size_t i = 0; i < plan.ms.size(); ++i)
        out << " (" << plan.ms[i] << (plan.fails[i] ? ", F" : "") << ", cleanup " << plan.cleanup[i]
            << ")";
    return out.str();
}

/// Checks one round against a simulation of the schedule: children start in order whenever a
/// window slot is free; the first failure (or the deadline, or the cancel) ends the round.
void check_round(const round_plan& plan, const round_counts& k, round_result& r,
                 const std::string& what) {
    INFO(what);
    const std::size_t n = plan.ms.size();
    const std::size_t window = plan.window == 0 ? n : plan.window;
    std::vector<int> start(n);
    std::vector<int> finish(n);
    std::vector<int> slots(window, 0);
    for (std::size_t i = 0; i < n; ++i) {
        auto slot = std::min_element(slots.begin(), slots.end());
        start[i] = *slot;
        finish[i] = start[i] + plan.ms[i];
        *slot = finish[i];
    }
    constexpr int never = std::numeric_limits<int>::max();
    int first_failure = never;
    for (std::size_t i = 0; i < n; ++i)
        if (plan.fails[i])
            first_failure = std::min(first_failure, finish[i]);
    const bool settled = plan.kind == round_kind::settled;
    const int all_done = *std::max_element(finish.begin(), finish.end());
    const int end = settled || first_failure == never ? all_done : first_failure;
    int done = end;
    if (plan.kind == round_kind::timeout_gather)
        done = std::min(end, plan.limit);

    // What the round may end with, without a cancel and with one.
    const bool failing = !settled && first_failure != never;
    std::vector<ending> allowed;
    if (plan.kind != round_kind::timeout_gather || end <= plan.limit)
        allowed.push_back(failing ? ending::error : ending::values);
    if (plan.kind == round_kind::timeout_gather && plan.limit <= end)
        allowed.push_back(ending::timeout);
    int cutoff = done; // no child starts after this
    if (plan.cancel_at >= 0) {
        if (plan.cancel_at < done)
            allowed.clear();
        if (plan.cancel_at <= done)
            allowed.push_back(ending::cancelled);
        cutoff = std::min(cutoff, plan.cancel_at);
    }
    CHECK(r.other.empty());
    CHECK(std::find(allowed.begin(), allowed.end(), r.how) != allowed.end());

    if (r.how == ending::error) {
        const auto i = static_cast<std::size_t>(r.error_index);
        REQUIRE(i < n);
        CHECK(plan.fails[i]);
        CHECK(finish[i] == first_failure);
    }
    if (r.how == ending::values && settled) {
        REQUIRE(r.outcomes.size() == n);
        for (std::size_t i = 0; i < n; ++i) {
            if (plan.fails[i]) {
                CHECK(r.outcomes[i].has_error());
            } else {
                REQUIRE(r.outcomes[i].has_value());
                CHECK(r.outcomes[i].value() == static_cast<int>(i) * 10);
            }
        }
    } else if (r.how == ending::values && plan.kind != round_kind::group) {
        REQUIRE(r.values.size() == n);
        for (std::size_t i = 0; i < n; ++i)
            CHECK(r.values[i] == static_cast<int>(i) * 10);
    }

    CHECK(k.running == 0);
    CHECK(k.peak <= static_cast<int>(window));
    for (std::size_t i = 0; i < n; ++i) {
        if (start[i] < cutoff)
            CHECK(k.started[i] == 1); // its turn came before the round ended
        if (start[i] > cutoff)
            CHECK(k.started[i] == 0); // never started after a failure, deadline or cancel
    }
    CHECK(counted::alive == 0); // every child's frame was destroyed
}

task<> stress(std::uint32_t seed, int rounds) {
    std::mt19937 rng{seed};
    for (int round = 0; round < rounds; ++round) {
        const round_plan plan = make_plan(rng);
        counted::reset();
        round_counts k;
        k.started.assign(plan.ms.size(), 0);
        round_result r;
        join_handle<> h = corio::spawn(stress_round(plan, k, r));
        join_handle<> canceller;
        if (plan.cancel_at >= 0)
            canceller = corio::spawn(cancel_after(h, plan.cancel_at));
        co_await h;
        if (plan.cancel_at >= 0) {
            canceller.cancel();
            try {
                co_await canceller;
            } catch (const cancelled_error&) {
            }
        }
        check_round(plan, k, r, "round " + std::to_string(round) + ": " + describe(plan));
    }
}

std::uint32_t stress_seed() {
    if (const char* s = std::getenv("CORIO_STRESS_SEED"))
        return static_cast<std::uint32_t>(std::strtoul(s, nullptr, 10));
    return std::random_device{}();
}

} // namespace

TEST_CASE("stress: 1000 random rounds of gather, timeout and task_group leave no frame behind",
          "[stress][gather][timeout][task_group]") {
    const std::uint32_t seed = stress_seed();
    INFO("seed " << seed << " (rerun with CORIO_STRESS_SEED=" << seed << ")");
    corio::manual_clock clock;
    corio::test::run(stress(seed, 1000), {.clock = &clock});
    CHECK(counted::alive == 0);
}

namespace {
task<> fails_while_unwinding() {
    try {
        co_await corio::sleep_for(1h);
    } catch (const cancelled_error&) {
    }
    throw std::runtime_error("failed while unwinding");
}
task<> destroys_group_unjoined() {
    task_group g;
    g.spawn(fails_while_unwinding());
    co_await corio::yield_now(); // the child now sleeps; the group goes out of scope unjoined
}
} // namespace

TEST_CASE("task_group: a failure of a child of a group destroyed unjoined reaches the handler",
          "[task_group][error]") {
    corio::event_loop loop;
    std::vector<std::string> reports;
    loop.set_exception_handler([&reports](std::exception_ptr e) {
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& ex) {
            reports.emplace_back(ex.what());
        }
    });
    loop.run(destroys_group_unjoined());
    loop.cancel_and_drain();
    REQUIRE(reports.size() == 1);
    CHECK(reports[0] == "failed while unwinding");
}

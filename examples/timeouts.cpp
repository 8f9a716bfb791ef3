// Timeouts and failures in corio, each shown by what it prints:
//   1. a slow call under corio::timeout (asyncio.wait_for / asyncio.timeout): the call is
//      cancelled, unwinds, and the timeout throws corio::timeout_error; a fast call gets through;
//   2. a gather with one failing child (asyncio.gather): the siblings are cancelled and awaited,
//      then the gather rethrows the child's error;
//   3. a task_group (asyncio.TaskGroup): the first failure cancels the other children, and
//      join() rethrows it once all of them have unwound.
#include <corio/corio.hpp>

#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <tuple>

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {

clock_type::time_point started_at;

long long elapsed_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - started_at)
        .count();
}

/// Counts the children that were cancelled; lives in the frame that awaits them all.
struct tally {
    int finished = 0;
    int cancelled = 0;
};

/// A query that takes `how_long`; says so when it is cancelled half-way.
corio::task<int> query(const char* name, std::chrono::milliseconds how_long, tally& t) {
    try {
        co_await corio::sleep_for(how_long);
    } catch (const corio::cancelled_error&) {
        ++t.cancelled;
        std::printf("  [%4lld ms] %s: cancelled, cleaning up\n", elapsed_ms(), name);
        throw; // let the cancellation end the task
    }
    ++t.finished;
    std::printf("  [%4lld ms] %s: done\n", elapsed_ms(), name);
    co_return 42;
}

/// A call that fails after `after`.
corio::task<int> failing(const char* name, std::chrono::milliseconds after) {
    co_await corio::sleep_for(after);
    std::printf("  [%4lld ms] %s: failing\n", elapsed_ms(), name);
    throw std::runtime_error(std::string(name) + " failed: connection reset");
}

/// `task<>` children for the task group.
corio::task<> group_child(const char* name, std::chrono::milliseconds how_long, tally& t) {
    const int result = co_await query(name, how_long, t);
    (void)result;
}
corio::task<> group_failing(const char* name, std::chrono::milliseconds after) {
    const int result = co_await failing(name, after);
    (void)result;
}

corio::task<bool> slow_call_times_out() {
    std::printf("1. timeout(100 ms, a 2 s query):\n");
    tally t;
    started_at = clock_type::now();
    auto guarded = corio::timeout(100ms, query("slow query", 2s, t));
    try {
        const int value = co_await guarded;
        std::printf("  unexpected value %d\n", value);
        co_return false;
    } catch (const corio::timeout_error& e) {
        std::printf("  [%4lld ms] caught corio::timeout_error: %s\n", elapsed_ms(), e.what());
    }
    std::printf("   timeout(100 ms, a 20 ms query):\n");
    started_at = clock_type::now();
    auto quick = corio::timeout(100ms, query("quick query", 20ms, t));
    const int value = co_await quick;
    std::printf("  [%4lld ms] got %d in time\n", elapsed_ms(), value);
    co_return t.cancelled == 1 && t.finished == 1 && value == 42;
}

corio::task<bool> gather_with_a_failure() {
    std::printf("2. gather(query a 300 ms, query b 300 ms, c fails at 50 ms):\n");
    tally t;
    started_at = clock_type::now();
    auto all = corio::gather(query("a", 300ms, t), query("b", 300ms, t), failing("c", 50ms));
    try {
        std::tuple<int, int, int> values = co_await all;
        std::printf("  unexpected values %d %d %d\n", std::get<0>(values), std::get<1>(values),
                    std::get<2>(values));
        co_return false;
    } catch (const std::runtime_error& e) {
        std::printf("  [%4lld ms] gather rethrew \"%s\" after cancelling %d siblings "
                    "(%d finished)\n",
                    elapsed_ms(), e.what(), t.cancelled, t.finished);
    }
    co_return t.cancelled == 2 && t.finished == 0;
}

corio::task<bool> task_group_first_failure() {
    std::printf("3. task_group: children of 100, 200, 300 ms and one failing at 150 ms:\n");
    tally t;
    started_at = clock_type::now();
    corio::task_group group;
    group.spawn(group_child("child 100 ms", 100ms, t));
    group.spawn(group_child("child 200 ms", 200ms, t));
    group.spawn(group_child("child 300 ms", 300ms, t));
    group.spawn(group_failing("child failing at 150 ms", 150ms));
    try {
        co_await group.join();
        std::printf("  unexpected: join() returned\n");
        co_return false;
    } catch (const std::runtime_error& e) {
        std::printf("  [%4lld ms] join() rethrew \"%s\": %d child finished first, %d cancelled\n",
                    elapsed_ms(), e.what(), t.finished, t.cancelled);
    }
    co_return t.finished == 1 && t.cancelled == 2 && group.running() == 0;
}

corio::task<int> amain() {
    const bool timed_out = co_await slow_call_times_out();
    const bool gathered = co_await gather_with_a_failure();
    const bool grouped = co_await task_group_first_failure();
    const bool ok = timed_out && gathered && grouped;
    std::printf("%s\n", ok ? "all as expected" : "UNEXPECTED RESULT");
    co_return ok ? 0 : 1;
}

} // namespace

int main() { return corio::run(amain()); }

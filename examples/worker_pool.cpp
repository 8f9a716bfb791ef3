// The asyncio guide's worker pool in corio: a queue of at most 100 items, 5 workers, 1,000 items.
// The producer waits whenever the queue is full (back-pressure), `co_await q.join()` waits until
// every item has been marked `task_done()`, then the workers, parked in `get()`, are cancelled
// and gathered with `gather_settled` (asyncio's `gather(*tasks, return_exceptions=True)`): each
// one ends with `corio::cancelled_error`.
//
// With `--threads N` the same pool runs on N loops of a `corio::runtime`, one thread each, and
// the items are CPU-bound (each counts the primes among 1,000 numbers), so more loops get more
// done. The queue is a `corio::channel` (a `bounded_queue` belongs to one loop; a channel is
// shared by all of them) and one worker runs on each loop. A channel has no `task_done()`: once
// every item is sent the producer closes it, each worker drains what is left and ends, and
// awaiting the workers is the join. It prints how many items each loop handled, and the totals.
// Usage: worker_pool [--threads N]   (1, the default: the single-loop pool; 0: a loop per CPU)
#include <corio/corio.hpp>

#include <time.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <exception>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

using namespace std::chrono_literals;

constexpr int item_count = 1'000;
constexpr int worker_count = 5;
constexpr std::ptrdiff_t queue_capacity = 100;
constexpr auto work_per_item = 1ms; // a stand-in for an I/O call per item

/// What one worker did; lives in `amain`'s frame, which outlives every worker.
struct worker_stats {
    int handled = 0;
    long long sum = 0;
};

/// asyncio: `while True: item = await q.get(); try: ... finally: q.task_done()`.
corio::task<> worker(corio::bounded_queue<int>& q, worker_stats& stats) {
    for (;;) {
        const int item = co_await q.get(); // parks here when the queue is empty
        try {
            co_await corio::sleep_for(work_per_item);
            stats.sum += item;
            ++stats.handled;
        } catch (...) {
            q.task_done(); // the `finally`: a failed item is still done
            throw;
        }
        q.task_done();
    }
}

/// Awaits a spawned task, so that its handle can go into `gather_settled` (which takes tasks).
corio::task<> joined(corio::join_handle<> handle) { co_await handle; }

/// How a worker ended, from its outcome.
const char* describe(const corio::outcome<void>& result) {
    if (!result.has_error())
        return "returned (unexpected: workers loop forever)";
    try {
        std::rethrow_exception(result.error());
    } catch (const corio::cancelled_error&) {
        return "corio::cancelled_error (cancelled while waiting in q.get())";
    } catch (...) {
        return "another exception (unexpected)";
    }
}

corio::task<int> amain() {
    corio::bounded_queue<int> q{queue_capacity}; // asyncio.Queue(maxsize=100)
    std::vector<worker_stats> stats(worker_count);
    std::vector<corio::join_handle<>> workers;
    for (worker_stats& s : stats)
        workers.push_back(corio::spawn(worker(q, s))); // asyncio.create_task(worker(q))

    const auto start = std::chrono::steady_clock::now();
    int waits_on_full = 0;
    for (int i = 0; i < item_count; ++i) {
        if (q.full())
            ++waits_on_full; // this put waits until a worker takes an item
        co_await q.put(i);
    }
    co_await q.join(); // every item taken and marked task_done()
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;

    std::printf("%d items through a queue of %zu by %d workers in %.3f s: %.0f items/s\n",
                item_count, q.capacity(), worker_count, took.count(), item_count / took.count());
    std::printf("(each item takes %lld ms, so %d workers top out at %lld items/s)\n",
                static_cast<long long>(work_per_item.count()), worker_count,
                worker_count * 1000 / static_cast<long long>(work_per_item.count()));
    std::printf("the producer found the queue full %d times and waited (back-pressure)\n",
                waits_on_full);

    for (corio::join_handle<>& w : workers)
        w.cancel(); // asyncio: for t in tasks: t.cancel()
    std::vector<corio::task<>> joins;
    for (corio::join_handle<>& w : workers)
        joins.push_back(joined(std::move(w)));
    std::vector<corio::outcome<void>> ended = co_await corio::gather_settled(std::move(joins));

    int handled = 0;
    long long sum = 0;
    bool all_cancelled = true;
    for (std::size_t i = 0; i < ended.size(); ++i) {
        std::printf("worker %zu: handled %4d items, ended with %s\n", i, stats[i].handled,
                    describe(ended[i]));
        handled += stats[i].handled;
        sum += stats[i].sum;
        all_cancelled = all_cancelled && ended[i].has_error();
    }
    const long long expected_sum = static_cast<long long>(item_count) * (item_count - 1) / 2;
    std::printf("handled %d of %d items, sum %lld (expected %lld), queue empty: %s\n", handled,
                item_count, sum, expected_sum, q.empty() ? "yes" : "no");
    const bool ok = handled == item_count && sum == expected_sum && q.empty() && all_cancelled;
    co_return ok ? 0 : 1;
}

// ---------------------------------------------------------------------------------------------
// --threads N: the same pool on every loop, with CPU-bound items.

constexpr int numbers_per_item = 1'000;        // item i: the numbers [1000 i, 1000 i + 1000)
constexpr int primes_below_a_million = 78'498; // what the 1,000 items count together
static_assert(item_count * numbers_per_item == 1'000'000);

/// The primes in [from, to), by trial division: work for the CPU alone, nothing to wait for.
int count_primes(int from, int to) {
    int count = 0;
    for (int n = std::max(from, 2); n < to; ++n) {
        bool prime = true;
        for (int d = 2; d * d <= n && prime; ++d)
            prime = n % d != 0;
        count += prime ? 1 : 0;
    }
    return count;
}

/// What the worker of one loop did; it returns it when it ends.
struct loop_stats {
    int handled = 0;
    long long sum = 0; // of the item numbers: each item handled exactly once makes it add up
    int primes = 0;
    double cpu_seconds = 0; // of its thread, counting primes
};

/// CPU time of the calling thread so far.
double thread_cpu_seconds() {
    timespec t{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) / 1e9;
}

/// The worker of one loop: asyncio's `while True: item = await q.get()`, until the channel is
/// closed and drained. Each item goes to whichever worker asks first.
corio::task<loop_stats> channel_worker(corio::channel<int>& q) {
    loop_stats stats;
    for (;;) {
        int item = 0;
        try {
            item = co_await q.receive(); // parks here when the channel is empty
        } catch (const corio::queue_closed&) {
            break; // closed, and every item taken
        }
        const double began = thread_cpu_seconds();
        stats.primes += count_primes(item * numbers_per_item, (item + 1) * numbers_per_item);
        stats.cpu_seconds += thread_cpu_seconds() - began;
        stats.sum += item;
        ++stats.handled;
    }
    co_return stats;
}

/// The pool on every loop of `rt`; runs on loop 0, which also has a worker.
corio::task<int> amain_on_loops(corio::runtime& rt) {
    corio::channel<int> q{queue_capacity}; // asyncio.Queue(maxsize=100), shared by every loop
    std::vector<corio::join_handle<loop_stats>> workers;
    for (std::size_t i = 0; i < rt.size(); ++i)
        workers.push_back(corio::spawn_on(rt.loop(i), channel_worker(q))); // one on each loop

    const auto start = std::chrono::steady_clock::now();
    int waits_on_full = 0;
    for (int i = 0; i < item_count; ++i) {
        if (q.size() == q.capacity())
            ++waits_on_full; // (a snapshot: the other loops take items meanwhile)
        co_await q.send(i);
    }
    q.close(); // no more items: each worker drains what is left, then ends
    std::vector<loop_stats> stats;
    for (corio::join_handle<loop_stats>& w : workers)
        stats.push_back(co_await w); // the join: every item taken and handled
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;

    std::printf("%d items through a channel of %zu by %zu workers, one on each of %zu loops, in "
                "%.3f s: %.0f items/s\n",
                item_count, q.capacity(), workers.size(), rt.size(), took.count(),
                item_count / took.count());
    std::printf("(each item counts the primes among %d numbers: CPU work, which more loops share)"
                "\n",
                numbers_per_item);
    std::printf("the producer found the channel full %d times and waited (back-pressure)\n",
                waits_on_full);

    int handled = 0;
    long long sum = 0;
    int primes = 0;
    double cpu = 0;
    for (std::size_t i = 0; i < stats.size(); ++i) {
        std::printf("loop %zu: handled %4d items, %5d primes, CPU %.3f s\n", i, stats[i].handled,
                    stats[i].primes, stats[i].cpu_seconds);
        handled += stats[i].handled;
        sum += stats[i].sum;
        primes += stats[i].primes;
        cpu += stats[i].cpu_seconds;
    }
    const long long expected_sum = static_cast<long long>(item_count) * (item_count - 1) / 2;
    std::printf("handled %d of %d items, sum %lld (expected %lld), %d primes below %d (expected "
                "%d), channel empty: %s\n",
                handled, item_count, sum, expected_sum, primes, item_count * numbers_per_item,
                primes_below_a_million, q.size() == 0 ? "yes" : "no");
    std::printf("%.3f s of CPU counting primes in %.3f s: %.2f cores at work on average\n", cpu,
                took.count(), cpu / took.count());
    const bool ok = handled == item_count && sum == expected_sum &&
                    primes == primes_below_a_million && q.size() == 0;
    co_return ok ? 0 : 1;
}

/// Reads a whole decimal number into `out`; false when `text` is not one.
bool parse_count(std::string_view text, std::size_t& out) {
    const char* end = text.data() + text.size();
    const auto [stop, error] = std::from_chars(text.data(), end, out);
    return stop == end && error == std::errc{};
}

int main(int argc, char** argv) {
    std::size_t threads = 1;
    for (int i = 1; i < argc; ++i) {
        if (std::string_view(argv[i]) != "--threads" || i + 1 == argc ||
            !parse_count(argv[++i], threads)) {
            std::fprintf(stderr, "usage: worker_pool [--threads N]   (1: one loop, the default; "
                                 "0: one loop per CPU)\n");
            return 2;
        }
    }
    if (threads == 1)
        return corio::run(amain());
    corio::runtime rt{corio::runtime_options{.threads = threads}};
    return rt.run(amain_on_loops(rt));
}

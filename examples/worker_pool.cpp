// The asyncio guide's worker pool in corio: a queue of at most 100 items, 5 workers, 1,000 items.
// The producer waits whenever the queue is full (back-pressure), `co_await q.join()` waits until
// every item has been marked `task_done()`, then the workers, parked in `get()`, are cancelled
// and gathered with `gather_settled` (asyncio's `gather(*tasks, return_exceptions=True)`): each
// one ends with `corio::cancelled_error`.
#include <corio/corio.hpp>

#include <chrono>
#include <cstddef>
#include <cstdio>
#include <exception>
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

int main() { return corio::run(amain()); }

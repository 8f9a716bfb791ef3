// SPDX-License-Identifier: MIT
//
// corio's concurrency toolkit (issue 3), each reporting items_per_second and per_op:
//   BM_corio_gather/window:0        co_await gather(1,000 empty tasks) (ns per task)
//   BM_corio_gather/window:20       the same with {.max_concurrency = 20}
//   BM_corio_sem_uncontended        co_await sem.acquire() + sem.release() (ns per pair)
//   BM_corio_sem_contended          100 tasks on semaphore{20}, each holding its permit across
//                                   one yield_now (ns per acquire)
//   BM_corio_mutex_handoff/tasks:N  N tasks taking turns on one mutex, each holding it across
//                                   one yield_now, so every lock is a FIFO hand-off (ns per lock)
//   BM_corio_queue/producers:P/consumers:C
//                                   bounded_queue<int>(100), P producers and C consumers, 10,000
//                                   items per round (ns per item, items/s)
//   BM_corio_rate_try_ok/manual_clock:0   rate_limiter::try_acquire that always succeeds (a
//                                   huge rate); manual_clock:1 the same on a manual clock, i.e.
//                                   without reading the steady clock
//   BM_corio_rate_try_full/manual_clock:M try_acquire on a full window (always fails)
//   BM_corio_rate_acquire/rate:R    10 tasks acquiring from a rate_limiter{R per 1 ms} on a loop
//                                   with a manual clock, so waiting is virtual: ns per acquire,
//                                   waits, timer and wake-ups included
//   BM_corio_await_ready_plain      co_await of a ready task<int> (the baseline of the next one)
//   BM_corio_timeout_ready          co_await timeout(1s, the same ready task): a timeout that
//                                   does not fire; the overhead is the difference of the two

#include "bench_util.hpp"

#include <benchmark/benchmark.h>
#include <corio/corio.hpp>
#include <corio/gather.hpp>
#include <corio/timeout.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace {

using corio_bench::set_ops;
using namespace std::chrono_literals;

corio::task<void> empty_task() { co_return; }
corio::task<int> ready_value(int v) { co_return v; }

/// Joins every handle (in order).
corio::task<void> join_all(std::vector<corio::join_handle<void>>* handles) {
    for (corio::join_handle<void>& h : *handles)
        co_await h;
    handles->clear();
}

// --- 1. gather of 1,000 empty tasks, plain and windowed ----------------------------------------

constexpr int gather_width = 1000;

corio::task<void> gather_loop(benchmark::State& state, int window) {
    for (auto _ : state) {
        std::vector<corio::task<void>> tasks;
        tasks.reserve(gather_width);
        for (int i = 0; i < gather_width; ++i)
            tasks.push_back(empty_task());
        if (window == 0)
            co_await corio::gather(std::move(tasks));
        else
            co_await corio::gather(std::move(tasks),
                                   {.max_concurrency = static_cast<std::size_t>(window)});
    }
}

void BM_corio_gather(benchmark::State& state) {
    corio::run(gather_loop(state, static_cast<int>(state.range(0))));
    set_ops(state, state.iterations() * gather_width);
}
BENCHMARK(BM_corio_gather)->ArgName("window")->Arg(0)->Arg(20)->UseRealTime();

// --- 2. semaphore: uncontended, and 100 tasks on 20 permits ---------------------------------

corio::task<void> sem_uncontended_loop(benchmark::State& state) {
    corio::semaphore sem{20};
    for (auto _ : state) {
        co_await sem.acquire();
        sem.release();
    }
}

void BM_corio_sem_uncontended(benchmark::State& state) {
    corio::run(sem_uncontended_loop(state));
    set_ops(state, state.iterations());
}
BENCHMARK(BM_corio_sem_uncontended)->UseRealTime();

constexpr int sem_tasks = 100;
constexpr int sem_permits = 20;
constexpr int sem_rounds_per_task = 100; // one benchmark iteration: 10,000 acquires

corio::task<void> sem_worker(corio::semaphore* sem, int rounds) {
    for (int i = 0; i < rounds; ++i) {
        co_await sem->acquire();
        co_await corio::yield_now(); // hold the permit across a suspension: others queue up
        sem->release();
    }
}

corio::task<void> sem_round(corio::semaphore* sem, std::vector<corio::join_handle<void>>* h) {
    for (int i = 0; i < sem_tasks; ++i)
        h->push_back(corio::spawn(sem_worker(sem, sem_rounds_per_task)));
    co_await join_all(h);
}

void BM_corio_sem_contended(benchmark::State& state) {
    corio::event_loop loop;
    corio::semaphore sem{sem_permits};
    std::vector<corio::join_handle<void>> handles;
    handles.reserve(sem_tasks);
    for (auto _ : state)
        loop.run(sem_round(&sem, &handles));
    set_ops(state, state.iterations() * sem_tasks * sem_rounds_per_task);
}
BENCHMARK(BM_corio_sem_contended)->UseRealTime();

// --- 3. mutex hand-off ------------------------------------------------------------------------

constexpr int mutex_locks_per_round = 10'000;

corio::task<void> mutex_worker(corio::mutex* m, int rounds) {
    for (int i = 0; i < rounds; ++i) {
        co_await m->lock();
        co_await corio::yield_now(); // hold it across a suspension: the others queue behind
        m->unlock();                 // hands it to the longest waiter
    }
}

corio::task<void> mutex_round(corio::mutex* m, int tasks,
                              std::vector<corio::join_handle<void>>* h) {
    for (int i = 0; i < tasks; ++i)
        h->push_back(corio::spawn(mutex_worker(m, mutex_locks_per_round / tasks)));
    co_await join_all(h);
}

void BM_corio_mutex_handoff(benchmark::State& state) {
    const int tasks = static_cast<int>(state.range(0));
    corio::event_loop loop;
    corio::mutex m;
    std::vector<corio::join_handle<void>> handles;
    handles.reserve(static_cast<std::size_t>(tasks));
    for (auto _ : state)
        loop.run(mutex_round(&m, tasks, &handles));
    set_ops(state, state.iterations() * (mutex_locks_per_round / tasks) * tasks);
}
BENCHMARK(BM_corio_mutex_handoff)->ArgName("tasks")->Arg(2)->Arg(10)->UseRealTime();

// --- 4. bounded_queue: 5 producers x 5 consumers, and 1 x 1, capacity 100 ---------------------

constexpr int queue_capacity = 100;
constexpr int queue_items_per_round = 10'000;

corio::task<void> producer(corio::bounded_queue<int>* q, int count) {
    for (int i = 0; i < count; ++i)
        co_await q->put(i);
}

corio::task<void> consumer(corio::bounded_queue<int>* q, int count, std::int64_t* sum) {
    std::int64_t local = 0;
    for (int i = 0; i < count; ++i) {
        int v = co_await q->get();
        local += v;
    }
    *sum += local;
}

corio::task<void> queue_round(corio::bounded_queue<int>* q, int producers, int consumers,
                              std::int64_t* sum, std::vector<corio::join_handle<void>>* h) {
    for (int i = 0; i < producers; ++i)
        h->push_back(corio::spawn(producer(q, queue_items_per_round / producers)));
    for (int i = 0; i < consumers; ++i)
        h->push_back(corio::spawn(consumer(q, queue_items_per_round / consumers, sum)));
    co_await join_all(h);
}

void BM_corio_queue(benchmark::State& state) {
    const int producers = static_cast<int>(state.range(0));
    const int consumers = static_cast<int>(state.range(1));
    corio::event_loop loop;
    corio::bounded_queue<int> q{queue_capacity};
    std::int64_t sum = 0;
    std::vector<corio::join_handle<void>> handles;
    handles.reserve(static_cast<std::size_t>(producers + consumers));
    for (auto _ : state)
        loop.run(queue_round(&q, producers, consumers, &sum, &handles));
    benchmark::DoNotOptimize(sum);
    set_ops(state, state.iterations() * queue_items_per_round);
}
BENCHMARK(BM_corio_queue)
    ->ArgNames({"producers", "consumers"})
    ->Args({5, 5})
    ->Args({1, 1})
    ->UseRealTime();

// --- 5. rate_limiter ---------------------------------------------------------------------------

corio::task<void> rate_try_loop(benchmark::State& state, corio::rate_limiter* lim,
                                corio::manual_clock* clock, std::int64_t* admitted) {
    std::int64_t ok = 0;
    for (auto _ : state) {
        if (clock != nullptr)
            clock->advance(1ns); // manual time moves only when told to
        bool got = lim->try_acquire();
        ok += got ? 1 : 0;
    }
    *admitted = ok;
    co_return;
}

// manual_clock:0 is the real thing: each try_acquire reads the loop's steady clock.
// manual_clock:1 runs the loop on a manual clock advanced by 1 ns per call: the limiter's own
// logic without the clock read (what a cached loop time would cost).

// A "huge rate": 65,536 per nanosecond. The ring of stamps wraps after 65,536 acquisitions;
// from then on its oldest stamp is 65,536 acquisitions (far more than 1 ns) old, so every
// try_acquire succeeds.
void BM_corio_rate_try_ok(benchmark::State& state) {
    corio::manual_clock clock;
    corio::manual_clock* manual = state.range(0) != 0 ? &clock : nullptr;
    corio::rate_limiter lim{1 << 16, 1ns};
    std::int64_t admitted = 0;
    corio::run(rate_try_loop(state, &lim, manual, &admitted), {.clock = manual});
    if (admitted != state.iterations())
        state.SkipWithError("try_acquire failed on a huge rate");
    set_ops(state, state.iterations());
}
BENCHMARK(BM_corio_rate_try_ok)->ArgName("manual_clock")->Arg(0)->Arg(1)->UseRealTime();

// One slot per hour, taken before the loop: every try_acquire fails.
void BM_corio_rate_try_full(benchmark::State& state) {
    corio::manual_clock clock;
    corio::manual_clock* manual = state.range(0) != 0 ? &clock : nullptr;
    corio::rate_limiter lim{1, 1h};
    std::int64_t admitted = 0;
    {
        corio::event_loop loop{{.clock = manual}};
        if (!lim.try_acquire()) {
            state.SkipWithError("the first try_acquire failed");
            return;
        }
        loop.run(rate_try_loop(state, &lim, manual, &admitted));
    }
    if (admitted != 0)
        state.SkipWithError("try_acquire succeeded on a full window");
    set_ops(state, state.iterations());
}
BENCHMARK(BM_corio_rate_try_full)->ArgName("manual_clock")->Arg(0)->Arg(1)->UseRealTime();

constexpr int rate_tasks = 10;
constexpr int rate_acquires_per_task = 1'000; // one benchmark iteration: 10,000 acquires

corio::task<void> rate_worker(corio::rate_limiter* lim, int count) {
    for (int i = 0; i < count; ++i)
        co_await lim->acquire();
}

corio::task<void> rate_round(corio::rate_limiter* lim, std::vector<corio::join_handle<void>>* h) {
    for (int i = 0; i < rate_tasks; ++i)
        h->push_back(corio::spawn(rate_worker(lim, rate_acquires_per_task)));
    co_await join_all(h);
}

// Rate R per 1 ms on a manual clock: the loop, idle but for the limiter's timer, jumps the
// clock to the timer's deadline, so the waits cost no real time. R=100: one timer per 100
// acquisitions (each window admits the 10 waiters, then fills up again); R=1: every
// acquisition waits for its own timer.
void BM_corio_rate_acquire(benchmark::State& state) {
    corio::manual_clock clock;
    corio::event_loop loop{{.clock = &clock}};
    corio::rate_limiter lim{static_cast<std::ptrdiff_t>(state.range(0)), 1ms};
    std::vector<corio::join_handle<void>> handles;
    handles.reserve(rate_tasks);
    const auto start = clock.now();
    for (auto _ : state)
        loop.run(rate_round(&lim, &handles));
    const std::int64_t acquires = state.iterations() * rate_tasks * rate_acquires_per_task;
    // Sanity: virtual time advanced by one period per R acquisitions.
    state.counters["virtual_ms"] =
        std::chrono::duration<double, std::milli>(clock.now() - start).count();
    set_ops(state, acquires);
}
BENCHMARK(BM_corio_rate_acquire)->ArgName("rate")->Arg(100)->Arg(1)->UseRealTime();

// --- 6. timeout around a ready task --------------------------------------------------------------

corio::task<void> await_plain_loop(benchmark::State& state) {
    int sum = 0;
    for (auto _ : state) {
        int v = co_await ready_value(1);
        sum += v;
    }
    benchmark::DoNotOptimize(sum);
}

void BM_corio_await_ready_plain(benchmark::State& state) {
    corio::run(await_plain_loop(state));
    set_ops(state, state.iterations());
}
BENCHMARK(BM_corio_await_ready_plain)->UseRealTime();

corio::task<void> timeout_loop(benchmark::State& state) {
    int sum = 0;
    for (auto _ : state) {
        int v = co_await corio::timeout(1s, ready_value(1));
        sum += v;
    }
    benchmark::DoNotOptimize(sum);
}

void BM_corio_timeout_ready(benchmark::State& state) {
    corio::run(timeout_loop(state));
    set_ops(state, state.iterations());
}
BENCHMARK(BM_corio_timeout_ready)->UseRealTime();

} // namespace

BENCHMARK_MAIN();

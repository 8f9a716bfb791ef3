// SPDX-License-Identifier: MIT
//
// corio's core primitives, each reporting items_per_second and per_op (time per operation):
//   BM_corio_await_ready     co_await of a task<int> that co_returns at once (ns per await)
//   BM_corio_spawn_join      spawn of an empty task + co_await of its join_handle
//   BM_corio_yield_pingpong  two tasks alternating through yield_now (ns per switch)
//   BM_corio_sleep0          co_await sleep_for(0): one round trip through the timer path
//   BM_corio_nop/K           co_await io::nop() in K concurrent tasks (K=1: one NOP per
//                            io_uring_enter; K=64: the loop submits batches of 64)
//   BM_raw_nop/K/flags       the same NOPs with plain liburing and no runtime: prep K, submit
//                            and wait for K, reap with io_uring_for_each_cqe + cq_advance;
//                            flags=1 uses the setup flags corio's ring got, flags=0 none
//   BM_corio_post            loop.post() from another thread: callbacks executed per second
// The 1M-sleepers figure is a separate process (sleepers.cpp) so its peak RSS is clean.

#include "bench_util.hpp"

#include <benchmark/benchmark.h>
#include <corio/corio.hpp>

#include <liburing.h>

#include <atomic>
#include <chrono>
#include <coroutine>
#include <cstdint>
#include <semaphore>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

namespace {

using corio_bench::set_ops;

// --- 1. await of a ready task ----------------------------------------------------------------

corio::task<int> ready_value(int v) { co_return v; }

corio::task<void> await_ready_loop(benchmark::State& state) {
    int sum = 0;
    for (auto _ : state) {
        int v = co_await ready_value(1);
        sum += v;
    }
    benchmark::DoNotOptimize(sum);
}

void BM_corio_await_ready(benchmark::State& state) {
    corio::run(await_ready_loop(state));
    set_ops(state, state.iterations());
}
BENCHMARK(BM_corio_await_ready)->UseRealTime();

// --- 2. spawn + join of an empty task ------------------------------------------------------------

corio::task<void> empty_task() { co_return; }

corio::task<void> spawn_join_loop(benchmark::State& state) {
    for (auto _ : state) {
        corio::join_handle<void> h = corio::spawn(empty_task());
        co_await h;
    }
}

void BM_corio_spawn_join(benchmark::State& state) {
    corio::run(spawn_join_loop(state));
    set_ops(state, state.iterations());
}
BENCHMARK(BM_corio_spawn_join)->UseRealTime();

// --- 3. yield_now ping-pong between two tasks ------------------------------------------------

corio::task<void> yielder(const bool* stop, std::uint64_t* switches) {
    while (!*stop) {
        co_await corio::yield_now();
        ++*switches;
    }
}

corio::task<void> pingpong_loop(benchmark::State& state, std::uint64_t* total) {
    bool stop = false;
    std::uint64_t other = 0;
    corio::join_handle<void> peer = corio::spawn(yielder(&stop, &other));
    co_await corio::yield_now(); // let the peer start: from here on the two alternate
    std::uint64_t mine = 0;
    for (auto _ : state) {
        co_await corio::yield_now();
        ++mine;
    }
    stop = true;
    co_await peer;
    *total = mine + other;
}

void BM_corio_yield_pingpong(benchmark::State& state) {
    std::uint64_t switches = 0;
    corio::run(pingpong_loop(state, &switches));
    set_ops(state, static_cast<std::int64_t>(switches));
}
BENCHMARK(BM_corio_yield_pingpong)->UseRealTime();

// --- 4. sleep_for(0) round trip ---------------------------------------------------------------

corio::task<void> sleep0_loop(benchmark::State& state) {
    for (auto _ : state)
        co_await corio::sleep_for(std::chrono::nanoseconds(0));
}

void BM_corio_sleep0(benchmark::State& state) {
    corio::run(sleep0_loop(state));
    set_ops(state, state.iterations());
}
BENCHMARK(BM_corio_sleep0)->UseRealTime();

// --- 5. NOP through the loop, single and batched, vs raw liburing ----------------------------

// One benchmark iteration = `per_task` NOPs in each of K concurrent tasks on a reused loop.
constexpr int nops_per_task = 256;

corio::task<void> nop_worker(int count) {
    for (int i = 0; i < count; ++i) {
        int r = co_await corio::io::nop();
        benchmark::DoNotOptimize(r);
    }
}

corio::task<void> nop_round(int tasks, int per_task) {
    if (tasks == 1) { // no spawn: the measured task itself does the NOPs
        co_await nop_worker(per_task);
        co_return;
    }
    std::vector<corio::join_handle<void>> workers;
    workers.reserve(static_cast<std::size_t>(tasks));
    for (int i = 0; i < tasks; ++i)
        workers.push_back(corio::spawn(nop_worker(per_task)));
    for (corio::join_handle<void>& w : workers)
        co_await w;
}

void BM_corio_nop(benchmark::State& state) {
    const int tasks = static_cast<int>(state.range(0));
    corio::event_loop loop;
    for (auto _ : state)
        loop.run(nop_round(tasks, nops_per_task));
    set_ops(state, state.iterations() * tasks * nops_per_task);
}
BENCHMARK(BM_corio_nop)->ArgName("K")->Arg(1)->Arg(64)->UseRealTime();

/// The setup flags corio's ring gets on this kernel (so the raw ring can match them).
unsigned corio_ring_flags() {
    static const unsigned flags = [] {
        corio::event_loop loop;
        return loop.io_ring().setup_flags();
    }();
    return flags;
}

void BM_raw_nop(benchmark::State& state) {
    const unsigned batch = static_cast<unsigned>(state.range(0));
    io_uring ring{};
    io_uring_params params{};
    if (state.range(1) != 0) { // as corio sets its ring up: same flags and CQ size
        params.flags = corio_ring_flags() | IORING_SETUP_CQSIZE;
        params.cq_entries = 16 * 1024;
    }
    if (const int rc = io_uring_queue_init_params(1024, &ring, &params); rc < 0) {
        state.SkipWithError(("io_uring_queue_init_params: " +
                             std::system_category().message(-rc)).c_str());
        return;
    }
    if (state.range(1) != 0)
        io_uring_register_ring_fd(&ring); // corio does this too
    std::uint64_t seen = 0;
    const std::int64_t rounds = nops_per_task; // same ops per iteration as BM_corio_nop
    for (auto _ : state) {
        for (std::int64_t r = 0; r < rounds; ++r) {
            for (unsigned i = 0; i < batch; ++i) {
                io_uring_sqe* sqe = io_uring_get_sqe(&ring);
                io_uring_prep_nop(sqe);
                io_uring_sqe_set_data64(sqe, i + 1);
            }
            io_uring_submit_and_wait(&ring, batch);
            unsigned head = 0;
            unsigned n = 0;
            io_uring_cqe* cqe = nullptr;
            io_uring_for_each_cqe(&ring, head, cqe) {
                seen += cqe->user_data + static_cast<std::uint64_t>(cqe->res);
                ++n;
            }
            io_uring_cq_advance(&ring, n);
        }
    }
    benchmark::DoNotOptimize(seen);
    io_uring_queue_exit(&ring);
    set_ops(state, state.iterations() * static_cast<std::int64_t>(batch) * rounds);
}
BENCHMARK(BM_raw_nop)->ArgNames({"K", "flags"})->ArgsProduct({{1, 64}, {1, 0}})->UseRealTime();

// --- 6. post() from another thread --------------------------------------------------------------

constexpr int posts_per_round = 100'000;

struct post_round {
    int executed = 0;
    std::coroutine_handle<> waiter;
};

corio::task<void> wait_round(post_round* round, std::binary_semaphore* go) {
    go->release(); // the producer starts posting now
    co_await corio_bench::park{&round->waiter};
}

void BM_corio_post(benchmark::State& state) {
    corio::event_loop loop;
    post_round round;
    std::binary_semaphore go{0};
    std::atomic<bool> quit{false};
    std::thread producer([&] {
        for (;;) {
            go.acquire();
            if (quit.load())
                return;
            for (int i = 0; i < posts_per_round; ++i) {
                loop.post([r = &round] {
                    if (++r->executed == posts_per_round)
                        corio::event_loop::current().schedule(r->waiter);
                });
            }
        }
    });
    for (auto _ : state) {
        round = post_round{};
        loop.run(wait_round(&round, &go));
    }
    quit.store(true);
    go.release();
    producer.join();
    set_ops(state, state.iterations() * posts_per_round);
}
BENCHMARK(BM_corio_post)->UseRealTime();

} // namespace

BENCHMARK_MAIN();

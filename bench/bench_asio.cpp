// SPDX-License-Identifier: MIT
//
// The reference: the same workloads as bench_core.cpp with Boost.Asio's C++20 coroutines
// (asio::awaitable, co_spawn, io_context with concurrency hint 1, i.e. one thread):
//   BM_asio_await_ready     co_await of an awaitable<int> that co_returns at once
//   BM_asio_spawn_join      co_await co_spawn(ex, empty(), use_awaitable): start a new
//                           coroutine "thread" and wait for it (Asio's idiom for spawn + join)
//   BM_asio_yield_pingpong  two coroutines alternating through co_await post(ex, use_awaitable)
//   BM_asio_timer0          one steady_timer, expires_after(0) + co_await async_wait, reused
//   BM_asio_post            asio::post(io_context, fn) from another thread
// There is no NOP: Asio's io_context runs on epoll here. Built only where CMake found Boost
// (CORIO_BENCH_HAVE_ASIO); otherwise this program registers no benchmark.

#include "bench_util.hpp"

#include <benchmark/benchmark.h>

#if CORIO_BENCH_HAVE_ASIO

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <optional>
#include <semaphore>
#include <thread>

namespace {

namespace asio = boost::asio;
using corio_bench::set_ops;

/// Runs `main` to completion on a one-thread io_context; rethrows what it throws.
template <class Awaitable>
void run_asio(Awaitable main) {
    asio::io_context io{1};
    std::exception_ptr error;
    asio::co_spawn(io, std::move(main), [&](std::exception_ptr e) { error = e; });
    io.run();
    if (error)
        std::rethrow_exception(error);
}

// --- 1. await of a ready awaitable -----------------------------------------------------------

asio::awaitable<int> ready_value(int v) { co_return v; }

asio::awaitable<void> await_ready_loop(benchmark::State& state) {
    int sum = 0;
    for (auto _ : state) {
        int v = co_await ready_value(1);
        sum += v;
    }
    benchmark::DoNotOptimize(sum);
}

void BM_asio_await_ready(benchmark::State& state) {
    run_asio(await_ready_loop(state));
    set_ops(state, state.iterations());
}
BENCHMARK(BM_asio_await_ready)->UseRealTime();

// --- 2. co_spawn + join of an empty awaitable ------------------------------------------------

asio::awaitable<void> empty_awaitable() { co_return; }

asio::awaitable<void> spawn_join_loop(benchmark::State& state) {
    auto ex = co_await asio::this_coro::executor;
    for (auto _ : state)
        co_await asio::co_spawn(ex, empty_awaitable(), asio::use_awaitable);
}

void BM_asio_spawn_join(benchmark::State& state) {
    run_asio(spawn_join_loop(state));
    set_ops(state, state.iterations());
}
BENCHMARK(BM_asio_spawn_join)->UseRealTime();

// --- 3. yield ping-pong through post -------------------------------------------------------------

asio::awaitable<void> yielder(const bool* stop, std::uint64_t* switches) {
    auto ex = co_await asio::this_coro::executor;
    while (!*stop) {
        co_await asio::post(ex, asio::use_awaitable);
        ++*switches;
    }
}

asio::awaitable<void> pingpong_loop(benchmark::State& state, std::uint64_t* total) {
    auto ex = co_await asio::this_coro::executor;
    bool stop = false;
    std::uint64_t other = 0;
    bool peer_done = false;
    asio::co_spawn(ex, yielder(&stop, &other), [&peer_done](std::exception_ptr) {
        peer_done = true;
    });
    co_await asio::post(ex, asio::use_awaitable); // let the peer start
    std::uint64_t mine = 0;
    for (auto _ : state) {
        co_await asio::post(ex, asio::use_awaitable);
        ++mine;
    }
    stop = true;
    while (!peer_done) // the peer notices `stop` at its next step; its frame refers to ours
        co_await asio::post(ex, asio::use_awaitable);
    *total = mine + other;
}

void BM_asio_yield_pingpong(benchmark::State& state) {
    std::uint64_t switches = 0;
    run_asio(pingpong_loop(state, &switches));
    set_ops(state, static_cast<std::int64_t>(switches));
}
BENCHMARK(BM_asio_yield_pingpong)->UseRealTime();

// --- 4. timer of 0 ------------------------------------------------------------------------------

asio::awaitable<void> timer0_loop(benchmark::State& state) {
    asio::steady_timer timer{co_await asio::this_coro::executor};
    for (auto _ : state) {
        timer.expires_after(std::chrono::nanoseconds(0));
        co_await timer.async_wait(asio::use_awaitable);
    }
}

void BM_asio_timer0(benchmark::State& state) {
    run_asio(timer0_loop(state));
    set_ops(state, state.iterations());
}
BENCHMARK(BM_asio_timer0)->UseRealTime();

// --- 6. post from another thread ---------------------------------------------------------------

constexpr int posts_per_round = 100'000;

void BM_asio_post(benchmark::State& state) {
    asio::io_context io{1};
    std::optional<asio::executor_work_guard<asio::io_context::executor_type>> guard;
    int executed = 0;
    std::binary_semaphore go{0};
    std::atomic<bool> quit{false};
    std::thread producer([&] {
        for (;;) {
            go.acquire();
            if (quit.load())
                return;
            for (int i = 0; i < posts_per_round; ++i) {
                asio::post(io, [&] {
                    if (++executed == posts_per_round)
                        guard.reset(); // the last one lets run() return
                });
            }
        }
    });
    for (auto _ : state) {
        executed = 0;
        io.restart();
        guard.emplace(io.get_executor());
        go.release();
        io.run();
    }
    quit.store(true);
    go.release();
    producer.join();
    set_ops(state, state.iterations() * posts_per_round);
}
BENCHMARK(BM_asio_post)->UseRealTime();

} // namespace

#endif // CORIO_BENCH_HAVE_ASIO

BENCHMARK_MAIN();

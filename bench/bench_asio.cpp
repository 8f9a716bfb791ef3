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
//   BM_asio_channel/producers:P/consumers:C
//                           experimental::channel<void(error_code, int)> with a buffer of 100,
//                           P producers (async_send) and C consumers (async_receive), all
//                           with use_awaitable, 10,000 items per round (bench_sync.cpp's queue)
// There is no NOP: Asio's io_context runs on epoll here. Built only where CMake found Boost
// (CORIO_BENCH_HAVE_ASIO); otherwise this program registers no benchmark.

#include "bench_util.hpp"

#include <benchmark/benchmark.h>

#if CORIO_BENCH_HAVE_ASIO

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/experimental/channel.hpp>
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

// --- 7. channel with a buffer of 100: producers x consumers (the concurrency toolkit's queue) ----

constexpr int channel_capacity = 100;
constexpr int channel_items_per_round = 10'000;
using int_channel = asio::experimental::channel<void(boost::system::error_code, int)>;

asio::awaitable<void> channel_producer(int_channel* ch, int count) {
    for (int i = 0; i < count; ++i)
        co_await ch->async_send(boost::system::error_code{}, i, asio::use_awaitable);
}

asio::awaitable<void> channel_consumer(int_channel* ch, int count, std::int64_t* sum) {
    std::int64_t local = 0;
    for (int i = 0; i < count; ++i) {
        int v = co_await ch->async_receive(asio::use_awaitable);
        local += v;
    }
    *sum += local;
}

void BM_asio_channel(benchmark::State& state) {
    const int producers = static_cast<int>(state.range(0));
    const int consumers = static_cast<int>(state.range(1));
    asio::io_context io{1};
    int_channel ch{io, channel_capacity};
    std::int64_t sum = 0;
    std::exception_ptr error;
    auto on_done = [&error](std::exception_ptr e) {
        if (e && !error)
            error = e;
    };
    for (auto _ : state) {
        // One round: spawn them all; run() returns when every coroutine has finished.
        for (int i = 0; i < producers; ++i)
            asio::co_spawn(io, channel_producer(&ch, channel_items_per_round / producers), on_done);
        for (int i = 0; i < consumers; ++i)
            asio::co_spawn(io, channel_consumer(&ch, channel_items_per_round / consumers, &sum),
                           on_done);
        io.restart();
        io.run();
    }
    if (error)
        std::rethrow_exception(error);
    benchmark::DoNotOptimize(sum);
    set_ops(state, state.iterations() * channel_items_per_round);
}
BENCHMARK(BM_asio_channel)
    ->ArgNames({"producers", "consumers"})
    ->Args({5, 5})
    ->Args({1, 1})
    ->UseRealTime();

} // namespace

#endif // CORIO_BENCH_HAVE_ASIO

BENCHMARK_MAIN();

// SPDX-License-Identifier: MIT
//
// N concurrently sleeping tasks, one run per process so that the peak RSS is clean:
//
//     sleepers [corio|asio] [N=1000000] [sleep_ms=100]
//
// spawns N tasks that each sleep `sleep_ms` (corio: spawn + co_await sleep_for; asio: co_spawn
// detached + steady_timer::async_wait), and prints one JSON line: the time to spawn them, the
// time from the first spawn to the last wake-up, and the growth of the peak resident set
// (VmHWM, read before the first spawn and after the last wake-up) per task. The spawn handles
// are dropped (detached), as a fire-and-forget server would; the figures include the loop's
// transient structures (ready queue, timer heap), since those count in the peak.
//
// Not a Google Benchmark program (it has its own main), but built like the others by
// bench/CMakeLists.txt.

#include "bench_util.hpp"

#include <corio/corio.hpp>

#if CORIO_BENCH_HAVE_ASIO
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#endif

#include <chrono>
#include <coroutine>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>

namespace {

using clock_type = std::chrono::steady_clock;

struct figures {
    long tasks = 0;
    long sleep_ms = 0;
    long woke = 0;
    clock_type::time_point first_spawn;
    clock_type::time_point spawned;
    clock_type::time_point last_wake;
    long hwm_before_kb = 0;
    long hwm_after_kb = 0;
    std::coroutine_handle<> waiter; // corio: the main task, parked until the last wake-up
};

void print(const char* runtime, const figures& f) {
    using ms = std::chrono::duration<double, std::milli>;
    std::printf("{\"runtime\": \"%s\", \"tasks\": %ld, \"sleep_ms\": %ld, \"spawn_ms\": %.1f, "
                "\"first_spawn_to_last_wake_ms\": %.1f, \"hwm_before_kb\": %ld, "
                "\"hwm_after_kb\": %ld, \"bytes_per_task\": %.1f}\n",
                runtime, f.tasks, f.sleep_ms, ms(f.spawned - f.first_spawn).count(),
                ms(f.last_wake - f.first_spawn).count(), f.hwm_before_kb, f.hwm_after_kb,
                static_cast<double>(f.hwm_after_kb - f.hwm_before_kb) * 1024.0 /
                    static_cast<double>(f.tasks));
}

// --- corio -------------------------------------------------------------------------------------

corio::task<void> corio_sleeper(figures* f) {
    co_await corio::sleep_for(std::chrono::milliseconds(f->sleep_ms));
    if (++f->woke == f->tasks) {
        f->last_wake = clock_type::now();
        corio::event_loop::current().schedule(f->waiter);
    }
}

corio::task<void> corio_main(figures* f) {
    f->hwm_before_kb = corio_bench::proc_status_kb("VmHWM");
    f->first_spawn = clock_type::now();
    for (long i = 0; i < f->tasks; ++i)
        corio::spawn(corio_sleeper(f)).detach();
    f->spawned = clock_type::now();
    co_await corio_bench::park{&f->waiter};
    f->hwm_after_kb = corio_bench::proc_status_kb("VmHWM");
}

void run_corio(figures& f) {
    corio::run(corio_main(&f));
    print("corio", f);
}

// --- Boost.Asio --------------------------------------------------------------------------------

#if CORIO_BENCH_HAVE_ASIO
namespace asio = boost::asio;

asio::awaitable<void> asio_sleeper(figures* f) {
    asio::steady_timer timer{co_await asio::this_coro::executor,
                             std::chrono::milliseconds(f->sleep_ms)};
    co_await timer.async_wait(asio::use_awaitable);
    if (++f->woke == f->tasks) {
        f->last_wake = clock_type::now();
        f->hwm_after_kb = corio_bench::proc_status_kb("VmHWM");
    }
}

void run_asio(figures& f) {
    asio::io_context io{1};
    f.hwm_before_kb = corio_bench::proc_status_kb("VmHWM");
    f.first_spawn = clock_type::now();
    for (long i = 0; i < f.tasks; ++i)
        asio::co_spawn(io, asio_sleeper(&f), asio::detached);
    f.spawned = clock_type::now();
    io.run();
    print("asio", f);
}
#endif

} // namespace

int main(int argc, char** argv) {
    const char* runtime = argc > 1 ? argv[1] : "corio";
    figures f;
    f.tasks = argc > 2 ? std::atol(argv[2]) : 1'000'000;
    f.sleep_ms = argc > 3 ? std::atol(argv[3]) : 100;
    if (f.tasks <= 0 || f.sleep_ms < 0) {
        std::fprintf(stderr, "usage: %s [corio|asio] [tasks > 0] [sleep_ms >= 0]\n", argv[0]);
        return 2;
    }
    try {
        if (std::strcmp(runtime, "corio") == 0) {
            run_corio(f);
            return 0;
        }
#if CORIO_BENCH_HAVE_ASIO
        if (std::strcmp(runtime, "asio") == 0) {
            run_asio(f);
            return 0;
        }
#endif
        std::fprintf(stderr, "sleepers: unknown or unavailable runtime '%s'\n", runtime);
        return 2;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "sleepers: %s\n", e.what());
        return 1;
    }
}

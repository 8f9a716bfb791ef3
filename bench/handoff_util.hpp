// SPDX-License-Identifier: MIT
#pragma once

// What the hand-off benchmarks of issue 14 (handoff_corio.cpp, handoff_asio.cpp) share: their
// command line, the CPU time and context switches of the timed part (getrusage), the busy loop
// of the worker pool and its calibration, and the JSON line each run prints. Plain C++, no
// Google Benchmark. handoff_go.go has the same flags, busy loop and output.

#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>

namespace handoff {

using clock_type = std::chrono::steady_clock;

/// The command line: `--name value` pairs, every value an integer but `--case`.
struct options {
    std::string which = "channel"; // --case: channel, spawn, pool or calibrate
    long producers = 1;
    long consumers = 1;
    long messages = 2'000'000; // channel: items sent in all (split evenly among the producers)
    long capacity = 1024;      // channel: its capacity; pool: the queue's
    long round_trips = 100'000;
    long threads = 2;         // pool: loops (corio), GOMAXPROCS and workers (Go)
    long items = 50'000;      // pool: items
    long work_us = 20;        // pool: the CPU work per item, for the calibration
    long work_iters = 0;      // pool: iterations of the busy loop per item; 0 = calibrate here
    long pool_capacity = 256; // pool: the channel's capacity
    long pin = 0;             // 1: loop (thread) i runs on CPU i only
};

[[noreturn]] inline void usage(const char* program, const std::string& why) {
    std::fprintf(stderr,
                 "%s: %s\n"
                 "usage: %s --case channel [--producers P] [--consumers C] [--messages N] "
                 "[--capacity N]\n"
                 "       %s --case spawn [--round-trips N]\n"
                 "       %s --case pool [--threads T] [--items N] [--work-iters K | --work-us U] "
                 "[--pool-capacity N]\n"
                 "       (channel, spawn, pool: [--pin 1] runs loop i on CPU i only)\n"
                 "       %s --case calibrate [--work-us U]   (prints the iterations of U us)\n",
                 program, why.c_str(), program, program, program, program);
    std::exit(2);
}

inline options parse(int argc, char** argv) {
    options o;
    for (int i = 1; i < argc; ++i) {
        const std::string_view flag = argv[i];
        if (i + 1 >= argc)
            usage(argv[0], "missing the value of " + std::string(flag));
        const char* value = argv[++i];
        if (flag == "--case") {
            o.which = value;
            continue;
        }
        char* end = nullptr;
        const long v = std::strtol(value, &end, 10);
        if (end == value || *end != 0 || v < 0)
            usage(argv[0], "bad value for " + std::string(flag) + ": " + value);
        if (flag == "--producers")
            o.producers = v;
        else if (flag == "--consumers")
            o.consumers = v;
        else if (flag == "--messages")
            o.messages = v;
        else if (flag == "--capacity")
            o.capacity = v;
        else if (flag == "--round-trips")
            o.round_trips = v;
        else if (flag == "--threads")
            o.threads = v;
        else if (flag == "--items")
            o.items = v;
        else if (flag == "--work-us")
            o.work_us = v;
        else if (flag == "--work-iters")
            o.work_iters = v;
        else if (flag == "--pool-capacity")
            o.pool_capacity = v;
        else if (flag == "--pin")
            o.pin = v;
        else
            usage(argv[0], "unknown flag " + std::string(flag));
    }
    if (o.producers < 1 || o.consumers < 1 || o.capacity < 1 || o.threads < 1 ||
        o.pool_capacity < 1 || o.messages % o.producers != 0 || o.messages % o.consumers != 0)
        usage(argv[0], "producers, consumers, capacities and threads must be >= 1, and "
                       "messages a multiple of producers and of consumers");
    return o;
}

/// The process's CPU time (every thread) and context switches, for the timed part of a run.
struct usage_snapshot {
    clock_type::time_point wall;
    double cpu_s = 0;
    long voluntary = 0;   // context switches: the thread blocked (a sleeping loop)
    long involuntary = 0; // preempted
};

inline usage_snapshot snapshot() {
    rusage ru{};
    ::getrusage(RUSAGE_SELF, &ru);
    usage_snapshot s;
    s.wall = clock_type::now();
    s.cpu_s = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
              static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
    s.voluntary = ru.ru_nvcsw;
    s.involuntary = ru.ru_nivcsw;
    return s;
}

/// One run's result as one JSON line on stdout: `ops` operations (messages, round trips,
/// items) between `begin` and `end`; proc_cpu_s is the process's CPU time so far (warm-up and
/// set-up included), with which handoff.sh tells how much CPU other processes took meanwhile.
inline void report(const char* impl, const options& o, const char* which, long threads, long ops,
                   const usage_snapshot& begin, const usage_snapshot& end,
                   const std::string& extra = {}) {
    const double wall = std::chrono::duration<double>(end.wall - begin.wall).count();
    const double cpu = end.cpu_s - begin.cpu_s;
    std::printf(
        "{\"impl\":\"%s\",\"case\":\"%s\",\"producers\":%ld,\"consumers\":%ld,"
        "\"threads\":%ld,\"ops\":%ld,\"wall_s\":%.6f,\"cpu_s\":%.6f,\"per_s\":%.1f,"
        "\"ns_per_op\":%.1f,\"vcsw\":%ld,\"ivcsw\":%ld,\"pinned\":%ld,\"proc_cpu_s\":%.3f%s}\n",
        impl, which, o.producers, o.consumers, threads, ops, wall, cpu,
        static_cast<double>(ops) / wall, wall * 1e9 / static_cast<double>(ops),
        end.voluntary - begin.voluntary, end.involuntary - begin.involuntary, o.pin, end.cpu_s,
        extra.c_str());
    std::fflush(stdout);
}

/// Runs the calling thread on CPU `cpu` only (what `runtime_options::pin` does for a loop).
inline void pin_this_thread(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (const int e = ::pthread_setaffinity_np(::pthread_self(), sizeof set, &set); e != 0) {
        std::fprintf(stderr, "handoff: cannot pin a thread to CPU %d: %s\n", cpu, std::strerror(e));
        std::exit(1);
    }
}

/// The worker pool's CPU work: `iters` steps of a 64-bit LCG, a chain of dependent multiplies
/// and adds (about 4 cycles a step whatever the compiler; handoff_go.go has the same loop).
/// The empty asm keeps the compiler from folding the loop.
inline std::uint64_t burn(std::uint64_t iters, std::uint64_t x) noexcept {
    for (std::uint64_t i = 0; i < iters; ++i) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        asm volatile("" : "+r"(x));
    }
    return x;
}

/// The iterations of `burn` that take `us` microseconds here: the fastest of 20 timings of 2^18
/// iterations (the fastest, so that a preemption during the calibration does not inflate it).
inline long calibrate(long us) {
    constexpr std::uint64_t n = 1u << 18;
    double best = 1e9;
    std::uint64_t sink = 0;
    for (int i = 0; i < 20; ++i) {
        const auto t0 = clock_type::now();
        sink += burn(n, static_cast<std::uint64_t>(i));
        best = std::min(best, std::chrono::duration<double>(clock_type::now() - t0).count());
    }
    if (sink == 42) // never, but keeps the timings
        std::fputs("", stderr);
    return std::max(1L, static_cast<long>(static_cast<double>(us) * 1e-6 * n / best));
}

} // namespace handoff

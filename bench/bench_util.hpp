// SPDX-License-Identifier: MIT
#pragma once

// Helpers shared by the benchmark programs of bench/ (not part of corio).

#include <benchmark/benchmark.h>

#include <coroutine>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

namespace corio_bench {

/// Every benchmark reports the same two figures: items_per_second (operations per second) and
/// per_op (seconds per operation, printed as ns by the console reporter), whatever one
/// benchmark iteration stands for.
inline void set_ops(benchmark::State& state, std::int64_t ops) {
    state.SetItemsProcessed(ops);
    state.counters["per_op"] = benchmark::Counter(
        static_cast<double>(ops), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

/// A field of /proc/self/status in kB (VmHWM: peak resident set, VmRSS: current), or -1.
inline long proc_status_kb(const char* field) {
    std::ifstream status("/proc/self/status");
    const std::size_t len = std::strlen(field);
    for (std::string line; std::getline(status, line);) {
        if (line.compare(0, len, field) == 0 && line.size() > len && line[len] == ':')
            return std::stol(line.substr(len + 1));
    }
    return -1;
}

/// A one-shot parking spot for a coroutine: `co_await park{slot}` stores the handle in `slot`,
/// whoever completes the wait resumes it (through the loop's ready queue). `ready` skips the
/// suspension when the awaited condition already holds.
struct park {
    std::coroutine_handle<>* slot;
    bool ready = false;
    [[nodiscard]] bool await_ready() const noexcept { return ready; }
    void await_suspend(std::coroutine_handle<> h) const noexcept { *slot = h; }
    void await_resume() const noexcept {}
};

} // namespace corio_bench

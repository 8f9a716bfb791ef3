// SPDX-License-Identifier: MIT
#include "../support/corio_test.hpp"

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>

using namespace std::chrono_literals;
using corio::task;

namespace {

int blocking_add(int a, int b) {
    std::this_thread::sleep_for(5ms);
    return a + b;
}

std::thread::id worker_id() { return std::this_thread::get_id(); }

task<> count_yields(const std::atomic<bool>& stop, int& yields) {
    while (!stop.load()) {
        ++yields;
        co_await corio::yield_now();
    }
}

/// Blocks its worker until `release` is set; the loop must keep running other tasks meanwhile.
bool wait_for(const std::atomic<bool>& release) {
    while (!release.load())
        std::this_thread::sleep_for(1ms);
    return true;
}

task<> release_after(int ticks, const int& yields, std::atomic<bool>& release) {
    while (yields < ticks)
        co_await corio::yield_now();
    release.store(true);
}

} // namespace

CORIO_TEST_CASE("to_thread: returns the function's value, run on another thread", "[to_thread]") {
    int sum = co_await corio::to_thread(blocking_add, 2, 3);
    CHECK(sum == 5);
    std::thread::id id = co_await corio::to_thread(worker_id);
    CHECK(id != std::this_thread::get_id());
    co_await corio::to_thread([] {});
}

CORIO_TEST_CASE("to_thread: rethrows the function's exception", "[to_thread]") {
    std::string what;
    try {
        co_await corio::to_thread([]() -> int { throw std::runtime_error("blocked and failed"); });
    } catch (const std::runtime_error& e) {
        what = e.what();
    }
    CHECK(what == "blocked and failed");
}

CORIO_TEST_CASE("to_thread: other tasks keep running while the call blocks", "[to_thread]") {
    std::atomic<bool> release{false};
    std::atomic<bool> stop{false};
    int yields = 0;
    auto counter = corio::spawn(count_yields(stop, yields));
    auto releaser = corio::spawn(release_after(1000, yields, release));
    // The blocking call only returns once the loop has turned 1000 times: it cannot be
    // blocking the loop.
    bool released = co_await corio::to_thread(wait_for, std::cref(release));
    stop.store(true);
    co_await counter;
    co_await releaser;
    CHECK(released);
    CHECK(yields >= 1000);
}

CORIO_TEST_CASE("to_thread: many concurrent calls all complete", "[to_thread]") {
    std::vector<corio::join_handle<int>> handles;
    struct local {
        static task<int> one(int i) { co_return co_await corio::to_thread(blocking_add, i, 1); }
    };
    for (int i = 0; i < 64; ++i)
        handles.push_back(corio::spawn(local::one(i)));
    long sum = 0;
    for (auto& h : handles)
        sum += co_await h;
    CHECK(sum == 64 * 63 / 2 + 64);
}

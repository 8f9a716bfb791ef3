// SPDX-License-Identifier: MIT
#include "../support/corio_test.hpp"

#include <pthread.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <system_error>
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

namespace {

/// While alive, new threads ask for a stack no system can map: thread creation fails.
class threads_cannot_start {
public:
    threads_cannot_start() {
        pthread_attr_t attr;
        REQUIRE(::pthread_getattr_default_np(&attr) == 0);
        REQUIRE(::pthread_attr_getstacksize(&attr, &saved_) == 0);
        REQUIRE(::pthread_attr_setstacksize(&attr, std::size_t{1} << 46) == 0); // 64 TiB
        REQUIRE(::pthread_setattr_default_np(&attr) == 0);
        ::pthread_attr_destroy(&attr);
    }
    threads_cannot_start(const threads_cannot_start&) = delete;
    threads_cannot_start& operator=(const threads_cannot_start&) = delete;
    ~threads_cannot_start() {
        pthread_attr_t attr;
        ::pthread_getattr_default_np(&attr);
        ::pthread_attr_setstacksize(&attr, saved_);
        ::pthread_setattr_default_np(&attr);
        ::pthread_attr_destroy(&attr);
    }

private:
    std::size_t saved_ = 0;
};

task<> to_thread_without_threads() {
    std::string error;
    {
        threads_cannot_start refuse;
        try {
            [[maybe_unused]] const int n = co_await corio::to_thread(blocking_add, 1, 2);
        } catch (const std::system_error& e) {
            error = e.what();
        }
    }
    CHECK(!error.empty()); // thrown at the co_await, not std::terminate, not a hang
    // Nothing was left queued: the next call starts a thread and runs only its own job.
    const int n = co_await corio::to_thread(blocking_add, 2, 3);
    CHECK(n == 5);
}

} // namespace

TEST_CASE("to_thread: a worker thread that cannot start makes to_thread throw, and leaves "
          "nothing queued",
          "[to_thread][bad-input]") {
    corio::event_loop loop; // its pool has no thread yet
    loop.run(to_thread_without_threads());
}

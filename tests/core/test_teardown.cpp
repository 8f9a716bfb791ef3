// SPDX-License-Identifier: MIT
// Cancellation at every suspension point: a scenario that touches each kind of wait (timer,
// yield, kernel operation, blocking job, join, nested tasks) is stopped after k loop turns, for
// every k, and the loop is destroyed; every frame must be freed and nothing may crash or hang.
#include "../support/corio_test.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <span>
#include <thread>

using namespace std::chrono_literals;
using corio::task;
using corio::test::counted;

namespace {

task<> sleeps(counted c) {
    (void)c;
    co_await corio::sleep_for(1ms);
    co_await corio::yield_now();
    co_await corio::sleep_for(2ms);
}

task<int> reads(int fd, counted c) {
    (void)c;
    std::array<std::byte, 4> buf{};
    co_await corio::io::nop();
    co_return co_await corio::io::read(fd, buf); // until `writes` writes, or cancelled
}

task<int> nested_reads(int fd, counted c) {
    (void)c;
    co_return co_await reads(fd, counted{});
}

int block_briefly() {
    std::this_thread::sleep_for(1ms);
    return 1;
}

task<> offloads(counted c) {
    (void)c;
    co_await corio::to_thread(block_briefly);
    co_await corio::sleep_for(1ms);
}

task<> writes(int fd, counted c) {
    (void)c;
    co_await corio::sleep_for(3ms);
    const char byte = 'x';
    [[maybe_unused]] auto n = co_await corio::io::write(fd, std::as_bytes(std::span(&byte, 1)));
}

task<> joins(corio::join_handle<> other, counted c) {
    (void)c;
    co_await other;
    co_await corio::yield_now();
}

task<> scenario(int read_fd, int write_fd, counted c) {
    (void)c;
    auto s = corio::spawn(sleeps(counted{}));
    auto r = corio::spawn(nested_reads(read_fd, counted{}));
    auto w = corio::spawn(writes(write_fd, counted{}));
    auto o = corio::spawn(offloads(counted{}));
    auto j = corio::spawn(joins(std::move(s), counted{}));
    co_await j;
    co_await o;
    co_await r;
    co_await w;
}

} // namespace

TEST_CASE("teardown: stopping the loop after k turns, for every k, frees every frame",
          "[run][cancel][teardown]") {
    corio::test::watchdog dog{60};
    int fds[2];
    REQUIRE(::pipe2(fds, O_CLOEXEC | O_NONBLOCK) == 0);
    int k = 0;
    for (bool finished = false; !finished; ++k) {
        counted::reset();
        {
            corio::event_loop loop;
            corio::spawn(scenario(fds[0], fds[1], counted{})).detach();
            for (int turn = 0; turn < k && loop.task_count() > 0; ++turn)
                loop.run_once();
            finished = loop.task_count() == 0;
        } // the destructor cancels and drains what is left
        INFO("stopped after " << k << " turns");
        REQUIRE(counted::alive == 0);
        char stale = 0; // a write that happened after a cancelled read: drain it
        while (::read(fds[0], &stale, 1) == 1) {
        }
    }
    ::close(fds[0]);
    ::close(fds[1]);
    CHECK(k > 5); // the scenario took several turns: the early stops hit every kind of wait
}

// SPDX-License-Identifier: MIT
// corio::channel: a bounded MPMC queue between loops and threads.
#include "support/corio_test.hpp"

#include <corio/corio.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

namespace {

corio::test::watchdog guard() { return corio::test::watchdog{240}; }

template <class T>
corio::task<> expect_closed_receive(corio::channel<T>& ch, int& closed) {
    try {
        (void)co_await ch.receive();
    } catch (const corio::queue_closed&) {
        ++closed;
    }
}

} // namespace

CORIO_TEST_CASE("a channel is a FIFO on one loop too", "[channel]") {
    corio::channel<int> ch{3};
    CHECK(ch.capacity() == 3);
    co_await ch.send(1);
    CHECK(ch.try_send(2));
    CHECK(ch.try_send(3));
    CHECK_FALSE(ch.try_send(4)); // full: the caller keeps it
    CHECK(ch.size() == 3);
    const int a = co_await ch.receive();
    const auto b = ch.try_receive();
    const int c = co_await ch.receive();
    CHECK(a == 1);
    CHECK(b == 2);
    CHECK(c == 3);
    CHECK_FALSE(ch.try_receive());
}

TEST_CASE("a channel's capacity must be at least 1", "[channel]") {
    CHECK(corio::test::contains(
        corio::test::message_of<std::invalid_argument>([] { corio::channel<int> ch{0}; }),
        "at least 1, got 0"));
}

CORIO_TEST_CASE("a full channel makes the sender wait, and a receive admits it", "[channel]") {
    corio::channel<int> ch{1};
    co_await ch.send(1);
    auto sender =
        corio::spawn([](corio::channel<int>& c) -> corio::task<> { co_await c.send(2); }(ch));
    co_await corio::sleep_for(1ms);
    CHECK_FALSE(sender.done());
    const int first = co_await ch.receive();
    CHECK(first == 1);
    co_await sender;
    const int second = co_await ch.receive();
    CHECK(second == 2);
}

CORIO_TEST_CASE("close: senders fail, receivers drain what is left, then fail", "[channel]") {
    corio::channel<int> ch{4};
    co_await ch.send(7);
    ch.close();
    ch.close(); // idempotent
    CHECK(ch.closed());
    CHECK_THROWS_AS(ch.try_send(8), corio::queue_closed);
    const int left = co_await ch.receive();
    CHECK(left == 7);
    int closed = 0;
    co_await expect_closed_receive(ch, closed);
    CHECK(closed == 1);
    CHECK_THROWS_AS(ch.try_receive(), corio::queue_closed);
}

CORIO_TEST_CASE("a cancelled receiver takes nothing: the item stays for the next", "[channel]") {
    corio::channel<std::string> ch{1};
    auto r1 = corio::spawn([](corio::channel<std::string>& c) -> corio::task<std::string> {
        co_return co_await c.receive();
    }(ch));
    co_await corio::sleep_for(1ms);
    r1.cancel();
    bool cancelled = false;
    try {
        (void)co_await r1;
    } catch (const corio::cancelled_error&) {
        cancelled = true;
    }
    CHECK(cancelled);
    co_await ch.send("kept");
    const std::string got = co_await ch.receive();
    CHECK(got == "kept");
}

CORIO_TEST_CASE("a cancelled sender has not sent", "[channel]") {
    corio::channel<int> ch{1};
    co_await ch.send(1);
    auto s = corio::spawn([](corio::channel<int>& c) -> corio::task<> { co_await c.send(2); }(ch));
    co_await corio::sleep_for(1ms);
    s.cancel();
    bool cancelled = false;
    try {
        co_await s;
    } catch (const corio::cancelled_error&) {
        cancelled = true;
    }
    CHECK(cancelled);
    CHECK(ch.size() == 1);
    const int only = co_await ch.receive();
    CHECK(only == 1);
    CHECK_FALSE(ch.try_receive());
}

TEST_CASE("close wakes the waiters of every loop with queue_closed", "[channel]") {
    auto dog = guard();
    corio::runtime rt{{.threads = 2}};
    corio::channel<int> empty{1};
    corio::channel<int> full{1};
    REQUIRE(full.try_send(0));
    std::atomic<int> closed{0};
    rt.run_on_each([&](std::size_t i) -> corio::task<> {
        auto receive = [](corio::channel<int>& c, std::atomic<int>& n) -> corio::task<> {
            try {
                (void)co_await c.receive();
            } catch (const corio::queue_closed&) {
                ++n;
            }
        };
        auto send = [](corio::channel<int>& c, std::atomic<int>& n) -> corio::task<> {
            try {
                co_await c.send(1);
            } catch (const corio::queue_closed&) {
                ++n;
            }
        };
        corio::task_group g;
        for (int k = 0; k < 5; ++k) {
            g.spawn(receive(empty, closed));
            g.spawn(send(full, closed));
        }
        if (i == 1) {
            co_await corio::sleep_for(5ms);
            empty.close();
            full.close();
        }
        co_await g.join();
    });
    CHECK(closed == 20);
}

namespace {

/// `producers` x `per_producer` distinct messages through a channel of `capacity` between the
/// loops of a 2-loop runtime, producers and consumers on both loops; checks that each arrived
/// exactly once.
void pass_across_loops(std::ptrdiff_t capacity, int producers, int consumers, int per_producer) {
    const int total = producers * per_producer;
    corio::runtime rt{{.threads = 2}};
    corio::channel<std::uint32_t> ch{capacity};
    auto seen = std::make_unique<std::atomic<std::uint8_t>[]>(static_cast<std::size_t>(total));
    std::atomic<long> received{0};
    std::atomic<int> producers_left{producers};

    rt.run_on_each([&](std::size_t loop) -> corio::task<> {
        corio::task_group g;
        // Producers on every loop, consumers on every loop: every hand-off may cross threads.
        for (int p = static_cast<int>(loop); p < producers; p += static_cast<int>(rt.size()))
            g.spawn([](corio::channel<std::uint32_t>& c, int first, int count,
                       std::atomic<int>& left) -> corio::task<> {
                for (int k = 0; k < count; ++k)
                    co_await c.send(static_cast<std::uint32_t>(first + k));
                if (--left == 0)
                    c.close();
            }(ch, p * per_producer, per_producer, producers_left));
        for (int c = static_cast<int>(loop); c < consumers; c += static_cast<int>(rt.size()))
            g.spawn([](corio::channel<std::uint32_t>& c, std::atomic<std::uint8_t>* marks,
                       std::atomic<long>& count) -> corio::task<> {
                for (;;) {
                    std::uint32_t v = 0;
                    try {
                        v = co_await c.receive();
                    } catch (const corio::queue_closed&) {
                        co_return;
                    }
                    marks[v].fetch_add(1, std::memory_order_relaxed);
                    count.fetch_add(1, std::memory_order_relaxed);
                }
            }(ch, seen.get(), received));
        co_await g.join();
    });
    CHECK(received == total);
    int missing = 0;
    int twice = 0;
    for (int i = 0; i < total; ++i) {
        const auto n = seen[i].load();
        missing += n == 0 ? 1 : 0;
        twice += n > 1 ? 1 : 0;
    }
    CHECK(missing == 0);
    CHECK(twice == 0);
}

} // namespace

TEST_CASE("a million messages across loops, several producers and consumers, all counted",
          "[channel][stress]") {
    auto dog = guard();
    pass_across_loops(256, 4, 4, 250'000);
}

TEST_CASE("channels of one and two slots across loops: every send waits its turn",
          "[channel][stress]") {
    // The smallest rings: a slot is reused at once, and nearly every send or receive waits.
    auto dog = guard();
    const std::ptrdiff_t capacity = GENERATE(1, 2);
    CAPTURE(capacity);
    pass_across_loops(capacity, 3, 3, 20'000);
}

TEST_CASE("close racing with senders on two loops loses no item", "[channel][stress]") {
    // Every send either delivers its item or throws queue_closed; receivers drain what was
    // sent before close. So items sent == items received, whatever the interleaving.
    auto dog = guard();
    for (int round = 0; round < 20; ++round) {
        corio::runtime rt{{.threads = 2}};
        corio::channel<int> ch{4};
        std::atomic<long> sent{0};
        std::atomic<long> received{0};
        rt.run_on_each([&](std::size_t loop) -> corio::task<> {
            corio::task_group g;
            for (int p = 0; p < 2; ++p)
                g.spawn([](corio::channel<int>& c, std::atomic<long>& count) -> corio::task<> {
                    for (;;) {
                        try {
                            co_await c.send(1);
                        } catch (const corio::queue_closed&) {
                            co_return;
                        }
                        count.fetch_add(1, std::memory_order_relaxed);
                    }
                }(ch, sent));
            g.spawn([](corio::channel<int>& c, std::atomic<long>& count) -> corio::task<> {
                for (;;) {
                    try {
                        count.fetch_add(co_await c.receive(), std::memory_order_relaxed);
                    } catch (const corio::queue_closed&) {
                        co_return;
                    }
                }
            }(ch, received));
            if (loop == 1)
                g.spawn([](corio::channel<int>& c, std::atomic<long>& count) -> corio::task<> {
                    while (count.load() < 2'000)
                        co_await corio::yield_now();
                    c.close();
                }(ch, received));
            co_await g.join();
        });
        CHECK(sent.load() == received.load());
        CHECK(received.load() >= 2'000);
    }
}

TEST_CASE("receivers that time out lose nothing, across loops", "[channel][stress]") {
    // Consumers wait with a short timeout, so cancellations race with hand-offs all the time:
    // an item handed over just as the timeout fires must still be counted, once.
    auto dog = guard();
    constexpr int total = 100'000;
    corio::runtime rt{{.threads = 2}};
    corio::channel<int> ch{8};
    auto seen = std::make_unique<std::atomic<std::uint8_t>[]>(total);
    std::atomic<long> received{0};
    std::atomic<long> timeouts{0};
    rt.run_on_each([&](std::size_t loop) -> corio::task<> {
        if (loop == 0) {
            for (int k = 0; k < total; ++k) {
                co_await ch.send(k);
                if (k % 64 == 0)
                    co_await corio::sleep_for(10us); // let receivers run dry and wait
            }
            ch.close();
            co_return;
        }
        corio::task_group g;
        for (int c = 0; c < 3; ++c)
            g.spawn([](corio::channel<int>& c, std::atomic<std::uint8_t>* marks,
                       std::atomic<long>& count, std::atomic<long>& late) -> corio::task<> {
                for (;;) {
                    int v = 0;
                    try {
                        v = co_await corio::timeout(20us, c.receive());
                    } catch (const corio::timeout_error&) {
                        ++late;
                        continue;
                    } catch (const corio::queue_closed&) {
                        co_return;
                    }
                    marks[v].fetch_add(1, std::memory_order_relaxed);
                    ++count;
                }
            }(ch, seen.get(), received, timeouts));
        co_await g.join();
    });
    CHECK(received == total);
    int wrong = 0;
    for (int i = 0; i < total; ++i)
        wrong += seen[i].load() == 1 ? 0 : 1;
    CHECK(wrong == 0);
    CHECK(timeouts > 0); // the race was exercised
}

TEST_CASE("try_send and try_receive work from plain threads", "[channel]") {
    auto dog = guard();
    corio::channel<int> ch{16};
    constexpr int n = 100'000;
    std::atomic<long> sum{0};
    std::thread consumer([&] {
        int got = 0;
        while (got < n)
            if (auto v = ch.try_receive()) {
                sum += *v;
                ++got;
            } else {
                std::this_thread::yield();
            }
    });
    for (int i = 1; i <= n;)
        if (ch.try_send(i))
            ++i;
        else
            std::this_thread::yield();
    consumer.join();
    CHECK(sum == static_cast<long>(n) * (n + 1) / 2);
}

// SPDX-License-Identifier: MIT
// corio::runtime, spawn_on and switch_to: one loop per thread, and work crossing loops.
#include "support/corio_test.hpp"

#include <corio/corio.hpp>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

namespace {

corio::test::watchdog guard() { return corio::test::watchdog{120}; }

std::thread::id this_thread() { return std::this_thread::get_id(); }

} // namespace

TEST_CASE("a runtime has the loops it was asked for, each on its own thread", "[runtime]") {
    auto dog = guard();
    corio::runtime rt{{.threads = 3}};
    REQUIRE(rt.size() == 3);
    std::vector<std::thread::id> ids(3);
    std::vector<corio::event_loop*> loops(3);
    // (Catch2's assertions are not thread-safe: the loops record, the test thread checks.)
    rt.run_on_each([&](std::size_t i) -> corio::task<> {
        ids[i] = this_thread();
        loops[i] = &corio::event_loop::current();
        co_return;
    });
    for (std::size_t i = 0; i < 3; ++i)
        CHECK(loops[i] == &rt.loop(i));
    CHECK(ids[0] != ids[1]);
    CHECK(ids[1] != ids[2]);
    CHECK(ids[0] != ids[2]);
    CHECK(ids[0] != this_thread());
    CHECK_THROWS_AS((void)rt.loop(3), std::out_of_range);
}

TEST_CASE("threads = 0 gives one loop per CPU the process may use", "[runtime]") {
    auto dog = guard();
    cpu_set_t set;
    CPU_ZERO(&set);
    REQUIRE(::sched_getaffinity(0, sizeof set, &set) == 0);
    corio::runtime rt;
    CHECK(rt.size() == static_cast<std::size_t>(CPU_COUNT(&set)));
}

TEST_CASE("runtime::run returns main's value and rethrows its exception", "[runtime]") {
    auto dog = guard();
    corio::runtime rt{{.threads = 2}};
    const int v = rt.run([]() -> corio::task<int> { co_return 42; }());
    CHECK(v == 42);
    CHECK_THROWS_WITH(rt.run([]() -> corio::task<> {
        throw std::runtime_error("boom");
        co_return;
    }()),
                      "boom");
    // The runtime stays usable after a failure.
    CHECK(rt.run([]() -> corio::task<int> { co_return 7; }()) == 7);
}

TEST_CASE("spawn_on runs the task on the target loop and the result comes back", "[runtime]") {
    auto dog = guard();
    corio::runtime rt{{.threads = 2}};
    rt.run([&]() -> corio::task<> {
        const auto home = this_thread();
        // Spawned lambdas take what they need as parameters: a capture would die with the
        // lambda at the end of the statement.
        auto h = corio::spawn_on(rt.loop(1),
                                 [](corio::event_loop* expected) -> corio::task<std::thread::id> {
                                     CHECK(&corio::event_loop::current() == expected);
                                     co_await corio::sleep_for(1ms);
                                     co_return this_thread();
                                 }(&rt.loop(1)));
        const std::thread::id there = co_await h;
        CHECK(there != home);
        CHECK(this_thread() == home); // the joiner resumes on its own loop
        CHECK(h.done());
    }());
}

TEST_CASE("spawn_on's exception reaches the joiner on another loop", "[runtime]") {
    auto dog = guard();
    corio::runtime rt{{.threads = 2}};
    rt.run([&]() -> corio::task<> {
        auto h = corio::spawn_on(rt.loop(1), []() -> corio::task<int> {
            co_await corio::sleep_for(1ms);
            throw std::runtime_error("far away");
        }());
        std::string what;
        try {
            (void)co_await h;
        } catch (const std::runtime_error& e) {
            what = e.what();
        }
        CHECK(what == "far away");
    }());
}

TEST_CASE("switch_to moves the coroutine between loops, back and forth", "[runtime]") {
    auto dog = guard();
    corio::runtime rt{{.threads = 2}};
    const int hops = rt.run([&]() -> corio::task<int> {
        int n = 0;
        for (int i = 0; i < 10'000; ++i) {
            corio::event_loop& next = rt.loop(static_cast<std::size_t>(i % 2));
            co_await corio::switch_to(next);
            if (&corio::event_loop::current() != &next)
                co_return -1;
            ++n;
        }
        co_return n;
    }());
    CHECK(hops == 10'000);
}

TEST_CASE("a task that moved to another loop is joined and cancelled from its old one",
          "[runtime]") {
    auto dog = guard();
    corio::runtime rt{{.threads = 2}};
    rt.run([&]() -> corio::task<> {
        std::atomic<bool> reached{false};
        auto h =
            corio::spawn([](corio::event_loop& there, std::atomic<bool>& flag) -> corio::task<> {
                co_await corio::switch_to(there);
                flag = true;
                co_await corio::sleep_for(1h);
            }(rt.loop(1), reached));
        while (!reached)
            co_await corio::sleep_for(100us);
        CHECK(h.cancel());
        bool cancelled = false;
        try {
            co_await h;
        } catch (const corio::cancelled_error&) {
            cancelled = true;
        }
        CHECK(cancelled);
    }());
}

TEST_CASE("a cancelled joiner resumes once, on its own loop, and the task runs on", "[runtime]") {
    auto dog = guard();
    corio::runtime rt{{.threads = 2}};
    rt.run([&]() -> corio::task<> {
        std::atomic<bool> go{false};
        auto far = corio::spawn_on(rt.loop(1), [](std::atomic<bool>& gate) -> corio::task<int> {
            while (!gate)
                co_await corio::sleep_for(100us);
            co_return 5;
        }(go));
        auto waiter = corio::spawn(
            [](corio::join_handle<int>& h) -> corio::task<int> { co_return co_await h; }(far));
        co_await corio::sleep_for(1ms);
        waiter.cancel();
        bool cancelled = false;
        try {
            (void)co_await waiter;
        } catch (const corio::cancelled_error&) {
            cancelled = true;
        }
        CHECK(cancelled);
        CHECK_FALSE(far.done()); // cancelling the waiter leaves the task alone
        go = true;
        const int v = co_await far;
        CHECK(v == 5);
    }());
}

TEST_CASE("destroying a runtime cancels and drains tasks suspended on every loop", "[runtime]") {
    auto dog = guard();
    static std::atomic<int> unwound{0};
    unwound = 0;
    {
        corio::runtime rt{{.threads = 3}};
        rt.run([&]() -> corio::task<> {
            for (std::size_t i = 0; i < rt.size(); ++i)
                for (int k = 0; k < 10; ++k)
                    corio::spawn_on(rt.loop(i),
                                    []() -> corio::task<> {
                                        struct on_exit {
                                            ~on_exit() { ++unwound; }
                                        } e;
                                        co_await corio::sleep_for(1h);
                                    }())
                        .detach();
            co_return;
        }());
        // run() drained what main left behind: every task has unwound already.
        CHECK(unwound == 30);
        // Now leave some behind on purpose, through a path run() does not drain.
        for (std::size_t i = 0; i < rt.size(); ++i)
            corio::spawn_on(rt.loop(i),
                            [](corio::runtime& r, std::size_t at) -> corio::task<> {
                                struct on_exit {
                                    ~on_exit() { ++unwound; }
                                } e;
                                // Bounce between loops while the runtime goes away.
                                for (;;) {
                                    at = (at + 1) % r.size();
                                    co_await corio::switch_to(r.loop(at));
                                    co_await corio::sleep_for(50us);
                                }
                            }(rt, i))
                .detach();
        std::this_thread::sleep_for(5ms);
    }
    CHECK(unwound == 33);
}

TEST_CASE("runtime::run refuses to block a running loop", "[runtime]") {
    auto dog = guard();
    corio::runtime rt{{.threads = 1}};
    corio::test::run([&]() -> corio::task<> {
        CHECK_THROWS_AS(rt.run([]() -> corio::task<> { co_return; }()), std::logic_error);
        co_return;
    }());
}

TEST_CASE("switch_to inside a timeout is refused with a clear error", "[runtime]") {
    auto dog = guard();
    corio::runtime rt{{.threads = 2}};
    rt.run([&]() -> corio::task<> {
        std::string what;
        try {
            co_await corio::timeout(1s, [](corio::event_loop& there) -> corio::task<> {
                co_await corio::switch_to(there);
            }(rt.loop(1)));
        } catch (const std::logic_error& e) {
            what = e.what();
        }
        CHECK(corio::test::contains(what, "timeout"));
    }());
}

TEST_CASE("a gather child that moved away reports back to its owner's loop", "[runtime]") {
    auto dog = guard();
    corio::runtime rt{{.threads = 2}};
    rt.run([&]() -> corio::task<> {
        const auto home = this_thread();
        auto child = [](corio::event_loop& there, int k) -> corio::task<int> {
            co_await corio::switch_to(there);
            co_await corio::sleep_for(1ms);
            co_return k;
        };
        auto [a, b] = co_await corio::gather(child(rt.loop(1), 1), child(rt.loop(1), 2));
        CHECK(a + b == 3);
        CHECK(this_thread() == home);
    }());
}

namespace {

/// Runs `use` on loop 1 after `first` used the same object on loop 0; returns the message of
/// the `std::logic_error` it threw ("" when it threw none).
template <class Object, class First, class Use>
std::string from_another_loop(Object& object, First first, Use use) {
    corio::runtime rt{{.threads = 2}};
    rt.run(first(object));
    std::string what;
    rt.run([](corio::event_loop& there, Object& o, Use u, std::string& out) -> corio::task<> {
        co_await corio::switch_to(there);
        try {
            co_await u(o);
        } catch (const std::logic_error& e) {
            out = e.what();
        }
    }(rt.loop(1), object, use, what));
    return what;
}

} // namespace

TEST_CASE("loop-bound objects used from another loop throw, naming the object", "[runtime]") {
    auto dog = guard();
    using corio::task;
    {
        corio::semaphore sem{2};
        const std::string what = from_another_loop(
            sem, [](corio::semaphore& s) -> task<> { auto p = co_await s.scoped_acquire(); },
            [](corio::semaphore& s) -> task<> { auto p = co_await s.scoped_acquire(); });
        CHECK(corio::test::contains(what, "corio::semaphore"));
        CHECK(corio::test::contains(what, "another event loop"));
    }
    {
        corio::mutex m;
        const std::string what = from_another_loop(
            m, [](corio::mutex& x) -> task<> { auto g = co_await x.scoped_lock(); },
            [](corio::mutex& x) -> task<> { auto g = co_await x.scoped_lock(); });
        CHECK(corio::test::contains(what, "corio::mutex"));
    }
    {
        corio::event ev;
        const std::string what = from_another_loop(
            ev,
            [](corio::event& e) -> task<> {
                e.set();
                co_return;
            },
            [](corio::event& e) -> task<> { co_await e.wait(); });
        CHECK(corio::test::contains(what, "corio::event"));
    }
    {
        corio::bounded_queue<int> q{4};
        const std::string what = from_another_loop(
            q, [](corio::bounded_queue<int>& x) -> task<> { co_await x.put(1); },
            [](corio::bounded_queue<int>& x) -> task<> { (void)co_await x.get(); });
        CHECK(corio::test::contains(what, "corio::bounded_queue"));
    }
    {
        corio::task_group g;
        const std::string what = from_another_loop(
            g,
            [](corio::task_group& x) -> task<> {
                x.spawn([]() -> task<> { co_return; }());
                co_await x.join();
            },
            [](corio::task_group& x) -> task<> {
                x.spawn([]() -> task<> { co_return; }());
                co_await x.join();
            });
        CHECK(corio::test::contains(what, "corio::task_group"));
    }
    {
        corio::rate_limiter lim{10, std::chrono::seconds(1)};
        const std::string what = from_another_loop(
            lim, [](corio::rate_limiter& l) -> task<> { co_await l.acquire(); },
            [](corio::rate_limiter& l) -> task<> { co_await l.acquire(); });
        CHECK(corio::test::contains(what, "corio::rate_limiter"));
    }
}

TEST_CASE("a loop-bound object made off any loop belongs to the first loop that uses it",
          "[runtime]") {
    auto dog = guard();
    corio::semaphore sem{1}; // made here, on no loop
    corio::runtime rt{{.threads = 2}};
    rt.run([](corio::semaphore& s, corio::event_loop& other) -> corio::task<> {
        auto p = co_await s.scoped_acquire(); // loop 0 uses it first: it is loop 0's now
        p.release();
        co_await corio::switch_to(other);
        CHECK_THROWS_AS(s.try_acquire(), std::logic_error);
    }(sem, rt.loop(1)));
    CHECK_THROWS_WITH(sem.try_acquire(), Catch::Contains("thread without an event loop"));
}

namespace {

/// A task on loop 1 that passes through every kind of suspension a cross-loop task meets,
/// counting its steps; `cleaned` counts its unwinding. From step `stay` on, each wait lasts
/// until it is cancelled (an hour), so a cancellation sent once the task reached that step
/// always finds it waiting, whatever the machine's speed; before it, the waits are short.
corio::task<int> many_suspensions(corio::event_loop& home, corio::event_loop& other, int stay,
                                  std::atomic<int>& step, std::atomic<int>& cleaned) {
    struct on_exit {
        std::atomic<int>& n;
        ~on_exit() { ++n; }
    } guard{cleaned};
    const auto wait = [&] { return step.load() >= stay ? 1h : 50us; };
    corio::channel<int> never{1};
    ++step;
    co_await corio::sleep_for(wait()); // 1: a timer
    ++step;
    co_await corio::yield_now(); // 2: the ready queue
    ++step;
    co_await corio::switch_to(other); // 3: a move to another loop
    ++step;
    co_await corio::sleep_for(wait()); // 4: a timer over there
    ++step;
    co_await corio::switch_to(home); // 5: and back
    ++step;
    // 6: a join. (The child must not refer to this frame: a join cancelled here leaves the
    // child running, and the runtime's drain ends it.)
    auto child =
        corio::spawn([](auto d) -> corio::task<> { co_await corio::sleep_for(d); }(wait()));
    co_await child;
    ++step;
    bool timed_out = false;
    try { // 7: a channel wait, ended by its timeout (or by the cancellation)
        (void)co_await corio::timeout(wait(), [](corio::channel<int>& c) -> corio::task<int> {
            co_return co_await c.receive();
        }(never));
    } catch (const corio::timeout_error&) {
        timed_out = true;
    }
    ++step;
    co_return timed_out ? step.load() : -1;
}

} // namespace

TEST_CASE("cancellation from another loop at every suspension point: once, and cleaned up",
          "[runtime]") {
    auto dog = guard();
    corio::runtime rt{{.threads = 2}};
    constexpr int points = 7; // many_suspensions' suspension points; it returns points + 1
    // k = points + 1: the cancel arrives after the task finished; cancel() must say so.
    for (int k = 1; k <= points + 1; ++k) {
        std::atomic<int> step{0};
        std::atomic<int> cleaned{0};
        int value = 0;
        int cancelled = 0;
        int resumed_elsewhere = 0;
        bool cancel_accepted = false;
        rt.run([](corio::runtime& r, int at, std::atomic<int>& st, std::atomic<int>& cl, int& out,
                  int& cancels, int& elsewhere, bool& accepted) -> corio::task<> {
            auto h = corio::spawn_on(r.loop(1), many_suspensions(r.loop(1), r.loop(0), at, st, cl));
            if (at > points) {
                while (!h.done())
                    co_await corio::sleep_for(20us);
            } else {
                while (st.load() < at)
                    co_await corio::yield_now();
            }
            accepted = h.cancel();
            corio::event_loop* before = &corio::event_loop::current();
            try {
                out = co_await h;
            } catch (const corio::cancelled_error&) {
                ++cancels;
            }
            if (&corio::event_loop::current() != before)
                ++elsewhere;
        }(rt, k, step, cleaned, value, cancelled, resumed_elsewhere, cancel_accepted));
        INFO("cancelled at step " << k);
        CHECK(cleaned == 1);
        CHECK(resumed_elsewhere == 0);
        if (k > points) {
            CHECK_FALSE(cancel_accepted);
            CHECK(value == points + 1);
            CHECK(cancelled == 0);
        } else {
            CHECK(cancel_accepted);
            CHECK(cancelled == 1);
            CHECK(value == 0);
        }
    }
}

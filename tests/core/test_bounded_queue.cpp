// SPDX-License-Identifier: MIT
#include "../support/corio_test.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

using corio::bounded_queue;
using corio::cancelled_error;
using corio::join_handle;
using corio::queue_closed;
using corio::task;
using corio::test::contains;
using corio::test::counted;
using corio::test::message_of;

namespace {

/// The stress tests' seed: CORIO_TEST_SEED when set (to replay a failure), else a fixed one.
std::uint32_t test_seed() {
    if (const char* s = std::getenv("CORIO_TEST_SEED"))
        return static_cast<std::uint32_t>(std::stoul(s));
    return 0x5eed0b0eU;
}

task<> put_one(bounded_queue<int>& q, int value, bool& done) {
    co_await q.put(value);
    done = true;
}

task<> put_all(bounded_queue<int>& q, int first, int count) {
    for (int i = 0; i < count; ++i)
        co_await q.put(first + i);
}

task<> get_into(bounded_queue<int>& q, std::vector<int>& out) {
    int v = co_await q.get();
    out.push_back(v);
}

task<> join_queue(bounded_queue<int>& q, bool& joined) {
    co_await q.join();
    joined = true;
}

/// Where a waiter was when it saw an error.
struct probe {
    bool done = false;              // its put or get returned
    int item = -1;                  // what its get returned
    bool cancelled_waiting = false; // the put or get itself threw cancelled_error
    bool cancelled_after = false;   // the suspension after it threw cancelled_error
    bool closed = false;            // the put or get threw queue_closed
};

task<> put_then_yield(bounded_queue<int>& q, int value, probe& p) {
    try {
        co_await q.put(value);
    } catch (const cancelled_error&) {
        p.cancelled_waiting = true;
        throw;
    } catch (const queue_closed&) {
        p.closed = true;
        throw;
    }
    p.done = true;
    try {
        co_await corio::yield_now();
    } catch (const cancelled_error&) {
        p.cancelled_after = true;
        throw;
    }
}

task<> get_then_yield(bounded_queue<int>& q, probe& p) {
    try {
        p.item = co_await q.get();
    } catch (const cancelled_error&) {
        p.cancelled_waiting = true;
        throw;
    } catch (const queue_closed&) {
        p.closed = true;
        throw;
    }
    p.done = true;
    try {
        co_await corio::yield_now();
    } catch (const cancelled_error&) {
        p.cancelled_after = true;
        throw;
    }
}

task<> put_counted(bounded_queue<std::unique_ptr<counted>>& q, bool& cancelled) {
    auto item = std::make_unique<counted>();
    try {
        co_await q.put(std::move(item));
    } catch (const cancelled_error&) {
        cancelled = true;
        throw;
    }
}

} // namespace

TEST_CASE("bounded_queue: a capacity below 1 is invalid_argument naming the value",
          "[bounded_queue][bad-use]") {
    CHECK(contains(message_of<std::invalid_argument>([] { bounded_queue<int> q{0}; }), "0"));
    CHECK(contains(message_of<std::invalid_argument>([] { bounded_queue<int> q{-3}; }), "-3"));
    CHECK_NOTHROW(bounded_queue<int>{1});
}

CORIO_TEST_CASE("bounded_queue: items come out in the order they were put", "[bounded_queue]") {
    bounded_queue<int> q{4};
    CHECK(q.capacity() == 4);
    CHECK(q.empty());
    CHECK_FALSE(q.full());
    for (int i = 1; i <= 4; ++i)
        co_await q.put(i);
    CHECK(q.size() == 4);
    CHECK(q.full());
    std::vector<int> out;
    for (int round = 0; round < 3; ++round) { // wraps around the ring several times
        int a = co_await q.get();
        int b = co_await q.get();
        out.push_back(a);
        out.push_back(b);
        co_await q.put(5 + 2 * round);
        co_await q.put(6 + 2 * round);
    }
    while (!q.empty()) {
        int v = co_await q.get();
        out.push_back(v);
    }
    CHECK(out == std::vector<int>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
    CHECK(q.size() == 0);
}

CORIO_TEST_CASE("bounded_queue: producers block when full with exactly capacity items buffered",
                "[bounded_queue]") {
    bounded_queue<int> q{3};
    bool d0 = false;
    bool d1 = false;
    bool d2 = false;
    bool d3 = false;
    bool d4 = false;
    join_handle<> p0 = corio::spawn(put_one(q, 10, d0));
    join_handle<> p1 = corio::spawn(put_one(q, 11, d1));
    join_handle<> p2 = corio::spawn(put_one(q, 12, d2));
    join_handle<> p3 = corio::spawn(put_one(q, 13, d3));
    join_handle<> p4 = corio::spawn(put_one(q, 14, d4));
    co_await corio::yield_now();
    co_await corio::yield_now();
    CHECK(q.size() == 3);
    CHECK(q.full());
    CHECK((d0 && d1 && d2));
    CHECK_FALSE(d3); // waiting for room
    CHECK_FALSE(d4);
    int first = co_await q.get(); // frees a slot: p3's item takes it
    CHECK(first == 10);
    CHECK(q.size() == 3);
    co_await corio::yield_now();
    CHECK(d3);
    CHECK_FALSE(d4);
    std::vector<int> rest;
    for (int i = 0; i < 4; ++i) {
        int v = co_await q.get();
        rest.push_back(v);
    }
    CHECK(rest == std::vector<int>{11, 12, 13, 14}); // producers' items in their order
    co_await p0;
    co_await p1;
    co_await p2;
    co_await p3;
    co_await p4;
    CHECK(d4);
    CHECK(q.empty());

    // One producer of many items: never more than `capacity` are buffered.
    join_handle<> many = corio::spawn(put_all(q, 100, 10));
    std::vector<int> got;
    for (int i = 0; i < 10; ++i) {
        co_await corio::yield_now();
        co_await corio::yield_now();
        CHECK(q.size() <= 3);
        if (i < 7)
            CHECK(q.full()); // the producer is ahead and blocked
        int v = co_await q.get();
        got.push_back(v);
    }
    co_await many;
    CHECK(got == std::vector<int>{100, 101, 102, 103, 104, 105, 106, 107, 108, 109});
}

CORIO_TEST_CASE("bounded_queue: a put to a waiting getter hands the item over without buffering",
                "[bounded_queue]") {
    bounded_queue<int> q{2};
    std::vector<int> out;
    std::vector<join_handle<>> getters;
    for (int i = 0; i < 4; ++i)
        getters.push_back(corio::spawn(get_into(q, out)));
    co_await corio::yield_now();
    for (int i = 0; i < 4; ++i) {
        co_await q.put(20 + i); // does not wait: a getter takes it
        CHECK(q.size() == 0);
    }
    CHECK(q.try_put(99)); // no getter left: buffered
    CHECK(q.size() == 1);
    for (join_handle<>& g : getters)
        co_await g;
    CHECK(out == std::vector<int>{20, 21, 22, 23}); // getters served in the order they waited
    std::optional<int> left = q.try_get();
    CHECK(left == 99);
}

CORIO_TEST_CASE("bounded_queue: try_put and try_get never wait", "[bounded_queue]") {
    bounded_queue<int> q{2};
    CHECK_FALSE(q.try_get().has_value());
    CHECK(q.try_put(1));
    CHECK(q.try_put(2));
    CHECK_FALSE(q.try_put(3)); // full
    CHECK(q.size() == 2);
    bool putter_done = false;
    join_handle<> putter = corio::spawn(put_one(q, 4, putter_done));
    co_await corio::yield_now();
    CHECK_FALSE(putter_done);
    CHECK_FALSE(q.try_put(5)); // still full, and the waiting putter is ahead anyway
    std::optional<int> a = q.try_get();
    CHECK(a == 1);
    CHECK(q.size() == 2); // the waiting putter's item took the freed slot
    co_await putter;
    CHECK(putter_done);
    std::optional<int> b = q.try_get();
    std::optional<int> c = q.try_get();
    std::optional<int> d = q.try_get();
    CHECK(b == 2);
    CHECK(c == 4);
    CHECK_FALSE(d.has_value());

    // try_put to a waiting getter hands the item over.
    std::vector<int> out;
    join_handle<> getter = corio::spawn(get_into(q, out));
    co_await corio::yield_now();
    CHECK(q.try_put(7));
    CHECK(q.size() == 0);
    co_await getter;
    CHECK(out == std::vector<int>{7});
}

CORIO_TEST_CASE("bounded_queue: join returns only after every put item got task_done",
                "[bounded_queue]") {
    bounded_queue<int> q{4};
    co_await q.join(); // nothing put: returns at once
    co_await q.put(1);
    co_await q.put(2);
    std::vector<int> out;
    join_handle<> getter = corio::spawn(get_into(q, out)); // takes item 1 without waiting
    co_await getter;
    bool joined = false;
    join_handle<> joiner = corio::spawn(join_queue(q, joined));
    co_await corio::yield_now();
    CHECK_FALSE(joined);
    int second = co_await q.get();
    CHECK(second == 2);
    q.task_done();
    co_await corio::yield_now();
    CHECK_FALSE(joined); // item 1 was got but is not done yet
    // An item handed straight to a waiting getter counts too.
    std::vector<int> out2;
    join_handle<> waiting_getter = corio::spawn(get_into(q, out2));
    co_await corio::yield_now();
    co_await q.put(3);
    co_await waiting_getter;
    q.task_done();
    co_await corio::yield_now();
    CHECK_FALSE(joined);
    q.task_done();
    co_await joiner;
    CHECK(joined);
    CHECK(out == std::vector<int>{1});
    CHECK(out2 == std::vector<int>{3});
}

CORIO_TEST_CASE("bounded_queue: task_done more often than items put is a logic_error",
                "[bounded_queue][bad-use]") {
    bounded_queue<int> q{2};
    const std::string what = message_of<std::logic_error>([&q] { q.task_done(); });
    CHECK(contains(what, "task_done"));
    co_await q.put(1);
    int v = co_await q.get();
    CHECK(v == 1);
    q.task_done();
    CHECK_THROWS_AS(q.task_done(), std::logic_error);
    co_await q.join(); // the count did not go negative
}

CORIO_TEST_CASE("bounded_queue: put after close throws queue_closed", "[bounded_queue][close]") {
    bounded_queue<int> q{2};
    co_await q.put(1);
    q.close();
    CHECK(q.closed());
    CHECK_THROWS_AS(co_await q.put(2), queue_closed);
    CHECK_THROWS_AS(q.try_put(3), queue_closed);
    CHECK(q.size() == 1);
}

CORIO_TEST_CASE("bounded_queue: close wakes waiting putters with queue_closed and drops their "
                "items",
                "[bounded_queue][close]") {
    bounded_queue<int> q{1};
    co_await q.put(1);
    probe pa;
    probe pb;
    join_handle<> a = corio::spawn(put_then_yield(q, 2, pa));
    join_handle<> b = corio::spawn(put_then_yield(q, 3, pb));
    co_await corio::yield_now();
    q.close();
    CHECK_THROWS_AS(co_await a, queue_closed);
    CHECK_THROWS_AS(co_await b, queue_closed);
    CHECK(pa.closed);
    CHECK(pb.closed);
    CHECK(q.size() == 1); // their items were never enqueued
    int v = co_await q.get();
    CHECK(v == 1);
    CHECK_THROWS_AS(co_await q.get(), queue_closed);
}

CORIO_TEST_CASE("bounded_queue: close wakes waiting getters with queue_closed",
                "[bounded_queue][close]") {
    bounded_queue<int> q{2};
    probe pa;
    probe pb;
    join_handle<> a = corio::spawn(get_then_yield(q, pa));
    join_handle<> b = corio::spawn(get_then_yield(q, pb));
    co_await corio::yield_now();
    q.close();
    CHECK_THROWS_AS(co_await a, queue_closed);
    CHECK_THROWS_AS(co_await b, queue_closed);
    CHECK(pa.closed);
    CHECK(pb.closed);
    CHECK_FALSE(pa.done);
}

CORIO_TEST_CASE("bounded_queue: get drains the items left after close, then throws queue_closed",
                "[bounded_queue][close]") {
    bounded_queue<int> q{3};
    co_await q.put(1);
    co_await q.put(2);
    co_await q.put(3);
    q.close();
    int a = co_await q.get();
    std::optional<int> b = q.try_get();
    int c = co_await q.get();
    CHECK(a == 1);
    CHECK(b == 2);
    CHECK(c == 3);
    CHECK_THROWS_AS(co_await q.get(), queue_closed);
    CHECK_FALSE(q.try_get().has_value());
    q.close(); // closing twice changes nothing
    CHECK_THROWS_AS(co_await q.get(), queue_closed);
}

CORIO_TEST_CASE("bounded_queue: a getter cancelled before an item arrives leaves the queue and "
                "takes none",
                "[bounded_queue][cancel]") {
    bounded_queue<int> q{2};
    probe pa;
    probe pb;
    join_handle<> a = corio::spawn(get_then_yield(q, pa));
    join_handle<> b = corio::spawn(get_then_yield(q, pb));
    co_await corio::yield_now();
    CHECK(a.cancel());
    CHECK_THROWS_AS(co_await a, cancelled_error);
    CHECK(pa.cancelled_waiting);
    CHECK_FALSE(pa.done);
    co_await q.put(5); // goes to b, not to the cancelled a
    CHECK(q.size() == 0);
    co_await b;
    CHECK(pb.item == 5);
    co_await q.put(6); // nobody waits any more: buffered
    CHECK(q.size() == 1);
}

CORIO_TEST_CASE("bounded_queue: a getter cancelled after it was handed an item returns it and "
                "throws at its next suspension",
                "[bounded_queue][cancel]") {
    bounded_queue<int> q{2};
    probe pa;
    probe pb;
    join_handle<> a = corio::spawn(get_then_yield(q, pa));
    join_handle<> b = corio::spawn(get_then_yield(q, pb));
    co_await corio::yield_now();
    CHECK(q.try_put(7)); // handed to a...
    CHECK(a.cancel());   // ...which is cancelled before it resumes
    CHECK(q.size() == 0);
    CHECK_THROWS_AS(co_await a, cancelled_error);
    CHECK(pa.done);
    CHECK(pa.item == 7); // the item was not lost
    CHECK(pa.cancelled_after);
    CHECK_FALSE(pa.cancelled_waiting);
    co_await q.put(8);
    co_await b;
    CHECK(pb.item == 8);
}

CORIO_TEST_CASE("bounded_queue: a putter cancelled before it was admitted leaves and its item is "
                "never enqueued",
                "[bounded_queue][cancel]") {
    bounded_queue<int> q{1};
    co_await q.put(1);
    probe pa;
    probe pb;
    join_handle<> a = corio::spawn(put_then_yield(q, 2, pa));
    join_handle<> b = corio::spawn(put_then_yield(q, 3, pb));
    co_await corio::yield_now();
    CHECK(a.cancel());
    CHECK_THROWS_AS(co_await a, cancelled_error);
    CHECK(pa.cancelled_waiting);
    CHECK_FALSE(pa.done);
    CHECK(q.size() == 1);
    int first = co_await q.get(); // b's item takes the freed slot, not a's
    int second = co_await q.get();
    CHECK(first == 1);
    CHECK(second == 3);
    co_await b;
    CHECK(pb.done);
    CHECK(q.empty());

    // The cancelled putter's item is destroyed, not leaked.
    counted::reset();
    {
        bounded_queue<std::unique_ptr<counted>> cq{1};
        co_await cq.put(std::make_unique<counted>());
        bool cancelled = false;
        join_handle<> c = corio::spawn(put_counted(cq, cancelled));
        co_await corio::yield_now();
        CHECK(counted::alive == 2);
        c.cancel();
        CHECK_THROWS_AS(co_await c, cancelled_error);
        CHECK(cancelled);
        CHECK(counted::alive == 1);
        CHECK(cq.size() == 1);
    }
    CHECK(counted::alive == 0);
}

CORIO_TEST_CASE("bounded_queue: a putter cancelled after its item was admitted keeps it queued "
                "and throws at its next suspension",
                "[bounded_queue][cancel]") {
    bounded_queue<int> q{1};
    co_await q.put(1);
    probe pa;
    join_handle<> a = corio::spawn(put_then_yield(q, 2, pa));
    co_await corio::yield_now();
    std::optional<int> first = q.try_get(); // admits a's item...
    CHECK(first == 1);
    CHECK(a.cancel()); // ...and a is cancelled before it resumes
    CHECK(q.size() == 1);
    CHECK_THROWS_AS(co_await a, cancelled_error);
    CHECK(pa.done); // its put returned
    CHECK(pa.cancelled_after);
    CHECK_FALSE(pa.cancelled_waiting);
    int second = co_await q.get();
    CHECK(second == 2); // the item was not lost
}

CORIO_TEST_CASE("bounded_queue: a task cancelled before it waits throws at put or get without "
                "touching the queue",
                "[bounded_queue][cancel]") {
    bounded_queue<int> q{1};
    probe pg;
    join_handle<> g = corio::spawn(get_then_yield(q, pg));
    CHECK(g.cancel());
    CHECK_THROWS_AS(co_await g, cancelled_error);
    CHECK(pg.cancelled_waiting);
    co_await q.put(1);
    probe pp;
    join_handle<> p = corio::spawn(put_then_yield(q, 2, pp));
    CHECK(p.cancel());
    CHECK_THROWS_AS(co_await p, cancelled_error);
    CHECK(pp.cancelled_waiting);
    CHECK(q.size() == 1);
    int v = co_await q.get();
    CHECK(v == 1);
    CHECK(q.empty());
}

CORIO_TEST_CASE("bounded_queue: move-only items are moved through and none outlives the queue",
                "[bounded_queue]") {
    counted::reset();
    {
        bounded_queue<std::unique_ptr<counted>> q{2};
        co_await q.put(std::make_unique<counted>());
        CHECK(q.try_put(std::make_unique<counted>()));
        CHECK(q.full());
        CHECK(counted::alive == 2);
        std::unique_ptr<counted> a = co_await q.get();
        CHECK(a != nullptr);
        CHECK(counted::alive == 2);
        a.reset();
        CHECK(counted::alive == 1);
        co_await q.put(std::make_unique<counted>());
        q.close();
        CHECK(counted::alive == 2); // still queued
    }
    CHECK(counted::alive == 0); // destroying the queue destroyed what was left
}

CORIO_TEST_CASE("bounded_queue: a try_put that fails leaves the moved-in item with the caller",
                "[bounded_queue][regression]") {
    // try_put takes its item by reference and moves from it only on success, so a failed
    // try_put (a full or closed queue) leaves a move-only item with the caller.
    bounded_queue<std::unique_ptr<int>> q{1};
    CHECK(q.try_put(std::make_unique<int>(1)));
    std::unique_ptr<int> keep = std::make_unique<int>(2);
    CHECK_FALSE(q.try_put(std::move(keep)));
    CHECK(keep != nullptr); // NOLINT(bugprone-use-after-move): the item should still be here
    co_return;
}

namespace {

struct stress_actor {
    enum class stage { created, waiting, after, done };
    stage at = stage::created;
    bool is_putter = false;
    int item = -1;     // the putter's item, or what the getter got
    bool done = false; // its put or get returned
    bool threw = false;
    bool cancelled_while_waiting = false; // cancel() was called while it was in put or get
};

/// Marks an actor done however its coroutine ends.
class done_on_exit {
public:
    explicit done_on_exit(stress_actor& a) noexcept : a_(a) {}
    done_on_exit(const done_on_exit&) = delete;
    done_on_exit& operator=(const done_on_exit&) = delete;
    ~done_on_exit() { a_.at = stress_actor::stage::done; }

private:
    stress_actor& a_;
};

task<> stress_putter(bounded_queue<int>& q, stress_actor& a, int yields_after) {
    done_on_exit mark_done{a};
    a.at = stress_actor::stage::waiting;
    try {
        co_await q.put(a.item);
    } catch (const cancelled_error&) {
        a.threw = true;
        throw;
    }
    a.done = true;
    a.at = stress_actor::stage::after;
    for (int i = 0; i < yields_after; ++i)
        co_await corio::yield_now();
}

task<> stress_getter(bounded_queue<int>& q, stress_actor& a, int yields_after) {
    done_on_exit mark_done{a};
    a.at = stress_actor::stage::waiting;
    try {
        a.item = co_await q.get();
    } catch (const cancelled_error&) {
        a.threw = true;
        throw;
    }
    a.done = true;
    q.task_done();
    a.at = stress_actor::stage::after;
    for (int i = 0; i < yields_after; ++i)
        co_await corio::yield_now();
}

task<> queue_stress(std::uint32_t seed) {
    std::mt19937 rng{seed};
    bounded_queue<int> q{4};
    std::deque<stress_actor> actors; // stable addresses
    std::vector<join_handle<>> handles;
    std::vector<int> try_put_items;
    std::vector<int> try_got;
    std::size_t oldest = 0;
    int next_item = 0;
    for (int op = 0; op < 10'000; ++op) {
        const unsigned r = rng() % 100;
        const int yields_after = static_cast<int>(rng() % 3);
        if (r < 30) {
            actors.emplace_back();
            actors.back().is_putter = true;
            actors.back().item = next_item++;
            handles.push_back(corio::spawn(stress_putter(q, actors.back(), yields_after)));
        } else if (r < 60) {
            actors.emplace_back();
            handles.push_back(corio::spawn(stress_getter(q, actors.back(), yields_after)));
        } else if (r < 75) { // cancel an old or a recent actor, whatever it is doing
            while (oldest < actors.size() && actors[oldest].at == stress_actor::stage::done)
                ++oldest;
            if (oldest < actors.size()) {
                const std::size_t live = actors.size() - oldest;
                const std::size_t span = rng() % std::min<std::size_t>(live, 6);
                const std::size_t i = rng() % 2 == 0 ? oldest + span : actors.size() - 1 - span;
                const bool waiting = actors[i].at == stress_actor::stage::waiting;
                if (handles[i].cancel() && waiting)
                    actors[i].cancelled_while_waiting = true;
            }
        } else if (r < 78) {
            const int item = next_item++;
            if (q.try_put(item))
                try_put_items.push_back(item);
        } else if (r < 81) {
            if (std::optional<int> got = q.try_get()) {
                try_got.push_back(*got);
                q.task_done();
            }
        } else {
            co_await corio::yield_now();
        }
        CHECK(q.size() <= q.capacity());
    }
    // Whoever still waits: getters get what is queued, putters wait for room. Feed and drain
    // until everyone is done.
    for (;;) {
        while (oldest < actors.size() && actors[oldest].at == stress_actor::stage::done)
            ++oldest;
        if (oldest == actors.size())
            break;
        if (std::optional<int> got = q.try_get()) {
            try_got.push_back(*got);
            q.task_done();
        } else if (q.try_put(next_item)) { // a getter waits for it
            try_put_items.push_back(next_item++);
        }
        co_await corio::yield_now();
    }
    for (join_handle<>& h : handles) {
        try {
            co_await h;
        } catch (const cancelled_error&) {
        }
    }
    while (std::optional<int> got = q.try_get()) {
        try_got.push_back(*got);
        q.task_done();
    }

    std::vector<int> put_items = try_put_items;
    std::vector<int> got_items = try_got;
    std::vector<int> dropped_items; // cancelled before they were admitted
    int puts_threw = 0;
    int gets_threw = 0;
    int admitted_then_cancelled = 0;
    int handed_then_cancelled = 0;
    for (const stress_actor& a : actors) {
        CHECK(a.at == stress_actor::stage::done);
        CHECK(a.done != a.threw);
        if (a.is_putter) {
            (a.done ? put_items : dropped_items).push_back(a.item);
            puts_threw += a.threw ? 1 : 0;
            admitted_then_cancelled += a.done && a.cancelled_while_waiting ? 1 : 0;
        } else {
            if (a.done)
                got_items.push_back(a.item);
            gets_threw += a.threw ? 1 : 0;
            handed_then_cancelled += a.done && a.cancelled_while_waiting ? 1 : 0;
        }
    }
    std::sort(put_items.begin(), put_items.end());
    std::sort(got_items.begin(), got_items.end());
    std::sort(dropped_items.begin(), dropped_items.end());
    INFO("actors " << actors.size() << ", put " << put_items.size() << ", got " << got_items.size()
                   << ", puts cancelled " << puts_threw << ", gets cancelled " << gets_threw
                   << ", admitted then cancelled " << admitted_then_cancelled
                   << ", handed then cancelled " << handed_then_cancelled);
    CHECK(got_items == put_items); // every item put was got exactly once: none lost, none twice
    std::vector<int> both;
    std::set_intersection(got_items.begin(), got_items.end(), dropped_items.begin(),
                          dropped_items.end(), std::back_inserter(both));
    CHECK(both.empty()); // no item of a cancelled put was ever enqueued
    CHECK(q.empty());
    co_await q.join(); // every item got its task_done
    CHECK(puts_threw > 0);
    CHECK(gets_threw > 0);
    CHECK(admitted_then_cancelled > 0);
    CHECK(handed_then_cancelled > 0);
}

} // namespace

TEST_CASE("bounded_queue: 10000 random operations with random cancels lose and duplicate no item",
          "[bounded_queue][cancel][stress]") {
    const std::uint32_t seed = test_seed();
    INFO("seed " << seed << " (replay with CORIO_TEST_SEED=" << seed << ")");
    corio::test::run(queue_stress(seed));
}

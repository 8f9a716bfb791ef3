// SPDX-License-Identifier: MIT
// corio::redis::work_queue and corio::redis::set against a real redis-server that each case
// starts on a free port (support/redis_server.hpp) and stops; the crash case forks workers
// (support/fork.hpp) and kills one with SIGKILL while it holds leases.

#include "support/corio_test.hpp"
#include "support/fork.hpp"
#include "support/redis_server.hpp"

#include <corio/corio.hpp>
#include <corio/redis.hpp>

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using corio::test::redis_server;

namespace {

std::unique_ptr<redis_server> start_server() {
    if (!redis_server::available())
        return nullptr;
    return std::make_unique<redis_server>();
}

#define REDIS_SERVER_OR_SKIP(name)                                                                 \
    std::unique_ptr<redis_server> name = start_server();                                           \
    if (!name)                                                                                     \
    CORIO_CO_SKIP(redis_server::unavailable_reason())

corio::redis::client_options options_for(const std::string& address) {
    corio::redis::client_options o;
    o.address = address;
    return o;
}

corio::redis::work_queue_options worker(std::string consumer,
                                        std::chrono::milliseconds visibility = 30s) {
    corio::redis::work_queue_options o;
    o.consumer = std::move(consumer);
    o.visibility_timeout = visibility;
    o.reclaim_interval = 20ms;
    return o;
}

struct point {
    std::int32_t x;
    std::int32_t y;
};

using string_queue = corio::redis::work_queue<std::string>;

} // namespace

CORIO_TEST_CASE("redis work_queue: put, get and ack, first in first out, binary-safe", "[redis]") {
    REDIS_SERVER_OR_SKIP(srv);
    corio::redis::client r{options_for(srv->address())};
    string_queue q{r, "jobs", worker("a")};
    const std::string binary("a\0b\r\nc", 6);
    co_await q.put("first");
    co_await q.put(binary);
    co_await q.put("third");
    const auto length = co_await q.size();
    CHECK(length == 3);
    std::vector<std::string> got;
    for (int i = 0; i < 3; ++i) {
        string_queue::lease l = co_await q.get();
        CHECK(l.deliveries() == 1);
        got.push_back(l.value());
        const auto pending = co_await q.pending();
        CHECK(pending == 1);
        const bool acked = co_await l.ack();
        CHECK(acked);
        CHECK(l.done());
        const bool acked_2 = co_await l.ack();
        CHECK_FALSE(acked_2); // once only
    }
    CHECK(got == std::vector<std::string>{"first", binary, "third"});
    const auto length_2 = co_await q.size();
    CHECK(length_2 == 0);
    const auto pending_2 = co_await q.pending();
    CHECK(pending_2 == 0);
    const auto ready = co_await q.try_get();
    CHECK_FALSE(ready.has_value());

    // A trivially copyable item travels as its bytes.
    corio::redis::work_queue<point> points{r, "points", worker("a")};
    co_await points.put(point{3, -4});
    auto p = co_await points.get();
    CHECK(p->x == 3);
    CHECK(p->y == -4);
    const bool acked_3 = co_await p.ack();
    CHECK(acked_3);
}

CORIO_TEST_CASE("redis work_queue: get waits for a put, and a consumer group shares the items",
                "[redis]") {
    REDIS_SERVER_OR_SKIP(srv);
    corio::redis::client r{options_for(srv->address())};
    string_queue a{r, "jobs", worker("a")};
    string_queue b{r, "jobs", worker("b")};
    static int taken_by_a;
    static int taken_by_b;
    taken_by_a = taken_by_b = 0;
    auto drain = [](string_queue& q, int& taken) -> corio::task<> {
        for (;;) {
            auto l = co_await q.get();
            const bool stop = l.value() == "stop";
            taken += stop ? 0 : 1;
            (void)co_await l.ack();
            if (stop)
                co_return;
        }
    };
    auto produce = [](string_queue& q) -> corio::task<> {
        co_await corio::sleep_for(30ms); // both are waiting on the server now
        for (int i = 0; i < 200; ++i)
            co_await q.put("item " + std::to_string(i));
        co_await q.put("stop");
        co_await q.put("stop");
    };
    // One group: should a step fail, the others are cancelled before this frame ends.
    corio::task_group workers;
    workers.spawn(drain(a, taken_by_a));
    workers.spawn(drain(b, taken_by_b));
    workers.spawn(produce(a));
    co_await workers.join();
    CHECK(taken_by_a + taken_by_b == 200);
    const auto length = co_await a.size();
    CHECK(length == 0);
    const auto pending = co_await a.pending();
    CHECK(pending == 0);
}

CORIO_TEST_CASE("redis work_queue: a dropped lease comes back after the visibility timeout, "
                "and its late ack is refused",
                "[redis]") {
    REDIS_SERVER_OR_SKIP(srv);
    corio::redis::client r{options_for(srv->address())};
    string_queue a{r, "jobs", worker("a", 1s)};
    string_queue b{r, "jobs", worker("b", 1s)};
    co_await a.put("job");
    std::optional<string_queue::lease> first{co_await a.get()};
    const auto ready = co_await b.try_get();
    CHECK_FALSE(ready.has_value()); // leased: not visible
    // a's lease lapses (a is slow, or dead); b takes the item again.
    string_queue::lease second = co_await b.get();
    CHECK(second.value() == "job");
    CHECK(second.deliveries() == 2);
    const bool acked = co_await first->ack();
    CHECK_FALSE(acked); // lapsed: b holds it now
    const auto length = co_await a.size();
    CHECK(length == 1);
    const bool acked_2 = co_await second.ack();
    CHECK(acked_2);
    const auto length_2 = co_await a.size();
    CHECK(length_2 == 0);

    // release() gives an item back at once; renew() restarts the lease's clock.
    co_await a.put("again");
    auto l = co_await a.get();
    const bool released = co_await l.release();
    CHECK(released);
    auto back = co_await b.try_get();
    REQUIRE(back.has_value());
    CHECK(back->value() == "again");
    CHECK(back->deliveries() == 2);
    co_await corio::sleep_for(50ms);
    const auto idle_of = [](redis_server& s) {
        // XPENDING jobs workers - + 1: id, consumer, idle ms, deliveries (one per line)
        const std::string out = s.cli({"XPENDING", "jobs", "workers", "-", "+", "1"});
        return std::stoll(corio::test::lines_of(out + "\n").at(2));
    };
    const long long before = idle_of(*srv);
    const bool renewed = co_await back->renew();
    CHECK(renewed);
    const long long after = idle_of(*srv);
    CHECK(before >= 50);
    CHECK(after < before);
    const bool acked_3 = co_await back->ack();
    CHECK(acked_3);
}

CORIO_TEST_CASE("redis work_queue: an item delivered max_deliveries times goes to the dead "
                "letters, and so does one the codec refuses",
                "[redis]") {
    REDIS_SERVER_OR_SKIP(srv);
    corio::redis::client r{options_for(srv->address())};
    auto o = worker("a", 30ms);
    o.max_deliveries = 2;
    string_queue q{r, "jobs", o};
    co_await q.put("poison");
    for (long delivery = 1; delivery <= 2; ++delivery) {
        auto l = co_await q.get(); // dropped unacknowledged: the worker "failed"
        CHECK(l.deliveries() == delivery);
    }
    co_await corio::sleep_for(60ms);
    const auto ready = co_await q.try_get();
    CHECK_FALSE(ready.has_value());
    const auto dead_letters = co_await q.dead_count();
    CHECK(dead_letters == 1);
    const auto length = co_await q.size();
    CHECK(length == 0);
    const auto pending = co_await q.pending();
    CHECK(pending == 0);
    const std::string dead = srv->cli({"XRANGE", "jobs:dead", "-", "+"});
    CHECK(corio::test::contains(dead, "poison"));
    CHECK(corio::test::contains(dead, "delivered 3 times without an ack"));

    // Bytes that are not a `point` (3 bytes for an 8-byte item): skipped, dead-lettered with
    // the codec's reason, and the next item is delivered.
    corio::redis::work_queue<point> points{r, "points", worker("a")};
    co_await points.put(point{1, 2}); // creates the group
    auto first = co_await points.get();
    const bool acked = co_await first.ack();
    CHECK(acked);
    (void)co_await r.command("XADD", "points", "*", "v", "abc");
    co_await points.put(point{5, 6});
    auto next = co_await points.get();
    CHECK(next->x == 5);
    const bool acked_2 = co_await next.ack();
    CHECK(acked_2);
    const auto dead_letters_2 = co_await points.dead_count();
    CHECK(dead_letters_2 == 1);
    const std::string refused = srv->cli({"XRANGE", "points:dead", "-", "+"});
    CHECK(corio::test::contains(refused, "the codec refused it"));
    CHECK(corio::test::contains(refused, "3 bytes"));
}

CORIO_TEST_CASE("redis work_queue: put waits while the stream holds max_length items", "[redis]") {
    REDIS_SERVER_OR_SKIP(srv);
    corio::redis::client r{options_for(srv->address())};
    auto o = worker("a");
    o.max_length = 3;
    string_queue q{r, "jobs", o};
    for (int i = 0; i < 3; ++i)
        co_await q.put("job " + std::to_string(i));
    static bool fourth_done;
    fourth_done = false;
    auto put_fourth = [](string_queue& queue) -> corio::task<> {
        co_await queue.put("job 3");
        fourth_done = true;
    };
    // Each part runs in a group with its producer: should a step fail, the producer is
    // cancelled before this frame ends.
    auto make_room = [](string_queue& queue) -> corio::task<> {
        co_await corio::sleep_for(50ms);
        CHECK_FALSE(fourth_done);
        auto l = co_await queue.get(); // a lease still counts: the item is not done
        co_await corio::sleep_for(20ms);
        CHECK_FALSE(fourth_done);
        const auto length = co_await queue.size();
        CHECK(length == 3);
        const bool acked = co_await l.ack();
        CHECK(acked);
    };
    {
        corio::task_group part;
        part.spawn(put_fourth(q));
        part.spawn(make_room(q));
        co_await part.join();
    }
    CHECK(fourth_done);
    const auto length = co_await q.size();
    CHECK(length == 3);

    // Another process's ack makes room too (seen by looking again).
    corio::redis::client from_afar{options_for(srv->address())};
    string_queue far{from_afar, "jobs", worker("b")};
    fourth_done = false;
    auto make_room_afar = [](string_queue& queue) -> corio::task<> {
        co_await corio::sleep_for(20ms);
        CHECK_FALSE(fourth_done);
        auto remote = co_await queue.get();
        const bool acked = co_await remote.ack();
        CHECK(acked);
    };
    {
        corio::task_group part;
        part.spawn(put_fourth(q));
        part.spawn(make_room_afar(far));
        co_await part.join();
    }
    CHECK(fourth_done);
}

CORIO_TEST_CASE("redis work_queue: bad options are refused with their names", "[redis]") {
    corio::redis::client r{options_for("127.0.0.1:1")};
    auto o = worker("a");
    o.max_deliveries = 0;
    CHECK(corio::test::contains(
        corio::test::message_of<std::invalid_argument>([&] { string_queue q(r, "jobs", o); }),
        "max_deliveries must be at least 1"));
    o = worker("a", 0ms);
    CHECK(corio::test::contains(
        corio::test::message_of<std::invalid_argument>([&] { string_queue q(r, "jobs", o); }),
        "visibility_timeout must be positive"));
    CHECK(corio::test::contains(
        corio::test::message_of<std::invalid_argument>([&] { string_queue q(r, "", worker("a")); }),
        "the stream's name is empty"));
    co_return;
}

CORIO_TEST_CASE("redis set: add says whether the member was new, once across racers", "[redis]") {
    REDIS_SERVER_OR_SKIP(srv);
    corio::redis::client r{options_for(srv->address())};
    corio::redis::set seen{r, "seen"};
    const bool added = co_await seen.add("https://a/");
    CHECK(added);
    const bool added_2 = co_await seen.add("https://a/");
    CHECK_FALSE(added_2);
    const bool present = co_await seen.contains("https://a/");
    CHECK(present);
    const bool present_2 = co_await seen.contains("https://b/");
    CHECK_FALSE(present_2);
    // 100 racers adding 10 URLs each: every URL is new to exactly one of them.
    static int fresh;
    fresh = 0;
    auto racer = [](corio::redis::set& s) -> corio::task<> {
        for (int i = 0; i < 10; ++i)
            fresh += (co_await s.add("url " + std::to_string(i))) ? 1 : 0;
    };
    corio::task_group racers;
    for (int i = 0; i < 100; ++i)
        racers.spawn(racer(seen));
    co_await racers.join();
    CHECK(fresh == 10);
    const auto length = co_await seen.size();
    CHECK(length == 11);
    const bool removed = co_await seen.remove("https://a/");
    CHECK(removed);
    const bool removed_2 = co_await seen.remove("https://a/");
    CHECK_FALSE(removed_2);
    co_await seen.clear();
    const auto length_2 = co_await seen.size();
    CHECK(length_2 == 0);
}

namespace {

/// A worker process that leases `count` items, reports them ("held <item>"), then hangs
/// without acknowledging: the parent kills it.
corio::task<int> hold_and_hang(std::string address, int count, int fd) {
    corio::redis::client r{options_for(address)};
    string_queue q{r, "crawl", worker("victim", 300ms)};
    std::vector<string_queue::lease> held;
    std::string report;
    for (int i = 0; i < count; ++i) {
        held.push_back(co_await q.get());
        report += "held " + held.back().value() + "\n";
    }
    report += "ready\n";
    if (!corio::test::write_all(fd, report))
        co_return 1;
    co_await corio::sleep_for(1h);
    co_return 0;
}

/// A worker process that processes items until the stream is empty, reporting each it
/// acknowledged ("acked <item> <deliveries>") and each whose ack was refused.
corio::task<int> work_until_empty(std::string address, std::string name, int fd) {
    corio::redis::client r{options_for(address)};
    string_queue q{r, "crawl", worker(std::move(name), 300ms)};
    std::string report;
    while (co_await q.size() > 0) {
        auto l = co_await q.try_get();
        if (!l) {
            co_await corio::sleep_for(10ms);
            continue;
        }
        const bool acked = co_await l->ack();
        report += (acked ? "acked " : "refused ") + l->value() + " " +
                  std::to_string(l->deliveries()) + "\n";
    }
    co_return corio::test::write_all(fd, report) ? 0 : 1;
}

} // namespace

TEST_CASE("redis work_queue: a worker killed mid-lease loses nothing, and nothing is "
          "acknowledged twice",
          "[redis]") {
    if (!redis_server::available())
        CORIO_SKIP(redis_server::unavailable_reason());
    auto dog = corio::test::watchdog{120};
    redis_server srv;
    constexpr int items = 300;
    corio::run([](std::string address) -> corio::task<> {
        corio::redis::client r{options_for(address)};
        string_queue q{r, "crawl", worker("producer", 300ms)};
        for (int i = 0; i < items; ++i)
            co_await q.put("page-" + std::to_string(i));
    }(srv.address()));

    const std::string address = srv.address();
    auto victim =
        corio::test::fork_child([&](int fd) { return corio::run(hold_and_hang(address, 5, fd)); });
    const std::string held_report = corio::test::read_report(victim.report, "ready\n");
    ::kill(victim.pid, SIGKILL);
    CHECK(corio::test::wait_child(victim) == -1);
    std::set<std::string> held;
    for (const std::string& line : corio::test::lines_of(held_report))
        if (line.starts_with("held "))
            held.insert(line.substr(5));
    REQUIRE(held.size() == 5);

    std::vector<corio::test::child_process> workers;
    for (int w = 0; w < 3; ++w)
        workers.push_back(corio::test::fork_child([&, w](int fd) {
            return corio::run(work_until_empty(address, "worker-" + std::to_string(w), fd));
        }));
    std::map<std::string, int> acks;
    std::map<std::string, int> deliveries;
    int refused = 0;
    for (const auto& c : workers) {
        const std::string report = corio::test::read_report(c.report);
        CHECK(corio::test::wait_child(c) == 0);
        for (const std::string& line : corio::test::lines_of(report)) {
            const auto space = line.rfind(' ');
            if (line.starts_with("acked ")) {
                const std::string item = line.substr(6, space - 6);
                ++acks[item];
                deliveries[item] = std::stoi(line.substr(space + 1));
            } else {
                ++refused;
            }
        }
    }
    CHECK(acks.size() == static_cast<std::size_t>(items)); // none lost
    int twice = 0;
    for (const auto& [item, n] : acks)
        twice += n > 1 ? 1 : 0;
    CHECK(twice == 0); // none acknowledged twice
    (void)refused;     // a lease that lapsed under a slow worker: its item is acked by another
    for (const std::string& item : held)
        CHECK(deliveries[item] >= 2); // the victim's items came back
    CHECK(srv.cli({"XLEN", "crawl"}) == "0");
    CHECK(srv.cli({"XLEN", "crawl:dead"}) == "0");
}

CORIO_TEST_CASE("redis work_queue: a get cancelled while waiting loses nothing", "[redis]") {
    REDIS_SERVER_OR_SKIP(srv);
    corio::redis::client r{options_for(srv->address())};
    string_queue q{r, "jobs", worker("a", 200ms)};
    for (int round = 0; round < 20; ++round) {
        bool timed_out = false;
        try {
            (void)co_await corio::timeout(5ms, q.get());
        } catch (const corio::timeout_error&) {
            timed_out = true;
        }
        CHECK(timed_out);
        // The put may reach the server before it saw the cancelled wait's connection close,
        // and be delivered to it: then it is pending, and comes back after the timeout.
        co_await q.put("job " + std::to_string(round));
        auto l = co_await q.get();
        CHECK(l.value() == "job " + std::to_string(round));
        const bool acked = co_await l.ack();
        CHECK(acked);
    }
    const auto left = co_await q.size();
    CHECK(left == 0);
}

CORIO_TEST_CASE("redis work_queue: a stream deleted by hand is created again", "[redis]") {
    REDIS_SERVER_OR_SKIP(srv);
    corio::redis::client r{options_for(srv->address())};
    string_queue q{r, "jobs", worker("a")};
    co_await q.put("before");
    auto first = co_await q.get();
    const bool acked = co_await first.ack();
    CHECK(acked);
    (void)co_await r.command("DEL", "jobs"); // the stream and its group are gone
    const auto ready = co_await q.try_get(); // NOGROUP: created again, then empty
    CHECK_FALSE(ready.has_value());
    static bool got;
    got = false;
    auto take = [](string_queue& queue) -> corio::task<> {
        auto l = co_await queue.get(); // waiting on the server when the stream goes
        got = l.value() == "after";
        (void)co_await l.ack();
    };
    auto delete_then_give = [](corio::redis::client& c, string_queue& queue) -> corio::task<> {
        co_await corio::sleep_for(50ms);
        (void)co_await c.command("DEL", "jobs");
        co_await corio::sleep_for(50ms);
        co_await queue.put("after");
    };
    corio::task_group both;
    both.spawn(take(q));
    both.spawn(delete_then_give(r, q));
    co_await both.join();
    CHECK(got);
}

CORIO_TEST_CASE("redis work_queue: put_if_new puts a member once, marked seen in the same step",
                "[redis]") {
    REDIS_SERVER_OR_SKIP(srv);
    corio::redis::client r{options_for(srv->address())};
    string_queue q{r, "frontier", worker("a")};
    corio::redis::set seen{r, "seen"};
    const bool first = co_await q.put_if_new(seen, "https://a/");
    CHECK(first);
    const bool again = co_await q.put_if_new(seen, "https://a/");
    CHECK_FALSE(again);
    const bool present = co_await seen.contains("https://a/");
    CHECK(present);
    // 50 racers putting the same 10 URLs: each is queued exactly once.
    static int queued;
    queued = 0;
    auto racer = [](string_queue& queue, corio::redis::set& s) -> corio::task<> {
        for (int i = 0; i < 10; ++i) {
            const bool put = co_await queue.put_if_new(s, "url " + std::to_string(i));
            queued += put ? 1 : 0;
        }
    };
    corio::task_group racers;
    for (int i = 0; i < 50; ++i)
        racers.spawn(racer(q, seen));
    co_await racers.join();
    CHECK(queued == 10);
    const auto length = co_await q.size();
    CHECK(length == 11);
    // A member apart from the item: the identity is the URL, the item carries more.
    const bool with_payload = co_await q.put_if_new(seen, "https://b/", "https://b/ depth=3");
    CHECK(with_payload);
    auto l = co_await q.get();
    CHECK(l.value() == "https://a/");
    const bool acked = co_await l.ack();
    CHECK(acked);

    // On a bounded stream it waits for room, and a member already seen does not wait.
    auto o = worker("a");
    o.max_length = 1;
    string_queue bounded{r, "bounded", o};
    co_await bounded.put("only");
    const bool seen_already = co_await bounded.put_if_new(seen, "https://a/");
    CHECK_FALSE(seen_already); // full, but nothing to put
    static bool fresh_put;
    fresh_put = false;
    auto put_fresh = [](string_queue& queue, corio::redis::set& s) -> corio::task<> {
        fresh_put = co_await queue.put_if_new(s, "https://c/");
    };
    auto make_room = [](string_queue& queue) -> corio::task<> {
        co_await corio::sleep_for(30ms);
        CHECK_FALSE(fresh_put);
        auto only = co_await queue.get();
        (void)co_await only.ack();
    };
    corio::task_group part;
    part.spawn(put_fresh(bounded, seen));
    part.spawn(make_room(bounded));
    co_await part.join();
    CHECK(fresh_put);
}

CORIO_TEST_CASE("redis work_queue: renewing keeps a lease through work longer than its timeout",
                "[redis]") {
    REDIS_SERVER_OR_SKIP(srv);
    corio::redis::client r{options_for(srv->address())};
    string_queue a{r, "jobs", worker("a", 300ms)};
    string_queue b{r, "jobs", worker("b", 300ms)};
    co_await a.put("long job");
    auto l = co_await a.get();
    static int polls;
    polls = 0;
    // The long work: 1.2 s (four visibility timeouts), looking all along whether b can take
    // the item (it must not).
    auto long_work = [](string_queue& other) -> corio::task<int> {
        int stolen = 0;
        for (int i = 0; i < 12; ++i) {
            co_await corio::sleep_for(100ms);
            auto taken = co_await other.try_get();
            stolen += taken ? 1 : 0;
            ++polls;
        }
        co_return stolen;
    };
    const int stolen = co_await l.renewing(long_work(b));
    CHECK(stolen == 0);
    CHECK(polls == 12);
    const bool acked = co_await l.ack();
    CHECK(acked);
    CHECK(l.deliveries() == 1);

    // A failing work ends the renewals too, and its error comes out.
    co_await a.put("failing job");
    auto f = co_await a.get();
    auto failing = []() -> corio::task<> {
        co_await corio::sleep_for(10ms);
        throw std::runtime_error("the work failed");
    };
    bool threw = false;
    try {
        co_await f.renewing(failing());
    } catch (const std::runtime_error& e) {
        threw = std::string(e.what()) == "the work failed";
    }
    CHECK(threw);
}

CORIO_TEST_CASE("redis work_queue: prune_consumers removes idle consumers that hold nothing",
                "[redis]") {
    REDIS_SERVER_OR_SKIP(srv);
    corio::redis::client r{options_for(srv->address())};
    string_queue busy{r, "jobs", worker("busy")};
    string_queue done{r, "jobs", worker("done")};
    co_await busy.put("held");
    co_await busy.put("finished");
    auto held = co_await busy.get();
    auto finished = co_await done.get();
    const bool acked = co_await finished.ack();
    CHECK(acked);
    co_await corio::sleep_for(30ms);
    const std::size_t pruned = co_await busy.prune_consumers(20ms);
    CHECK(pruned == 1); // "done"; "busy" holds an item
    const std::string consumers = srv->cli({"XINFO", "CONSUMERS", "jobs", "workers"});
    CHECK(corio::test::contains(consumers, "busy"));
    CHECK_FALSE(corio::test::contains(consumers, "done"));
    const std::size_t none = co_await busy.prune_consumers(1h);
    CHECK(none == 0);
    const bool still_held = co_await held.ack();
    CHECK(still_held);
}

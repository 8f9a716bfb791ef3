// SPDX-License-Identifier: MIT
// corio::redis's client against a real redis-server that each case starts on a free port
// (support/redis_server.hpp) and stops.

#include "support/corio_test.hpp"
#include "support/fork.hpp"
#include "support/redis_server.hpp"

#include <corio/corio.hpp>
#include <corio/redis.hpp>
#include <corio/redis/rate_limiter.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using corio::test::redis_server;

namespace {

std::unique_ptr<redis_server> start_server(const redis_server::options& o = {}) {
    if (!redis_server::available())
        return nullptr;
    return std::make_unique<redis_server>(o);
}

#define REDIS_SERVER_OR_SKIP(name, ...)                                                            \
    std::unique_ptr<redis_server> name = start_server(__VA_ARGS__);                                \
    if (!name)                                                                                     \
    CORIO_CO_SKIP(redis_server::unavailable_reason())

corio::redis::client_options options_for(const redis_server& srv) {
    corio::redis::client_options o;
    o.address = srv.address();
    return o;
}

} // namespace

CORIO_TEST_CASE("redis: SET and GET, binary-safe, and nil", "[redis]") {
    REDIS_SERVER_OR_SKIP(srv);
    corio::redis::client r{options_for(*srv)};
    co_await r.set("greeting", "hello");
    const auto hello = co_await r.get("greeting");
    CHECK(hello == "hello");
    const auto none = co_await r.get("missing");
    CHECK_FALSE(none.has_value());

    std::string binary(1 << 20, 'x');
    for (std::size_t i = 0; i < binary.size(); i += 997)
        binary[i] = static_cast<char>(i % 256); // NULs, CR, LF among them
    binary.replace(10, 4, "\r\n\0\n", 4);
    co_await r.set("blob", binary);
    const auto back = co_await r.get("blob");
    CHECK(back == binary);
    CHECK(srv->cli({"STRLEN", "blob"}) == std::to_string(binary.size()));

    const corio::redis::reply n = co_await r.command("INCRBY", "n", 41);
    CHECK(n.as_integer() == 41);
    const corio::redis::reply set_ex = co_await r.command("SET", "ttl", "v", "EX", 60);
    CHECK(set_ex.str() == "OK");
    CHECK(srv->cli({"TTL", "ttl"}) != "-1");
}

CORIO_TEST_CASE("redis: 10,000 concurrent commands are pipelined and answered in order",
                "[redis]") {
    REDIS_SERVER_OR_SKIP(srv);
    {
        // Many connections: every INCR gets its own reply, each number exactly once.
        corio::redis::client r{options_for(*srv)};
        std::vector<corio::task<corio::redis::reply>> incrs;
        for (int i = 0; i < 10'000; ++i)
            incrs.push_back(r.command("INCR", "counter"));
        const std::vector<corio::redis::reply> replies = co_await corio::gather(std::move(incrs));
        std::vector<int> seen(10'001, 0);
        for (const corio::redis::reply& v : replies)
            ++seen[static_cast<std::size_t>(v.as_integer())];
        CHECK(std::count(seen.begin() + 1, seen.end(), 1) == 10'000);
        CHECK(r.connections() <= r.options().max_connections);
        CHECK(r.connections() >= 1);
    }
    {
        // One connection: commands go out in the order they were made.
        corio::redis::client_options o = options_for(*srv);
        o.max_connections = 1;
        corio::redis::client r{o};
        std::vector<corio::task<corio::redis::reply>> pushes;
        for (int i = 0; i < 10'000; ++i)
            pushes.push_back(r.command("RPUSH", "list", i));
        const std::vector<corio::redis::reply> lengths = co_await corio::gather(std::move(pushes));
        int out_of_order = 0;
        for (std::size_t i = 0; i < lengths.size(); ++i)
            out_of_order += lengths[i].as_integer() == static_cast<long long>(i + 1) ? 0 : 1;
        CHECK(out_of_order == 0);
        const corio::redis::reply all = co_await r.command("LRANGE", "list", 0, -1);
        REQUIRE(all.size() == 10'000);
        int misplaced = 0;
        for (std::size_t i = 0; i < all.size(); ++i)
            misplaced += all[i].str() == std::to_string(i) ? 0 : 1;
        CHECK(misplaced == 0);
        CHECK(r.connections() == 1);
    }
}

CORIO_TEST_CASE("redis: a pipeline answers in order, error replies in their place", "[redis]") {
    REDIS_SERVER_OR_SKIP(srv);
    corio::redis::client r{options_for(*srv)};
    const std::vector<corio::redis::reply> replies =
        co_await r.pipeline([](corio::redis::pipeline_batch& p) {
            p.command("SET", "a", "1");
            p.command("INCR", "a");
            p.command("LPUSH", "a", "x"); // WRONGTYPE
            p.command("GET", "a");
        });
    REQUIRE(replies.size() == 4);
    CHECK(replies[0].str() == "OK");
    CHECK(replies[1].as_integer() == 2);
    CHECK(replies[2].is_error());
    CHECK(corio::test::contains(replies[2].str(), "WRONGTYPE"));
    CHECK(replies[3].str() == "2");
}

CORIO_TEST_CASE("redis: a server error names the command, not its arguments", "[redis]") {
    REDIS_SERVER_OR_SKIP(srv);
    corio::redis::client r{options_for(*srv)};
    co_await r.set("k", "secret-value");
    std::string wrongtype;
    try {
        (void)co_await r.command("LPUSH", "k", "secret-argument");
    } catch (const corio::redis::error& e) {
        CHECK(e.kind() == corio::redis::error_kind::server);
        wrongtype = e.what();
    }
    CHECK(corio::test::contains(wrongtype, "corio::redis LPUSH: WRONGTYPE"));
    CHECK_FALSE(corio::test::contains(wrongtype, "secret"));
    std::string unknown;
    try {
        (void)co_await r.command("NOSUCHCOMMAND", 1);
    } catch (const corio::redis::error& e) {
        unknown = e.what();
    }
    CHECK(corio::test::contains(unknown, "NOSUCHCOMMAND"));
    const corio::redis::reply v = co_await r.command("GET", "k");
    std::string type_error;
    try {
        (void)v.as_integer();
    } catch (const corio::redis::error& e) {
        type_error = e.what();
    }
    CHECK(corio::test::contains(type_error, "read as an integer, but it is string"));
}

CORIO_TEST_CASE("redis: a restart fails the commands in flight, and the next reconnects",
                "[redis]") {
    REDIS_SERVER_OR_SKIP(srv);
    corio::redis::client r{options_for(*srv)};
    co_await r.set("before", "1");
    // A command in flight while the server goes away: it fails, never silently retried.
    auto blocked = corio::spawn([](corio::redis::client& c) -> corio::task<> {
        (void)co_await c.command("BLPOP", "never", 0);
    }(r));
    for (int i = 0; i < 50 && srv->cli({"CLIENT", "LIST"}).find("cmd=blpop") == std::string::npos;
         ++i)
        co_await corio::sleep_for(10ms);
    srv->restart();
    std::string lost;
    try {
        co_await blocked;
    } catch (const corio::redis::connect_error& e) {
        lost = e.what();
    }
    CHECK(corio::test::contains(lost, "may have run"));
    // The next command reconnects (the data is gone: persistence is off).
    const auto after = co_await r.get("before");
    CHECK_FALSE(after.has_value());
    co_await r.set("after", "2");
    CHECK(srv->cli({"GET", "after"}) == "2");
}

CORIO_TEST_CASE("redis: a command timeout, and a cancelled command whose reply comes later",
                "[redis]") {
    REDIS_SERVER_OR_SKIP(srv);
    corio::redis::client_options o = options_for(*srv);
    o.command_timeout = 200ms;
    o.max_connections = 1;
    corio::redis::client r{o};
    co_await r.set("k", "v");
    srv->pause();
    std::string late;
    try {
        (void)co_await r.get("k");
    } catch (const corio::redis::timeout_error& e) {
        late = e.what();
    }
    srv->resume();
    CHECK(corio::test::contains(late, "command_timeout"));
    // The late reply to the timed-out GET is dropped; the next command gets its own.
    const corio::redis::reply n = co_await r.command("INCR", "n");
    CHECK(n.as_integer() == 1);

    // A blocking command has a connection of its own, so the commands below are not held up
    // behind it; cancelled, it closes that connection, and the server drops it.
    bool timed_out = false;
    try {
        (void)co_await corio::timeout(50ms, r.command("BLPOP", "queue", 0));
    } catch (const corio::timeout_error&) {
        timed_out = true;
    }
    CHECK(timed_out);
    const auto k_meanwhile = co_await r.get("k");
    CHECK(k_meanwhile == "v");
    bool dropped = false;
    for (int i = 0; i < 500 && !dropped; ++i) {
        dropped = srv->cli({"CLIENT", "LIST"}).find("cmd=blpop") == std::string::npos;
        if (!dropped)
            co_await corio::sleep_for(10ms);
    }
    CHECK(dropped);
    co_await r.command("RPUSH", "queue", "item");
    const auto k = co_await r.get("k");
    CHECK(k == "v");
    CHECK(srv->cli({"LLEN", "queue"}) == "1");
    const corio::redis::reply popped = co_await r.command("BLPOP", "queue", 0);
    CHECK(popped[1].str() == "item");
    CHECK(r.connections() == 1); // the blocking commands' connections are gone
}

CORIO_TEST_CASE("redis: connect errors, AUTH and SELECT", "[redis]") {
    redis_server::options secured;
    secured.password = "s3cret";
    REDIS_SERVER_OR_SKIP(srv, secured);
    {
        corio::redis::client_options o = options_for(*srv);
        o.password = "s3cret";
        o.db = 3;
        corio::redis::client r{o};
        co_await r.set("in3", "yes");
        CHECK(srv->cli({"-n", "3", "GET", "in3"}) == "yes");
    }
    {
        corio::redis::client_options o = options_for(*srv);
        o.password = "wrong";
        corio::redis::client r{o};
        std::string refused;
        try {
            co_await r.set("x", "1");
        } catch (const corio::redis::connect_error& e) {
            refused = e.what();
        }
        CHECK(corio::test::contains(refused, "AUTH"));
    }
    {
        corio::redis::client_options o;
        o.address = "127.0.0.1:" + std::to_string(corio::test::process_detail::free_port(
                                       corio::test::redis_detail::harness));
        corio::redis::client r{o};
        std::string nobody;
        try {
            co_await r.set("x", "1");
        } catch (const corio::redis::connect_error& e) {
            nobody = e.what();
        }
        CHECK(corio::test::contains(nobody, "cannot connect to " + o.address));
    }
}

CORIO_TEST_CASE("redis: eval runs a script by its SHA-1, sending it whole only once", "[redis]") {
    REDIS_SERVER_OR_SKIP(srv);
    corio::redis::client r{options_for(*srv)};
    const std::string script = "return redis.call('INCRBY', KEYS[1], ARGV[1])";
    const std::vector<std::string> keys{"counter"};
    const std::vector<std::string> by{"5"};
    const corio::redis::reply first = co_await r.eval(script, keys, by);
    CHECK(first.as_integer() == 5);
    // The server now knows it under the SHA-1 corio computed (SCRIPT LOAD's answer).
    const std::string sha = srv->cli({"SCRIPT", "LOAD", script});
    CHECK(sha == corio::redis::detail::sha1_hex(script));
    CHECK(srv->cli({"SCRIPT", "EXISTS", sha}) == "1");
    const corio::redis::reply second = co_await r.eval(script, keys, by);
    CHECK(second.as_integer() == 10);
    CHECK(corio::redis::detail::sha1_hex("abc") == "a9993e364706816aba3e25717850c26c9cd0d89d");
    CHECK(corio::redis::detail::sha1_hex("") == "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    (void)srv->cli({"SCRIPT", "FLUSH"}); // forgotten: EVALSHA says NOSCRIPT, EVAL follows
    const corio::redis::reply third = co_await r.eval(script, keys, by);
    CHECK(third.as_integer() == 15);
}

CORIO_TEST_CASE("redis: the shared rate limiter holds over every window, across clients",
                "[redis]") {
    REDIS_SERVER_OR_SKIP(srv);
    // Four clients (four connection sets, as four processes would have), each with its own
    // limiter on the same key and 8 tasks acquiring; stamps from the server's clock.
    constexpr long rate = 100;
    constexpr auto period = 100ms;
    constexpr int total = 2'000;
    std::vector<std::unique_ptr<corio::redis::client>> clients;
    std::vector<std::unique_ptr<corio::redis::rate_limiter>> limiters;
    for (int i = 0; i < 4; ++i) {
        clients.push_back(std::make_unique<corio::redis::client>(options_for(*srv)));
        limiters.push_back(std::make_unique<corio::redis::rate_limiter>(
            *clients.back(), "limit:example.com", corio::redis::rate_limit{rate, period}));
    }
    std::vector<std::int64_t> stamps;
    int started = 0;
    corio::task_group g;
    for (auto& lim : limiters)
        for (int t = 0; t < 8; ++t)
            g.spawn([](corio::redis::rate_limiter& l, std::vector<std::int64_t>& out,
                       int& count) -> corio::task<> {
                while (count < total) {
                    ++count;
                    co_await l.acquire();
                    out.push_back(l.last_granted_us());
                }
            }(*lim, stamps, started));
    co_await g.join();
    REQUIRE(stamps.size() == static_cast<std::size_t>(total));
    std::sort(stamps.begin(), stamps.end());
    const auto period_us = std::chrono::duration_cast<std::chrono::microseconds>(period).count();
    int over = 0;
    int full = 0;
    for (std::size_t i = 0; i + rate < stamps.size(); ++i) {
        over += stamps[i + rate] - stamps[i] < period_us ? 1 : 0;     // rate + 1 in one window
        full += stamps[i + rate - 1] - stamps[i] < period_us ? 1 : 0; // the window was used up
    }
    CHECK(over == 0);
    CHECK(full > 0);
    // The window is full right after the run: try_acquire says no at once.
    corio::redis::rate_limiter strict{*clients[0], "limit:strict",
                                      corio::redis::rate_limit{1, 60'000ms}};
    const bool first = co_await strict.try_acquire();
    const bool second = co_await strict.try_acquire();
    CHECK(first);
    CHECK_FALSE(second);
    CHECK(corio::test::contains(
        corio::test::message_of<std::invalid_argument>([&] {
            corio::redis::rate_limiter bad{*clients[0], "x", corio::redis::rate_limit{0, period}};
        }),
        "got rate 0"));
}

CORIO_TEST_CASE("redis: subscribe receives what is published, and ends cleanly", "[redis]") {
    REDIS_SERVER_OR_SKIP(srv);
    corio::redis::client r{options_for(*srv)};
    corio::redis::subscription sub = co_await r.subscribe("news");
    corio::redis::subscription pattern = co_await r.psubscribe("sport.*");
    for (int i = 0; i < 100; ++i) {
        const std::string text = "item " + std::to_string(i);
        (void)co_await r.command("PUBLISH", "news", text);
    }
    (void)co_await r.command("PUBLISH", "sport.tennis", "match");
    int in_order = 0;
    for (int i = 0; i < 100; ++i) {
        const std::optional<corio::redis::message> m = co_await sub.next();
        REQUIRE(m.has_value());
        in_order += m->channel == "news" && m->payload == "item " + std::to_string(i) ? 1 : 0;
    }
    CHECK(in_order == 100);
    const std::optional<corio::redis::message> p = co_await pattern.next();
    REQUIRE(p.has_value());
    CHECK(p->channel == "sport.tennis");
    CHECK(p->pattern == "sport.*");
    CHECK(p->payload == "match");
    sub.close();
    const auto after = co_await sub.next();
    CHECK_FALSE(after.has_value());

    // The server restarting ends a subscription with a connect_error.
    srv->restart();
    bool lost = false;
    try {
        (void)co_await pattern.next();
    } catch (const corio::redis::connect_error&) {
        lost = true;
    }
    CHECK(lost);
}

namespace {

/// A child process's part: `count` acquisitions on the shared key, each granted stamp written
/// to `fd` as a line.
corio::task<int> acquire_and_report(std::string address, int count, int fd) {
    corio::redis::client_options o;
    o.address = std::move(address);
    corio::redis::client r{o};
    corio::redis::rate_limiter lim{r, "limit:fleet", corio::redis::rate_limit{200, 100ms}};
    std::string lines;
    for (int i = 0; i < count; ++i) {
        co_await lim.acquire();
        lines += std::to_string(lim.last_granted_us()) + "\n";
    }
    co_return corio::test::write_all(fd, lines) ? 0 : 1;
}

} // namespace

TEST_CASE("redis: the shared rate limiter holds across 4 processes, 10,000 acquisitions",
          "[redis]") {
    if (!redis_server::available())
        CORIO_SKIP(redis_server::unavailable_reason());
    auto dog = corio::test::watchdog{120};
    redis_server srv;
    constexpr int processes = 4;
    constexpr int each = 2'500;
    const std::string address = srv.address();
    std::vector<corio::test::child_process> children; // each with its own loop and client
    for (int p = 0; p < processes; ++p)
        children.push_back(corio::test::fork_child(
            [&](int fd) { return corio::run(acquire_and_report(address, each, fd)); }));
    std::vector<std::int64_t> stamps;
    int failed = 0;
    for (const auto& c : children) { // read each to its end (the others wait in their pipes)
        for (const std::string& line : corio::test::lines_of(corio::test::read_report(c.report)))
            stamps.push_back(std::stoll(line));
        failed += corio::test::wait_child(c) == 0 ? 0 : 1;
    }
    CHECK(failed == 0);
    REQUIRE(stamps.size() == static_cast<std::size_t>(processes * each));
    std::sort(stamps.begin(), stamps.end());
    constexpr std::size_t rate = 200;
    constexpr std::int64_t period_us = 100'000;
    int over = 0;
    int full = 0;
    for (std::size_t i = 0; i + rate < stamps.size(); ++i) {
        over += stamps[i + rate] - stamps[i] < period_us ? 1 : 0;
        full += stamps[i + rate - 1] - stamps[i] < period_us ? 1 : 0;
    }
    CHECK(over == 0);
    CHECK(full > 0);
}

namespace {

/// One GET against a client whose server refuses: 1 when it failed with connect_error.
corio::task<int> refused_get(corio::redis::client& r) {
    int refused = 0;
    try {
        (void)co_await r.get("k");
    } catch (const corio::redis::connect_error&) {
        refused = 1;
    }
    co_return refused;
}

} // namespace

CORIO_TEST_CASE("redis: commands waiting for a connection fail with its error, then retry",
                "[redis]") {
    corio::redis::client_options o;
    o.address =
        "127.0.0.1:" +
        std::to_string(corio::test::process_detail::free_port(corio::test::redis_detail::harness));
    corio::redis::client r{o};
    std::vector<corio::task<int>> gets;
    for (int i = 0; i < 50; ++i)
        gets.push_back(refused_get(r));
    const std::vector<int> refused = co_await corio::gather(std::move(gets));
    CHECK(std::count(refused.begin(), refused.end(), 1) == 50);
    CHECK(r.connections() == 0);
    const int again = co_await refused_get(r); // the next command tries again
    CHECK(again == 1);
}

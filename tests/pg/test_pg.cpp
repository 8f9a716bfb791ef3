// SPDX-License-Identifier: MIT
// corio::pg against a real PostgreSQL 15 that each case starts in a temporary directory
// (support/pg_server.hpp) and stops.

#include "support/corio_test.hpp"
#include "support/pg_server.hpp"
#if defined(CORIO_HAVE_TLS)
#include "support/test_pki.hpp"
#endif

#include <corio/corio.hpp>
#include <corio/pg.hpp>

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
using corio::test::pg_server;

namespace {

/// Starts a server for the case, or says why none can start (a visible skip).
std::unique_ptr<pg_server> start_server() {
    if (!pg_server::available())
        return nullptr;
    return std::make_unique<pg_server>();
}

#define PG_SERVER_OR_SKIP(name)                                                                    \
    std::unique_ptr<pg_server> name = start_server();                                              \
    if (!name)                                                                                     \
    CORIO_CO_SKIP(pg_server::unavailable_reason())

/// The state of backend `pid` in pg_stat_activity ("idle", "active", ...), "" when it is gone.
std::string backend_state(const pg_server& srv, int pid) {
    return srv.psql("SELECT coalesce(state, '') FROM pg_stat_activity WHERE pid = " +
                    std::to_string(pid));
}

/// Waits (in small sleeps, at most ~10 s) until `pred()`; returns whether it came true.
template <class Pred>
corio::task<bool> eventually(Pred pred) {
    for (int i = 0; i < 1000; ++i) {
        if (pred())
            co_return true;
        co_await corio::sleep_for(10ms);
    }
    co_return false;
}

} // namespace

CORIO_TEST_CASE("pg: values round-trip: integers, floats, bool, Unicode, NULL, bytea, timestamptz",
                "[pg]") {
    PG_SERVER_OR_SKIP(srv);
    auto conn = co_await corio::pg::connection::connect(srv->conninfo());
    const std::string unicode = "h\xc3\xa9llo \xe4\xb8\x96\xe7\x95\x8c \xf0\x9f\x8e\x89";
    std::vector<std::byte> blob(1 << 20);
    std::mt19937 random{42};
    for (std::byte& b : blob)
        b = static_cast<std::byte>(random() & 0xff);
    blob[0] = std::byte{0}; // a NUL inside bytea is fine
    const auto now =
        std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now());
    const std::optional<std::string> none;
    const std::int64_t big = std::numeric_limits<std::int64_t>::min();
    const corio::pg::result r = co_await conn.query(
        "SELECT $1::int2 AS a, $2::int4 AS b, $3::int8 AS c, $4::float8 AS d, $5::bool AS e, "
        "$6::text AS f, $7::bytea AS g, $8::timestamptz AS h, $9::text AS i, $10::float8 AS j, "
        "$11::numeric AS k",
        std::int16_t{-32768}, 2147483647, big, 0.1, true, unicode, blob, now, none,
        -std::numeric_limits<double>::infinity(), 12.5);
    REQUIRE(r.size() == 1);
    const corio::pg::row row = r[0];
    CHECK(row.get<std::int16_t>("a") == -32768);
    CHECK(row.get<int>("b") == 2147483647);
    CHECK(row.get<std::int64_t>("c") == big);
    CHECK(row.get<double>("d") == 0.1);
    CHECK(row.get<bool>("e"));
    CHECK(row.get<std::string>("f") == unicode);
    CHECK(row.get<std::vector<std::byte>>("g") == blob);
    CHECK(row.get<corio::pg::timestamp>("h") == now);
    CHECK_FALSE(row.get<std::optional<std::string>>("i").has_value());
    CHECK(row.is_null(8));
    CHECK(std::isinf(row.get<double>("j")));
    CHECK(row.get<double>(10) == 12.5);
    CHECK(row.get<std::optional<int>>("b") == 2147483647);

    // A timestamptz written by the server in another time zone reads back as the same instant.
    (void)co_await conn.execute("SET TimeZone = 'Asia/Kolkata'");
    const auto same =
        co_await conn.query_value<corio::pg::timestamp>("SELECT $1::timestamptz", now);
    CHECK(same == now);
}

CORIO_TEST_CASE("pg: a value read as the wrong type is a clear error naming the column", "[pg]") {
    PG_SERVER_OR_SKIP(srv);
    auto conn = co_await corio::pg::connection::connect(srv->conninfo());
    const corio::pg::result r =
        co_await conn.query("SELECT 'ann'::text AS name, NULL::int8 AS score, 100000 AS big");
    const corio::pg::row row = r[0];
    const std::string wrong_type =
        corio::test::message_of<corio::pg::error>([&] { (void)row.get<std::int64_t>("name"); });
    CHECK(corio::test::contains(wrong_type, "column \"name\""));
    CHECK(corio::test::contains(wrong_type, "text"));
    const std::string null =
        corio::test::message_of<corio::pg::error>([&] { (void)row.get<std::int64_t>("score"); });
    CHECK(corio::test::contains(null, "NULL"));
    const std::string narrow =
        corio::test::message_of<corio::pg::error>([&] { (void)row.get<std::int16_t>("big"); });
    CHECK(corio::test::contains(narrow, "does not fit"));
    const std::string missing =
        corio::test::message_of<corio::pg::error>([&] { (void)row.get<int>("nope"); });
    CHECK(corio::test::contains(missing, "no column named \"nope\""));
    try {
        (void)row.get<std::int64_t>("name");
    } catch (const corio::pg::error& e) {
        CHECK(e.kind() == corio::pg::error_kind::type);
    }
    // A text parameter with a NUL byte is refused before anything is sent.
    const std::string with_nul("a\0b", 3);
    bool refused = false;
    try {
        (void)co_await conn.query("SELECT $1::text", with_nul);
    } catch (const corio::pg::error& e) {
        refused =
            e.kind() == corio::pg::error_kind::type && corio::test::contains(e.what(), "NUL byte");
    }
    CHECK(refused);
    const auto one = co_await conn.query_value<int>("SELECT 1");
    CHECK(one == 1);
}

CORIO_TEST_CASE("pg: a bad statement throws the server's SQLSTATE, message and statement", "[pg]") {
    PG_SERVER_OR_SKIP(srv);
    auto conn = co_await corio::pg::connection::connect(srv->conninfo());
    std::optional<corio::pg::error> syntax;
    try {
        (void)co_await conn.query("SELEC 1");
    } catch (const corio::pg::error& e) {
        syntax = e;
    }
    REQUIRE(syntax);
    CHECK(syntax->kind() == corio::pg::error_kind::query);
    CHECK(syntax->sqlstate() == "42601");
    CHECK(syntax->statement() == "SELEC 1");
    CHECK(corio::test::contains(syntax->what(), "syntax error"));

    (void)co_await conn.execute("CREATE TABLE u (id int8 PRIMARY KEY)");
    (void)co_await conn.execute("INSERT INTO u VALUES ($1)", 1);
    std::optional<corio::pg::error> duplicate;
    try {
        (void)co_await conn.execute("INSERT INTO u VALUES ($1)", 1);
    } catch (const corio::pg::error& e) {
        duplicate = e;
    }
    REQUIRE(duplicate);
    CHECK(duplicate->sqlstate() == "23505");
    CHECK_FALSE(duplicate->detail().empty()); // "Key (id)=(1) already exists."
    CHECK_FALSE(corio::test::contains(duplicate->what(), "$1 = 1")); // values never appear
    const auto n = co_await conn.query_value<std::int64_t>("SELECT count(*) FROM u");
    CHECK(n == 1);

    // Notices go to the handler, not to stderr.
    std::vector<std::string> notices;
    conn.on_notice([&notices](std::string_view text) { notices.emplace_back(text); });
    (void)co_await conn.execute("DO $$ BEGIN RAISE NOTICE 'hello %', 42; END $$");
    REQUIRE(notices.size() == 1);
    CHECK(corio::test::contains(notices[0], "hello 42"));
}

CORIO_TEST_CASE("pg: a wrong password and an address with no server are clear errors", "[pg]") {
    PG_SERVER_OR_SKIP(srv);
    std::string auth;
    try {
        (void)co_await corio::pg::connection::connect(
            "host=127.0.0.1 port=" + std::to_string(srv->port()) +
            " dbname=app user=corio password=wrong");
    } catch (const corio::pg::authentication_error& e) {
        auth = e.what();
    }
    CHECK(corio::test::contains(auth, "password authentication failed"));

    const std::uint16_t nobody = corio::test::pg_detail::free_port();
    std::string refused;
    try {
        (void)co_await corio::pg::connection::connect(
            "host=127.0.0.1 port=" + std::to_string(nobody) + " dbname=app user=corio");
    } catch (const corio::pg::connection_error& e) {
        refused = e.what();
    }
    CHECK(corio::test::contains(refused, "corio::pg::connection::connect"));
    CHECK(corio::test::contains(refused, "refused"));

    std::string bad;
    try {
        (void)co_await corio::pg::connection::connect("nonsense_keyword=1");
    } catch (const corio::pg::connection_error& e) {
        bad = e.what();
    }
    CHECK(corio::test::contains(bad, "nonsense_keyword"));
}

CORIO_TEST_CASE("pg: prepared statements run with their parameters and check how many", "[pg]") {
    PG_SERVER_OR_SKIP(srv);
    auto conn = co_await corio::pg::connection::connect(srv->tcp_conninfo());
    (void)co_await conn.execute("CREATE TABLE users (id int8 PRIMARY KEY, name text)");
    const corio::pg::statement insert =
        co_await conn.prepare("insert_user", "INSERT INTO users VALUES ($1, $2)");
    CHECK(insert.parameters() == 2);
    for (int i = 1; i <= 20; ++i) {
        const std::string name = "user" + std::to_string(i);
        const auto n = co_await conn.execute(insert, i, name);
        CHECK(n == 1);
    }
    const corio::pg::statement by_id =
        co_await conn.prepare("by_id", "SELECT name FROM users WHERE id = $1");
    const corio::pg::result r = co_await conn.query(by_id, 7);
    CHECK(r[0].get<std::string>("name") == "user7");
    std::string arity;
    try {
        (void)co_await conn.query(by_id, 7, 8);
    } catch (const corio::pg::error& e) {
        arity = e.what();
    }
    CHECK(corio::test::contains(arity, "takes 1 parameters, got 2"));
}

CORIO_TEST_CASE("pg: a transaction commits, and rolls back on an exception or a cancellation",
                "[pg]") {
    PG_SERVER_OR_SKIP(srv);
    auto conn = co_await corio::pg::connection::connect(srv->conninfo());
    (void)co_await conn.execute("CREATE TABLE t (id int8 PRIMARY KEY)");
    {
        auto tx = co_await conn.begin();
        (void)co_await tx.execute("INSERT INTO t VALUES (1)");
        co_await tx.commit();
    }
    CHECK(srv->psql("SELECT count(*) FROM t") == "1");

    bool thrown = false;
    try {
        auto tx = co_await conn.begin();
        (void)co_await tx.execute("INSERT INTO t VALUES (2)");
        throw std::runtime_error("the work failed");
    } catch (const std::runtime_error&) {
        thrown = true;
    }
    CHECK(thrown);
    const auto after_exception = co_await conn.query_value<std::int64_t>("SELECT count(*) FROM t");
    CHECK(after_exception == 1);
    CHECK(backend_state(*srv, conn.backend_pid()) == "idle"); // not "idle in transaction"

    // Cancelled while inside the transaction, waiting on the server.
    auto work = corio::spawn([](corio::pg::connection& c) -> corio::task<> {
        auto tx = co_await c.begin();
        (void)co_await tx.execute("INSERT INTO t VALUES (3)");
        (void)co_await tx.query("SELECT pg_sleep(60)");
        co_await tx.commit();
    }(conn));
    const int pid = conn.backend_pid();
    const bool sleeping = co_await eventually([&] { return backend_state(*srv, pid) == "active"; });
    CHECK(sleeping);
    work.cancel();
    bool cancelled = false;
    try {
        co_await work;
    } catch (const corio::cancelled_error&) {
        cancelled = true;
    }
    CHECK(cancelled);
    const auto after_cancel = co_await conn.query_value<std::int64_t>("SELECT count(*) FROM t");
    CHECK(after_cancel == 1);
    CHECK(srv->psql("SELECT count(*) FROM t") == "1");
}

CORIO_TEST_CASE("pg: a query timeout stops the query on the server and the connection goes on",
                "[pg]") {
    PG_SERVER_OR_SKIP(srv);
    auto conn = co_await corio::pg::connection::connect(srv->conninfo());
    const int pid = conn.backend_pid();
    bool timed_out = false;
    try {
        (void)co_await corio::timeout(200ms, conn.query("SELECT pg_sleep(60)"));
    } catch (const corio::timeout_error&) {
        timed_out = true;
    }
    CHECK(timed_out);
    // The server is no longer running it: the backend is idle, not in pg_sleep.
    CHECK(backend_state(*srv, pid) == "idle");
    CHECK(srv->psql("SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(60)%' "
                    "AND state = 'active' AND pid <> pg_backend_pid()") == "0");
    const auto next = co_await conn.query_value<int>("SELECT 42");
    CHECK(next == 42);
    CHECK(conn.usable());

    // The same through a pool: the connection comes back usable, and is reused.
    corio::pg::pool pool{corio::pg::pool_options{.conninfo = srv->conninfo(), .max_size = 1}};
    bool pool_timed_out = false;
    try {
        (void)co_await corio::timeout(200ms, pool.query("SELECT pg_sleep(60)"));
    } catch (const corio::timeout_error&) {
        pool_timed_out = true;
    }
    CHECK(pool_timed_out);
    const auto again = co_await pool.query_value<int>("SELECT 7");
    CHECK(again == 7);
    CHECK(pool.size() == 1);
    // The server's own statement_timeout is a pg::timeout_error.
    bool server_timeout = false;
    try {
        (void)co_await conn.execute("SET statement_timeout = 50");
        (void)co_await conn.query("SELECT pg_sleep(60)");
    } catch (const corio::pg::timeout_error& e) {
        server_timeout = e.sqlstate() == "57014";
    }
    CHECK(server_timeout);
}

CORIO_TEST_CASE("pg: one connection runs one operation at a time and says so", "[pg]") {
    PG_SERVER_OR_SKIP(srv);
    auto conn = co_await corio::pg::connection::connect(srv->conninfo());
    auto slow = corio::spawn([](corio::pg::connection& c) -> corio::task<> {
        (void)co_await c.query("SELECT pg_sleep(0.2)");
    }(conn));
    co_await corio::yield_now(); // the slow query is in flight
    std::string busy;
    try {
        (void)co_await conn.query("SELECT 1");
    } catch (const corio::pg::error& e) {
        busy = e.what();
    }
    CHECK(corio::test::contains(busy, "busy"));
    co_await slow;
    const auto one = co_await conn.query_value<int>("SELECT 1");
    CHECK(one == 1);
}

CORIO_TEST_CASE("pg: the pool at its limit serves waiters in order and times out", "[pg]") {
    PG_SERVER_OR_SKIP(srv);
    corio::pg::pool pool{corio::pg::pool_options{
        .conninfo = srv->conninfo(), .max_size = 2, .acquire_timeout = 100ms}};
    auto a = co_await pool.acquire();
    auto b = co_await pool.acquire();
    CHECK(pool.leased() == 2);
    bool timed_out = false;
    std::string what;
    try {
        (void)co_await pool.acquire();
    } catch (const corio::pg::timeout_error& e) {
        timed_out = true;
        what = e.what();
    }
    CHECK(timed_out);
    CHECK(corio::test::contains(what, "max_size"));

    // Three waiters, served first come, first served as leases come back.
    corio::pg::pool fifo{corio::pg::pool_options{
        .conninfo = srv->conninfo(), .max_size = 1, .acquire_timeout = 0ms}};
    auto held = co_await fifo.acquire();
    std::vector<int> order;
    corio::task_group g;
    for (int i = 0; i < 3; ++i)
        g.spawn([](corio::pg::pool& p, std::vector<int>& seen, int me) -> corio::task<> {
            auto l = co_await p.acquire();
            seen.push_back(me);
            (void)co_await l->query("SELECT 1");
        }(fifo, order, i));
    for (int i = 0; i < 3; ++i)
        co_await corio::yield_now();
    held.release();
    held.release(); // a second release does nothing
    co_await g.join();
    CHECK(order == std::vector<int>{0, 1, 2});
    CHECK(fifo.size() == 1);
    CHECK(fifo.leased() == 0);

    // A cancelled waiter leaves with nothing leased.
    auto again = co_await fifo.acquire();
    auto waiter = corio::spawn(
        [](corio::pg::pool& p) -> corio::task<> { auto l = co_await p.acquire(); }(fifo));
    co_await corio::yield_now();
    waiter.cancel();
    bool cancelled = false;
    try {
        co_await waiter;
    } catch (const corio::cancelled_error&) {
        cancelled = true;
    }
    CHECK(cancelled);
    CHECK(fifo.leased() == 1);
    again.release();
    auto last = co_await fifo.acquire(); // the permit the cancelled waiter had not taken
    CHECK(fifo.leased() == 1);
}

CORIO_TEST_CASE("pg: 10,000 concurrent queries through a pool of 10", "[pg]") {
    PG_SERVER_OR_SKIP(srv);
    corio::pg::pool pool{corio::pg::pool_options{
        .conninfo = srv->conninfo(), .max_size = 10, .acquire_timeout = 0ms}};
    std::vector<corio::task<corio::pg::result>> queries;
    queries.reserve(10'000);
    for (int i = 0; i < 10'000; ++i)
        queries.push_back(pool.query("SELECT $1::int4 * 2", i));
    const std::vector<corio::pg::result> results = co_await corio::gather(std::move(queries));
    int wrong = 0;
    for (int i = 0; i < 10'000; ++i)
        wrong += results[static_cast<std::size_t>(i)][0].get<int>(0) == 2 * i ? 0 : 1;
    CHECK(wrong == 0);
    CHECK(pool.size() == 10);
    CHECK(srv->connections() == 10);
    co_await pool.close();
    CHECK(pool.size() == 0);
    const bool closed = co_await eventually([&] { return srv->connections() == 0; });
    CHECK(closed);
}

CORIO_TEST_CASE("pg: keyset pagination over 100,000 rows visits each exactly once", "[pg]") {
    PG_SERVER_OR_SKIP(srv);
    corio::pg::pool pool{corio::pg::pool_options{.conninfo = srv->conninfo(), .max_size = 3}};
    (void)co_await pool.execute("CREATE TABLE users AS SELECT g::int8 AS id, 'user' || g AS name "
                                "FROM generate_series(1, 100000) g");
    (void)co_await pool.execute("ALTER TABLE users ADD PRIMARY KEY (id)");
    std::vector<int> seen(100'001, 0);
    int pages_read = 0;
    for (auto pages = corio::pg::paginate(
             pool, "SELECT id, name FROM users WHERE id > $1 ORDER BY id LIMIT $2", 500);
         auto page = co_await pages.next();) {
        ++pages_read;
        for (const corio::pg::row& row : *page)
            ++seen[static_cast<std::size_t>(row.get<std::int64_t>("id"))];
    }
    CHECK(pages_read == 200);
    CHECK(std::count(seen.begin() + 1, seen.end(), 1) == 100'000);
    CHECK(seen[0] == 0);

    // An integer (int4) key works with the default start too.
    int small_rows = 0;
    for (auto pages = corio::pg::paginate(
             pool, "SELECT id::int4 AS id FROM users WHERE id::int4 > $1 ORDER BY id LIMIT $2",
             30'000);
         auto page = co_await pages.next();)
        small_rows += static_cast<int>(page->size());
    CHECK(small_rows == 100'000);
}

CORIO_TEST_CASE("pg: a stream hands rows over as they come, and an abandoned one is drained",
                "[pg]") {
    PG_SERVER_OR_SKIP(srv);
    auto conn = co_await corio::pg::connection::connect(srv->conninfo());
    {
        auto cur = co_await conn.stream("SELECT g, repeat('x', 100) FROM generate_series(1, $1) g",
                                        20'000);
        std::int64_t sum = 0;
        int rows = 0;
        while (auto row = co_await cur.next()) {
            sum += row->get<std::int64_t>(0);
            ++rows;
        }
        CHECK(rows == 20'000);
        CHECK(sum == std::int64_t{20'000} * 20'001 / 2);
        const auto after_end = co_await cur.next();
        CHECK_FALSE(after_end.has_value());
    }
    {
        auto cur = co_await conn.stream("SELECT g FROM generate_series(1, 50000) g");
        for (int i = 0; i < 10; ++i) {
            const auto row = co_await cur.next();
            CHECK(row->get<int>(0) == i + 1);
        }
    } // abandoned: the next operation reads the rest first
    const auto next = co_await conn.query_value<std::string>("SELECT 'next'");
    CHECK(next == "next");
    // An error mid-stream surfaces from next(), and the connection goes on.
    std::string failed;
    {
        auto cur = co_await conn.stream("SELECT 1 / (3 - g) FROM generate_series(1, 5) g");
        try {
            while (auto row = co_await cur.next()) {
            }
        } catch (const corio::pg::error& e) {
            failed = e.sqlstate();
        }
    }
    CHECK(failed == "22012");
    const auto still = co_await conn.query_value<int>("SELECT 5");
    CHECK(still == 5);
}

CORIO_TEST_CASE("pg: a pipeline runs a batch at once, all or nothing", "[pg]") {
    PG_SERVER_OR_SKIP(srv);
    auto conn = co_await corio::pg::connection::connect(srv->conninfo());
    (void)co_await conn.execute("CREATE TABLE items (id int8 PRIMARY KEY, name text)");
    corio::pg::batch inserts;
    for (int i = 0; i < 5000; ++i)
        inserts.add("INSERT INTO items VALUES ($1, $2)", i, "item" + std::to_string(i));
    const std::vector<corio::pg::result> done = co_await conn.pipeline(std::move(inserts));
    CHECK(done.size() == 5000);
    CHECK(done[4999].rows_affected() == 1);
    CHECK(srv->psql("SELECT count(*) FROM items") == "5000");

    std::optional<corio::pg::error> failure;
    try {
        (void)co_await conn.pipeline([](corio::pg::batch& b) {
            b.add("INSERT INTO items VALUES (10001, 'a')");
            b.add("INSERT INTO items VALUES (10002, 'b')");
            b.add("INSERT INTO items VALUES (1, 'duplicate')");
            b.add("INSERT INTO items VALUES (10003, 'c')");
        });
    } catch (const corio::pg::error& e) {
        failure = e;
    }
    REQUIRE(failure);
    CHECK(failure->sqlstate() == "23505");
    CHECK(corio::test::contains(failure->statement(), "duplicate"));
    CHECK(srv->psql("SELECT count(*) FROM items") == "5000"); // the batch rolled back whole

    // Cancelled mid-pipeline: the connection is read back to idle and answers.
    bool timed_out = false;
    try {
        (void)co_await corio::timeout(200ms, conn.pipeline([](corio::pg::batch& b) {
            b.add("SELECT 1");
            b.add("SELECT pg_sleep(60)");
            b.add("SELECT 2");
        }));
    } catch (const corio::timeout_error&) {
        timed_out = true;
    }
    CHECK(timed_out);
    const auto after = co_await conn.query_value<int>("SELECT 3");
    CHECK(after == 3);
}

CORIO_TEST_CASE("pg: the pool reconnects after the server restarted while it idled", "[pg]") {
    PG_SERVER_OR_SKIP(srv);
    corio::pg::pool pool{corio::pg::pool_options{.conninfo = srv->conninfo(), .max_size = 4}};
    const auto before = co_await pool.query_value<int>("SELECT 1");
    CHECK(before == 1);
    CHECK(pool.idle() == 1);
    srv->restart(); // tells the idle connection FATAL 57P01 and closes it
    const auto after = co_await pool.query_value<int>("SELECT 2");
    CHECK(after == 2);
    CHECK(pool.size() == 1); // the dead one was closed, a new one opened
}

CORIO_TEST_CASE("pg: a connection killed mid-query is a clear error and leaves the pool", "[pg]") {
    PG_SERVER_OR_SKIP(srv);
    corio::pg::pool pool{corio::pg::pool_options{.conninfo = srv->conninfo(), .max_size = 2}};
    auto query = corio::spawn([](corio::pg::pool& p) -> corio::task<> {
        (void)co_await p.query("SELECT pg_sleep(60)");
    }(pool));
    const bool running = co_await eventually([&] {
        return srv->psql("SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND "
                         "pid <> pg_backend_pid()") == "1";
    });
    CHECK(running);
    CHECK(srv->terminate_backends() == 1);
    std::string what;
    try {
        co_await query;
    } catch (const corio::pg::connection_error& e) {
        what = e.what();
    }
    CHECK(corio::test::contains(what, "corio::pg::pool::query"));
    CHECK(pool.size() == 0); // not returned to the pool
    const auto fresh = co_await pool.query_value<int>("SELECT 9");
    CHECK(fresh == 9);

    // The whole server killed under a connection: the next statement says the connection broke.
    auto conn = co_await corio::pg::connection::connect(srv->conninfo());
    srv->stop(corio::test::pg_shutdown::immediate);
    bool broke = false;
    try {
        (void)co_await conn.query("SELECT 1");
    } catch (const corio::pg::connection_error&) {
        broke = true;
    }
    CHECK(broke);
    CHECK_FALSE(conn.usable());
}

CORIO_TEST_CASE("pg: closing the pool waits for its leases, then refuses", "[pg]") {
    PG_SERVER_OR_SKIP(srv);
    corio::pg::pool pool{corio::pg::pool_options{.conninfo = srv->conninfo(), .max_size = 2}};
    auto held = co_await pool.acquire();
    bool closed = false;
    auto closer = corio::spawn([](corio::pg::pool& p, bool& done) -> corio::task<> {
        co_await p.close();
        done = true;
    }(pool, closed));
    for (int i = 0; i < 5; ++i)
        co_await corio::yield_now();
    CHECK_FALSE(closed); // a lease is out
    const auto still = co_await held->query_value<int>("SELECT 1");
    CHECK(still == 1);
    held.release();
    co_await closer;
    CHECK(closed);
    CHECK(pool.size() == 0);
    std::string refused;
    try {
        (void)co_await pool.acquire();
    } catch (const corio::pg::error& e) {
        refused = e.what();
    }
    CHECK(corio::test::contains(refused, "closed"));
}

CORIO_TEST_CASE("pg: a peer that never answers: connect_timeout and corio::timeout both end the "
                "connect",
                "[pg]") {
    // A listening socket nobody accepts from: the TCP connect succeeds, the startup packet goes
    // into the backlog, and no answer ever comes.
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), len) == 0);
    REQUIRE(::listen(fd, 8) == 0);
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    const std::string silent = "host=127.0.0.1 port=" + std::to_string(ntohs(a.sin_port)) +
                               " dbname=app user=corio sslmode=disable";
    std::string slow;
    try {
        (void)co_await corio::pg::connection::connect(silent + " connect_timeout=2");
    } catch (const corio::pg::connection_error& e) {
        slow = e.what();
    }
    CHECK(corio::test::contains(slow, "connect_timeout"));
    bool timed_out = false;
    try {
        (void)co_await corio::timeout(100ms, corio::pg::connection::connect(silent));
    } catch (const corio::timeout_error&) {
        timed_out = true;
    }
    CHECK(timed_out);
    ::close(fd);
}

#if defined(CORIO_HAVE_TLS)
CORIO_TEST_CASE("pg: TLS (sslmode=verify-full) connects without blocking the loop", "[pg]") {
    PG_SERVER_OR_SKIP(srv);
    const corio::test::test_pki& pki = corio::test::pki();
    // The server's certificate and key, in its data directory, owned by the server's user.
    struct stat data {};
    REQUIRE(::stat(srv->data_dir().c_str(), &data) == 0);
    for (const auto& [from, to] : {std::pair{pki.good, std::string("server.crt")},
                                   std::pair{pki.leaf_key, std::string("server.key")}}) {
        const std::string path = srv->data_dir() + "/" + to;
        std::filesystem::copy_file(from, path, std::filesystem::copy_options::overwrite_existing);
        REQUIRE(::chmod(path.c_str(), 0600) == 0);
        REQUIRE(::chown(path.c_str(), data.st_uid, data.st_gid) == 0);
    }
    (void)srv->psql("ALTER SYSTEM SET ssl = on");
    srv->reload();

    // A task that counts loop turns while the handshake runs: the loop stays free.
    long turns = 0;
    bool connecting = true;
    auto ticker = corio::spawn([](long& n, const bool& on) -> corio::task<> {
        while (on) {
            ++n;
            co_await corio::yield_now();
        }
    }(turns, connecting));
    auto conn = co_await corio::pg::connection::connect(
        srv->tcp_conninfo() + " sslmode=verify-full sslrootcert=" + pki.ca);
    connecting = false;
    co_await ticker;
    CHECK(turns > 1);
    const auto ssl =
        co_await conn.query_value<bool>("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()");
    CHECK(ssl);

    // A server certificate the client does not trust is a clear connection error.
    std::string untrusted;
    try {
        (void)co_await corio::pg::connection::connect(
            srv->tcp_conninfo() + " sslmode=verify-full sslrootcert=" + pki.self_signed);
    } catch (const corio::pg::connection_error& e) {
        untrusted = e.what();
    }
    CHECK(corio::test::contains(untrusted, "certificate"));
}
#endif

// SPDX-License-Identifier: MIT
//
// The asyncio guide's PostgreSQL exercise: "rewrite the blocking psycopg2 `SELECT * FROM users`
// with asyncpg, with a connection pool, paginated queries and query timeouts", in C++.
//
//   pg_users --conninfo "host=/tmp/pg port=5432 dbname=app user=me" [--rows 100000]
//            [--page 500] [--lookups 2000] [--timeout-ms 2000]
//
// (--conninfo defaults to $PGCONNINFO; scripts/pg-server starts a throw-away server and prints
// one.) It fills a `users` table with --rows rows (pipelined inserts), then reads it back:
//   1. the guide's blocking way: libpq's synchronous PQexec("SELECT * FROM users"), as
//      psycopg2 does, and --lookups single-row SELECTs one after the other;
//   2. one corio connection: the same SELECT, and the same lookups, awaited one at a time;
//   3. a corio pool of 10: keyset pages of --page rows, each under a query timeout, and the
//      lookups 100 at a time;
// and shows a query timeout at work: `SELECT pg_sleep(30)` under corio::timeout, which the
// server stops, and the connection back in the pool, usable.

#include <corio/corio.hpp>
#include <corio/pg.hpp>

#include <libpq-fe.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <string_view>
#include <vector>

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {

struct options {
    std::string conninfo;
    long rows = 100'000;
    std::size_t page = 500;
    int lookups = 2'000;
    std::chrono::milliseconds timeout{2000};
};

double seconds_since(clock_type::time_point start) {
    return std::chrono::duration<double>(clock_type::now() - start).count();
}

void report(const char* how, long rows, double seconds) {
    std::printf("  %-52s %9ld rows  %8.3f s  %10.0f rows/s\n", how, rows, seconds,
                static_cast<double>(rows) / seconds);
}

/// Creates `users` with `rows` rows, inserted in pipelined batches of 1,000.
corio::task<> fill(corio::pg::connection& conn, long rows) {
    (void)co_await conn.execute("DROP TABLE IF EXISTS users");
    (void)co_await conn.execute("CREATE TABLE users (id bigint PRIMARY KEY, name text NOT NULL, "
                                "email text, score integer NOT NULL)");
    const auto start = clock_type::now();
    for (long first = 1; first <= rows; first += 1000) {
        corio::pg::batch inserts;
        for (long id = first; id < first + 1000 && id <= rows; ++id) {
            const std::string name = "user" + std::to_string(id);
            const std::optional<std::string> email =
                id % 10 == 0 ? std::nullopt : std::optional<std::string>(name + "@example.com");
            inserts.add("INSERT INTO users VALUES ($1, $2, $3, $4)", id, name, email, id % 1000);
        }
        (void)co_await conn.pipeline(std::move(inserts));
    }
    report("insert (pipelined, 1,000 per batch)", rows, seconds_since(start));
}

/// 1. The guide's blocking code: libpq's synchronous calls, as psycopg2 makes them.
void blocking(const options& o) {
    PGconn* conn = PQconnectdb(o.conninfo.c_str());
    if (PQstatus(conn) != CONNECTION_OK)
        throw std::runtime_error(std::string("blocking connect: ") + PQerrorMessage(conn));
    auto start = clock_type::now();
    PGresult* all = PQexec(conn, "SELECT * FROM users");
    report("blocking: SELECT * FROM users", PQntuples(all), seconds_since(start));
    PQclear(all);
    start = clock_type::now();
    for (int i = 0; i < o.lookups; ++i) {
        const std::string id = std::to_string(1 + i * 7919 % o.rows);
        const char* params[] = {id.c_str()};
        PGresult* one = PQexecParams(conn, "SELECT id, name, email, score FROM users WHERE id = $1",
                                     1, nullptr, params, nullptr, nullptr, 0);
        PQclear(one);
    }
    report("blocking: lookups by id, one after the other", o.lookups, seconds_since(start));
    PQfinish(conn);
}

/// 2. One corio connection, each statement awaited before the next.
corio::task<> one_connection(corio::pg::connection& conn, const options& o) {
    auto start = clock_type::now();
    const corio::pg::result all = co_await conn.query("SELECT * FROM users");
    report("one connection: SELECT * FROM users", static_cast<long>(all.size()),
           seconds_since(start));
    start = clock_type::now();
    for (int i = 0; i < o.lookups; ++i)
        (void)co_await conn.query("SELECT id, name, email, score FROM users WHERE id = $1",
                                  1 + i * 7919 % o.rows);
    report("one connection: lookups by id, one after the other", o.lookups, seconds_since(start));
}

corio::task<long> lookup(corio::pg::pool& pool, corio::semaphore& in_flight, long id) {
    auto permit = co_await in_flight.scoped_acquire();
    const corio::pg::result r =
        co_await pool.query("SELECT id, name, email, score FROM users WHERE id = $1", id);
    co_return r.empty() ? 0 : r[0].get<int>("score");
}

/// 3. A pool: keyset pages under a query timeout, and lookups 100 at a time.
corio::task<> pooled(corio::pg::pool& pool, const options& o) {
    auto start = clock_type::now();
    long rows = 0;
    long with_email = 0;
    for (auto pages = corio::pg::paginate(
             pool, "SELECT id, name, email, score FROM users WHERE id > $1 ORDER BY id LIMIT $2",
             o.page);
         ;) {
        // Each page gets the query timeout: a page that takes longer is stopped on the server.
        std::optional<corio::pg::result> page = co_await corio::timeout(o.timeout, pages.next());
        if (!page)
            break;
        for (const corio::pg::row& row : *page) {
            ++rows;
            with_email += row.get<std::optional<std::string>>("email") ? 1 : 0;
        }
    }
    report("pool: keyset pages, each under a query timeout", rows, seconds_since(start));
    std::printf("  %-52s %9ld of them have an email\n", "", with_email);

    start = clock_type::now();
    corio::semaphore in_flight{100};
    std::vector<corio::task<long>> lookups;
    for (int i = 0; i < o.lookups; ++i)
        lookups.push_back(lookup(pool, in_flight, 1 + i * 7919 % o.rows));
    (void)co_await corio::gather(std::move(lookups));
    report("pool of 10: lookups by id, 100 in flight", o.lookups, seconds_since(start));
}

/// A query that runs too long: the timeout cancels it on the server, and its connection goes
/// back to the pool, usable.
corio::task<> timeout_demo(corio::pg::pool& pool, const options& o) {
    const auto start = clock_type::now();
    bool timed_out = false;
    try {
        (void)co_await corio::timeout(o.timeout, pool.query("SELECT pg_sleep(30)"));
    } catch (const corio::timeout_error&) {
        timed_out = true;
    }
    const auto still = co_await pool.query_value<std::int64_t>(
        "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)' AND "
        "state = 'active'");
    std::printf("\nSELECT pg_sleep(30) under a %lld ms timeout: %s after %.3f s; still running on "
                "the server: %lld; pool: %zu open, %zu idle\n",
                static_cast<long long>(o.timeout.count()), timed_out ? "timed out" : "finished",
                seconds_since(start), static_cast<long long>(still), pool.size(), pool.idle());
}

corio::task<int> amain(options o) {
    auto conn = co_await corio::pg::connection::connect(o.conninfo);
    std::printf("users: %ld rows\n", o.rows);
    co_await fill(conn, o.rows);
    std::printf("\nreading them back:\n");
    blocking(o); // blocks the loop: it is the "before" picture
    co_await one_connection(conn, o);
    corio::pg::pool pool{corio::pg::pool_options{.conninfo = o.conninfo, .max_size = 10}};
    co_await pool.open();
    co_await pooled(pool, o);
    co_await timeout_demo(pool, o);
    co_await pool.close();
    co_return 0;
}

[[noreturn]] void usage(int status) {
    std::fprintf(status == 0 ? stdout : stderr,
                 "usage: pg_users [--conninfo STRING] [--rows N] [--page N] [--lookups N] "
                 "[--timeout-ms N]\n"
                 "  --conninfo defaults to $PGCONNINFO (scripts/pg-server prints one)\n");
    std::exit(status);
}

} // namespace

int main(int argc, char** argv) {
    options o;
    if (const char* env = std::getenv("PGCONNINFO"))
        o.conninfo = env;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "--help" || arg == "-h")
            usage(0);
        if (i + 1 >= argc)
            usage(2);
        const char* value = argv[++i];
        if (arg == "--conninfo")
            o.conninfo = value;
        else if (arg == "--rows")
            o.rows = std::atol(value);
        else if (arg == "--page")
            o.page = static_cast<std::size_t>(std::atol(value));
        else if (arg == "--lookups")
            o.lookups = std::atoi(value);
        else if (arg == "--timeout-ms")
            o.timeout = std::chrono::milliseconds{std::atol(value)};
        else
            usage(2);
    }
    if (o.conninfo.empty() || o.rows < 1 || o.page < 1 || o.lookups < 0) {
        std::fprintf(stderr, "pg_users: give --conninfo (or set PGCONNINFO), and positive "
                             "--rows and --page\n");
        return 2;
    }
    try {
        return corio::run(amain(o));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "pg_users: %s\n", e.what());
        return 1;
    }
}

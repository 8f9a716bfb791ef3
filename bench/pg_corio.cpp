// SPDX-License-Identifier: MIT
//
// corio::pg's side of the PostgreSQL benchmarks of issue 15, one case per process, one JSON line
// per run (bench/pg.sh runs them; pg_asyncpg.py, pg_psycopg.py and pgbench are the references):
//
//   pg_corio --case select --conninfo CI [--statement unnamed|prepared] [--via pool|held]
//            [--queries 50000] [--pool 10] [--inflight 100] [--ids 100000]
//       `SELECT id, name, email, score FROM users WHERE id = $1` with uniformly random ids.
//       --via pool: a pool{min_size = max_size = 10}; --inflight worker tasks, each taking the
//       next id and running one statement through the pool until all are done (so 100 in
//       flight, 10 at the server, 90 waiting for a connection). --statement unnamed:
//       `pool.query(sql, id)` (libpq's unnamed statement: parsed and planned by the server each
//       time, pgbench -M extended); prepared: `acquire()` a lease, prepare the statement on that
//       connection the first time it is seen (a map from the backend's pid to its `statement`),
//       then `lease->query(stmt, id)` (pgbench -M prepared: each connection prepares once).
//       --via held: 10 connections leased once, one task per connection running its share one
//       statement after the other (pgbench's own model: 10 clients, 10 in flight).
//       Each row is decoded (id and score as integers, name and email as string_views) and
//       checked. Figure: queries/s, CPU per query.
//   pg_corio --case fetch --conninfo CI --mode whole|stream [--rows 1000000]
//       `SELECT id, name, email, score FROM rows_1m` on one connection: whole, `conn.query()`
//       (libpq holds the whole result), or streamed, `conn.stream()` and `co_await cur.next()`
//       row by row (libpq's single-row mode); every row decoded as above. Figures: rows/s,
//       CPU, peak RSS over the baseline (ru_maxrss after connecting and a 1,000-row warm-up).
//   pg_corio --case insert --conninfo CI --mode one|pipeline [--inserts 100000] [--batch 1000]
//       `INSERT INTO inserts (id, name, email, score) VALUES ($1, $2, $3, $4)` on one
//       connection into an emptied table: one by one (`co_await conn.execute(...)` each), or
//       through `conn.pipeline(batch)` with --batch statements per pipeline (--batch equal to
//       --inserts: one pipeline). Figure: inserts/s.
//
// Every case first runs an untimed warm-up (the pool opened and its connections used, a
// twenty-fifth of the queries; 1,000 rows; 1,000 inserts); the JSON line has the timed part's
// wall and CPU time (getrusage: every thread of the process) and the process's peak RSS.

#include "handoff_util.hpp"

#include <corio/corio.hpp>
#include <corio/pg.hpp>

#include <sys/resource.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

struct options {
    std::string which;                 // --case: select, fetch or insert
    std::string conninfo;              // --conninfo (default: $PGCONNINFO)
    std::string statement = "unnamed"; // select: unnamed or prepared
    std::string via = "pool";          // select: pool or held
    std::string mode;                  // fetch: whole or stream; insert: one or pipeline
    long queries = 50'000;
    long pool = 10;
    long inflight = 100;
    long ids = 100'000; // select: ids are drawn from 1..ids
    long rows = 1'000'000;
    long inserts = 100'000;
    long batch = 1'000;
};

[[noreturn]] void usage(const char* program, const std::string& why) {
    std::fprintf(stderr,
                 "%s: %s\n"
                 "usage: %s --case select [--statement unnamed|prepared] [--via pool|held] "
                 "[--queries N] [--pool N] [--inflight N] [--ids N]\n"
                 "       %s --case fetch --mode whole|stream [--rows N]\n"
                 "       %s --case insert --mode one|pipeline [--inserts N] [--batch N]\n"
                 "       (every case: [--conninfo CI], default $PGCONNINFO)\n",
                 program, why.c_str(), program, program, program);
    std::exit(2);
}

options parse(int argc, char** argv) {
    options o;
    if (const char* env = std::getenv("PGCONNINFO"))
        o.conninfo = env;
    for (int i = 1; i < argc; ++i) {
        const std::string_view flag = argv[i];
        if (i + 1 >= argc)
            usage(argv[0], "missing the value of " + std::string(flag));
        const char* value = argv[++i];
        if (flag == "--case") {
            o.which = value;
        } else if (flag == "--conninfo") {
            o.conninfo = value;
        } else if (flag == "--statement") {
            o.statement = value;
        } else if (flag == "--via") {
            o.via = value;
        } else if (flag == "--mode") {
            o.mode = value;
        } else {
            char* end = nullptr;
            const long v = std::strtol(value, &end, 10);
            if (end == value || *end != 0 || v < 1)
                usage(argv[0], "bad value for " + std::string(flag) + ": " + value);
            if (flag == "--queries")
                o.queries = v;
            else if (flag == "--pool")
                o.pool = v;
            else if (flag == "--inflight")
                o.inflight = v;
            else if (flag == "--ids")
                o.ids = v;
            else if (flag == "--rows")
                o.rows = v;
            else if (flag == "--inserts")
                o.inserts = v;
            else if (flag == "--batch")
                o.batch = v;
            else
                usage(argv[0], "unknown flag " + std::string(flag));
        }
    }
    if (o.conninfo.empty())
        usage(argv[0], "no --conninfo and no $PGCONNINFO");
    return o;
}

/// The process's peak RSS so far, KiB (getrusage's ru_maxrss).
long peak_rss_kib() {
    rusage ru{};
    ::getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

/// One run's result as one JSON line on stdout: `ops` operations (queries, rows, inserts)
/// between `begin` and `end`; proc_cpu_s is the process's CPU time so far (connecting and the
/// warm-up included).
void report(const options& o, const std::string& variant, long ops,
            const handoff::usage_snapshot& begin, const handoff::usage_snapshot& end,
            long rss_base_kib) {
    const double wall = std::chrono::duration<double>(end.wall - begin.wall).count();
    const double cpu = end.cpu_s - begin.cpu_s;
    std::printf("{\"impl\":\"corio\",\"case\":\"%s\",\"variant\":\"%s\",\"ops\":%ld,"
                "\"wall_s\":%.6f,\"cpu_s\":%.6f,\"per_s\":%.1f,\"cpu_us_per_op\":%.3f,"
                "\"vcsw\":%ld,\"ivcsw\":%ld,\"rss_base_kib\":%ld,\"rss_peak_kib\":%ld,"
                "\"proc_cpu_s\":%.3f}\n",
                o.which.c_str(), variant.c_str(), ops, wall, cpu, static_cast<double>(ops) / wall,
                cpu * 1e6 / static_cast<double>(ops), end.voluntary - begin.voluntary,
                end.involuntary - begin.involuntary, rss_base_kib, peak_rss_kib(), end.cpu_s);
    std::fflush(stdout);
}

/// What a row of users / rows_1m adds to a run's checksum: its id and score, and the lengths
/// of its name and email (every column decoded, the strings as views into the result).
struct checksum {
    std::int64_t ids = 0;
    std::int64_t rest = 0;
    void add(const corio::pg::row& r) {
        ids += r.get<std::int64_t>(0);
        rest += static_cast<std::int64_t>(r.get<std::string_view>(1).size() +
                                          r.get<std::string_view>(2).size()) +
                r.get<int>(3);
    }
};

// --- select: one row by primary key, through a pool ------------------------------------------

constexpr std::string_view select_sql = "SELECT id, name, email, score FROM users WHERE id = $1";

/// The ids to look up: uniformly random in 1..ids (splitmix64, a fixed seed: every run and
/// every implementation draws from the same distribution).
std::vector<std::int64_t> random_ids(long count, long ids, std::uint64_t seed) {
    std::vector<std::int64_t> out;
    out.reserve(static_cast<std::size_t>(count));
    std::uint64_t x = seed;
    for (long i = 0; i < count; ++i) {
        x += 0x9e3779b97f4a7c15ULL;
        std::uint64_t z = x;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        z ^= z >> 31;
        out.push_back(1 + static_cast<std::int64_t>(z % static_cast<std::uint64_t>(ids)));
    }
    return out;
}

/// The work shared by the tasks of one select pass: the ids, the next to take, what came back.
struct select_pass {
    select_pass(const std::vector<std::int64_t>& all,
                std::map<int, corio::pg::statement>& statements) noexcept
        : ids(all), prepared(statements) {}
    const std::vector<std::int64_t>& ids;
    std::map<int, corio::pg::statement>& prepared; // backend pid -> the statement on it
    std::size_t next = 0;
    checksum sum;
    std::int64_t expected = 0;

    /// Checks and adds the answer to a lookup of `id`.
    void take(const corio::pg::result& r, std::int64_t id) {
        if (r.size() != 1)
            throw std::runtime_error("pg_corio: id " + std::to_string(id) + " returned " +
                                     std::to_string(r.size()) + " rows");
        sum.add(r[0]);
        expected += id;
    }
};

corio::task<> pool_worker_unnamed(corio::pg::pool& p, select_pass& pass) {
    while (pass.next < pass.ids.size()) {
        const std::int64_t id = pass.ids[pass.next++];
        const corio::pg::result r = co_await p.query(select_sql, id);
        pass.take(r, id);
    }
}

/// The statement prepared on `conn`, prepared now if it is the first use of that connection.
corio::task<const corio::pg::statement*> statement_on(corio::pg::connection& conn,
                                                      select_pass& pass) {
    const int pid = conn.backend_pid();
    auto it = pass.prepared.find(pid);
    if (it == pass.prepared.end()) {
        corio::pg::statement stmt = co_await conn.prepare("users_by_id", std::string(select_sql));
        it = pass.prepared.emplace(pid, std::move(stmt)).first;
    }
    co_return &it->second;
}

corio::task<> pool_worker_prepared(corio::pg::pool& p, select_pass& pass) {
    while (pass.next < pass.ids.size()) {
        const std::int64_t id = pass.ids[pass.next++];
        corio::pg::lease conn = co_await p.acquire();
        const corio::pg::statement* stmt = co_await statement_on(*conn, pass);
        const corio::pg::result r = co_await conn->query(*stmt, id);
        pass.take(r, id);
    }
}

/// One held connection running `count` lookups one after the other.
corio::task<> held_worker(corio::pg::connection& conn, select_pass& pass, bool prepared) {
    const corio::pg::statement* stmt = nullptr;
    if (prepared)
        stmt = co_await statement_on(conn, pass);
    while (pass.next < pass.ids.size()) {
        const std::int64_t id = pass.ids[pass.next++];
        // Not `stmt ? co_await ... : co_await ...`: g++ 12 destroys the result twice then.
        corio::pg::result r;
        if (stmt != nullptr)
            r = co_await conn.query(*stmt, id);
        else
            r = co_await conn.query(select_sql, id);
        pass.take(r, id);
    }
}

/// Runs every id of `ids` as configured; returns the sum of the ids checked (to compare with
/// the sum of `ids`).
corio::task<std::int64_t> select_pass_run(const options& o, corio::pg::pool& p,
                                          std::vector<corio::pg::lease>& held,
                                          const std::vector<std::int64_t>& ids,
                                          std::map<int, corio::pg::statement>& prepared) {
    select_pass pass{ids, prepared};
    const bool use_prepared = o.statement == "prepared";
    std::vector<corio::task<>> workers;
    if (o.via == "pool") {
        for (long i = 0; i < o.inflight; ++i)
            workers.push_back(use_prepared ? pool_worker_prepared(p, pass)
                                           : pool_worker_unnamed(p, pass));
    } else {
        for (corio::pg::lease& l : held)
            workers.push_back(held_worker(*l, pass, use_prepared));
    }
    co_await corio::gather(std::move(workers));
    if (pass.sum.ids != pass.expected)
        throw std::runtime_error("pg_corio: the rows' ids do not match the ids looked up");
    co_return pass.expected;
}

corio::task<int> select_main(const options& o) {
    if (o.statement != "unnamed" && o.statement != "prepared")
        usage("pg_corio", "--statement is unnamed or prepared, got " + o.statement);
    if (o.via != "pool" && o.via != "held")
        usage("pg_corio", "--via is pool or held, got " + o.via);
    corio::pg::pool p{corio::pg::pool_options{.conninfo = o.conninfo,
                                              .min_size = static_cast<std::size_t>(o.pool),
                                              .max_size = static_cast<std::size_t>(o.pool)}};
    co_await p.open();
    std::vector<corio::pg::lease> held;
    if (o.via == "held")
        for (long i = 0; i < o.pool; ++i)
            held.push_back(co_await p.acquire());
    std::map<int, corio::pg::statement> prepared;
    const std::vector<std::int64_t> warm_ids = random_ids(o.queries / 25 + o.pool, o.ids, 7);
    (void)co_await select_pass_run(o, p, held, warm_ids, prepared);
    const std::vector<std::int64_t> ids = random_ids(o.queries, o.ids, 42);
    const long rss_base = peak_rss_kib();
    const handoff::usage_snapshot begin = handoff::snapshot();
    (void)co_await select_pass_run(o, p, held, ids, prepared);
    const handoff::usage_snapshot end = handoff::snapshot();
    report(o, o.via + "-" + o.statement, o.queries, begin, end, rss_base);
    held.clear();
    co_await p.close();
    co_return 0;
}

// --- fetch: a million rows on one connection -------------------------------------------------

corio::task<checksum> fetch_rows(corio::pg::connection& conn, const std::string& sql, bool stream,
                                 long& rows) {
    checksum sum;
    rows = 0;
    if (stream) {
        corio::pg::cursor cur = co_await conn.stream(sql);
        while (const std::optional<corio::pg::row> r = co_await cur.next()) {
            sum.add(*r);
            ++rows;
        }
    } else {
        const corio::pg::result all = co_await conn.query(sql);
        for (const corio::pg::row r : all) {
            sum.add(r);
            ++rows;
        }
    }
    co_return sum;
}

corio::task<int> fetch_main(const options& o) {
    if (o.mode != "whole" && o.mode != "stream")
        usage("pg_corio", "--mode is whole or stream for fetch, got '" + o.mode + "'");
    const bool stream = o.mode == "stream";
    corio::pg::connection conn = co_await corio::pg::connection::connect(o.conninfo);
    const std::string sql = "SELECT id, name, email, score FROM rows_1m";
    long rows = 0;
    (void)co_await fetch_rows(conn, sql + " LIMIT 1000", stream, rows); // warm-up
    const long rss_base = peak_rss_kib();
    const handoff::usage_snapshot begin = handoff::snapshot();
    const checksum sum =
        co_await fetch_rows(conn, sql + " LIMIT " + std::to_string(o.rows), stream, rows);
    const handoff::usage_snapshot end = handoff::snapshot();
    const std::int64_t n = rows;
    // The ids are 1..1,000,000; a partial scan may start anywhere (synchronized seq scans).
    if (rows != o.rows || (n == 1'000'000 && sum.ids != n * (n + 1) / 2)) {
        std::fprintf(stderr, "pg_corio: fetched %ld rows (id sum %lld) of %ld\n", rows,
                     static_cast<long long>(sum.ids), o.rows);
        co_return 1;
    }
    report(o, o.mode, rows, begin, end, rss_base);
    co_return 0;
}

// --- insert: one by one, or pipelined --------------------------------------------------------

constexpr std::string_view insert_sql =
    "INSERT INTO inserts (id, name, email, score) VALUES ($1, $2, $3, $4)";

corio::task<> insert_range(corio::pg::connection& conn, std::int64_t first, long count,
                           bool pipelined, long batch_size) {
    const std::int64_t last = first + count; // exclusive
    if (!pipelined) {
        for (std::int64_t id = first; id < last; ++id) {
            const std::string name = "user " + std::to_string(id);
            const std::string email = "user" + std::to_string(id) + "@example.com";
            const std::uint64_t n =
                co_await conn.execute(insert_sql, id, name, email, static_cast<int>(id % 1000));
            if (n != 1)
                throw std::runtime_error("pg_corio: an INSERT affected " + std::to_string(n) +
                                         " rows");
        }
        co_return;
    }
    for (std::int64_t from = first; from < last; from += batch_size) {
        corio::pg::batch b;
        const std::int64_t to = std::min(last, from + batch_size);
        for (std::int64_t id = from; id < to; ++id) {
            const std::string name = "user " + std::to_string(id);
            const std::string email = "user" + std::to_string(id) + "@example.com";
            b.add(insert_sql, id, name, email, static_cast<int>(id % 1000));
        }
        const std::vector<corio::pg::result> results = co_await conn.pipeline(std::move(b));
        if (results.size() != static_cast<std::size_t>(to - from))
            throw std::runtime_error("pg_corio: a pipeline of " + std::to_string(to - from) +
                                     " inserts returned " + std::to_string(results.size()) +
                                     " results");
    }
}

corio::task<int> insert_main(const options& o) {
    if (o.mode != "one" && o.mode != "pipeline")
        usage("pg_corio", "--mode is one or pipeline for insert, got '" + o.mode + "'");
    const bool pipelined = o.mode == "pipeline";
    corio::pg::connection conn = co_await corio::pg::connection::connect(o.conninfo);
    (void)co_await conn.execute("TRUNCATE inserts");
    co_await insert_range(conn, -1000, 1000, pipelined, o.batch); // warm-up
    const long rss_base = peak_rss_kib();
    const handoff::usage_snapshot begin = handoff::snapshot();
    co_await insert_range(conn, 1, o.inserts, pipelined, o.batch);
    const handoff::usage_snapshot end = handoff::snapshot();
    const auto n =
        co_await conn.query_value<std::int64_t>("SELECT count(*) FROM inserts WHERE id > 0");
    if (n != o.inserts) {
        std::fprintf(stderr, "pg_corio: %lld rows inserted of %ld\n", static_cast<long long>(n),
                     o.inserts);
        co_return 1;
    }
    report(o, pipelined ? "pipeline-" + std::to_string(std::min(o.batch, o.inserts)) : "one",
           o.inserts, begin, end, rss_base);
    co_return 0;
}

} // namespace

int main(int argc, char** argv) {
    const options o = parse(argc, argv);
    try {
        if (o.which == "select")
            return corio::run(select_main(o));
        if (o.which == "fetch")
            return corio::run(fetch_main(o));
        if (o.which == "insert")
            return corio::run(insert_main(o));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "pg_corio: %s\n", e.what());
        return 1;
    }
    usage(argv[0], "unknown case '" + o.which + "'");
}

// SPDX-License-Identifier: MIT
#pragma once

#include <corio/cancelled_error.hpp>
#include <corio/pg/detail/connection_state.hpp>
#include <corio/pg/error.hpp>
#include <corio/pg/result.hpp>
#include <corio/pg/types.hpp>
#include <corio/task.hpp>
#include <corio/timeout.hpp>
#include <corio/to_thread.hpp>

#include <libpq-fe.h>
#include <poll.h>

#include <algorithm>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace corio::pg {

namespace detail {

/// The rows `run`'s statement affected (`execute`).
inline task<std::uint64_t> rows_affected(task<result> run) {
    const result r = co_await std::move(run);
    co_return r.rows_affected();
}

/// The first column of `run`'s first row (`query_value`). **Errors**: kind `usage`, naming
/// `who` and the statement, when there is none.
template <class T>
task<T> first_value(task<result> run, const char* who, std::string sql) {
    const result r = co_await std::move(run);
    if (r.empty() || r.columns() == 0)
        throw error(error_kind::usage,
                    std::string(who) +
                        ": the statement returned no value (statement: " + excerpt(sql) + ")",
                    error_fields{{}, {}, {}, {}, sql});
    co_return r[0].get<T>(0);
}

} // namespace detail

class connection;
class transaction;
class pool;

/// A prepared statement (asyncpg's `PreparedStatement`): a name on one connection, made by
/// `connection::prepare`. Run it with `query(stmt, args...)` / `execute(stmt, args...)` on that
/// connection (or a transaction of it).
class statement {
public:
    [[nodiscard]] const std::string& name() const noexcept { return name_; }
    [[nodiscard]] const std::string& sql() const noexcept { return sql_; }
    /// The number of parameters it takes ($1...$n).
    [[nodiscard]] int parameters() const noexcept { return parameters_; }

private:
    friend class session;
    statement(std::string name, std::string sql, int parameters)
        : name_(std::move(name)), sql_(std::move(sql)), parameters_(parameters) {}
    std::string name_;
    std::string sql_;
    int parameters_ = 0;
};

/// Statements to send at once in pipeline mode (`session::pipeline`): each with its
/// parameters, run in order, answered in order.
class batch {
public:
    /// Adds a statement; its parameters are encoded now.
    template <bindable... Args>
    batch& add(std::string_view sql, const Args&... args) {
        items_.push_back({std::string(sql), detail::encoded_params::of(args...)});
        return *this;
    }
    [[nodiscard]] std::size_t size() const noexcept { return items_.size(); }
    [[nodiscard]] bool empty() const noexcept { return items_.empty(); }

private:
    friend class session;
    struct item {
        std::string sql;
        detail::encoded_params params;
    };
    std::vector<item> items_;
};

/// The rows of a statement as they arrive (libpq's single-row mode), for results too large to
/// hold: `while (auto row = co_await cur.next()) {...}`. Memory stays bounded by one row
/// plus libpq's read buffer. The connection is busy until the last row was read or the cursor
/// is destroyed; a cursor destroyed early leaves the remaining rows to be read (and dropped)
/// by the connection's next operation.
///
/// **Cancellation**: a cancelled `next()` cancels the statement on the server, reads to the
/// end of its answer and throws `cancelled_error`; the cursor is then finished.
/// **Errors**: those of `connection::query`, from the `next()` that meets them.
class cursor {
public:
    cursor(cursor&& other) noexcept
        : state_(std::exchange(other.state_, nullptr)), sql_(std::move(other.sql_)),
          current_(std::move(other.current_)) {}
    cursor& operator=(cursor&&) = delete;
    cursor(const cursor&) = delete;
    cursor& operator=(const cursor&) = delete;
    ~cursor() {
        if (state_ != nullptr) { // abandoned mid-way: the next operation reads the rest
            ++state_->pending;
            state_->busy = false;
        }
    }

    /// The next row, or std::nullopt after the last. The row is valid until the next call.
    task<std::optional<row>> next() {
        if (state_ == nullptr)
            co_return std::nullopt;
        detail::connection_state& s = *state_;
        static constexpr const char* who = "corio::pg::cursor::next";
        std::exception_ptr cancelled;
        try {
            detail::result_ptr r = co_await s.next_result(who, sql_);
            if (!r) {
                finish();
                co_return std::nullopt;
            }
            switch (PQresultStatus(r.get())) {
            case PGRES_SINGLE_TUPLE:
                current_ = result{std::move(r)};
                co_return row{current_.native(), 0};
            case PGRES_TUPLES_OK: // the end (no row in it): then the null that closes it
            case PGRES_COMMAND_OK:
                while (detail::result_ptr rest = co_await s.next_result(who, sql_)) {
                }
                finish();
                co_return std::nullopt;
            default: {
                detail::result_ptr failure = std::move(r);
                while (detail::result_ptr rest = co_await s.next_result(who, sql_)) {
                }
                finish();
                s.fail_with(failure.get(), who, sql_);
            }
            }
        } catch (const cancelled_error&) {
            cancelled = std::current_exception();
        } catch (...) {
            finish(); // a broken connection was marked so by what threw
            throw;
        }
        co_await s.recover();
        finish();
        std::rethrow_exception(cancelled);
    }

private:
    friend class session;
    cursor(detail::connection_state& s, std::string sql) : state_(&s), sql_(std::move(sql)) {}
    void finish() noexcept {
        if (state_ != nullptr)
            std::exchange(state_, nullptr)->busy = false;
    }

    detail::connection_state* state_;
    std::string sql_;
    result current_;
};

/// What runs statements: a `connection`, a `transaction` on one, and (through its lease) a
/// pool's connection. Every member is an operation of its own; one runs at a time on a
/// connection (a second, from another task, is refused: use a pool for concurrency).
///
/// **Cancellation** (every operation): a cancelled operation, directly or by `corio::timeout`,
/// sends PostgreSQL's cancel request for its backend, reads the connection back to idle and
/// throws `cancelled_error` (`timeout_error` through `corio::timeout`); the connection stays
/// usable. If the server does not answer within 5 s, or the connection fails meanwhile, the
/// connection is marked broken: a pool closes it, and its next use throws.
/// **Errors**: `pg::error` of kind `query` carrying the server's SQLSTATE, message, detail,
/// hint and the statement; `connection_error` when the connection broke (the server went
/// away); `timeout_error` for the server's statement_timeout; kind `type` for a parameter that
/// cannot be bound; kind `usage` for a second concurrent operation on one connection.
/// **Thread-safety**: one loop, the first that uses it (from another, a `std::logic_error`).
class session {
public:
    /// Runs `sql` with `args` bound to $1, $2... and returns its rows (asyncpg's `fetch`).
    template <bindable... Args>
    task<result> query(std::string_view sql, const Args&... args) {
        return detail::run_statement(state(), "corio::pg::query", std::string(sql), {},
                                     detail::encoded_params::of(args...));
    }
    /// Runs a prepared statement.
    template <bindable... Args>
    task<result> query(const statement& stmt, const Args&... args) {
        check_arity(stmt, sizeof...(Args));
        return detail::run_statement(state(), "corio::pg::query", stmt.sql(), stmt.name(),
                                     detail::encoded_params::of(args...));
    }

    /// Runs `sql` and returns the number of rows it affected (asyncpg's `execute`).
    template <bindable... Args>
    task<std::uint64_t> execute(std::string_view sql, const Args&... args) {
        return detail::rows_affected(detail::run_statement(state(), "corio::pg::execute",
                                                           std::string(sql), {},
                                                           detail::encoded_params::of(args...)));
    }
    template <bindable... Args>
    task<std::uint64_t> execute(const statement& stmt, const Args&... args) {
        check_arity(stmt, sizeof...(Args));
        return detail::rows_affected(detail::run_statement(state(), "corio::pg::execute",
                                                           stmt.sql(), stmt.name(),
                                                           detail::encoded_params::of(args...)));
    }

    /// Runs `sql` and returns the first column of its first row as `T` (asyncpg's `fetchval`).
    /// **Errors**: those of `query`; `pg::error` of kind `usage` when it returned no row.
    template <decodable T, bindable... Args>
    task<T> query_value(std::string_view sql, const Args&... args) {
        return detail::first_value<T>(query(sql, args...), "corio::pg::query_value",
                                      std::string(sql));
    }

    /// Prepares `sql` on the server under `name` (unique on the connection; "" is the unnamed
    /// statement, replaced by the next unnamed one).
    task<statement> prepare(std::string name, std::string sql) {
        return prepare_on(state(), std::move(name), std::move(sql));
    }

    /// Runs `sql` and hands its rows over one by one as they arrive (`cursor`).
    template <bindable... Args>
    task<cursor> stream(std::string_view sql, const Args&... args) {
        return open_cursor(state(), std::string(sql), detail::encoded_params::of(args...));
    }

    /// Sends every statement of `b` at once (libpq's pipeline mode, asyncpg's `executemany`)
    /// and returns their results in order. The batch is one implicit transaction: if one
    /// statement fails, those before it are rolled back and those after it are not run, and
    /// the failure is thrown, naming the statement's position.
    task<std::vector<result>> pipeline(batch b) { return run_pipeline(state(), std::move(b)); }
    /// Fills a batch with `fill(batch&)`, then runs it.
    template <std::invocable<batch&> Fill>
    task<std::vector<result>> pipeline(Fill fill) {
        batch b;
        fill(b);
        return pipeline(std::move(b));
    }

protected:
    session() = default;
    explicit session(detail::connection_state* s) noexcept : state_(s) {}
    [[nodiscard]] detail::connection_state& state() const {
        if (state_ == nullptr)
            throw error(error_kind::usage, "corio::pg: the connection is closed (moved from)");
        return *state_;
    }
    detail::connection_state* state_ = nullptr;

private:
    static void check_arity(const statement& stmt, std::size_t given) {
        if (static_cast<int>(given) != stmt.parameters())
            throw error(error_kind::usage,
                        "corio::pg::query: prepared statement \"" + stmt.name() + "\" takes " +
                            std::to_string(stmt.parameters()) + " parameters, got " +
                            std::to_string(given),
                        error_fields{{}, {}, {}, {}, stmt.sql()});
    }

    static task<statement> prepare_on(detail::connection_state& s, std::string name,
                                      std::string sql) {
        static constexpr const char* who = "corio::pg::prepare";
        result described;
        {
            detail::operation_scope op{s, who};
            co_await s.settle(who);
            if (PQsendPrepare(s.conn, name.c_str(), sql.c_str(), 0, nullptr) == 0)
                s.fail(who, sql);
            std::exception_ptr cancelled;
            try {
                co_await s.flush(who, sql);
                (void)co_await s.collect(who, sql);
                if (PQsendDescribePrepared(s.conn, name.c_str()) == 0)
                    s.fail(who, sql);
                co_await s.flush(who, sql);
                described = co_await s.collect(who, sql);
            } catch (const cancelled_error&) {
                cancelled = std::current_exception();
            }
            if (cancelled) {
                co_await s.recover();
                std::rethrow_exception(cancelled);
            }
        }
        co_return statement{std::move(name), std::move(sql), PQnparams(described.native())};
    }

    static task<cursor> open_cursor(detail::connection_state& s, std::string sql,
                                    detail::encoded_params params) {
        static constexpr const char* who = "corio::pg::stream";
        detail::operation_scope op{s, who};
        co_await s.settle(who);
        const detail::param_arrays a{params};
        if (PQsendQueryParams(s.conn, sql.c_str(), a.size(), nullptr, a.values.data(),
                              a.lengths.data(), a.formats.data(), 0) == 0 ||
            PQsetSingleRowMode(s.conn) == 0)
            s.fail(who, sql);
        std::exception_ptr cancelled;
        try {
            co_await s.flush(who, sql);
        } catch (const cancelled_error&) {
            cancelled = std::current_exception();
        }
        if (cancelled) {
            co_await s.recover();
            std::rethrow_exception(cancelled);
        }
        op.hand_over();
        co_return cursor{s, std::move(sql)};
    }

    static task<std::vector<result>> run_pipeline(detail::connection_state& s, batch b) {
        static constexpr const char* who = "corio::pg::pipeline";
        detail::operation_scope op{s, who};
        co_await s.settle(who);
        std::vector<result> results;
        results.reserve(b.items_.size());
        std::exception_ptr cancelled;
        try {
            co_await send_and_collect(s, b, results);
        } catch (const cancelled_error&) {
            cancelled = std::current_exception();
        }
        if (cancelled) {
            co_await s.recover();
            std::rethrow_exception(cancelled);
        }
        co_return results;
    }

    /// Sends the batch (reading answers as they come, so neither side's buffers fill up and
    /// stall the other), then the sync, then reads the rest up to the sync. A run of
    /// statements with the same text is parsed once: prepared as the unnamed statement, then
    /// executed with each one's parameters (asyncpg's `executemany` does the same).
    static task<> send_and_collect(detail::connection_state& s, batch& b,
                                   std::vector<result>& results) {
        static constexpr const char* who = "corio::pg::pipeline";
        if (PQenterPipelineMode(s.conn) == 0)
            s.fail(who, {});
        s.pipeline_synced = false;
        harvest h{s, results};
        const std::string* prepared = nullptr; // the text of the unnamed statement
        for (std::size_t i = 0; i < b.items_.size(); ++i) {
            const batch::item& it = b.items_[i];
            if (prepared == nullptr || *prepared != it.sql) {
                if (PQsendPrepare(s.conn, "", it.sql.c_str(), 0, nullptr) == 0)
                    s.fail(who, it.sql);
                h.expect(harvest::answer::prepare, i);
                prepared = &it.sql;
            }
            const detail::param_arrays a{it.params};
            if (PQsendQueryPrepared(s.conn, "", a.size(), a.values.data(), a.lengths.data(),
                                    a.formats.data(), 0) == 0)
                s.fail(who, it.sql);
            h.expect(harvest::answer::statement, i);
            // Sent every 64 statements (a flush per statement would be a system call each);
            // when the socket is full libpq keeps the rest: wait until it can take more, and
            // read what arrived meanwhile.
            if (i % 64 != 63)
                continue;
            while (PQflush(s.conn) == 1) {
                const int revents = co_await s.ready(POLLOUT | POLLIN);
                if ((revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
                    s.consume(who, it.sql);
                    h.take_ready();
                }
            }
        }
        if (PQpipelineSync(s.conn) == 0)
            s.fail(who, {});
        s.pipeline_synced = true;
        h.expect(harvest::answer::sync, b.items_.size());
        co_await s.flush(who, {});
        for (;;) {
            h.take_ready();
            if (h.synced())
                break;
            co_await s.ready(POLLIN);
            s.consume(who, {});
        }
        if (PQexitPipelineMode(s.conn) == 0)
            s.fail(who, {});
        if (h.failure)
            s.fail_with(h.failure.get(), who, b.items_[h.failed_at].sql);
    }

    /// Reads the pipeline's answers that libpq has already received, without waiting: one
    /// per command sent, in order (each ends with a null result, but the sync's).
    struct harvest {
        enum class answer : std::uint8_t { prepare, statement, sync };
        harvest(detail::connection_state& state, std::vector<result>& out) noexcept
            : s(state), results(out) {}
        detail::connection_state& s;
        std::vector<result>& results;
        std::deque<std::pair<answer, std::size_t>> expected; // commands not yet answered
        detail::result_ptr current;                          // the statement being answered
        detail::result_ptr failure;
        std::size_t failed_at = 0;

        void expect(answer a, std::size_t item) { expected.emplace_back(a, item); }
        [[nodiscard]] bool synced() const noexcept { return expected.empty(); }

        void take_ready() {
            // Only while an answer is due: with none due, libpq would return null forever.
            while (!expected.empty() && PQisBusy(s.conn) == 0) {
                detail::result_ptr r{PQgetResult(s.conn)};
                const auto [kind, item] = expected.front();
                if (!r) { // the end of one command's answer
                    if (kind == answer::statement)
                        results.emplace_back(std::move(current));
                    current.reset();
                    expected.pop_front();
                    continue;
                }
                switch (PQresultStatus(r.get())) {
                case PGRES_PIPELINE_SYNC: expected.pop_front(); break;
                case PGRES_TUPLES_OK:
                case PGRES_COMMAND_OK:
                case PGRES_EMPTY_QUERY:
                case PGRES_PIPELINE_ABORTED: current = std::move(r); break;
                default:
                    if (!failure) {
                        failure = std::move(r);
                        failed_at = item;
                    }
                }
            }
        }
    };
};

/// A transaction (asyncpg's `Transaction`), begun by `connection::begin()`: run statements on
/// it like on the connection, then `commit()`. Destroyed before `commit()` or `rollback()`
/// (an exception, a cancellation), it rolls back: the ROLLBACK is sent at once, and its
/// answer read by the connection's next operation.
class transaction : public session {
public:
    transaction(transaction&& other) noexcept : session(std::exchange(other.state_, nullptr)) {}
    transaction& operator=(transaction&&) = delete;
    transaction(const transaction&) = delete;
    transaction& operator=(const transaction&) = delete;
    ~transaction() {
        if (state_ != nullptr)
            state_->rollback_soon();
    }

    /// Commits. The transaction is over whether it succeeds or fails (a failed COMMIT, a
    /// serialization failure for example, has rolled it back).
    task<> commit() { return finish("COMMIT"); }
    /// Rolls back.
    task<> rollback() { return finish("ROLLBACK"); }

private:
    friend class connection;
    explicit transaction(detail::connection_state& s) noexcept : session(&s) {}

    task<> finish(const char* verb) {
        detail::connection_state& s = state();
        state_ = nullptr; // over, however the statement ends
        (void)co_await detail::run_statement(s, "corio::pg::transaction", verb, {}, {});
    }
};

/// One connection to PostgreSQL (asyncpg's `Connection`), driven by the loop: libpq in
/// non-blocking mode, its socket's readiness awaited through the loop, so connecting (TLS
/// and authentication included) and every statement leave the loop free. Move-only; the
/// state it points at stays put, so a move does not disturb an operation in flight (but the
/// connection must outlive its operations, transactions and cursors).
///
/// **Errors** of `connect`: `connection_error` (unreachable, refused, a bad conninfo, the
/// conninfo's connect_timeout passed), `authentication_error` (wrong password, unknown role).
/// The rest: see `session`.
class connection : public session {
public:
    /// Connects with a libpq connection string ("host=/tmp/pg port=5432 dbname=app") or URI
    /// ("postgresql://user@host/db"); `connect_timeout` in it bounds the whole connect. The
    /// host name is resolved on the blocking pool (libpq resolves names synchronously).
    static task<connection> connect(std::string conninfo) {
        auto s = std::make_unique<detail::connection_state>();
        static constexpr const char* who = "corio::pg::connection::connect";
        s->conn = co_await to_thread([&conninfo] { return PQconnectStart(conninfo.c_str()); });
        if (s->conn == nullptr || PQstatus(s->conn) == CONNECTION_BAD)
            throw_connect_failure(s->conn, who);
        s->listen_for_notices();
        const std::chrono::seconds limit = connect_timeout_of(s->conn);
        const auto deadline = std::chrono::steady_clock::now() + limit;
        for (PostgresPollingStatusType st = PGRES_POLLING_WRITING; st != PGRES_POLLING_OK;
             st = PQconnectPoll(s->conn)) {
            if (st == PGRES_POLLING_FAILED)
                throw_connect_failure(s->conn, who);
            const short events = st == PGRES_POLLING_READING ? POLLIN : POLLOUT;
            if (limit.count() == 0) {
                co_await s->ready(events);
                continue;
            }
            const auto left = deadline - std::chrono::steady_clock::now();
            bool late = left <= std::chrono::steady_clock::duration::zero();
            if (!late) {
                try {
                    co_await corio::timeout(left, s->ready(events));
                } catch (const corio::timeout_error&) {
                    late = true;
                }
            }
            if (late)
                throw connection_error(std::string(who) + ": not connected after " +
                                       std::to_string(limit.count()) +
                                       " s (the conninfo's connect_timeout)");
        }
        if (PQsetnonblocking(s->conn, 1) != 0)
            throw_connect_failure(s->conn, who);
        s->opened = s->idle_since = std::chrono::steady_clock::now();
        co_return connection{std::move(s)};
    }

    connection(connection&& other) noexcept
        : session(other.state_), owned_(std::move(other.owned_)) {
        other.state_ = nullptr;
    }
    connection& operator=(connection&& other) noexcept {
        if (this != &other) {
            owned_ = std::move(other.owned_);
            state_ = std::exchange(other.state_, nullptr);
        }
        return *this;
    }
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;
    ~connection() = default;

    /// Begins a transaction (`BEGIN`, or `begin_sql` such as "BEGIN ISOLATION LEVEL
    /// SERIALIZABLE").
    task<transaction> begin(std::string begin_sql = "BEGIN") {
        return begin_on(state(), std::move(begin_sql));
    }

    /// Calls `handler` with each notice or warning the server sends (RAISE NOTICE, "there is
    /// no transaction in progress"; asyncpg's `add_log_listener`), on this loop. Without one
    /// they are dropped.
    void on_notice(std::function<void(std::string_view)> handler) {
        state().notice_handler = std::move(handler);
    }

    /// False once the connection broke (or was moved from); a broken connection is not reused.
    [[nodiscard]] bool usable() const noexcept {
        return state_ != nullptr && !state_->broken && PQstatus(state_->conn) == CONNECTION_OK;
    }
    /// The server process serving this connection (`pg_backend_pid()`).
    [[nodiscard]] int backend_pid() const noexcept {
        return state_ != nullptr ? PQbackendPID(state_->conn) : 0;
    }
    /// libpq's connection, for what this class does not wrap (not for running statements:
    /// that would confuse the connection's state).
    [[nodiscard]] PGconn* native() const noexcept {
        return state_ != nullptr ? state_->conn : nullptr;
    }

private:
    friend class pool;
    explicit connection(std::unique_ptr<detail::connection_state> s) noexcept
        : session(s.get()), owned_(std::move(s)) {}

    static task<transaction> begin_on(detail::connection_state& s, std::string begin_sql) {
        (void)co_await detail::run_statement(s, "corio::pg::connection::begin", begin_sql, {}, {});
        co_return transaction{s};
    }

    [[noreturn]] static void throw_connect_failure(PGconn* c, const char* who) {
        const std::string message = detail::libpq_message(c);
        const std::string what = std::string(who) + ": " + message;
        error_fields f{{}, message, {}, {}, {}};
        if (detail::is_authentication_failure(message))
            throw authentication_error(what, std::move(f));
        throw connection_error(what, std::move(f));
    }

    /// The conninfo's connect_timeout (libpq ignores it in non-blocking mode); 0 for none.
    static std::chrono::seconds connect_timeout_of(PGconn* c) {
        std::chrono::seconds limit{0};
        if (PQconninfoOption* options = PQconninfo(c)) {
            for (PQconninfoOption* o = options; o->keyword != nullptr; ++o)
                if (std::string_view(o->keyword) == "connect_timeout" && o->val != nullptr)
                    limit = std::chrono::seconds{std::max(0L, std::atol(o->val))};
            PQconninfoFree(options);
        }
        if (limit.count() == 1)
            limit = std::chrono::seconds{2}; // libpq's own minimum, for the same reason
        return limit;
    }

    std::unique_ptr<detail::connection_state> owned_;
};

} // namespace corio::pg

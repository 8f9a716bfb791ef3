// SPDX-License-Identifier: MIT
// The state of one PostgreSQL connection and the loop-driven steps every operation is built
// from: send, flush, wait for results, and recover from a cancellation. libpq runs in
// non-blocking mode; its socket's readiness is awaited through the loop (`io::poll`).
#pragma once

#include <corio/cancelled_error.hpp>
#include <corio/io/loop_affinity.hpp>
#include <corio/io/operation.hpp>
#include <corio/pg/error.hpp>
#include <corio/pg/result.hpp>
#include <corio/pg/types.hpp>
#include <corio/task.hpp>
#include <corio/timeout.hpp>
#include <corio/to_thread.hpp>

#include <libpq-fe.h>
#include <poll.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <exception>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace corio::pg::detail {

/// Parameters encoded for libpq: the values, and the arrays `PQsendQueryParams` takes.
struct encoded_params {
    std::vector<param_value> values;

    template <class... Args>
    static encoded_params of(const Args&... args) {
        encoded_params p;
        p.values.resize(sizeof...(Args));
        std::size_t i = 0;
        (encode(p.values[i++], args), ...);
        return p;
    }
};

/// libpq's view of `encoded_params` (pointers into it: it must outlive the call).
struct param_arrays {
    std::vector<const char*> values;
    std::vector<int> lengths;
    std::vector<int> formats;

    explicit param_arrays(const encoded_params& p) {
        values.reserve(p.values.size());
        lengths.reserve(p.values.size());
        formats.reserve(p.values.size());
        for (const param_value& v : p.values) {
            values.push_back(v.null ? nullptr : v.data.c_str());
            lengths.push_back(static_cast<int>(v.data.size()));
            formats.push_back(v.binary ? 1 : 0);
        }
    }
    [[nodiscard]] int size() const noexcept { return static_cast<int>(values.size()); }
};

/// libpq's message, trimmed of its trailing newline.
inline std::string libpq_message(const PGconn* conn) {
    std::string m = conn != nullptr ? PQerrorMessage(conn) : "out of memory";
    while (!m.empty() && (m.back() == '\n' || m.back() == ' '))
        m.pop_back();
    return m.empty() ? std::string("the connection failed") : m;
}

/// A statement's text for a message: at most 200 characters.
inline std::string excerpt(std::string_view sql) {
    constexpr std::size_t limit = 200;
    return sql.size() <= limit ? std::string(sql) : std::string(sql.substr(0, limit)) + "...";
}

/// True when a connection failure's message says the credentials were refused.
inline bool is_authentication_failure(std::string_view message) {
    for (std::string_view sign :
         {"password authentication failed", "no password supplied", "authentication failed",
          "SCRAM authentication", "pg_hba.conf rejects", "no pg_hba.conf entry"})
        if (message.find(sign) != std::string_view::npos)
            return true;
    return false;
}

/// The state of one connection; `connection`, `transaction`, `cursor` and a pool's lease point
/// at it, so it does not move when they do.
struct connection_state {
    PGconn* conn = nullptr;
    corio::detail::loop_affinity affinity;
    bool busy = false;   // an operation (or an open cursor) has the connection
    bool broken = false; // unusable: failed, or left in an unknown state
    int pending = 0;     // statements sent whose results nobody awaits: read before the next
    bool pipeline_synced = false; // the pipeline in progress has sent its sync
    std::chrono::steady_clock::time_point opened = std::chrono::steady_clock::now();
    std::chrono::steady_clock::time_point idle_since = opened;
    /// How long a cancelled operation waits for the server to stop and answer before the
    /// connection is given up.
    std::chrono::milliseconds recover_limit{5000};
    /// Where the server's notices and warnings go (`connection::on_notice`); dropped if empty.
    std::function<void(std::string_view)> notice_handler;

    /// Routes libpq's notices to `notice_handler` (libpq would print them on stderr).
    void listen_for_notices() noexcept {
        PQsetNoticeReceiver(
            conn,
            [](void* self, const PGresult* r) {
                auto& s = *static_cast<connection_state*>(self);
                if (!s.notice_handler)
                    return;
                std::string_view text = PQresultErrorMessage(r);
                while (!text.empty() && text.back() == '\n')
                    text.remove_suffix(1);
                try {
                    s.notice_handler(text);
                } catch (...) { // a C callback: nothing may cross it
                }
            },
            this);
    }

    connection_state() = default;
    connection_state(const connection_state&) = delete;
    connection_state& operator=(const connection_state&) = delete;
    ~connection_state() {
        if (conn != nullptr)
            PQfinish(conn);
    }

    // --- failures --------------------------------------------------------------------------

    /// Marks the connection broken and throws `connection_error` with libpq's message.
    [[noreturn]] void fail(const char* who, std::string_view sql) {
        broken = true;
        std::string what = std::string(who) + ": " + libpq_message(conn);
        if (!sql.empty())
            what += " (statement: " + excerpt(sql) + ")";
        throw connection_error(what,
                               error_fields{{}, libpq_message(conn), {}, {}, std::string(sql)});
    }

    /// Throws the error a failed result reports: `connection_error` when the connection is
    /// gone (or the server is shutting down), `timeout_error` for statement_timeout,
    /// `pg::error` of kind `query` otherwise.
    [[noreturn]] void fail_with(const PGresult* r, const char* who, std::string_view sql) {
        auto field = [r](int code) {
            const char* v = PQresultErrorField(r, code);
            return v != nullptr ? std::string(v) : std::string();
        };
        error_fields f{field(PG_DIAG_SQLSTATE), field(PG_DIAG_MESSAGE_PRIMARY),
                       field(PG_DIAG_MESSAGE_DETAIL), field(PG_DIAG_MESSAGE_HINT),
                       std::string(sql)};
        if (f.message.empty())
            f.message = libpq_message(conn);
        const std::string severity = field(PG_DIAG_SEVERITY);
        std::string what = std::string(who) + ": " + (severity.empty() ? "ERROR" : severity);
        if (!f.sqlstate.empty())
            what += " " + f.sqlstate;
        what += ": " + f.message;
        if (!f.detail.empty())
            what += " (" + f.detail + ")";
        if (!sql.empty())
            what += " (statement: " + excerpt(sql) + ")";
        if (PQstatus(conn) == CONNECTION_BAD || f.sqlstate.starts_with("08") ||
            f.sqlstate.starts_with("57P")) {
            broken = true;
            throw connection_error(what, std::move(f));
        }
        if (f.sqlstate.starts_with("28"))
            throw authentication_error(what, std::move(f));
        if (f.sqlstate == "57014" && f.message.find("statement timeout") != std::string::npos)
            throw timeout_error(std::chrono::nanoseconds{0}, what, std::move(f));
        throw error(error_kind::query, what, std::move(f));
    }

    // --- the steps ---------------------------------------------------------------------------

    /// Reads what the server sent into libpq. **Errors**: `connection_error` when it broke.
    void consume(const char* who, std::string_view sql) {
        if (PQconsumeInput(conn) == 0)
            fail(who, sql);
    }

    /// Waits until the socket is ready for `events`.
    io::operation ready(short events) const { return io::poll(PQsocket(conn), events); }

    /// Sends what libpq has buffered, reading meanwhile (so a server that answers while we
    /// send never waits on us).
    task<> flush(const char* who, std::string_view sql) {
        for (;;) {
            const int r = PQflush(conn);
            if (r == 0)
                co_return;
            if (r < 0)
                fail(who, sql);
            const int revents = co_await ready(POLLOUT | POLLIN);
            if ((revents & (POLLIN | POLLHUP | POLLERR)) != 0)
                consume(who, sql);
        }
    }

    /// The next result of the statement in progress; null when it has no more.
    task<result_ptr> next_result(const char* who, std::string_view sql) {
        while (PQisBusy(conn) != 0) {
            co_await ready(POLLIN);
            consume(who, sql);
        }
        co_return result_ptr{PQgetResult(conn)};
    }

    /// Reads a statement's results to the end: its rows or its error.
    task<result> collect(const char* who, std::string_view sql) {
        result_ptr last;
        result_ptr failure;
        for (;;) {
            result_ptr r = co_await next_result(who, sql);
            if (!r)
                break;
            switch (PQresultStatus(r.get())) {
            case PGRES_TUPLES_OK:
            case PGRES_COMMAND_OK:
            case PGRES_EMPTY_QUERY:
            case PGRES_SINGLE_TUPLE: last = std::move(r); break;
            case PGRES_COPY_IN:
            case PGRES_COPY_OUT:
            case PGRES_COPY_BOTH:
                broken = true; // libpq now waits for COPY data: the connection cannot go on
                throw error(error_kind::usage, std::string(who) +
                                                   ": COPY ... FROM STDIN / TO STDOUT is not "
                                                   "supported; the connection is closed "
                                                   "(statement: " +
                                                   excerpt(sql) + ")");
            default:
                if (!failure)
                    failure = std::move(r);
            }
        }
        if (failure)
            fail_with(failure.get(), who, sql);
        if (PQstatus(conn) == CONNECTION_BAD)
            fail(who, sql);
        co_return result{std::move(last)};
    }

    /// Reads the results of statements sent earlier that nobody awaits (a ROLLBACK sent by a
    /// transaction's destructor, the rest of an abandoned stream).
    task<> settle(const char* who) {
        if (pending == 0)
            co_return;
        co_await flush(who, {});
        while (pending > 0) {
            while (result_ptr r = co_await next_result(who, {})) {
            }
            --pending;
        }
    }

    /// After a cancellation mid-statement: asks the server to cancel it (PostgreSQL's cancel
    /// request, on the blocking pool: libpq 15's PQcancel blocks), then reads to the end of
    /// its answer, within `recover_limit`. Never throws; a connection it could not bring back
    /// is marked broken (a pool then closes it).
    task<> recover() {
        try {
            if (PGcancel* c = PQgetCancel(conn)) {
                (void)co_await to_thread([c] {
                    std::array<char, 256> why{};
                    const int sent = PQcancel(c, why.data(), static_cast<int>(why.size()));
                    PQfreeCancel(c);
                    return sent;
                });
            }
            co_await corio::timeout(recover_limit, drain());
        } catch (...) {
            broken = true;
        }
    }

    /// Reads every result up to the point where the connection is idle again. A pipeline (of
    /// which there is one at most, with one sync) is read up to its sync, sent first if it
    /// was not yet, and left.
    task<> drain() {
        const char* who = "corio::pg (recovering from a cancellation)";
        if (PQpipelineStatus(conn) != PQ_PIPELINE_OFF) {
            if (!pipeline_synced && PQpipelineSync(conn) == 0)
                fail(who, {});
            co_await flush(who, {});
            for (;;) {
                result_ptr r = co_await next_result(who, {});
                if (r && PQresultStatus(r.get()) == PGRES_PIPELINE_SYNC)
                    break;
            }
            if (PQexitPipelineMode(conn) == 0)
                fail(who, {});
            co_return;
        }
        co_await flush(who, {});
        while (result_ptr r = co_await next_result(who, {})) {
        }
    }

    /// Sends a ROLLBACK without waiting for its answer (a transaction's destructor), which the
    /// next operation reads first. A connection that cannot take it is marked broken.
    void rollback_soon() noexcept {
        if (broken || conn == nullptr)
            return;
        if (PQsendQuery(conn, "ROLLBACK") == 0) {
            broken = true;
            return;
        }
        (void)PQflush(conn); // the rest, if any, goes with the next operation's flush
        ++pending;
    }
};

/// Marks a connection busy for one operation: refuses a second one, a broken connection and
/// another loop. Clears the mark when the operation ends.
class operation_scope {
public:
    operation_scope(connection_state& s, const char* who) : s_(s) {
        if (s.conn == nullptr)
            throw error(error_kind::usage, std::string(who) + ": the connection is closed");
        s.affinity.check(who);
        if (s.busy)
            throw error(error_kind::usage,
                        std::string(who) +
                            ": the connection is busy with another operation (an open stream, "
                            "or a query of another task); use a pool for concurrent queries");
        if (s.broken)
            throw connection_error(std::string(who) +
                                   ": the connection broke earlier and cannot be used; open "
                                   "another");
        s.busy = true;
    }
    operation_scope(const operation_scope&) = delete;
    operation_scope& operator=(const operation_scope&) = delete;
    ~operation_scope() {
        if (!owned_)
            return;
        s_.busy = false;
        // An operation that ends (by an exception from below: a failed wait, say) with its
        // statement still running and nobody left to read its answer leaves the connection in
        // a state nobody knows: it is not used again.
        if (s_.conn != nullptr && s_.pending == 0 && PQtransactionStatus(s_.conn) == PQTRANS_ACTIVE)
            s_.broken = true;
    }
    /// Keeps the connection busy past this scope (a cursor takes it over).
    void hand_over() noexcept { owned_ = false; }

private:
    connection_state& s_;
    bool owned_ = true;
};

/// Runs one statement with parameters to the end: `PQsendQueryParams` (or, with a statement
/// name, `PQsendQueryPrepared`), then its results. A cancellation mid-way cancels it on the
/// server and reads to the end before `cancelled_error` goes on.
inline task<result> run_statement(connection_state& s, const char* who, std::string sql,
                                  std::string prepared_name, encoded_params params) {
    operation_scope op{s, who};
    co_await s.settle(who);
    const param_arrays a{params};
    const int sent =
        prepared_name.empty()
            ? PQsendQueryParams(s.conn, sql.c_str(), a.size(), nullptr, a.values.data(),
                                a.lengths.data(), a.formats.data(), 0)
            : PQsendQueryPrepared(s.conn, prepared_name.c_str(), a.size(), a.values.data(),
                                  a.lengths.data(), a.formats.data(), 0);
    if (sent == 0)
        s.fail(who, sql);
    std::exception_ptr cancelled;
    try {
        co_await s.flush(who, sql);
        co_return co_await s.collect(who, sql);
    } catch (const cancelled_error&) {
        cancelled = std::current_exception();
    }
    co_await s.recover();
    std::rethrow_exception(cancelled);
}

} // namespace corio::pg::detail

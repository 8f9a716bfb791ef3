// SPDX-License-Identifier: MIT
// corio::pg's errors: one base, `pg::error`, with a `kind()` to branch on, the fields the server
// sent (SQLSTATE, message, detail, hint) and the statement; a class per kind that callers
// catch on its own (asyncpg's PostgresError, InterfaceError and ConnectionDoesNotExistError).
#pragma once

#include <corio/timeout.hpp>

#include <chrono>
#include <stdexcept>
#include <string>
#include <utility>

namespace corio::pg {

/// What went wrong.
enum class error_kind {
    connection,     ///< connecting failed, or the connection broke (`connection_error`)
    authentication, ///< the server refused the credentials (`authentication_error`)
    query,          ///< the server refused or failed a statement (SQLSTATE in `sqlstate()`)
    timeout,        ///< the pool's `acquire_timeout`, or the server's statement_timeout
    type,           ///< a value could not be converted to or from the C++ type asked for
    usage,          ///< the API was misused: a closed pool, a connection busy with another query
};

/// The fields of a server's error report, where there was one.
struct error_fields {
    std::string sqlstate; ///< "42P01"; empty when the error did not come from the server
    std::string message;  ///< the primary message: `relation "nope" does not exist`
    std::string detail;
    std::string hint;
    std::string statement; ///< the SQL text, never the parameters' values
};

/// Every failure of corio::pg. The message names the call and, where there is one, the
/// statement: "corio::pg::connection::query: ERROR 42P01: relation \"nope\" does not exist
/// (statement: SELECT * FROM nope)". Parameter values never appear in it.
///
/// `std::runtime_error` is a virtual base (as of `corio::timeout_error`), so that
/// `pg::timeout_error` is both a `pg::error` and a `corio::timeout_error`.
class error : public virtual std::runtime_error {
public:
    error(error_kind kind, const std::string& what, error_fields fields = {})
        : std::runtime_error(what), kind_(kind), fields_(std::move(fields)) {}
    // Copies only: a defaulted move assignment would move the virtual base more than once.
    error(const error&) = default;
    error& operator=(const error&) = default;
    ~error() override = default;

    [[nodiscard]] error_kind kind() const noexcept { return kind_; }
    /// The SQLSTATE code ("23505" for a unique violation); empty for client-side errors.
    [[nodiscard]] const std::string& sqlstate() const noexcept { return fields_.sqlstate; }
    /// The server's primary message (or the client's, for client-side errors).
    [[nodiscard]] const std::string& message() const noexcept { return fields_.message; }
    [[nodiscard]] const std::string& detail() const noexcept { return fields_.detail; }
    [[nodiscard]] const std::string& hint() const noexcept { return fields_.hint; }
    /// The statement's SQL text, when the error concerns one.
    [[nodiscard]] const std::string& statement() const noexcept { return fields_.statement; }

private:
    error_kind kind_;
    error_fields fields_;
};

/// Connecting failed (unreachable, refused, a bad conninfo), or the connection broke: the
/// server went away mid-query. A connection that failed so is never reused by a pool.
class connection_error : public error {
public:
    explicit connection_error(const std::string& what, error_fields fields = {})
        : std::runtime_error(what), error(error_kind::connection, what, std::move(fields)) {}

protected:
    connection_error(error_kind kind, const std::string& what, error_fields fields)
        : std::runtime_error(what), error(kind, what, std::move(fields)) {}
};

/// The server refused the credentials (a wrong password, an unknown role, pg_hba.conf).
class authentication_error : public connection_error {
public:
    explicit authentication_error(const std::string& what, error_fields fields = {})
        : std::runtime_error(what),
          connection_error(error_kind::authentication, what, std::move(fields)) {}
};

/// A time limit passed: the pool's `acquire_timeout` (no connection free in time), or the
/// server's `statement_timeout` (SQLSTATE 57014). Also a `corio::timeout_error`, so one
/// `catch (const corio::timeout_error&)` catches these and `corio::timeout`'s.
class timeout_error : public error, public corio::timeout_error {
public:
    timeout_error(std::chrono::nanoseconds limit, const std::string& what, error_fields fields = {})
        : std::runtime_error(what),
          error(error_kind::timeout, what, std::move(fields)), corio::timeout_error(limit) {}
};

} // namespace corio::pg

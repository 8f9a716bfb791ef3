// SPDX-License-Identifier: MIT
// corio::redis's errors: one base, `redis::error`, with a `kind()` to branch on.
#pragma once

#include <corio/timeout.hpp>

#include <chrono>
#include <stdexcept>
#include <string>

namespace corio::redis {

/// What went wrong.
enum class error_kind {
    server,     ///< the server answered with an error (`-ERR ...`, `-WRONGTYPE ...`)
    connection, ///< connecting failed, or the connection was lost with the command in flight
    timeout,    ///< `command_timeout` or `connect_timeout` passed
    protocol,   ///< the server's bytes are not RESP
    usage,      ///< the API was misused: a reply read as the wrong type, a closed client
};

/// Every failure of corio::redis. The message names the command (its name, never its
/// arguments, which may be secrets or large): "corio::redis GET: WRONGTYPE Operation against a
/// key holding the wrong kind of value".
///
/// `std::runtime_error` is a virtual base (as of `corio::timeout_error`), so that
/// `redis::timeout_error` is both a `redis::error` and a `corio::timeout_error`.
class error : public virtual std::runtime_error {
public:
    error(error_kind kind, const std::string& what) : std::runtime_error(what), kind_(kind) {}
    error(const error&) = default;
    error& operator=(const error&) = default;
    ~error() override = default;
    [[nodiscard]] error_kind kind() const noexcept { return kind_; }

private:
    error_kind kind_;
};

/// Connecting failed, or the connection was lost while the command was in flight. The command
/// may or may not have run: it is never retried silently. The next command reconnects.
class connect_error : public error {
public:
    explicit connect_error(const std::string& what)
        : std::runtime_error(what), error(error_kind::connection, what) {}
};

/// `command_timeout` or `connect_timeout` passed. Also a `corio::timeout_error`.
class timeout_error : public error, public corio::timeout_error {
public:
    timeout_error(std::chrono::nanoseconds limit, const std::string& what)
        : std::runtime_error(what), error(error_kind::timeout, what), corio::timeout_error(limit) {}
};

} // namespace corio::redis

// SPDX-License-Identifier: MIT
// The HTTP client's errors: one base, `http::error`, with a `kind()` to branch on, and a class
// per kind.
#pragma once

#include <corio/timeout.hpp>

#include <chrono>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <utility>

namespace corio::http {

/// What went wrong in a client request: `error::kind()` (reqwest's `is_timeout()`,
/// `is_connect()`; aiohttp's `ClientConnectorError`, `ServerTimeoutError`,
/// `ClientPayloadError`, `TooManyRedirects`).
enum class error_kind {
    invalid_url,        ///< the request's URL is not an absolute URL (`error` itself)
    unsupported_scheme, ///< a URL or a redirect names a scheme other than http and https
    connect,            ///< not resolved, refused, unreachable, or refused by `connect_filter`
    timeout,            ///< the connect, read or total timeout passed
    tls,                ///< the TLS handshake failed, or TLS broke later
    protocol,           ///< a malformed response; the connection failed before its head ended
    body_truncated,     ///< the connection closed or failed before the body ended
    header_too_large,   ///< the head is over `max_header_bytes` or `max_header_count`
    body_too_large,     ///< the body is over `max_body_bytes`
    too_many_redirects, ///< more redirects than `max_redirects`
};

/// Every failure of a client request. The message holds the method and the URL:
/// "corio::http::client GET http://127.0.0.1:8080/x: cannot connect to ...". `kind()` says
/// which failure it is; each kind but `invalid_url` has its own subclass.
///
/// `std::runtime_error` is a virtual base (as of `corio::timeout_error`), so that
/// `http::timeout_error` is both an `http::error` and a `corio::timeout_error`.
class error : public virtual std::runtime_error {
public:
    error(error_kind kind, const std::string& what) : std::runtime_error(what), kind_(kind) {}
    // Copies only: a defaulted move assignment would move the virtual base more than once
    // (g++'s -Wvirtual-move-assign).
    error(const error&) = default;
    error& operator=(const error&) = default;
    ~error() override = default;
    [[nodiscard]] error_kind kind() const noexcept { return kind_; }

private:
    error_kind kind_;
};

/// A URL, or a redirect's Location, names a scheme the client does not speak (`ftp:`,
/// `file:`, ...): nothing was connected for it.
class unsupported_scheme : public error {
public:
    unsupported_scheme(std::string scheme, const std::string& what)
        : std::runtime_error(what), error(error_kind::unsupported_scheme, what),
          scheme_(std::move(scheme)) {}
    /// The scheme, lowercase: "ftp".
    [[nodiscard]] const std::string& scheme() const noexcept { return scheme_; }

private:
    std::string scheme_;
};

/// The connection could not be made: the name did not resolve, every address refused or was
/// unreachable, or `connect_filter` refused them (the message names each address and why).
class connect_error : public error {
public:
    explicit connect_error(const std::string& what)
        : std::runtime_error(what), error(error_kind::connect, what) {}
};

/// Which of the client's timeouts passed.
enum class timeout_kind {
    connect, ///< `connect_timeout`: resolving, connecting and the TLS handshake
    read,    ///< `read_timeout`: one wait for data from the server
    total,   ///< `total_timeout`: the whole request, redirects included
};

/// A timeout passed. Also a `corio::timeout_error` (whose `limit()` is the timeout that
/// passed), so one `catch (const corio::timeout_error&)` catches the client's timeouts and
/// those of `corio::timeout`.
class timeout_error : public error, public corio::timeout_error {
public:
    timeout_error(timeout_kind which, std::chrono::milliseconds limit, const std::string& what)
        : std::runtime_error(what), error(error_kind::timeout, what), corio::timeout_error(limit),
          which_(which) {}
    /// Connect, read or total.
    [[nodiscard]] timeout_kind which() const noexcept { return which_; }

private:
    timeout_kind which_;
};

/// The TLS handshake failed (the certificate was rejected, ...) or TLS broke later.
class tls_error : public error {
public:
    explicit tls_error(const std::string& what)
        : std::runtime_error(what), error(error_kind::tls, what) {}
};

/// The server broke HTTP: a malformed or conflicting response, a redirect to a URL that does
/// not parse, or a connection that failed or closed before the response's head ended.
class protocol_error : public error {
public:
    explicit protocol_error(const std::string& what)
        : std::runtime_error(what), error(error_kind::protocol, what) {}
};

/// The connection closed, was reset or failed before the body ended, whatever its framing
/// (Content-Length, chunked, or a TLS connection closed without close_notify).
class body_truncated : public error {
public:
    explicit body_truncated(const std::string& what)
        : std::runtime_error(what), error(error_kind::body_truncated, what) {}
};

/// Which limit a response head went over.
enum class header_limit {
    bytes,  ///< `client_options::max_header_bytes`: the status line and fields together
    fields, ///< `client_options::max_header_count`: the number of fields
};

/// The response's head (or its trailer section) is larger than a limit.
class header_too_large : public error {
public:
    header_too_large(header_limit which, std::size_t limit, const std::string& what)
        : std::runtime_error(what), error(error_kind::header_too_large, what), which_(which),
          limit_(limit) {}
    /// Bytes or fields.
    [[nodiscard]] header_limit which() const noexcept { return which_; }
    /// The configured limit that was passed (bytes or fields).
    [[nodiscard]] std::size_t limit() const noexcept { return limit_; }

private:
    header_limit which_;
    std::size_t limit_;
};

/// A response body read into memory is larger than `max_body_bytes` (as declared or, when
/// compressed, as decoded).
class body_too_large : public error {
public:
    body_too_large(std::size_t limit, const std::string& what)
        : std::runtime_error(what), error(error_kind::body_too_large, what), limit_(limit) {}
    /// The configured limit, in bytes.
    [[nodiscard]] std::size_t limit() const noexcept { return limit_; }

private:
    std::size_t limit_;
};

/// More redirects than `max_redirects`.
class too_many_redirects : public error {
public:
    too_many_redirects(int limit, const std::string& what)
        : std::runtime_error(what), error(error_kind::too_many_redirects, what), limit_(limit) {}
    /// The configured `max_redirects`.
    [[nodiscard]] int limit() const noexcept { return limit_; }

private:
    int limit_;
};

} // namespace corio::http

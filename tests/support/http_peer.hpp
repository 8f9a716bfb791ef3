// SPDX-License-Identifier: MIT
// The HTTP server's tests' peer: a raw client that writes bytes as given and parses what comes
// back with corio's parser, and a server on 127.0.0.1:<free port> for the length of a test.
#pragma once

#include "corio_test.hpp"

#include <corio/http/parser.hpp>
#include <corio/http/server.hpp>

#include <array>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

namespace corio::test {

using corio::task;
using corio::net::address;
using corio::net::tcp_listener;
using corio::net::tcp_stream;
namespace http = corio::http;

/// Serves `l` with the server it shares: a test that ends early (an exception, a failed REQUIRE)
/// takes its fixture with it, but the server lives until this task, cancelled, has unwound.
inline task<> serve_owned(std::shared_ptr<http::server> srv, tcp_listener l) {
    co_await srv->serve(std::move(l));
}
#if defined(CORIO_HAVE_TLS)
inline task<> serve_owned(std::shared_ptr<http::server> srv, tcp_listener l,
                          corio::tls::context ctx) {
    co_await srv->serve(std::move(l), std::move(ctx));
}
#endif

/// A response as a client saw it.
struct reply {
    int status = 0;
    http::headers headers;
    std::string body;
};

/// A raw HTTP client connection: writes bytes as given, parses responses with corio's parser.
class raw_client {
public:
    static task<raw_client> connect(address to) {
        raw_client c;
        c.s_ = co_await tcp_stream::connect(to);
        co_return c;
    }

    task<> send(std::string bytes) { co_await s_.write_all(bytes); }

    /// The next response; throws when the connection ends before one is complete.
    task<reply> next(bool head_request = false) {
        std::optional<http::parser> p;
        p.emplace(http::parser::kind::response);
        if (head_request)
            p->expect_no_body();
        for (;;) {
            const http::parser::result r = p->parse(buffered_);
            buffered_.erase(0, r.consumed);
            if (r.what == http::parser::event::error)
                throw std::runtime_error("bad response: " + p->error_reason());
            if (r.what == http::parser::event::message) {
                if (p->status() != 100)
                    co_return reply{p->status(), std::move(p->headers()), std::move(p->body())};
                interim_ = true; // 100 Continue: the response follows
                p.emplace(http::parser::kind::response);
                if (head_request)
                    p->expect_no_body();
                continue;
            }
            if (r.what == http::parser::event::head || !buffered_.empty())
                continue;
            std::array<std::byte, 16384> buf{};
            const std::size_t n = co_await s_.read_some(buf);
            if (n == 0) {
                if (p->finish())
                    co_return reply{p->status(), std::move(p->headers()), std::move(p->body())};
                throw std::runtime_error("connection closed before a complete response");
            }
            buffered_.append(reinterpret_cast<const char*>(buf.data()), n);
        }
    }

    /// True when the server closed the connection (nothing more arrives).
    task<bool> closed_by_server() {
        if (!buffered_.empty())
            co_return false;
        std::array<std::byte, 256> buf{};
        try {
            const std::size_t n = co_await s_.read_some(buf);
            co_return n == 0;
        } catch (const std::system_error&) {
            co_return true; // reset
        }
    }

    [[nodiscard]] bool saw_interim() const noexcept { return interim_; }
    tcp_stream& stream() noexcept { return s_; }

private:
    tcp_stream s_;
    std::string buffered_;
    bool interim_ = false;
};

/// A server on 127.0.0.1:<free port> for the duration of a test.
class test_server {
public:
    explicit test_server(http::router routes, http::server_options options = {})
        : srv_(std::make_shared<http::server>(std::move(routes), std::move(options))) {
        tcp_listener l = tcp_listener::bind(address::parse("127.0.0.1:0"));
        at_ = l.local_address();
        serving_ = corio::spawn(serve_owned(srv_, std::move(l)));
    }
    test_server(const test_server&) = delete;
    test_server& operator=(const test_server&) = delete;
    ~test_server() { serving_.cancel(); } // a test that ended early: the server unwinds later
    [[nodiscard]] address at() const { return at_; }
    http::server& server() { return *srv_; }
    task<> stop(std::chrono::milliseconds grace = {}) {
        srv_->stop(grace);
        co_await serving_;
    }

private:
    std::shared_ptr<http::server> srv_;
    address at_;
    corio::join_handle<> serving_;
};

/// Sends `raw` on a fresh connection and returns the first response.
task<reply> exchange(test_server& srv, std::string raw) {
    raw_client c = co_await raw_client::connect(srv.at());
    co_await c.send(std::move(raw));
    co_return co_await c.next();
}

/// The status the server answers `raw` with, checking it then closes the connection.
/// The bytes read until the peer closes.
task<std::size_t> read_to_end(tcp_stream& s) {
    std::size_t received = 0;
    std::array<std::byte, 65536> buf{};
    for (;;) {
        const std::size_t n = co_await s.read_some(buf);
        if (n == 0)
            co_return received;
        received += n;
    }
}

task<int> rejected_with(test_server& srv, std::string raw) {
    raw_client c = co_await raw_client::connect(srv.at());
    co_await c.send(std::move(raw));
    const reply r = co_await c.next();
    const bool closed = co_await c.closed_by_server();
    CHECK(closed);
    CHECK(r.headers.get("connection") == "close");
    co_return r.status;
}

} // namespace corio::test

// SPDX-License-Identifier: MIT
// The HTTP server at its edges (RFC 9110/9112 conformance and hostile peers): refusals close,
// OPTIONS *, upgrades it does not accept, transfer codings it does not decode, bounded trailer
// sections, a streamed body that fails, and a client that sends and never reads.
#include "../support/corio_test.hpp"
#include "../support/http_peer.hpp"

#include <corio/http/server.hpp>

#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <stdexcept>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using corio::task;
using corio::net::tcp_stream;
using corio::test::contains;
using corio::test::exchange;
using corio::test::raw_client;
using corio::test::read_to_end;
using corio::test::rejected_with;
using corio::test::reply;
using corio::test::test_server;
namespace http = corio::http;

namespace {

int handled = 0; // requests that reached a handler

task<http::response> hello(http::request&) {
    ++handled;
    co_return http::response::text(200, "hello");
}
task<http::response> echo_body(http::request& req) {
    ++handled;
    co_return http::response::text(200, req.body());
}
task<> write_then_fail(http::body_writer& w) {
    co_await w.write("the first part\n");
    throw std::runtime_error("the producer failed");
}
task<http::response> failing_stream(http::request&) {
    co_return http::response::stream(200, "text/plain",
                                     [](http::body_writer& w) { return write_then_fail(w); });
}

http::router routes() {
    http::router r;
    r.get("/hello", hello);
    r.post("/echo", echo_body);
    r.put("/echo", echo_body);
    r.get("/fails", failing_stream);
    return r;
}

/// Sends `raw` and reads until the server closes; the whole answer.
task<std::string> answer_to(test_server& srv, std::string raw) {
    tcp_stream s = co_await tcp_stream::connect(srv.at());
    co_await s.write_all(raw);
    std::string got;
    std::array<std::byte, 4096> buf{};
    for (;;) {
        const std::size_t n = co_await s.read_some(buf);
        if (n == 0)
            co_return got;
        got.append(reinterpret_cast<const char*>(buf.data()), n);
    }
}

std::size_t count(std::string_view text, std::string_view what) {
    std::size_t n = 0;
    for (std::size_t at = text.find(what); at != std::string_view::npos;
         at = text.find(what, at + 1))
        ++n;
    return n;
}

} // namespace

CORIO_TEST_CASE("http server: every refusal says Connection: close and closes, also for a "
                "refused target",
                "[http][server][bad-input]") {
    test_server srv{routes(), {.max_header_bytes = 1024, .max_body_bytes = 64}};
    const std::vector<std::pair<std::string, int>> refused = {
        {"GET * HTTP/1.1\r\nHost: t\r\n\r\n", 400},             // asterisk form
        {"GET ftp://t/hello HTTP/1.1\r\nHost: t\r\n\r\n", 400}, // not http(s)
        {"GET /hello?a=%zz HTTP/1.1\r\nHost: t\r\n\r\n", 400},  // malformed query
        {"GET /hello HTTP/2.0\r\nHost: t\r\n\r\n", 505},        // unsupported version
        {"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n", 413},
        {"GET /hello HTTP/1.1\r\nHost: t\r\nX: " + std::string(2000, 'x') + "\r\n\r\n", 431},
        {"GET /hello HTTP/1.1\r\nHost: t\r\nExpect: 200-ok\r\n\r\n", 417},
        {"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501},
    };
    for (const auto& [raw, status] : refused) {
        INFO(raw);
        const int got = co_await rejected_with(srv, raw);
        CHECK(got == status);
    }
    // Pipelined after a refused target, a valid request is never answered.
    const std::string both = co_await answer_to(
        srv, "GET * HTTP/1.1\r\nHost: t\r\n\r\nGET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
    CHECK(count(both, "HTTP/1.1 ") == 1);
    CHECK(contains(both, "HTTP/1.1 400 "));
    co_await srv.stop();
}

CORIO_TEST_CASE("http server: OPTIONS * is answered with Allow and the connection lives on",
                "[http][server]") {
    test_server srv{routes()};
    raw_client c = co_await raw_client::connect(srv.at());
    co_await c.send("OPTIONS * HTTP/1.1\r\nHost: t\r\n\r\nGET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
    const reply options = co_await c.next();
    CHECK(options.status == 200);
    CHECK(options.headers.get("allow") == "GET, HEAD, POST, PUT, OPTIONS");
    CHECK(options.headers.get("content-length") == "0");
    CHECK(options.body.empty());
    const reply after = co_await c.next();
    CHECK(after.status == 200);
    CHECK(after.body == "hello");
    co_await srv.stop();
}

CORIO_TEST_CASE("http server: an Upgrade it does not accept is an ordinary request, and the "
                "next pipelined request is answered",
                "[http][server]") {
    test_server srv{routes()};
    raw_client c = co_await raw_client::connect(srv.at());
    co_await c.send("GET /hello HTTP/1.1\r\nHost: t\r\nUpgrade: foo\r\nConnection: upgrade\r\n\r\n"
                    "POST /echo HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: "
                    "Upgrade\r\nContent-Length: 4\r\n\r\nbody"
                    "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
    const reply first = co_await c.next();
    CHECK(first.status == 200);
    CHECK(first.body == "hello");
    const reply second = co_await c.next();
    CHECK(second.status == 200);
    CHECK(second.body == "body");
    const reply third = co_await c.next();
    CHECK(third.status == 200);
    CHECK(third.body == "hello");
    co_await srv.stop();
}

CORIO_TEST_CASE("http server: transfer codings other than chunked get 501 and a close, and no "
                "handler sees the body",
                "[http][server][bad-input]") {
    test_server srv{routes()};
    handled = 0;
    for (const char* coding : {"gzip, chunked", "identity", "x-unknown", "deflate"}) {
        const std::string raw = std::string("POST /echo HTTP/1.1\r\nHost: t\r\n") +
                                "Transfer-Encoding: " + coding + "\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
        INFO(raw);
        const int status = co_await rejected_with(srv, raw);
        CHECK(status == 501);
    }
    // Two fields that together say "gzip, chunked" are the same thing.
    const int split = co_await rejected_with(srv, "POST /echo HTTP/1.1\r\nHost: t\r\n"
                                                  "Transfer-Encoding: gzip\r\n"
                                                  "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
    CHECK(split == 501);
    CHECK(handled == 0);
    // chunked alone is decoded.
    const reply ok = co_await exchange(srv, "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: "
                                            "chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
    CHECK(ok.body == "abc");
    co_await srv.stop();
}

CORIO_TEST_CASE("http server: a trailer section counts against max_header_bytes and "
                "max_header_count (431, close)",
                "[http][server][bad-input]") {
    test_server srv{routes(), {.max_header_bytes = 4096, .max_header_count = 20}};
    const std::string head = "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                             "3\r\nabc\r\n0\r\n";
    // A small trailer is fine.
    const reply ok = co_await exchange(srv, head + "X-Checksum: 1\r\n\r\n");
    CHECK(ok.status == 200);
    CHECK(ok.body == "abc");
    // One huge field: refused at the limit, long before all of it is read.
    const int big = co_await rejected_with(
        srv, head + "X-Big: " + std::string(std::size_t{1} << 20, 'b') + "\r\n\r\n");
    CHECK(big == 431);
    // Many small ones.
    std::string many = head;
    for (int i = 0; i < 50; ++i)
        many += "X-" + std::to_string(i) + ": v\r\n";
    const int fields = co_await rejected_with(srv, many + "\r\n");
    CHECK(fields == 431);
    co_await srv.stop();
}

CORIO_TEST_CASE("http server: a streamed body whose producer throws is reported and the "
                "connection is reset, so the client sees a truncated body",
                "[http][server][bad-input]") {
    test_server srv{routes()};
    int reported = 0;
    corio::event_loop::current().set_exception_handler([&](std::exception_ptr) { ++reported; });
    // HTTP/1.1: chunked, cut without the last chunk.
    {
        raw_client c = co_await raw_client::connect(srv.at());
        co_await c.send("GET /fails HTTP/1.1\r\nHost: t\r\n\r\n");
        bool truncated = false;
        try {
            [[maybe_unused]] const reply r = co_await c.next();
        } catch (const std::exception&) {
            truncated = true; // a reset, or an end before the last chunk
        }
        CHECK(truncated);
    }
    // HTTP/1.0: the body is delimited by the end of the connection, so only a reset can say
    // it was cut short.
    {
        tcp_stream s = co_await tcp_stream::connect(srv.at());
        co_await s.write_all("GET /fails HTTP/1.0\r\n\r\n");
        int error = 0;
        try {
            [[maybe_unused]] const std::size_t n = co_await read_to_end(s);
        } catch (const std::system_error& e) {
            error = e.code().value();
        }
        CHECK(error == ECONNRESET);
    }
    CHECK(reported == 2);
    corio::event_loop::current().set_exception_handler(nullptr);
    co_await srv.stop();
}

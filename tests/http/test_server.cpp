// SPDX-License-Identifier: MIT
#include "../support/corio_test.hpp"
#include "../support/http_peer.hpp"

#include <corio/http/parser.hpp>
#include <corio/http/server.hpp>

#include <sys/socket.h>

#include <array>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using corio::task;
using corio::net::address;
using corio::net::tcp_listener;
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

task<http::response> hello(http::request&) { co_return http::response::text(200, "Hello, World!"); }
task<http::response> user(http::request& req) {
    std::string text = "user " + std::string(req.param("id"));
    if (const auto page = req.query("page"))
        text += " page " + std::string(*page);
    co_return http::response::text(200, text);
}
task<http::response> echo_body(http::request& req) {
    http::response r = http::response::text(200, req.body());
    r.set_header("x-content-type", req.header("content-type").value_or("none"));
    co_return r;
}
task<http::response> throws(http::request&) {
    throw std::runtime_error("secret internal detail");
    co_return http::response::empty(204);
}
int handlers_started = 0; // /never and /slow count themselves in: a test waits for it, not a time

task<http::response> never(http::request&) {
    ++handlers_started;
    co_await corio::sleep_for(1h);
    co_return http::response::empty(204);
}
task<http::response> slow(http::request&) {
    ++handlers_started;
    co_await corio::sleep_for(100ms);
    co_return http::response::text(200, "slow done");
}
task<http::response> big(http::request&) {
    co_return http::response::text(200, std::string(std::size_t{32} << 20, 'x')); // 32 MiB
}
task<> count_to(http::body_writer& w, int n) {
    for (int i = 0; i < n; ++i)
        co_await w.write("chunk " + std::to_string(i) + "\n");
}
task<http::response> streamed(http::request&) {
    co_return http::response::stream(200, "text/plain",
                                     [](http::body_writer& w) { return count_to(w, 3); });
}

http::router test_router() {
    http::router r;
    r.get("/hello", hello);
    r.get("/users/{id}", user);
    r.post("/echo", echo_body);
    r.put("/echo", echo_body);
    r.get("/throws", throws);
    r.get("/never", never);
    r.get("/slow", slow);
    r.get("/stream", streamed);
    r.get("/big", big);
    return r;
}

/// Waits until a handler has started since the count was `before`.
task<> handler_started(int before) {
    while (handlers_started == before)
        co_await corio::sleep_for(1ms);
}

} // namespace

CORIO_TEST_CASE("http server: GET answers with Date, Server and Content-Length", "[http][server]") {
    test_server srv{test_router()};
    const reply r = co_await exchange(srv, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
    CHECK(r.status == 200);
    CHECK(r.body == "Hello, World!");
    CHECK(r.headers.get("content-length") == "13");
    CHECK(r.headers.get("content-type") == "text/plain; charset=utf-8");
    CHECK(r.headers.get("server") == "corio");
    CHECK(r.headers.get("date").has_value());
    co_await srv.stop();
}

CORIO_TEST_CASE("http server: path parameters, decoded query and bodies", "[http][server]") {
    test_server srv{test_router()};
    const reply u =
        co_await exchange(srv, "GET /users/a%20b?page=2&x=%41+B HTTP/1.1\r\nHost: t\r\n\r\n");
    CHECK(u.body == "user a b page 2");
    const reply post = co_await exchange(
        srv, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
             "Content-Length: 7\r\n\r\n{\"a\":1}");
    CHECK(post.body == "{\"a\":1}");
    CHECK(post.headers.get("x-content-type") == "application/json");
    const reply chunked =
        co_await exchange(srv, "PUT /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                               "3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n");
    CHECK(chunked.body == "abcdefg");
    co_await srv.stop();
}

CORIO_TEST_CASE("http server: keep-alive, pipelining in order, Connection close, HTTP/1.0",
                "[http][server]") {
    test_server srv{test_router()};
    raw_client c = co_await raw_client::connect(srv.at());
    for (int i = 0; i < 3; ++i) { // one connection, one request after another
        co_await c.send("GET /users/" + std::to_string(i) + " HTTP/1.1\r\nHost: t\r\n\r\n");
        const reply r = co_await c.next();
        CHECK(r.body == "user " + std::to_string(i));
        CHECK_FALSE(r.headers.contains("connection"));
    }
    // Three pipelined in one write, answered in order.
    co_await c.send("GET /users/a HTTP/1.1\r\nHost: t\r\n\r\nGET /slow HTTP/1.1\r\nHost: "
                    "t\r\n\r\nGET /users/c HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    const reply a = co_await c.next();
    const reply b = co_await c.next();
    const reply last = co_await c.next();
    CHECK(a.body == "user a");
    CHECK(b.body == "slow done");
    CHECK(last.body == "user c");
    CHECK(last.headers.get("connection") == "close");
    const bool closed = co_await c.closed_by_server();
    CHECK(closed);

    // HTTP/1.0 closes unless asked to keep the connection alive.
    raw_client old = co_await raw_client::connect(srv.at());
    co_await old.send("GET /hello HTTP/1.0\r\n\r\n");
    const reply once = co_await old.next();
    CHECK(once.status == 200);
    const bool old_closed = co_await old.closed_by_server();
    CHECK(old_closed);
    raw_client kept = co_await raw_client::connect(srv.at());
    co_await kept.send("GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    const reply k1 = co_await kept.next();
    CHECK(k1.headers.get("connection") == "keep-alive");
    co_await kept.send("GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    const reply k2 = co_await kept.next();
    CHECK(k2.status == 200);
    co_await srv.stop();
}

CORIO_TEST_CASE("http server: HEAD, 404, 405 with Allow, Expect 100-continue, streaming",
                "[http][server]") {
    test_server srv{test_router()};
    raw_client c = co_await raw_client::connect(srv.at());
    co_await c.send("HEAD /hello HTTP/1.1\r\nHost: t\r\n\r\n");
    const reply head = co_await c.next(/*head_request=*/true);
    CHECK(head.status == 200);
    CHECK(head.headers.get("content-length") == "13");
    CHECK(head.body.empty());
    co_await c.send("GET /nowhere HTTP/1.1\r\nHost: t\r\n\r\n");
    const reply missing = co_await c.next();
    CHECK(missing.status == 404);
    co_await c.send("DELETE /echo HTTP/1.1\r\nHost: t\r\n\r\n");
    const reply wrong = co_await c.next();
    CHECK(wrong.status == 405);
    CHECK(wrong.headers.get("allow") == "POST, PUT");
    co_await c.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: "
                    "100-continue\r\n\r\n");
    auto body_later = [](raw_client& cr) -> task<> {
        co_await corio::sleep_for(10ms);
        co_await cr.send("hello");
    };
    auto sender = corio::spawn(body_later(c));
    const reply continued = co_await c.next();
    co_await sender;
    CHECK(c.saw_interim());
    CHECK(continued.body == "hello");
    co_await c.send("GET /stream HTTP/1.1\r\nHost: t\r\n\r\n");
    const reply chunks = co_await c.next();
    CHECK(chunks.headers.get("transfer-encoding") == "chunked");
    CHECK(chunks.body == "chunk 0\nchunk 1\nchunk 2\n");
    co_await srv.stop();
}

CORIO_TEST_CASE("http server: Host rules of RFC 9112", "[http][server][bad-input]") {
    test_server srv{test_router()};
    for (const char* bad :
         {"GET /hello HTTP/1.1\r\n\r\n", "GET /hello HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
          "GET /hello HTTP/1.1\r\nHost: a b\r\n\r\n", "GET /hello HTTP/1.1\r\nHost: a/b\r\n\r\n"}) {
        const int status = co_await rejected_with(srv, bad);
        INFO(bad);
        CHECK(status == 400);
    }
    const reply ok = co_await exchange(srv, "GET /hello HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n");
    CHECK(ok.status == 200);
    co_await srv.stop();
}

CORIO_TEST_CASE("http server: malformed and smuggling requests get 400 and a close",
                "[http][server][bad-input]") {
    test_server srv{test_router()};
    const std::vector<std::string> bad = {
        "GARBAGE\r\n\r\n",
        "GET /hello HTTP/1.1 extra\r\nHost: t\r\n\r\n",
        "GET /hello HTTP/1.1\r\nHost: t\r\n: empty name\r\n\r\n",
        "GET /hello HTTP/1.1\r\nHost: t\r\nBad Name: x\r\n\r\n",
        "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
        "0\r\n\r\n",
        "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
        "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: -3\r\n\r\nabc",
        "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: "
        "chunked\r\n\r\nxyz\r\nabc\r\n0\r\n\r\n",
        "GET /hello HTTP/1.1\nHost: t\n\n",
        "GET /hello HTTP/1.1\r\nHost: t\r\nX-Folded: a\r\n b\r\n\r\n",
    };
    for (const std::string& raw : bad) {
        const int status = co_await rejected_with(srv, raw);
        INFO(raw);
        CHECK(status == 400);
    }
    // A malformed escape in the target is a refusal too: 400, then close.
    const int escape = co_await rejected_with(srv, "GET /users/%zz HTTP/1.1\r\nHost: t\r\n\r\n");
    CHECK(escape == 400);
    // The server is unharmed.
    const reply ok = co_await exchange(srv, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
    CHECK(ok.status == 200);
    co_await srv.stop();
}

CORIO_TEST_CASE("http server: 414, 431 and 413 at the limits, 413 before the body",
                "[http][server][bad-input]") {
    test_server srv{test_router(),
                    {.max_header_bytes = 1024, .max_body_bytes = 64, .max_header_count = 20}};
    const int line = co_await rejected_with(srv, "GET /" + std::string(2000, 'a') +
                                                     " HTTP/1.1\r\nHost: t\r\n\r\n");
    CHECK(line == 414);
    const int fields = co_await rejected_with(
        srv, "GET /hello HTTP/1.1\r\nHost: t\r\nX-Big: " + std::string(2000, 'b') + "\r\n\r\n");
    CHECK(fields == 431);
    std::string many = "GET /hello HTTP/1.1\r\nHost: t\r\n";
    for (int i = 0; i < 30; ++i)
        many += "X-" + std::to_string(i) + ": v\r\n";
    const int count = co_await rejected_with(srv, many + "\r\n");
    CHECK(count == 431);
    // Only the head is sent: the answer cannot depend on reading the gigabyte it announces.
    const int declared = co_await rejected_with(
        srv, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000000\r\n\r\n");
    CHECK(declared == 413);
    const int chunked = co_await rejected_with(
        srv, "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n100\r\n" +
                 std::string(256, 'c') + "\r\n0\r\n\r\n");
    CHECK(chunked == 413);
    const int expect = co_await rejected_with(
        srv, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nExpect: teapot\r\n\r\nx");
    CHECK(expect == 417);
    co_await srv.stop();
}

CORIO_TEST_CASE("http server: Transfer-Encoding in HTTP/1.0 is answered, then closed",
                "[http][server][bad-input]") {
    test_server srv{test_router()};
    raw_client c = co_await raw_client::connect(srv.at());
    co_await c.send("POST /echo HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: "
                    "chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
    const reply r = co_await c.next();
    CHECK(r.headers.get("connection") == "close");
    const bool closed = co_await c.closed_by_server();
    CHECK(closed);
    co_await srv.stop();
}

CORIO_TEST_CASE("http server: a head slower than header_timeout gets 408 (slowloris)",
                "[http][server][bad-input]") {
    test_server srv{test_router(), {.header_timeout = 100ms}};
    raw_client slow = co_await raw_client::connect(srv.at());
    co_await slow.send("GET /hello HTTP/1.1\r\nHo");
    for (int i = 0; i < 3; ++i) { // a byte now and then, never the end of the head
        co_await corio::sleep_for(20ms);
        co_await slow.send("s");
    }
    const reply r = co_await slow.next();
    CHECK(r.status == 408);
    const bool closed = co_await slow.closed_by_server();
    CHECK(closed);
    co_await srv.stop();
}

CORIO_TEST_CASE("http server: an idle keep-alive connection is closed after its timeout",
                "[http][server]") {
    test_server srv{test_router(), {.keep_alive_timeout = 50ms}};
    raw_client c = co_await raw_client::connect(srv.at());
    co_await c.send("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
    const reply r = co_await c.next();
    CHECK(r.status == 200);
    const bool closed = co_await c.closed_by_server(); // no answer: a quiet close
    CHECK(closed);
    CHECK(srv.server().connection_count() == 0);
    co_await srv.stop();
}

CORIO_TEST_CASE("http server: a connection in use outlives keep_alive_timeout, then idles out",
                "[http][server]") {
    // The deadline moves with every request; the timer armed for the first one must re-arm
    // instead of closing a busy connection. (Requests 4x closer together than the timeout.)
    test_server srv{test_router(), {.keep_alive_timeout = 300ms}};
    raw_client c = co_await raw_client::connect(srv.at());
    int ok = 0;
    for (int i = 0; i < 10; ++i) {
        co_await c.send("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
        const reply r = co_await c.next();
        ok += r.status == 200 ? 1 : 0;
        co_await corio::sleep_for(75ms);
    }
    CHECK(ok == 10);
    const bool closed = co_await c.closed_by_server();
    CHECK(closed);
    co_await srv.stop();
}

CORIO_TEST_CASE("http server: a request body slower than request_timeout gets 408",
                "[http][server][bad-input]") {
    test_server srv{test_router(), {.request_timeout = 100ms}};
    const int status = co_await rejected_with(
        srv, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc");
    CHECK(status == 408);
    co_await srv.stop();
}

CORIO_TEST_CASE("http server: a client that never reads its response is cut at request_timeout",
                "[http][server][bad-input]") {
    test_server srv{test_router(), {.request_timeout = 200ms}};
    raw_client c = co_await raw_client::connect(srv.at());
    co_await c.send("GET /big HTTP/1.1\r\nHost: t\r\n\r\n");
    co_await corio::sleep_for(600ms); // the server's send blocks on the full socket buffers
    // Then read everything that comes: the connection ends before the 32 MiB body does.
    std::size_t received = 0;
    bool ended = false;
    try {
        received = co_await corio::timeout(20s, read_to_end(c.stream()));
        ended = true;
    } catch (const std::system_error&) {
        ended = true; // reset
    }
    CHECK(ended);
    CHECK(received < std::size_t{32} << 20);
    CHECK(srv.server().connection_count() == 0);
    co_await srv.stop();
}

CORIO_TEST_CASE("http server: a handler that throws gets a bare 500, the connection lives on",
                "[http][server][bad-input]") {
    int reported = 0;
    corio::event_loop::current().set_exception_handler([&](std::exception_ptr) { ++reported; });
    test_server srv{test_router()};
    raw_client c = co_await raw_client::connect(srv.at());
    co_await c.send("GET /throws HTTP/1.1\r\nHost: t\r\n\r\n");
    const reply r = co_await c.next();
    CHECK(r.status == 500);
    CHECK_FALSE(contains(r.body, "secret"));
    CHECK(reported == 1);
    co_await c.send("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
    const reply after = co_await c.next();
    CHECK(after.status == 200);
    co_await srv.stop();
    corio::event_loop::current().set_exception_handler(nullptr);
}

CORIO_TEST_CASE("http server: a handler that never finishes is cut at request_timeout",
                "[http][server][bad-input]") {
    test_server srv{test_router(), {.request_timeout = 100ms}};
    const int status = co_await rejected_with(srv, "GET /never HTTP/1.1\r\nHost: t\r\n\r\n");
    CHECK(status == 503);
    co_await srv.stop();
}

CORIO_TEST_CASE("http server: connections over max_connections wait, the others are unharmed",
                "[http][server][bad-input]") {
    test_server srv{test_router(), {.max_connections = 2}};
    raw_client a = co_await raw_client::connect(srv.at());
    raw_client b = co_await raw_client::connect(srv.at());
    co_await a.send("GET /users/a HTTP/1.1\r\nHost: t\r\n\r\n");
    const reply ra = co_await a.next();
    CHECK(ra.body == "user a");
    // The third connects (the kernel's backlog takes it) but is not served while two are open.
    raw_client third = co_await raw_client::connect(srv.at());
    co_await third.send("GET /users/c HTTP/1.1\r\nHost: t\r\n\r\n");
    co_await corio::sleep_for(50ms);
    CHECK(srv.server().connection_count() == 2);
    co_await b.send("GET /users/b HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    const reply rb = co_await b.next();
    CHECK(rb.body == "user b");
    const reply rc = co_await third.next(); // served once b closed
    CHECK(rc.body == "user c");
    co_await srv.stop();
}

CORIO_TEST_CASE("http server: a client that resets mid-response leaves nothing behind",
                "[http][server][bad-input]") {
    test_server srv{test_router()};
    for (int i = 0; i < 20; ++i) {
        raw_client c = co_await raw_client::connect(srv.at());
        co_await c.send("GET /stream HTTP/1.1\r\nHost: t\r\n\r\nGET /hello HTTP/1.1\r\nHost: "
                        "t\r\n\r\n");
        const linger reset{1, 0}; // close sends RST
        ::setsockopt(c.stream().native_handle(), SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
    }
    const reply ok = co_await exchange(srv, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
    CHECK(ok.status == 200);
    for (int i = 0; i < 100 && srv.server().connection_count() > 0; ++i)
        co_await corio::sleep_for(5ms);
    CHECK(srv.server().connection_count() == 0);
    co_await srv.stop();
}

CORIO_TEST_CASE("http server: stop closes idle connections and lets requests in progress finish",
                "[http][server]") {
    http::server srv{test_router()};
    tcp_listener l = tcp_listener::bind(address::parse("127.0.0.1:0"));
    const address at = l.local_address();
    auto serving = corio::spawn(srv.serve(std::move(l)));
    raw_client idle = co_await raw_client::connect(at);
    co_await idle.send("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
    const reply first = co_await idle.next();
    CHECK(first.status == 200);
    raw_client busy = co_await raw_client::connect(at);
    const int before = handlers_started;
    co_await busy.send("GET /slow HTTP/1.1\r\nHost: t\r\n\r\n");
    co_await handler_started(before); // the slow handler is running
    srv.stop(10s);
    const bool idle_closed = co_await idle.closed_by_server();
    CHECK(idle_closed);
    const reply finished = co_await busy.next();
    CHECK(finished.body == "slow done");
    CHECK(finished.headers.get("connection") == "close");
    co_await serving;
    CHECK(srv.connection_count() == 0);
    // New connections are refused once serve has returned (the listener is closed).
    bool refused = false;
    try {
        tcp_stream late = co_await tcp_stream::connect(at);
    } catch (const std::system_error&) {
        refused = true;
    }
    CHECK(refused);
}

CORIO_TEST_CASE("http server: stop with no grace cancels handlers in progress", "[http][server]") {
    http::server srv{test_router()};
    tcp_listener l = tcp_listener::bind(address::parse("127.0.0.1:0"));
    const address at = l.local_address();
    auto serving = corio::spawn(srv.serve(std::move(l)));
    raw_client busy = co_await raw_client::connect(at);
    const int before = handlers_started;
    co_await busy.send("GET /never HTTP/1.1\r\nHost: t\r\n\r\n");
    co_await handler_started(before);
    srv.stop();
    co_await serving;
    const bool closed = co_await busy.closed_by_server();
    CHECK(closed);
}

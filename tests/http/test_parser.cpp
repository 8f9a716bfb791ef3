// SPDX-License-Identifier: MIT
#include "../support/corio_test.hpp"

#include <corio/http/parser.hpp>

#include <string>
#include <string_view>

using corio::http::parser;
using event = parser::event;

namespace {

struct parsed {
    event what = event::need_more;
    std::size_t consumed = 0;
};

/// Feeds `data` until the parser stops at a message or an error (or wants more), skipping the
/// head stop; `at_a_time` bytes per call.
parsed parse_message(parser& p, std::string_view data, std::size_t at_a_time = 1 << 20) {
    parsed r;
    while (r.consumed < data.size() || r.what == event::head) {
        const std::string_view chunk = data.substr(r.consumed, at_a_time);
        const parser::result step = p.parse(chunk);
        r.consumed += step.consumed;
        r.what = step.what;
        if (step.what == event::message || step.what == event::error)
            return r;
        if (step.what == event::need_more && step.consumed == 0 && chunk.empty())
            return r;
    }
    return r;
}

int error_of(std::string_view request, corio::http::parser_limits limits = {}) {
    parser p{parser::kind::request, limits};
    const parsed r = parse_message(p, request);
    return r.what == event::error ? p.error_status() : 0;
}

} // namespace

TEST_CASE("http parser: a GET stops after its head and completes without more input",
          "[http][parser]") {
    parser p{parser::kind::request};
    const std::string_view req = "GET /users/7?x=1 HTTP/1.1\r\nHost: a.test\r\nX-A: 1\r\n\r\n";
    const parser::result head = p.parse(req);
    CHECK(head.what == event::head);
    CHECK(head.consumed == req.size());
    CHECK(p.method() == "GET");
    CHECK(p.target() == "/users/7?x=1");
    CHECK(p.version() == 11);
    CHECK(p.headers().get("host") == "a.test");
    CHECK(p.headers().get("x-a") == "1");
    const parser::result message = p.parse({});
    CHECK(message.what == event::message);
    CHECK(message.consumed == 0);
}

TEST_CASE("http parser: pipelined requests are taken one at a time", "[http][parser]") {
    parser p{parser::kind::request};
    const std::string first = "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello";
    const std::string second = "GET /b HTTP/1.1\r\nHost: h\r\n\r\n";
    const std::string both = first + second;
    const parsed one = parse_message(p, both);
    CHECK(one.what == event::message);
    CHECK(one.consumed == first.size());
    CHECK(p.body() == "hello");
    const parsed two = parse_message(p, std::string_view(both).substr(one.consumed));
    CHECK(two.what == event::message);
    CHECK(two.consumed == second.size());
    CHECK(p.target() == "/b");
    CHECK(p.body().empty());
}

TEST_CASE("http parser: bodies split at every byte boundary", "[http][parser]") {
    const std::string chunked = "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                                "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
    for (std::size_t step = 1; step <= 7; ++step) {
        parser p{parser::kind::request};
        const parsed r = parse_message(p, chunked, step);
        CHECK(r.what == event::message);
        CHECK(r.consumed == chunked.size());
        CHECK(p.body() == "hello world");
        CHECK(p.chunked());
    }
}

TEST_CASE("http parser: smuggling and malformed framing are 400", "[http][parser][bad-input]") {
    CHECK(error_of("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: "
                   "chunked\r\n\r\n0\r\n\r\n") == 400);
    CHECK(error_of("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n"
                   "abc") == 400);
    CHECK(error_of("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3x\r\n\r\nabc") == 400);
    CHECK(error_of("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n") ==
          400);
    CHECK(error_of("GET / HTTP/1.1\nHost: h\n\n") == 400);                     // bare LF
    CHECK(error_of("GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n") == 400); // obs-fold
    CHECK(error_of("GET / HTTP/1.1\r\nHost: h\r\n: empty\r\n\r\n") == 400);    // empty name
    CHECK(error_of("GET / HTTP/1.1\r\nHo st: h\r\n\r\n") == 400);
    CHECK(error_of("G@T / HTTP/1.1\r\nHost: h\r\n\r\n") == 400);
    CHECK(error_of("GET / HTTP/9.1\r\nHost: h\r\n\r\n") == 400);
}

TEST_CASE("http parser: limits give 414, 431 and 413", "[http][parser][bad-input]") {
    corio::http::parser_limits small{
        .max_header_bytes = 256, .max_header_count = 4, .max_body_bytes = 10};
    CHECK(error_of("GET /" + std::string(400, 'a') + " HTTP/1.1\r\nHost: h\r\n\r\n", small) == 414);
    CHECK(error_of("GET / HTTP/1.1\r\nHost: h\r\nX: " + std::string(400, 'a') + "\r\n\r\n",
                   small) == 431);
    CHECK(error_of("GET / HTTP/1.1\r\nA: 1\r\nB: 1\r\nC: 1\r\nD: 1\r\nE: 1\r\n\r\n", small) == 431);
    // The declared length is refused before any of the body is read.
    parser p{parser::kind::request, small};
    const parser::result r = p.parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n");
    CHECK(r.what == event::error);
    CHECK(p.error_status() == 413);
    CHECK(error_of("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                   "b\r\nhello world\r\n0\r\n\r\n",
                   small) == 413);
}

TEST_CASE("http parser: responses with length, chunks and trailers, or until close",
          "[http][parser]") {
    {
        parser p{parser::kind::response};
        const parsed r = parse_message(p, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi");
        CHECK(r.what == event::message);
        CHECK(p.status() == 200);
        CHECK(p.body() == "hi");
    }
    {
        parser p{parser::kind::response};
        const parsed r = parse_message(p, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                          "2\r\nhi\r\n0\r\nX-Trailer: t\r\n\r\n");
        CHECK(r.what == event::message);
        CHECK(p.body() == "hi");
    }
    {
        parser p{parser::kind::response};
        const parsed r = parse_message(p, "HTTP/1.1 200 OK\r\n\r\nuntil the end");
        CHECK(r.what == event::need_more);
        CHECK(p.needs_eof());
        CHECK(p.finish());
        CHECK(p.body() == "until the end");
    }
    {
        parser p{parser::kind::response};
        p.expect_no_body(); // the answer to a HEAD
        const parsed r = parse_message(p, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n");
        CHECK(r.what == event::message);
        CHECK(p.body().empty());
    }
}

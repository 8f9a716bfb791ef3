// SPDX-License-Identifier: MIT
// libFuzzer target: the HTTP client's response reading (status line, header fields, Content-
// Length, chunked and close-delimited framing, trailers, gzip and deflate) against a peer on
// 127.0.0.1 that answers with the fuzzed bytes, split at fuzzed points, then closes.
//
// Invariants, beyond the sanitizers': every failure is a `corio::http::error`; a body read into
// memory never exceeds `max_body_bytes`; the client is left with no connection in use.
#include "fuzz_support.hpp"

#include <corio/http/client.hpp>
#include <corio/net/tcp_listener.hpp>
#include <corio/net/tcp_stream.hpp>
#include <corio/spawn.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>
#include <string_view>

namespace {

namespace http = corio::http;
using corio::task;
using corio::net::tcp_listener;
using corio::net::tcp_stream;

constexpr std::size_t max_body = 8192;

/// Accepts one connection, reads the request head, answers with `reply` in pieces, closes.
task<> peer(tcp_listener& l, std::string_view reply, std::uint32_t seed) {
    tcp_stream s = co_await l.accept();
    std::string head;
    std::array<std::byte, 1024> buf{};
    while (head.find("\r\n\r\n") == std::string::npos) {
        const std::size_t n = co_await s.read_some(buf);
        if (n == 0)
            co_return;
        head.append(reinterpret_cast<const char*>(buf.data()), n);
    }
    std::uint32_t rng = seed | 1;
    try {
        while (!reply.empty()) {
            rng ^= rng << 13;
            rng ^= rng >> 17;
            rng ^= rng << 5;
            const std::size_t n = std::min<std::size_t>(1 + rng % 512, reply.size());
            co_await s.write_all(reply.substr(0, n));
            reply.remove_prefix(n);
        }
    } catch (const std::system_error&) {
        // The client gave up first (a limit, a malformed head): fine.
    }
}

task<> one_input(tcp_listener& l, std::string_view reply, std::uint32_t seed) {
    http::client cli{{.read_timeout = std::chrono::seconds(5),
                      .follow_redirects = false, // a Location must not lead anywhere
                      .max_header_bytes = 2048,
                      .max_header_count = 32,
                      .max_body_bytes = max_body}};
    corio::join_handle<> answering = corio::spawn(peer(l, reply, seed));
    const std::string url = "http://" + l.local_address().to_string() + "/";
    try {
        const http::response r = co_await cli.get(url);
        if (r.body().size() > max_body)
            corio::fuzz::fail("a body over max_body_bytes", std::to_string(r.body().size()));
    } catch (const http::error&) {
        // Any of the taxonomy: what malformed input should give.
    } catch (const std::exception& e) {
        corio::fuzz::fail("a client failure that is not an http::error", e.what());
    }
    cli.close_idle();
    if (cli.open_connections() != 0)
        corio::fuzz::fail("a connection left open", std::to_string(cli.open_connections()));
    answering.cancel(); // it may still wait for a request that never came
    try {
        co_await answering;
    } catch (...) {
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 4 || size > 64 * 1024)
        return 0;
    const std::uint32_t seed =
        static_cast<std::uint32_t>(data[0]) | static_cast<std::uint32_t>(data[1]) << 8 |
        static_cast<std::uint32_t>(data[2]) << 16 | static_cast<std::uint32_t>(data[3]) << 24;
    const std::string_view reply(reinterpret_cast<const char*>(data + 4), size - 4);
    static corio::event_loop loop;
    static tcp_listener listener =
        tcp_listener::bind(corio::net::address::parse("127.0.0.1:0"), {.backlog = 16});
    loop.run(one_input(listener, reply, seed));
    return 0;
}

// SPDX-License-Identifier: MIT
#include "../support/corio_test.hpp"

#include <corio/net/tcp_listener.hpp>
#include <corio/net/tcp_stream.hpp>

#include <sys/socket.h>

#include <array>
#include <string>
#include <system_error>

using corio::task;
using corio::net::address;
using corio::net::tcp_listener;
using corio::net::tcp_stream;
using corio::test::contains;

namespace {

/// Accepts one connection and resets it (SO_LINGER 0: close sends RST).
task<> accept_and_reset(tcp_listener& l) {
    tcp_stream s = co_await l.accept();
    const linger reset{1, 0};
    ::setsockopt(s.native_handle(), SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
    std::array<std::byte, 16> buf{};
    [[maybe_unused]] const std::size_t n = co_await s.read_some(buf); // the client's hello
}

} // namespace

CORIO_TEST_CASE("tcp: a reset by the peer is an error naming the peer", "[net][tcp][bad-input]") {
    tcp_listener l = tcp_listener::bind(address::parse("127.0.0.1:0"));
    auto server = corio::spawn(accept_and_reset(l));
    tcp_stream s = co_await tcp_stream::connect(l.local_address());
    co_await s.write_all("hello");
    co_await server;
    std::string message;
    int code = 0;
    try {
        std::array<std::byte, 16> buf{};
        [[maybe_unused]] const std::size_t n = co_await s.read_some(buf);
    } catch (const std::system_error& e) {
        message = e.what();
        code = e.code().value();
    }
    INFO(message);
    CHECK(code == ECONNRESET);
    CHECK(contains(message,
                   "corio::net::tcp_stream::read (peer " + l.local_address().to_string() + ")"));
    CHECK(contains(message, "Connection reset by peer"));
}

CORIO_TEST_CASE("tcp: writing to a peer that is gone is an error, never SIGPIPE",
                "[net][tcp][bad-input]") {
    tcp_listener l = tcp_listener::bind(address::parse("127.0.0.1:0"));
    auto server = corio::spawn(accept_and_reset(l));
    tcp_stream s = co_await tcp_stream::connect(l.local_address());
    co_await s.write_all("hello");
    co_await server;
    std::string message;
    int code = 0;
    const std::string block(64 * 1024, 'x');
    try {
        for (int i = 0; i < 100; ++i) // the first write may still be taken by the kernel
            co_await s.write_all(block);
    } catch (const std::system_error& e) {
        message = e.what();
        code = e.code().value();
    }
    INFO(message);
    CHECK((code == EPIPE || code == ECONNRESET));
    CHECK(contains(message,
                   "corio::net::tcp_stream::write (peer " + l.local_address().to_string() + ")"));
}

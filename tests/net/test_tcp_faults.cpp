// SPDX-License-Identifier: MIT
#include "../support/corio_test.hpp"

#include <corio/net/tcp_listener.hpp>
#include <corio/net/tcp_stream.hpp>

#include <poll.h>
#include <sys/socket.h>

#include <array>
#include <string>
#include <string_view>
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

namespace {
task<std::string> read_one(const tcp_stream& s) {
    std::array<std::byte, 16> buf{};
    const std::size_t n = co_await s.read_some(buf);
    co_return std::string(reinterpret_cast<const char*>(buf.data()), n);
}
} // namespace

CORIO_TEST_CASE("tcp: readiness without data (another reader took it) is waited out, not an error",
                "[net][tcp][spurious]") {
    // Two readers wait on one socket: when one byte arrives, both are woken (on epoll) or one
    // receive completes (on io_uring); the reader that finds nothing must go on waiting.
    tcp_listener l = tcp_listener::bind(address::parse("127.0.0.1:0"));
    auto accepted = corio::spawn(l.accept());
    tcp_stream c = co_await tcp_stream::connect(l.local_address());
    tcp_stream s = co_await accepted;
    auto first = corio::spawn(read_one(s));
    auto second = corio::spawn(read_one(s));
    co_await corio::yield_now(); // both wait
    co_await c.write_all("a");
    for (int i = 0; i < 10 && !first.done() && !second.done(); ++i)
        co_await corio::yield_now();
    CHECK(first.done() != second.done()); // exactly one got the byte; the other still waits
    co_await c.write_all("b");
    const std::string x = co_await first;
    const std::string y = co_await second;
    CHECK(((x == "a" && y == "b") || (x == "b" && y == "a"))); // (which reader: the kernel's)
}

// --- what a descriptor kept registered between reads must not miss (the epoll backend keeps a
// stream's socket registered, edge-triggered: each of these would hang there if it trusted a
// registration or a short read it must not trust; on io_uring they pass as they are) ------------

namespace {

/// A connected pair of stream sockets, raw (socketpair: no accept in between).
std::array<int, 2> stream_pair() {
    std::array<int, 2> fds{-1, -1};
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds.data()) == 0);
    return fds;
}

void send_raw(int fd, std::string_view bytes, int flags = 0) {
    REQUIRE(::send(fd, bytes.data(), bytes.size(), flags | MSG_NOSIGNAL) ==
            static_cast<ssize_t>(bytes.size()));
}

/// Reads until `want` bytes came or the stream ended.
task<std::string> read_up_to(const tcp_stream& s, std::size_t want) {
    std::string got;
    std::array<std::byte, 64> buf{};
    while (got.size() < want) {
        const std::size_t n = co_await s.read_some(buf);
        if (n == 0)
            break;
        got.append(reinterpret_cast<const char*>(buf.data()), n);
    }
    co_return got;
}

} // namespace

CORIO_TEST_CASE("tcp: a descriptor number a closed stream left behind is read from by its next "
                "owner, not trusted as still registered",
                "[net][tcp][registration]") {
    auto [a, peer_a] = stream_pair();
    int number = -1;
    {
        tcp_stream first{a};
        number = first.native_handle();
        auto reader = corio::spawn(read_one(first)); // waits: the socket gets registered
        co_await corio::yield_now();
        send_raw(peer_a, "x");
        const std::string x = co_await reader;
        CHECK(x == "x"); // a short read: the socket is known drained
    } // closed synchronously, behind the loop's back: the kernel drops its registration
    ::close(peer_a);
    auto [b, peer_b] = stream_pair();
    REQUIRE(b == number); // the lowest free number: the one `first` left
    tcp_stream second{b};
    auto reader = corio::spawn(read_one(second)); // waits (nothing sent yet)
    co_await corio::yield_now();
    send_raw(peer_b, "y");
    const std::string y = co_await reader;
    CHECK(y == "y");
    ::close(peer_b);
}

namespace {

/// "abc" and the end of the stream, sent with no turn of the loop in between (so one readiness
/// reports both), to a reader already waiting or not yet there: its read takes the bytes and
/// the end together (a short read), and the next reads must see the end at once.
task<> bytes_then_end(bool reader_waits) {
    auto [fd, peer] = stream_pair();
    tcp_stream s{fd};
    auto reader = corio::spawn(read_one(s));
    if (reader_waits)
        co_await corio::yield_now();
    send_raw(peer, "abc");
    ::shutdown(peer, SHUT_WR);
    const std::string bytes = co_await reader;
    CHECK(bytes == "abc");
    const std::string end = co_await read_one(s);
    CHECK(end.empty()); // the end, at once: no readiness will follow it
    const std::string again = co_await read_one(s);
    CHECK(again.empty()); // and again
    ::close(peer);
}

} // namespace

CORIO_TEST_CASE("tcp: the end of the stream that came with the last bytes is read, though no "
                "readiness follows it (the reader waited)",
                "[net][tcp][registration]") {
    co_await bytes_then_end(true);
}

CORIO_TEST_CASE("tcp: the end of the stream that came with the last bytes is read, though no "
                "readiness follows it (the reader came later)",
                "[net][tcp][registration]") {
    co_await bytes_then_end(false);
}

CORIO_TEST_CASE("tcp: urgent data in the middle of the stream stops a read short, and the bytes "
                "after it are still read",
                "[net][tcp][registration][bad-input]") {
    tcp_listener l = tcp_listener::bind(address::parse("127.0.0.1:0"));
    auto accepted = corio::spawn(l.accept());
    tcp_stream c = co_await tcp_stream::connect(l.local_address());
    c.set_nodelay(true);
    tcp_stream s = co_await accepted;
    auto reader = corio::spawn(read_up_to(s, 4)); // waits: one readiness for all three sends
    co_await corio::yield_now();
    send_raw(c.native_handle(), "ab");
    send_raw(c.native_handle(), "!", MSG_OOB); // the urgent byte: out of band, not in the stream
    send_raw(c.native_handle(), "cd");
    const std::string stream = co_await reader;
    CHECK(stream == "abcd"); // the read stops at the urgent mark, then goes on
}

CORIO_TEST_CASE("tcp: a raw poll of a stream's socket between its reads loses no readiness",
                "[net][tcp][registration]") {
    auto [fd, peer] = stream_pair();
    tcp_stream s{fd};
    auto first = corio::spawn(read_one(s)); // waits: the socket gets registered
    co_await corio::yield_now();
    send_raw(peer, "1");
    const std::string one = co_await first;
    CHECK(one == "1");
    send_raw(peer, "2");
    for (int i = 0; i < 2; ++i) // two turns: the loop looks at readiness, and nobody reads
        co_await corio::yield_now();
    // Data is there already, and its edge is gone: the poll (no owner) must see it, whatever
    // the stream registered.
    const int revents = co_await corio::io::poll(s.native_handle(), POLLIN);
    CHECK((revents & POLLIN) != 0);
    const std::string two = co_await read_one(s);
    CHECK(two == "2");
    auto reader = corio::spawn(read_one(s)); // and the stream's own wait works again after it
    co_await corio::yield_now();
    send_raw(peer, "3");
    const std::string three = co_await reader;
    CHECK(three == "3");
    ::close(peer);
}

// --- single faults forced on the torturing ring (a CORIO_TORTURE build only) ------------------

#if defined(CORIO_TORTURE)

namespace {

using fault = corio::io::torture::fault;

corio::io::torture& torturer() { return corio::event_loop::current().io_ring().torturer(); }

/// A connected pair on loopback.
struct connected_pair {
    tcp_listener listener = tcp_listener::bind(address::parse("127.0.0.1:0"));
    tcp_stream client;
    tcp_stream server;
};

task<connected_pair> connect_pair() {
    connected_pair p;
    p.client = co_await tcp_stream::connect(p.listener.local_address());
    p.server = co_await p.listener.accept();
    co_return p;
}

/// The errno a read fails with (0 when it succeeds).
task<int> read_error(const tcp_stream& s, std::array<std::byte, 16>& buf) {
    try {
        [[maybe_unused]] const std::size_t n = co_await s.read_some(buf);
    } catch (const std::system_error& e) {
        co_return e.code().value();
    }
    co_return 0;
}

std::string text(const std::array<std::byte, 16>& buf, std::size_t n) {
    return {reinterpret_cast<const char*>(buf.data()), n};
}

} // namespace

URING_TEST_CASE("torture: a read interrupted before it did anything is submitted again",
                "[net][tcp][torture]") {
    connected_pair p = co_await connect_pair();
    co_await p.client.write_all("ping");
    const std::size_t before = torturer().injected();
    torturer().force(fault::interrupt); // the read's receive ends with -EINTR, having done nothing
    std::array<std::byte, 16> buf{};
    const std::size_t n = co_await p.server.read_some(buf);
    CHECK(torturer().injected() == before + 1);
    CHECK(text(buf, n) == "ping");
}

URING_TEST_CASE("torture: an interrupted multishot accept is armed again", "[net][tcp][torture]") {
    tcp_listener l = tcp_listener::bind(address::parse("127.0.0.1:0"));
    const std::size_t before = torturer().injected();
    torturer().force(fault::interrupt); // the accept's first submission
    auto accepted = corio::spawn(l.accept());
    co_await corio::yield_now(); // the accept runs and arms (and is interrupted)
    CHECK(torturer().injected() == before + 1);
    tcp_stream c = co_await tcp_stream::connect(l.local_address());
    tcp_stream s = co_await accepted;
    CHECK(s.peer_address() == c.local_address());
}

URING_TEST_CASE("torture: an interrupted connect is reported, naming the address",
                "[net][tcp][torture]") {
    tcp_listener l = tcp_listener::bind(address::parse("127.0.0.1:0"));
    torturer().force(fault::interrupt);
    int code = 0;
    std::string message;
    try {
        tcp_stream c = co_await tcp_stream::connect(l.local_address());
    } catch (const std::system_error& e) {
        code = e.code().value();
        message = e.what();
    }
    INFO(message);
    CHECK(code == EINTR);
    CHECK(contains(message, l.local_address().to_string()));
}

URING_TEST_CASE("torture: a refused submission is the read's error, and the stream goes on",
                "[net][tcp][torture]") {
    connected_pair p = co_await connect_pair();
    torturer().force(fault::refuse);
    std::array<std::byte, 16> buf{};
    const int code = co_await read_error(p.server, buf);
    CHECK((code == ENOMEM || code == EAGAIN));
    co_await p.client.write_all("again");
    const std::size_t n = co_await p.server.read_some(buf);
    CHECK(text(buf, n) == "again");
}

URING_TEST_CASE("torture: an operation the kernel cancelled on its own is an error, not a "
                "cancellation of the task",
                "[net][tcp][torture]") {
    connected_pair p = co_await connect_pair();
    torturer().force(fault::cancel);
    std::array<std::byte, 16> buf{};
    const int code = co_await read_error(p.server, buf);
    CHECK(code == ECANCELED);
}

#endif // CORIO_TORTURE

// SPDX-License-Identifier: MIT
#include "../support/corio_test.hpp"

#include <corio/net/tcp_listener.hpp>
#include <corio/net/tcp_stream.hpp>

#include <dirent.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <memory>
#include <string>
#include <system_error>
#include <tuple>
#include <vector>

using namespace std::chrono_literals;
using corio::task;
using corio::net::address;
using corio::net::tcp_listener;
using corio::net::tcp_stream;
using corio::test::contains;

namespace {

std::size_t open_descriptors() {
    std::size_t n = 0;
    if (DIR* d = ::opendir("/proc/self/fd")) {
        while (::readdir(d) != nullptr)
            ++n;
        ::closedir(d);
    }
    return n;
}

/// Echoes everything back until the peer closes, then closes its side. (The stream is moved
/// out of the parameter: a parameter lives as long as the coroutine's frame, which a spawned
/// task keeps until its handle is joined, so the peer would wait for an EOF until then.)
task<> echo(tcp_stream peer) {
    tcp_stream s = std::move(peer);
    std::array<std::byte, 4096> buf{};
    for (;;) {
        const std::size_t n = co_await s.read_some(buf);
        if (n == 0)
            co_return;
        co_await s.write_all(std::span(buf.data(), n));
    }
}

task<> serve(tcp_listener& l, int connections) {
    std::vector<corio::join_handle<>> echoes;
    for (int i = 0; i < connections; ++i) {
        tcp_stream s = co_await l.accept();
        echoes.push_back(corio::spawn(echo(std::move(s))));
    }
    for (auto& e : echoes)
        co_await e;
}

task<std::string> read_all(const tcp_stream& s) {
    std::string out;
    std::array<std::byte, 65536> buf{};
    for (;;) {
        const std::size_t n = co_await s.read_some(buf);
        if (n == 0)
            co_return out;
        out.append(reinterpret_cast<const char*>(buf.data()), n);
    }
}

task<> write_then_shutdown(const tcp_stream& s, const std::string& message) {
    co_await s.write_all(message);
    co_await s.shutdown();
}

/// Writes `message` and reads the echo at the same time (a large message would otherwise fill
/// both directions' buffers and stall), until the server closes.
task<std::string> round_trip(address to, std::string message) {
    tcp_stream s = co_await tcp_stream::connect(to);
    s.set_nodelay(true);
    // Both at once; gather waits for both, also when one fails, so neither outlives `s`.
    auto both = corio::gather(write_then_shutdown(s, message), read_all(s));
    auto done = co_await std::move(both);
    co_return std::get<1>(std::move(done));
}

task<> echo_over(address at) {
    tcp_listener l = tcp_listener::bind(at);
    const address bound = l.local_address();
    CHECK(bound.port() != 0);
    auto server = corio::spawn(serve(l, 1));
    std::string back = co_await round_trip(bound, "hello over tcp");
    co_await server;
    CHECK(back == "hello over tcp");
}

} // namespace

CORIO_TEST_CASE("tcp: echo round trip over IPv4 loopback", "[net][tcp]") {
    co_await echo_over(address::ipv4_loopback(0));
}

CORIO_TEST_CASE("tcp: echo round trip over IPv6 loopback", "[net][tcp]") {
    co_await echo_over(address::ipv6_loopback(0));
}

namespace {
task<int> one_client(address to, int i) {
    const std::string msg = "client " + std::to_string(i);
    std::string back = co_await round_trip(to, msg);
    co_return back == msg ? 1 : 0;
}
} // namespace

CORIO_TEST_CASE("tcp: 1,000 concurrent connections through one listener", "[net][tcp]") {
    tcp_listener l = tcp_listener::bind(address::ipv4_loopback(0));
    const address to = l.local_address();
    std::vector<task<int>> clients;
    for (int i = 0; i < 1000; ++i)
        clients.push_back(one_client(to, i));
    // Together: a server that fails (on the torturing ring) cancels the clients waiting for it.
    auto done = co_await corio::gather(serve(l, 1000), corio::gather(std::move(clients)));
    const std::vector<int>& oks = std::get<1>(done);
    CHECK(std::count(oks.begin(), oks.end(), 1) == 1000);
}

CORIO_TEST_CASE("tcp: 16 MiB payloads survive partial reads and writes", "[net][tcp]") {
    tcp_listener l = tcp_listener::bind(address::ipv4_loopback(0));
    auto server = corio::spawn(serve(l, 1));
    std::string payload(16 << 20, '\0');
    for (std::size_t i = 0; i < payload.size(); ++i)
        payload[i] = static_cast<char>('a' + i % 26);
    std::string back = co_await round_trip(l.local_address(), payload);
    co_await server;
    CHECK(back.size() == payload.size());
    CHECK(back == payload);
}

namespace {
task<> accept_and_hold(tcp_listener& l, corio::event& done) {
    tcp_stream s = co_await l.accept();
    co_await done.wait(); // keeps the connection open and silent
}
} // namespace

CORIO_TEST_CASE("tcp: a read with no data can be cancelled and timed out", "[net][tcp][cancel]") {
    tcp_listener l = tcp_listener::bind(address::ipv4_loopback(0));
    corio::event done;
    auto server = corio::spawn(accept_and_hold(l, done));
    tcp_stream s = co_await tcp_stream::connect(l.local_address());
    std::array<std::byte, 16> buf{};
    CHECK_THROWS_AS(co_await corio::timeout(20ms, s.read_some(buf)), corio::timeout_error);
    done.set();
    co_await server;
    const std::size_t n = co_await s.read_some(buf); // the server's stream closed: EOF
    CHECK(n == 0);
}

CORIO_TEST_CASE("tcp: connection refused names the address, and 1,000 failures leak no descriptor",
                "[net][tcp][bad-input]") {
    // Bind then close a listener to find a port nobody listens on.
    address dead = tcp_listener::bind(address::ipv4_loopback(0)).local_address();
    const std::size_t before = open_descriptors();
    for (int i = 0; i < 1000; ++i) {
        try {
            tcp_stream s = co_await tcp_stream::connect(dead);
            FAIL("connected to a closed port");
        } catch (const std::system_error& e) {
            if (i == 0) {
                CHECK(e.code().value() == ECONNREFUSED);
                CHECK(contains(e.what(), dead.to_string()));
            }
        }
    }
    CHECK(open_descriptors() == before);
}

CORIO_TEST_CASE("tcp: a refused connect by name names each address tried and the reason once",
                "[net][tcp][bad-input]") {
    const std::uint16_t port = tcp_listener::bind(address::ipv4_loopback(0)).local_address().port();
    std::string message;
    try {
        tcp_stream s = co_await tcp_stream::connect("127.0.0.1", port);
        FAIL("connected to a closed port");
    } catch (const std::system_error& e) {
        CHECK(e.code().value() == ECONNREFUSED);
        message = e.what();
    }
    INFO(message);
    CHECK(contains(message, "(tried 127.0.0.1:" + std::to_string(port) + ")"));
    const std::string reason = std::system_category().message(ECONNREFUSED);
    CHECK(message.find(reason) != std::string::npos);
    CHECK(message.find(reason) == message.rfind(reason)); // once, not "...: X): X"
}

namespace {
/// What an accept() on `l` ended with: the errno of its system_error, or -1 when cancelled.
task<> accept_outcome(tcp_listener& l, int& code, std::string& what) {
    try {
        [[maybe_unused]] tcp_stream s = co_await l.accept();
        code = 0;
    } catch (const std::system_error& e) {
        code = e.code().value();
        what = e.what();
    } catch (const corio::cancelled_error&) {
        code = -1;
    }
}
} // namespace

CORIO_TEST_CASE("tcp: close() ends a waiting accept() at once with EBADF naming the address",
                "[net][tcp][cancel]") {
    tcp_listener l = tcp_listener::bind(address::ipv4_loopback(0));
    const address at = l.local_address();
    int code = 0;
    std::string what;
    corio::join_handle<> waiter = corio::spawn(accept_outcome(l, code, what));
    co_await corio::yield_now(); // the waiter is in accept() now
    l.close();
    co_await waiter; // ends at once: without the fix it waits forever (the watchdog fails it)
    CHECK(code == EBADF);
    CHECK(contains(what, at.to_string()));
    CHECK(contains(what, "closed"));
    // accept() after close() throws the same.
    code = 0;
    co_await accept_outcome(l, code, what);
    CHECK(code == EBADF);
    // So does a moved-from listener's.
    tcp_listener a = tcp_listener::bind(address::ipv4_loopback(0));
    tcp_listener b = std::move(a);
    code = 0;
    co_await accept_outcome(a, code, what); // NOLINT(bugprone-use-after-move): the point
    CHECK(code == EBADF);
}

CORIO_TEST_CASE("tcp: cancelling an accept() after close() is harmless", "[net][tcp][cancel]") {
    for (int round = 0; round < 2; ++round) {
        tcp_listener l = tcp_listener::bind(address::ipv4_loopback(0));
        int code = 0;
        std::string what;
        corio::join_handle<> waiter = corio::spawn(accept_outcome(l, code, what));
        co_await corio::yield_now();
        l.close();
        if (round == 1)
            co_await corio::yield_now(); // the waiter has seen the close by now
        waiter.cancel(); // after the close: touches nothing the close freed (ASan would say)
        co_await waiter;
        CHECK((code == EBADF || code == -1));
    }
}

CORIO_TEST_CASE("tcp: binding an address in use names it", "[net][tcp][bad-input]") {
    tcp_listener first = tcp_listener::bind(address::ipv4_loopback(0));
    const address taken = first.local_address();
    try {
        tcp_listener second = tcp_listener::bind(taken);
        FAIL("bound twice");
    } catch (const std::system_error& e) {
        CHECK(e.code().value() == EADDRINUSE);
        CHECK(contains(e.what(), taken.to_string()));
    }
    co_return;
}

namespace {
task<> accepts_forever(tcp_listener& l) { tcp_stream s = co_await l.accept(); }
} // namespace

TEST_CASE("tcp: a listener destroyed with its accept in the kernel leaves nothing behind",
          "[net][tcp]") {
    const std::size_t before = open_descriptors();
    {
        corio::event_loop loop;
        struct local {
            static task<> main() {
                auto l =
                    std::make_unique<tcp_listener>(tcp_listener::bind(address::ipv4_loopback(0)));
                auto waiter = corio::spawn(accepts_forever(*l));
                co_await corio::yield_now();
                co_await corio::yield_now(); // the multishot accept is in the kernel now
                waiter.cancel();
                CHECK_THROWS_AS(co_await waiter, corio::cancelled_error);
                l.reset(); // destroys the listener with the accept still armed
                co_await corio::yield_now();
            }
        };
        loop.run(local::main());
    } // the loop drains the orphaned accept's last completion
    CHECK(open_descriptors() == before);
}

// SPDX-License-Identifier: MIT
//
// corio's echo server for the echo benchmarks (issue 4): the way an application would write it
// with corio's public API, one task per connection, `read_some` then `write_all`.
//
//     echo_corio [--port 7000]
//
// Listens on 127.0.0.1:port. It is examples/echo_server.cpp minus what a benchmark does not
// need and plus what every server of bench/ does alike: TCP_NODELAY on each connection (so a
// 16 KiB echo that goes back in pieces is not held by Nagle's algorithm), connections spawned
// detached with their errors caught (a client that resets does not stop the server, where the
// example's task_group would cancel its siblings), no signal thread (a signal just ends it).
// A copy rather than the example itself, so that the example stays a readable example and the
// benchmark can change without touching it.

#include <corio/corio.hpp>

#include <array>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

namespace net = corio::net;

namespace {

corio::task<> echo(net::tcp_stream s) {
    try {
        s.set_nodelay(true);
        std::array<std::byte, 16 * 1024> buf; // the frame holds it; not zeroed: never read unset
        for (;;) {
            const std::size_t n = co_await s.read_some(buf);
            if (n == 0)
                co_return; // the client closed
            co_await s.write_all(std::span<const std::byte>(buf.data(), n));
        }
    } catch (const std::exception&) {
        // Reset by the peer and the like: this connection is over, the others go on.
    }
}

corio::task<> serve(std::uint16_t port) {
    net::tcp_listener listener = net::tcp_listener::bind(net::address::ipv4_loopback(port));
    std::fprintf(stderr, "echo_corio: listening on 127.0.0.1:%u\n", static_cast<unsigned>(port));
    for (;;) {
        net::tcp_stream s = co_await listener.accept();
        corio::spawn(echo(std::move(s))).detach();
    }
}

} // namespace

int main(int argc, char** argv) {
    std::uint16_t port = 7000;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
            port = static_cast<std::uint16_t>(std::stoi(argv[++i]));
        } else {
            std::fprintf(stderr, "usage: echo_corio [--port N]\n");
            return 2;
        }
    }
    try {
        corio::run(serve(port));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "echo_corio: %s\n", e.what());
        return 1;
    }
}

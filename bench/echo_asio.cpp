// SPDX-License-Identifier: MIT
//
// The Boost.Asio reference of the echo benchmarks (issue 4): Asio's own C++20-coroutine echo
// server (the shape of its examples/cpp20/coroutines/echo_server.cpp), on one io_context run
// by one thread (concurrency hint 1), i.e. epoll underneath.
//
//     echo_asio [--port 7000]
//
// Listens on 127.0.0.1:port; one coroutine per connection (co_spawn, detached), each looping
// async_read_some into a 16 KiB buffer then async_write of what it read, with use_awaitable.
// TCP_NODELAY on each connection, as the other servers of bench/ do. Built only where CMake
// finds Boost (bench/CMakeLists.txt).

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

asio::awaitable<void> echo(tcp::socket s) {
    try {
        s.set_option(tcp::no_delay(true));
        std::array<char, 16 * 1024> buf;
        for (;;) {
            const std::size_t n =
                co_await s.async_read_some(asio::buffer(buf), asio::use_awaitable);
            co_await asio::async_write(s, asio::buffer(buf.data(), n), asio::use_awaitable);
        }
    } catch (const std::exception&) {
        // End of stream (asio::error::eof) or reset: this connection is over.
    }
}

asio::awaitable<void> listen(tcp::acceptor acceptor) {
    for (;;) {
        tcp::socket s = co_await acceptor.async_accept(asio::use_awaitable);
        asio::co_spawn(acceptor.get_executor(), echo(std::move(s)), asio::detached);
    }
}

} // namespace

int main(int argc, char** argv) {
    unsigned short port = 7000;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
            port = static_cast<unsigned short>(std::stoi(argv[++i]));
        } else {
            std::fprintf(stderr, "usage: echo_asio [--port N]\n");
            return 2;
        }
    }
    try {
        asio::io_context io{1};
        tcp::acceptor acceptor{io, {asio::ip::address_v4::loopback(), port}}; // SO_REUSEADDR
        std::fprintf(stderr, "echo_asio: listening on 127.0.0.1:%u\n", static_cast<unsigned>(port));
        asio::co_spawn(io, listen(std::move(acceptor)), asio::detached);
        io.run();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "echo_asio: %s\n", e.what());
        return 1;
    }
}

// SPDX-License-Identifier: MIT
//
// Boost.Beast's HTTP server for the HTTP benchmarks (issue 5): Beast's idiomatic C++20-coroutine
// server (Asio's `co_spawn` + `use_awaitable`, one coroutine per connection, keep-alive) on one
// `io_context` thread, answering GET /hello with "Hello, World!" and the header fields corio
// sends (Server, Date, Content-Type, Content-Length); 404 for anything else.
//
//     http_beast [--port 8080]
//
// Listens on 127.0.0.1:port; TCP_NODELAY on every connection, as the other servers of bench/.
// Built only where CMake finds Boost. A signal ends it.

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <exception>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using asio::ip::tcp;

namespace {

/// The Date field's value for now, formatted once per second (as corio does).
std::string_view http_date() {
    thread_local std::time_t second = -1; // per thread: with --threads, each its own
    thread_local char text[32];
    thread_local std::size_t size = 0;
    const std::time_t now = std::time(nullptr);
    if (now != second) {
        std::tm tm{};
        ::gmtime_r(&now, &tm);
        size = std::strftime(text, sizeof text, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        second = now;
    }
    return {text, size};
}

asio::awaitable<void> session(tcp::socket socket) {
    socket.set_option(tcp::no_delay(true));
    beast::flat_buffer buffer;
    try {
        for (;;) {
            bhttp::request<bhttp::string_body> req;
            co_await bhttp::async_read(socket, buffer, req, asio::use_awaitable);
            const bool found = req.method() == bhttp::verb::get && req.target() == "/hello";
            bhttp::response<bhttp::string_body> res{
                found ? bhttp::status::ok : bhttp::status::not_found, req.version()};
            res.set(bhttp::field::server, "beast");
            res.set(bhttp::field::date, http_date());
            res.set(bhttp::field::content_type, "text/plain; charset=utf-8");
            res.keep_alive(req.keep_alive());
            res.body() = found ? "Hello, World!" : "Not Found\n";
            res.prepare_payload();
            co_await bhttp::async_write(socket, res, asio::use_awaitable);
            if (!res.keep_alive())
                break;
        }
    } catch (const std::exception&) {
        // End of stream, reset by the peer: this connection is over, the others go on.
    }
    beast::error_code ignored;
    socket.shutdown(tcp::socket::shutdown_send, ignored);
}

asio::awaitable<void> listen(tcp::acceptor& acceptor) {
    for (;;) {
        tcp::socket socket = co_await acceptor.async_accept(asio::use_awaitable);
        asio::co_spawn(acceptor.get_executor(), session(std::move(socket)), asio::detached);
    }
}

} // namespace

int main(int argc, char** argv) {
    unsigned short port = 8080;
    int threads = 1;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
            port = static_cast<unsigned short>(std::stoi(argv[++i]));
        } else if (std::strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
            threads = std::max(1, std::stoi(argv[++i]));
        } else {
            std::fprintf(stderr, "usage: http_beast [--port N] [--threads N]\n");
            return 2;
        }
    }
    try {
        // One thread: Asio's single-threaded set-up; with --threads N, the usual multi-core one:
        // N threads running the same io_context (each connection is one coroutine, so one
        // strand of its own).
        asio::io_context io{threads};
        tcp::acceptor acceptor{io};
        const tcp::endpoint at{asio::ip::make_address("127.0.0.1"), port};
        acceptor.open(at.protocol());
        acceptor.set_option(asio::socket_base::reuse_address(true));
        acceptor.bind(at);
        acceptor.listen(1024);
        asio::co_spawn(io, listen(acceptor), asio::detached);
        std::fprintf(stderr, "http_beast: listening on 127.0.0.1:%u\n", unsigned{port});
        std::vector<std::thread> more;
        for (int t = 1; t < threads; ++t)
            more.emplace_back([&io] { io.run(); });
        io.run();
        for (std::thread& t : more)
            t.join();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "http_beast: %s\n", e.what());
        return 1;
    }
}

// SPDX-License-Identifier: MIT
//
// corio's HTTP server for the HTTP benchmarks (issue 5): http::router + http::server as an
// application would write them, GET /hello answering "Hello, World!".
//
//     http_corio [--port 8080] [--threads N]
//
// With --threads N it serves on every loop of an N-loop runtime (issue 14's every-core
// benchmark, bench/http_cores.sh): one SO_REUSEPORT listener per loop.
// Listens on 127.0.0.1:port with the options of the example (max_connections 10,000,
// 10 s header timeout, 60 s keep-alive and request timeouts). It is examples/hello_server.cpp
// minus the other routes and the signal thread: a signal just ends it (a benchmark has no
// requests in progress worth finishing).

#include <corio/corio.hpp>
#include <corio/http/server.hpp>

#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

namespace http = corio::http;
using namespace std::chrono_literals;

namespace {

corio::task<http::response> hello(http::request&) {
    co_return http::response::text(200, "Hello, World!");
}

corio::task<> serve(http::server& srv, std::uint16_t port) {
    corio::net::tcp_listener listener =
        corio::net::tcp_listener::bind(corio::net::address::ipv4_loopback(port), {.backlog = 1024});
    std::fprintf(stderr, "http_corio: listening on 127.0.0.1:%u\n", static_cast<unsigned>(port));
    co_await srv.serve(std::move(listener));
}

corio::task<> serve_on_loops(http::server& srv, std::uint16_t port, corio::runtime& rt) {
    std::fprintf(stderr, "http_corio: listening on 127.0.0.1:%u with %zu loops\n",
                 static_cast<unsigned>(port), rt.size());
    co_await srv.serve(corio::net::address::ipv4_loopback(port), {.loops = rt});
}

} // namespace

int main(int argc, char** argv) {
    std::uint16_t port = 8080;
    std::size_t threads = 0; // 0: one loop, corio::run
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
            port = static_cast<std::uint16_t>(std::stoi(argv[++i]));
        } else if (std::strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
            threads = static_cast<std::size_t>(std::stoul(argv[++i]));
        } else {
            std::fprintf(stderr, "usage: http_corio [--port N] [--threads N]\n");
            return 2;
        }
    }
    http::router r;
    r.get("/hello", hello);
    http::server srv{r, http::server_options{.max_header_bytes = 16 * 1024,
                                             .max_body_bytes = 1 << 20,
                                             .max_connections = 10'000,
                                             .header_timeout = 10s,
                                             .keep_alive_timeout = 60s,
                                             .request_timeout = 60s}};
    try {
        if (threads > 0) {
            corio::runtime rt{{.threads = threads}};
            rt.run(serve_on_loops(srv, port, rt));
        } else {
            corio::run(serve(srv, port));
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "http_corio: %s\n", e.what());
        return 1;
    }
}

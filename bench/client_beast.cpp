// SPDX-License-Identifier: MIT
//
// Boost.Beast's HTTP client for the client benchmarks of issue 6 (bench/client.sh): Beast's
// C++20-coroutine client shape (Asio's `co_spawn` + `use_awaitable`, as in Beast's
// http_client_coro example), `concurrency` coroutines each with its own persistent connection
// (TCP_NODELAY), each sending its requests one after the other: a `request<empty_body>` built
// per request (GET, Host, User-Agent), `async_write`, `async_read` into a
// `response<string_body>` with one `flat_buffer` per connection; every status and body checked.
// One `io_context{1}` thread. No pool, no redirects, no limits, no timeouts: the bare protocol.
//
//     client_beast [--url http://127.0.0.1:8080/hello] [--requests 20000] [--concurrency 100]
//
// Prints one JSON line like client_corio's. Exit status 1 when any request failed or did not
// answer 200. Built only where CMake finds Boost.

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <string_view>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using asio::ip::tcp;

namespace {

double cpu_seconds() {
    rusage u{};
    ::getrusage(RUSAGE_SELF, &u);
    const auto tv = [](const timeval& t) {
        return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
    };
    return tv(u.ru_utime) + tv(u.ru_stime);
}

/// The process's peak RSS, VmHWM of /proc/self/status, in KiB (ru_maxrss would not do: Linux
/// carries it over an exec, so a client started by a large parent would report the parent's).
long peak_rss_kib() {
    std::FILE* f = std::fopen("/proc/self/status", "r");
    if (f == nullptr)
        return -1;
    char line[256];
    long kib = -1;
    while (std::fgets(line, sizeof line, f) != nullptr)
        if (std::strncmp(line, "VmHWM:", 6) == 0)
            kib = std::strtol(line + 6, nullptr, 10);
    std::fclose(f);
    return kib;
}

struct target {
    std::string host;
    std::string port;
    std::string path;
};

// "http://host:port/path": enough for the benchmark's URLs.
target parse(std::string_view url) {
    constexpr std::string_view scheme = "http://";
    if (!url.starts_with(scheme))
        throw std::invalid_argument("only http:// URLs");
    url.remove_prefix(scheme.size());
    const std::size_t slash = url.find('/');
    const std::string_view authority = url.substr(0, slash);
    target t;
    t.path = slash == std::string_view::npos ? "/" : std::string(url.substr(slash));
    const std::size_t colon = authority.rfind(':');
    t.host = std::string(authority.substr(0, colon));
    t.port = colon == std::string_view::npos ? "80" : std::string(authority.substr(colon + 1));
    return t;
}

struct counters {
    long total = 0;
    long started = 0;
    long ok = 0;
    long bad = 0;
    long failed_connections = 0;
};

asio::awaitable<void> connection(const target& t, const tcp::resolver::results_type& endpoints,
                                 counters& c) {
    try {
        tcp::socket socket{co_await asio::this_coro::executor};
        co_await asio::async_connect(socket, endpoints, asio::use_awaitable);
        socket.set_option(tcp::no_delay(true));
        beast::flat_buffer buffer;
        while (c.started < c.total) {
            ++c.started;
            bhttp::request<bhttp::empty_body> req{bhttp::verb::get, t.path, 11};
            req.set(bhttp::field::host, t.host);
            req.set(bhttp::field::user_agent, "beast");
            co_await bhttp::async_write(socket, req, asio::use_awaitable);
            bhttp::response<bhttp::string_body> res;
            co_await bhttp::async_read(socket, buffer, res, asio::use_awaitable);
            if (res.result_int() == 200 && res.body() == "Hello, World!")
                ++c.ok;
            else
                ++c.bad;
        }
        beast::error_code ignored;
        socket.shutdown(tcp::socket::shutdown_both, ignored);
    } catch (const std::exception& e) {
        ++c.failed_connections;
        std::fprintf(stderr, "client_beast: %s\n", e.what());
    }
}

} // namespace

int main(int argc, char** argv) {
    std::string url = "http://127.0.0.1:8080/hello";
    long requests = 20000;
    long concurrency = 100;
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        if (a == "--url" && i + 1 < argc) {
            url = argv[++i];
        } else if (a == "--requests" && i + 1 < argc) {
            requests = std::stol(argv[++i]);
        } else if (a == "--concurrency" && i + 1 < argc) {
            concurrency = std::stol(argv[++i]);
        } else {
            std::fprintf(stderr,
                         "usage: client_beast [--url URL] [--requests N] [--concurrency C]\n");
            return 2;
        }
    }
    try {
        const target t = parse(url);
        asio::io_context io{1}; // one thread: Asio's single-threaded set-up
        tcp::resolver resolver{io};
        const tcp::resolver::results_type endpoints = resolver.resolve(t.host, t.port);
        counters c;
        c.total = requests;
        for (long i = 0; i < concurrency; ++i)
            asio::co_spawn(io, connection(t, endpoints, c), asio::detached);

        const double cpu0 = cpu_seconds();
        const auto t0 = std::chrono::steady_clock::now();
        io.run();
        const double wall =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        const double cpu = cpu_seconds() - cpu0;
        std::printf("{\"client\": \"beast\", \"requests\": %ld, \"ok\": %ld, \"bad\": %ld, "
                    "\"concurrency\": %ld, \"wall_s\": %.6f, \"cpu_s\": %.6f, "
                    "\"peak_rss_kib\": %ld}\n",
                    requests, c.ok, c.bad, concurrency, wall, cpu, peak_rss_kib());
        return c.ok == requests ? 0 : 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "client_beast: %s\n", e.what());
        return 1;
    }
}

// A TCP echo client: sends `count` lines to an echo server and checks each one comes back.
// Usage: echo_client [--port N] [--count N]   (defaults 7000, 1000; server on 127.0.0.1)
#include <corio/corio.hpp>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>

namespace net = corio::net;

corio::task<int> talk(std::uint16_t port, int count) {
    net::tcp_stream connection =
        co_await net::tcp_stream::connect(net::address::ipv4_loopback(port));
    connection.set_nodelay(true);
    net::buffered_stream<net::tcp_stream> s{std::move(connection)};
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < count; ++i) {
        const std::string line = "message " + std::to_string(i) + "\n";
        co_await s.write_all(line);
        std::string back = co_await s.read_line();
        if (back != line) {
            std::fprintf(stderr, "echo_client: sent %s got %s\n", line.c_str(), back.c_str());
            co_return 1;
        }
    }
    const std::chrono::duration<double, std::micro> took = std::chrono::steady_clock::now() - start;
    std::printf("%d round trips, %.1f us each\n", count, took.count() / count);
    co_return 0;
}

int main(int argc, char** argv) {
    std::uint16_t port = 7000;
    int count = 1000;
    for (int i = 1; i + 1 < argc; ++i) {
        if (std::strcmp(argv[i], "--port") == 0)
            port = static_cast<std::uint16_t>(std::stoi(argv[i + 1]));
        if (std::strcmp(argv[i], "--count") == 0)
            count = std::stoi(argv[i + 1]);
    }
    try {
        return corio::run(talk(port, count));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "echo_client: %s\n", e.what());
        return 1;
    }
}

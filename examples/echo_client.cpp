// An echo client: sends `count` lines to an echo server and checks each one comes back.
// Usage: echo_client [--host H] [--port N] [--count N] [--tls [--ca CA_FILE]]
//   defaults: 127.0.0.1, 7000, 1000; --tls verifies the server's certificate against the host
//   name (and the system's CAs, plus CA_FILE).
#include <corio/corio.hpp>
#include <corio/tls/stream.hpp>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>

namespace net = corio::net;
namespace tls = corio::tls;

template <class Stream>
corio::task<int> talk(Stream connection, int count) {
    net::buffered_stream<Stream> s{std::move(connection)};
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < count; ++i) {
        const std::string line = "message " + std::to_string(i) + "\n";
        co_await s.write_all(line);
        const std::string back = co_await s.read_line();
        if (back != line) {
            std::fprintf(stderr, "echo_client: sent %s got %s\n", line.c_str(), back.c_str());
            co_return 1;
        }
    }
    const std::chrono::duration<double, std::micro> took = std::chrono::steady_clock::now() - start;
    std::printf("%d round trips, %.1f us each\n", count, took.count() / count);
    co_await s.stream().close();
    co_return 0;
}

corio::task<int> run(std::string host, std::uint16_t port, int count,
                     std::optional<tls::context> ctx) {
    net::tcp_stream tcp = co_await net::tcp_stream::connect(host, port);
    tcp.set_nodelay(true);
    if (!ctx)
        co_return co_await talk(std::move(tcp), count);
    tls::stream s = co_await tls::stream::connect(std::move(tcp), *ctx, host);
    std::printf("%s, %s\n", std::string(s.protocol()).c_str(), std::string(s.cipher()).c_str());
    co_return co_await talk(std::move(s), count);
}

int main(int argc, char** argv) {
    std::string host = "127.0.0.1";
    std::uint16_t port = 7000;
    int count = 1000;
    std::optional<tls::context> ctx;
    try {
        for (int i = 1; i < argc; ++i) {
            const bool has_value = i + 1 < argc;
            if (std::strcmp(argv[i], "--host") == 0 && has_value)
                host = argv[++i];
            else if (std::strcmp(argv[i], "--port") == 0 && has_value)
                port = static_cast<std::uint16_t>(std::stoi(argv[++i]));
            else if (std::strcmp(argv[i], "--count") == 0 && has_value)
                count = std::stoi(argv[++i]);
            else if (std::strcmp(argv[i], "--tls") == 0 && !ctx)
                ctx = tls::context::client();
            else if (std::strcmp(argv[i], "--ca") == 0 && has_value && ctx)
                ctx->load_ca_file(argv[++i]);
            else
                throw std::invalid_argument(std::string("unknown or incomplete option ") + argv[i]);
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr,
                     "echo_client: %s\nusage: echo_client [--host H] [--port N] [--count N] "
                     "[--tls [--ca FILE]]\n",
                     e.what());
        return 2;
    }
    try {
        return corio::run(run(host, port, count, std::move(ctx)));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "echo_client: %s\n", e.what());
        return 1;
    }
}

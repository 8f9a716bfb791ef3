// An echo server: every connection gets back what it sends, over TCP or TLS. Stops on
// SIGINT/SIGTERM.
// Usage: echo_server [--port N] [--tls CERT_FILE KEY_FILE]   (default port 7000, on 127.0.0.1)
#include <corio/corio.hpp>
#include <corio/tls/stream.hpp>

#include <pthread.h>

#include <array>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <thread>

namespace net = corio::net;
namespace tls = corio::tls;

// Works over any stream: tcp_stream and tls::stream have the same interface.
template <class Stream>
corio::task<> echo(Stream s) {
    std::array<std::byte, 16 * 1024> buf{};
    for (;;) {
        const std::size_t n = co_await s.read_some(buf);
        if (n == 0)
            break; // the client closed
        co_await s.write_all(std::span(buf.data(), n));
    }
    co_await s.close();
}

// One connection: a client that resets or fails its handshake ends only its own connection
// (an exception escaping into the task group would cancel all of them).
corio::task<> serve_tcp(net::tcp_stream tcp) {
    try {
        co_await echo(std::move(tcp));
    } catch (const std::system_error& e) {
        std::fprintf(stderr, "%s\n", e.what());
    }
}

corio::task<> serve_tls(net::tcp_stream tcp, tls::context ctx) {
    try {
        tls::stream s = co_await tls::stream::accept(std::move(tcp), ctx);
        co_await echo(std::move(s));
    } catch (const corio::cancelled_error&) {
        throw;                          // the server is stopping
    } catch (const std::exception& e) { // tls::error or std::system_error
        std::fprintf(stderr, "%s\n", e.what());
    }
}

corio::task<> serve(std::uint16_t port, std::optional<tls::context> ctx) {
    net::tcp_listener listener = net::tcp_listener::bind(net::address::ipv4_loopback(port));
    std::printf("echo server (%s) on %s (Ctrl-C stops it)\n", ctx ? "TLS" : "TCP",
                listener.local_address().to_string().c_str());
    std::fflush(stdout);
    corio::task_group connections; // cancelled and awaited when the server stops
    for (;;) {
        net::tcp_stream s = co_await listener.accept();
        if (ctx)
            connections.spawn(serve_tls(std::move(s), *ctx));
        else
            connections.spawn(serve_tcp(std::move(s)));
    }
}

corio::task<> until_stopped(corio::join_handle<>& server) {
    try {
        co_await server;
    } catch (const corio::cancelled_error&) {
        std::printf("stopped\n");
    }
}

int main(int argc, char** argv) {
    std::uint16_t port = 7000;
    std::optional<tls::context> ctx;
    try {
        for (int i = 1; i < argc; ++i) {
            if (std::strcmp(argv[i], "--port") == 0 && i + 1 < argc)
                port = static_cast<std::uint16_t>(std::stoi(argv[++i]));
            else if (std::strcmp(argv[i], "--tls") == 0 && i + 2 < argc)
                ctx = tls::context::server(argv[i + 1], argv[i + 2]), i += 2;
            else
                throw std::invalid_argument(std::string("unknown or incomplete option ") + argv[i]);
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "echo_server: %s\nusage: echo_server [--port N] [--tls CERT KEY]\n",
                     e.what());
        return 2;
    }

    // Signals arrive on a thread of their own, which asks the loop to stop the server.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

    corio::event_loop loop;
    corio::join_handle<> server = corio::spawn(serve(port, std::move(ctx)));
    std::thread signals([&loop, &server, &stop_signals] {
        int sig = 0;
        sigwait(&stop_signals, &sig);
        loop.post([&server] { server.cancel(); }); // dropped if the loop already finished
    });
    int status = 0;
    try {
        loop.run(until_stopped(server));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "echo_server: %s\n", e.what());
        status = 1;
    }
    pthread_kill(signals.native_handle(), SIGTERM); // wakes the signal thread if still waiting
    signals.join();
    return status;
}

// A TCP echo server: every connection gets back what it sends. Stops on SIGINT/SIGTERM.
// Usage: echo_server [--port N]   (default 7000, on 127.0.0.1)
#include <corio/corio.hpp>

#include <pthread.h>

#include <array>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

namespace net = corio::net;

corio::task<> echo(net::tcp_stream s) {
    std::array<std::byte, 16 * 1024> buf{};
    for (;;) {
        const std::size_t n = co_await s.read_some(buf);
        if (n == 0)
            co_return; // the client closed
        co_await s.write_all(std::span(buf.data(), n));
    }
}

corio::task<> serve(std::uint16_t port) {
    net::tcp_listener listener = net::tcp_listener::bind(net::address::ipv4_loopback(port));
    std::printf("echo server on %s (Ctrl-C stops it)\n",
                listener.local_address().to_string().c_str());
    std::fflush(stdout);
    corio::task_group connections; // cancelled and awaited when the server stops
    for (;;) {
        net::tcp_stream s = co_await listener.accept();
        connections.spawn(echo(std::move(s)));
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
    for (int i = 1; i + 1 < argc; ++i)
        if (std::strcmp(argv[i], "--port") == 0)
            port = static_cast<std::uint16_t>(std::stoi(argv[i + 1]));

    // Signals arrive on a thread of their own, which asks the loop to stop the server.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

    corio::event_loop loop;
    corio::join_handle<> server = corio::spawn(serve(port));
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

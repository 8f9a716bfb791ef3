// A small HTTP server: the router of the README with a few routes. Stops gracefully on
// SIGINT/SIGTERM (requests in progress get 5 s to finish).
// Usage: hello_server [--port N] [--threads N]   (default 8080 on 127.0.0.1, one loop;
//        --threads 0 serves on one loop per CPU, each with its own SO_REUSEPORT listener)
//   curl http://127.0.0.1:8080/hello
//   curl http://127.0.0.1:8080/users/42?page=2
//   curl -X POST -H 'content-type: application/json' -d '{"name":"corio"}'
//   http://127.0.0.1:8080/items
#include <corio/corio.hpp>
#include <corio/http/server.hpp>

#include <pthread.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <thread>

namespace http = corio::http;
using namespace std::chrono_literals;

corio::task<http::response> hello(http::request&) {
    co_return http::response::text(200, "Hello, World!");
}

corio::task<http::response> user(http::request& req) {
    std::string body = "{\"id\": \"" + std::string(req.param("id")) + "\"";
    if (const auto page = req.query("page"))
        body += ", \"page\": \"" + std::string(*page) + "\"";
    co_return http::response::json(200, body + "}");
}

corio::task<http::response> create_item(http::request& req) {
    if (req.header("content-type") != "application/json")
        co_return http::response::text(415, "send application/json\n");
    http::response r = http::response::json(201, req.body());
    r.set_header("Location", "/items/1");
    co_return r;
}

corio::task<http::response> slow(http::request&) {
    co_await corio::sleep_for(1s); // a handler may await anything: it does not block others
    co_return http::response::text(200, "done after 1 s\n");
}

corio::task<> run(http::server& srv, std::uint16_t port) {
    corio::net::tcp_listener listener =
        corio::net::tcp_listener::bind(corio::net::address::ipv4_loopback(port));
    std::printf("serving on http://%s (Ctrl-C stops it)\n",
                listener.local_address().to_string().c_str());
    std::fflush(stdout);
    co_await srv.serve(std::move(listener));
    std::printf("stopped\n");
}

corio::task<> run_on_loops(http::server& srv, std::uint16_t port, corio::runtime& rt) {
    std::printf("serving on http://127.0.0.1:%u with %zu loops (Ctrl-C stops it)\n", unsigned{port},
                rt.size());
    std::fflush(stdout);
    co_await srv.serve(corio::net::address::ipv4_loopback(port), {.loops = rt});
    std::printf("stopped\n");
}

int main(int argc, char** argv) {
    std::uint16_t port = 8080;
    std::optional<std::size_t> threads; // unset: one loop, the classic way
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
            port = static_cast<std::uint16_t>(std::stoi(argv[++i]));
        } else if (std::strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
            threads = static_cast<std::size_t>(std::stoul(argv[++i]));
        } else {
            std::fprintf(stderr, "usage: hello_server [--port N] [--threads N]\n");
            return 2;
        }
    }

    http::router r;
    r.get("/hello", hello);
    r.get("/users/{id}", user);
    r.post("/items", create_item);
    r.get("/slow", slow);
    http::server srv{r, http::server_options{.max_header_bytes = 16 * 1024,
                                             .max_body_bytes = 1 << 20,
                                             .max_connections = 10'000,
                                             .header_timeout = 10s,
                                             .keep_alive_timeout = 60s,
                                             .request_timeout = 60s}};

    // Signals arrive on a thread of their own, which asks the serving loop to stop the server.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
    auto on_signal = [&stop_signals, &srv](corio::event_loop& loop) {
        return std::thread([&loop, &srv, &stop_signals] {
            int sig = 0;
            sigwait(&stop_signals, &sig);
            loop.post([&srv] { srv.stop(5s); }); // dropped if the loop already finished
        });
    };

    // The loops outlive the signal thread, which may post to them until it is joined.
    std::optional<corio::runtime> rt;
    std::optional<corio::event_loop> loop;
    std::thread signals;
    int status = 0;
    try {
        if (threads) {
            rt.emplace(corio::runtime_options{.threads = *threads});
            signals = on_signal(rt->loop(0)); // serve runs on loop 0, and so must stop
            rt->run(run_on_loops(srv, port, *rt));
        } else {
            loop.emplace();
            signals = on_signal(*loop);
            loop->run(run(srv, port));
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "hello_server: %s\n", e.what());
        status = 1;
    }
    if (signals.joinable()) {
        pthread_kill(signals.native_handle(), SIGTERM); // wakes the thread if still waiting
        signals.join();
    }
    return status;
}

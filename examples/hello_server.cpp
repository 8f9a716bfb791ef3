// A small HTTP server: the router of the README with a few routes. Stops gracefully on
// SIGINT/SIGTERM (requests in progress get 5 s to finish).
// Usage: hello_server [--port N]   (default 8080, on 127.0.0.1)
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

int main(int argc, char** argv) {
    std::uint16_t port = 8080;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
            port = static_cast<std::uint16_t>(std::stoi(argv[++i]));
        } else {
            std::fprintf(stderr, "usage: hello_server [--port N]\n");
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

    // Signals arrive on a thread of their own, which asks the loop to stop the server.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

    corio::event_loop loop;
    std::thread signals([&loop, &srv, &stop_signals] {
        int sig = 0;
        sigwait(&stop_signals, &sig);
        loop.post([&srv] { srv.stop(5s); }); // dropped if the loop already finished
    });
    int status = 0;
    try {
        loop.run(run(srv, port));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "hello_server: %s\n", e.what());
        status = 1;
    }
    pthread_kill(signals.native_handle(), SIGTERM); // wakes the signal thread if still waiting
    signals.join();
    return status;
}

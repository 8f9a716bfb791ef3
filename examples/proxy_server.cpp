// The guide's FastAPI proxy: GET /proxy?url=... fetches the URL with one shared
// corio::http::client (its keep-alive pool serves every request, unlike a client per request)
// and answers with the upstream status and body. A timeout and a concurrency cap protect it;
// failures answer JSON errors; only allowed hosts are fetched (loopback by default), so it is
// not an open proxy. Stops gracefully on SIGINT/SIGTERM.
// Usage: proxy_server [--port N] [--allow HOST]...   (default port 8081)
//   curl 'http://127.0.0.1:8081/proxy?url=http://127.0.0.1:8080/hello'
#include <corio/corio.hpp>
#include <corio/http/client.hpp>
#include <corio/http/server.hpp>

#include <pthread.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <set>
#include <string>
#include <thread>

namespace http = corio::http;
using namespace std::chrono_literals;

namespace {

// A JSON string literal for `text` (quotes, backslashes and control characters escaped).
std::string json_string(std::string_view text) {
    std::string out = "\"";
    for (const char c : text) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (static_cast<unsigned char>(c) < 0x20) {
            char esc[8];
            std::snprintf(esc, sizeof esc, "\\u%04x", c);
            out += esc;
        } else {
            out += c;
        }
    }
    return out + "\"";
}

http::response json_error(int status, std::string_view message) {
    return http::response::json(status, "{\"error\": " + json_string(message) + "}");
}

class proxy {
public:
    explicit proxy(std::set<std::string> allowed)
        : allowed_(std::move(allowed)),
          client_(http::client_options{.max_connections = 100, .read_timeout = 10s}) {}

    corio::task<http::response> handle(http::request& req) {
        const std::optional<std::string_view> target = req.query("url");
        if (!target)
            co_return json_error(400, "missing the url query parameter");
        http::url u;
        try {
            u = http::url::parse(*target);
        } catch (const std::invalid_argument& e) {
            co_return json_error(400, e.what());
        }
        if (!allowed_.contains(u.host))
            co_return json_error(403, "host '" + u.host + "' is not allowed");
        corio::semaphore_permit slot = co_await in_flight_.scoped_acquire();
        std::optional<http::response> upstream;
        std::string failure;
        int status = 502;
        try {
            upstream = co_await corio::timeout(15s, client_.get(std::string(*target)));
        } catch (const corio::timeout_error&) {
            failure = "the upstream did not answer within 15 s";
            status = 504;
        } catch (const http::timeout_error& e) {
            failure = e.what();
            status = 504;
        } catch (const http::error& e) {
            failure = e.what();
        }
        if (!upstream)
            co_return json_error(status, failure);
        http::response out(upstream->status());
        if (const auto type = upstream->header("content-type"))
            out.set_header("Content-Type", *type);
        out.set_body(std::move(*upstream).body());
        co_return out;
    }

private:
    std::set<std::string> allowed_;
    http::client client_;
    corio::semaphore in_flight_{50};
};

proxy* the_proxy = nullptr;
corio::task<http::response> handle(http::request& req) { return the_proxy->handle(req); }

corio::task<> run(http::server& srv, std::uint16_t port) {
    corio::net::tcp_listener listener =
        corio::net::tcp_listener::bind(corio::net::address::ipv4_loopback(port));
    std::printf("proxy on http://%s/proxy?url=... (Ctrl-C stops it)\n",
                listener.local_address().to_string().c_str());
    std::fflush(stdout);
    co_await srv.serve(std::move(listener));
}

} // namespace

int main(int argc, char** argv) {
    std::uint16_t port = 8081;
    std::set<std::string> allowed = {"127.0.0.1", "::1", "localhost"};
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
            port = static_cast<std::uint16_t>(std::stoi(argv[++i]));
        } else if (std::strcmp(argv[i], "--allow") == 0 && i + 1 < argc) {
            allowed.insert(argv[++i]);
        } else {
            std::fprintf(stderr, "usage: proxy_server [--port N] [--allow HOST]...\n");
            return 2;
        }
    }
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

    corio::event_loop loop;
    proxy p{allowed};
    the_proxy = &p;
    http::router r;
    r.get("/proxy", handle);
    http::server srv{r};
    std::thread signals([&loop, &srv, &stop_signals] {
        int sig = 0;
        sigwait(&stop_signals, &sig);
        loop.post([&srv] { srv.stop(5s); });
    });
    int status = 0;
    try {
        loop.run(run(srv, port));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "proxy_server: %s\n", e.what());
        status = 1;
    }
    pthread_kill(signals.native_handle(), SIGTERM);
    signals.join();
    return status;
}

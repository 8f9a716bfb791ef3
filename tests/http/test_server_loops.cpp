// SPDX-License-Identifier: MIT
// The HTTP server on every loop of a runtime: SO_REUSEPORT listeners, a connection budget
// counted across loops, and a graceful stop that reaches every loop.
#include "../support/corio_test.hpp"
#include "../support/http_peer.hpp"

#include <corio/http/client.hpp>
#include <corio/http/server.hpp>
#include <corio/runtime.hpp>

#include <atomic>
#include <set>
#include <string>
#include <system_error>
#include <vector>

using namespace std::chrono_literals;
using corio::task;
using corio::net::address;
using corio::net::tcp_listener;
using corio::net::tcp_stream;
using corio::test::raw_client;
using corio::test::reply;
namespace http = corio::http;

namespace {

/// The index of the runtime loop the caller runs on.
std::size_t loop_index(corio::runtime& rt) {
    for (std::size_t i = 0; i < rt.size(); ++i)
        if (&corio::event_loop::current() == &rt.loop(i))
            return i;
    return rt.size();
}

/// A server on every loop of `rt`, started from the test's own loop, on a free port: a
/// listener with SO_REUSEPORT holds the port while the server binds it too, then lets go.
class loops_server {
public:
    loops_server(corio::runtime& rt, http::router r, http::server_options o = {})
        : rt_(rt), srv_(std::move(r), std::move(o)) {
        tcp_listener hold = tcp_listener::bind(address::parse("127.0.0.1:0"), {.reuse_port = true});
        at_ = hold.local_address();
        serving_ = corio::spawn_on(rt.loop(0), srv_.serve(at_, {.loops = rt}));
        // Connections that reach `hold` in the meantime are refused when it closes: wait
        // until the server has bound the port on every loop before anyone connects.
        while (!bound()) {
            std::this_thread::sleep_for(1ms);
        }
    }

    loops_server(const loops_server&) = delete;
    loops_server& operator=(const loops_server&) = delete;
    /// A test that failed half-way (on the torturing ring, an operation it counted on was
    /// refused) leaves the server serving: stop it and wait before it goes.
    ~loops_server() {
        if (serving_.done())
            return;
        rt_.loop(0).post([this] { srv_.stop(); });
        while (!serving_.done())
            std::this_thread::sleep_for(1ms);
    }

    [[nodiscard]] const address& at() const noexcept { return at_; }
    http::server& server() noexcept { return srv_; }

    /// Stops the server on its own loop and waits until serve has returned.
    task<> stop(std::chrono::milliseconds grace = {}) {
        rt_.loop(0).post([this, grace] { srv_.stop(grace); });
        co_await serving_;
    }

private:
    bool bound() const {
        // /proc/net/tcp lists one listening socket per loop plus ours once all have bound.
        const int port = at_.port();
        std::FILE* f = std::fopen("/proc/net/tcp", "r");
        if (f == nullptr)
            return true;
        char line[512];
        std::size_t listening = 0;
        char hex[8];
        std::snprintf(hex, sizeof hex, ":%04X", port);
        while (std::fgets(line, sizeof line, f) != nullptr) {
            const std::string l = line;
            // local address column, then state 0A (LISTEN)
            if (l.find(std::string("0100007F") + hex) != std::string::npos &&
                l.find(" 0A ") != std::string::npos)
                ++listening;
        }
        std::fclose(f);
        return listening >= rt_.size() + 1;
    }

    corio::runtime& rt_;
    http::server srv_;
    address at_;
    corio::join_handle<> serving_;
};

} // namespace

TEST_CASE("http server on every loop: connections are spread, each served where accepted",
          "[http][server][runtime]") {
    corio::test::watchdog dog{120};
    corio::runtime rt{{.threads = 2}};
    http::router r;
    r.get("/where", [&rt](http::request&) -> task<http::response> {
        co_return http::response::text(200, std::to_string(loop_index(rt)));
    });
    loops_server srv{rt, std::move(r)};
    std::multiset<std::string> answered_on;
    corio::test::run([&]() -> task<> {
        for (int i = 0; i < 64; ++i) {
            raw_client c = co_await raw_client::connect(srv.at());
            co_await c.send("GET /where HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
            const reply rep = co_await c.next();
            answered_on.insert(rep.body);
        }
        co_await srv.stop();
    }());
    // 64 connections hashed over two listeners: all on one would be a 1 in 2^63 event.
    CHECK(answered_on.count("0") > 0);
    CHECK(answered_on.count("1") > 0);
    CHECK(answered_on.count("0") + answered_on.count("1") == 64);
}

TEST_CASE("http server on every loop: max_connections counts across loops",
          "[http][server][runtime]") {
    corio::test::watchdog dog{120};
    corio::runtime rt{{.threads = 2}};
    http::router r;
    r.get("/users/{id}", [](http::request& req) -> task<http::response> {
        co_return http::response::text(200, "user " + std::string(req.param("id")));
    });
    loops_server srv{rt, std::move(r), {.max_connections = 2}};
    corio::test::run([&]() -> task<> {
        raw_client a = co_await raw_client::connect(srv.at());
        raw_client b = co_await raw_client::connect(srv.at());
        co_await a.send("GET /users/a HTTP/1.1\r\nHost: t\r\n\r\n");
        co_await b.send("GET /users/b HTTP/1.1\r\nHost: t\r\n\r\n");
        const reply ra = co_await a.next();
        const reply rb = co_await b.next();
        CHECK(ra.body == "user a");
        CHECK(rb.body == "user b");
        // More connections connect (the kernel's backlogs take them) but none is served while
        // two are open, whichever loop they reached.
        std::vector<raw_client> more;
        for (int i = 0; i < 4; ++i) {
            more.push_back(co_await raw_client::connect(srv.at()));
            co_await more.back().send("GET /users/" + std::to_string(i) +
                                      " HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        }
        co_await corio::sleep_for(50ms);
        CHECK(srv.server().connection_count() == 2);
        // Closing one admits one more at a time, on whichever loop is waiting for room.
        co_await b.send("GET /users/b HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        (void)co_await b.next();
        for (int i = 0; i < 4; ++i) {
            const reply rep = co_await more[static_cast<std::size_t>(i)].next();
            CHECK(rep.body == "user " + std::to_string(i));
            CHECK(srv.server().connection_count() <= 2);
        }
        co_await srv.stop();
    }());
}

TEST_CASE("http server on every loop: stop lets the requests in flight on every loop finish",
          "[http][server][runtime]") {
    corio::test::watchdog dog{120};
    corio::runtime rt{{.threads = 2}};
    std::atomic<int> started{0};
    std::atomic<bool> release{false};
    std::atomic<int> on_loop[2]{};
    http::router r;
    r.get("/gate", [&](http::request&) -> task<http::response> {
        ++on_loop[loop_index(rt) % 2];
        ++started;
        while (!release)
            co_await corio::sleep_for(1ms);
        co_return http::response::text(200, "finished");
    });
    loops_server srv{rt, std::move(r)};
    constexpr int n = 16;
    corio::test::run([&]() -> task<> {
        std::vector<raw_client> clients;
        for (int i = 0; i < n; ++i) {
            clients.push_back(co_await raw_client::connect(srv.at()));
            co_await clients.back().send("GET /gate HTTP/1.1\r\nHost: t\r\n\r\n");
        }
        while (started < n)
            co_await corio::sleep_for(1ms);
        rt.loop(0).post([&] { srv.server().stop(30s); });
        // The listeners close: a new connection is refused once every loop has stopped
        // accepting (the server keeps serving the requests in flight meanwhile).
        for (bool refused = false; !refused;) {
            try {
                tcp_stream late = co_await tcp_stream::connect(srv.at());
                co_await corio::sleep_for(1ms);
            } catch (const std::system_error&) {
                refused = true;
            }
        }
        release = true;
        int finished = 0;
        for (raw_client& c : clients) {
            const reply rep = co_await c.next();
            if (rep.body == "finished" && rep.headers.get("connection") == "close")
                ++finished;
        }
        CHECK(finished == n);
        co_await srv.stop(); // already stopping: waits for serve to return
        CHECK(srv.server().connection_count() == 0);
    }());
    CHECK(on_loop[0] + on_loop[1] == n);
}

TEST_CASE("http server on every loop: a port in use is an error naming it", "[http][server]") {
    corio::test::watchdog dog{60};
    corio::runtime rt{{.threads = 2}};
    tcp_listener taken = tcp_listener::bind(address::parse("127.0.0.1:0"));
    http::server srv{http::router{}};
    std::string what;
    try {
        rt.run(srv.serve(taken.local_address(), {.loops = rt}));
    } catch (const std::system_error& e) {
        what = e.what();
    }
    CHECK(corio::test::contains(what, std::to_string(taken.local_address().port())));
}

TEST_CASE("an http::client used from a second loop throws, naming it", "[http][runtime]") {
    corio::test::watchdog dog{60};
    corio::runtime rt{{.threads = 2}};
    http::router r;
    r.get("/hello", [](http::request&) -> task<http::response> {
        co_return http::response::text(200, "hi");
    });
    loops_server srv{rt, std::move(r)};
    // A runtime of its own: run() cancels what it leaves behind, the server included.
    corio::runtime clients{{.threads = 2}};
    http::client client;
    const std::string url = "http://" + srv.at().to_string() + "/hello";
    std::string first_body;
    std::string what;
    clients.run([](http::client& c, std::string u, corio::event_loop& other, std::string& body,
                   std::string& error) -> task<> {
        const http::response ok = co_await c.get(u); // loop 0 uses it first
        body = ok.body();
        co_await corio::switch_to(other);
        try {
            (void)co_await c.get(u);
        } catch (const std::logic_error& e) {
            error = e.what();
        }
    }(client, url, clients.loop(1), first_body, what));
    CHECK(first_body == "hi");
    CHECK(corio::test::contains(what, "corio::http::client"));
    corio::test::run(srv.stop());
}

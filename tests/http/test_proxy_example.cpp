// SPDX-License-Identifier: MIT
// examples/proxy_server, the built binary, run as a subprocess against upstreams that the test
// scripts on 127.0.0.1: its allow-list holds on every hop and on every address connected to.
// The upstreams count the connections they accept, so "nothing was connected" is observed,
// not timed.
#include "../support/corio_test.hpp"
#include "../support/read_head.hpp"
#include "../support/subprocess.hpp"

#include <corio/http/client.hpp>

#include <array>
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace {

using corio::task;
using corio::net::address;
using corio::net::tcp_listener;
using corio::net::tcp_stream;
using corio::test::contains;
namespace http = corio::http;

// The example is built in the same tree: <build>/examples/proxy_server next to
// <build>/tests/test_proxy_example.
std::string example_path() {
    std::error_code ec;
    const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
    return (self.parent_path().parent_path() / "examples" / "proxy_server").string();
}

/// An upstream on 127.0.0.1:<free port> that answers each connection's request with the
/// canned response for its path (404 for others), closes it, and counts the connections.
class upstream {
public:
    explicit upstream(std::map<std::string, std::string> replies)
        : l_(tcp_listener::bind(address::parse("127.0.0.1:0"))), replies_(std::move(replies)) {
        port_ = std::to_string(l_.local_address().port());
        task_ = corio::spawn(serve(*this));
    }
    upstream(const upstream&) = delete;
    upstream& operator=(const upstream&) = delete;
    ~upstream() { task_.cancel(); }

    [[nodiscard]] const std::string& port() const noexcept { return port_; }
    [[nodiscard]] std::string url(const std::string& path) const {
        return "http://127.0.0.1:" + port_ + path;
    }
    [[nodiscard]] int connections() const noexcept { return connections_; }

private:
    static task<> serve(upstream& self) {
        for (;;) {
            tcp_stream s = co_await self.l_.accept();
            ++self.connections_;
            corio::spawn(answer(std::move(s), self.replies_)).detach();
        }
    }
    static task<> answer(tcp_stream s, std::map<std::string, std::string> replies) {
        const std::string got = co_await corio::test::read_request_head(s);
        if (got.empty())
            co_return;
        const std::size_t start = got.find(' ') + 1; // "GET <path> HTTP/1.1"
        const std::string path = got.substr(start, got.find(' ', start) - start);
        const auto found = replies.find(path);
        const std::string reply =
            found != replies.end()
                ? found->second
                : "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        co_await s.write_all(reply);
    }

    tcp_listener l_;
    std::map<std::string, std::string> replies_;
    std::string port_;
    corio::join_handle<> task_;
    int connections_ = 0;
};

std::string redirect_to(const std::string& location) {
    return "HTTP/1.1 302 Found\r\nLocation: " + location +
           "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
}

std::string text(const std::string& body) {
    return "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
}

/// The example, started on a free port with `args` (its --allow options).
class proxy_process {
public:
    explicit proxy_process(const std::vector<std::string>& args)
        : process_(command(args)), client_(http::client_options{.follow_redirects = false}) {}

    /// Waits for the "proxy on http://<address>/proxy?url=..." line; false if it never came.
    task<bool> started() {
        const std::string line = co_await process_.read_line_starting("proxy on http://");
        const std::size_t begin = line.find("http://");
        const std::size_t end = line.find("/proxy");
        if (begin == std::string::npos || end == std::string::npos)
            co_return false;
        base_ = line.substr(begin, end - begin);
        co_return true;
    }

    /// GET /proxy?url=`target` from the proxy.
    task<http::response> fetch(const std::string& target) {
        return client_.get(base_ + "/proxy?url=" + target);
    }

    /// What the example wrote to stderr (shown when a check fails).
    [[nodiscard]] std::string errors() const { return process_.errors(); }

private:
    static std::vector<std::string> command(const std::vector<std::string>& args) {
        std::vector<std::string> argv = {example_path(), "--port", "0"};
        argv.insert(argv.end(), args.begin(), args.end());
        return argv;
    }

    corio::test::subprocess process_;
    http::client client_;
    std::string base_;
};

bool is_json_error(const http::response& r) {
    return r.header("content-type").value_or("").starts_with("application/json") &&
           r.body().starts_with("{\"error\": \"");
}

} // namespace

#define REQUIRE_EXAMPLE()                                                                          \
    if (!std::filesystem::exists(example_path()))                                                  \
    CORIO_CO_SKIP("examples/proxy_server is not built (" << example_path() << ")")

CORIO_TEST_CASE("proxy example: a redirect from an allowed host to another host is refused and "
                "not connected",
                "[http][proxy]") {
    REQUIRE_EXAMPLE();
    upstream elsewhere{{{"/secret", text("internal")}}};
    const std::string target = "http://localhost:" + elsewhere.port() + "/secret";
    upstream allowed{{{"/start", redirect_to(target)}}};
    const std::vector<std::string> args = {"--allow", "127.0.0.1:" + allowed.port()};
    proxy_process proxy{args};
    REQUIRE(co_await proxy.started());
    const http::response r = co_await proxy.fetch(allowed.url("/start"));
    INFO(r.body() << proxy.errors());
    CHECK(r.status() == 502);
    CHECK(is_json_error(r));
    CHECK(contains(r.body(), target));
    CHECK(allowed.connections() == 1);
    CHECK(elsewhere.connections() == 0);
}

CORIO_TEST_CASE("proxy example: a redirect to 127.0.0.1 on a port not allowed is refused and not "
                "connected",
                "[http][proxy]") {
    REQUIRE_EXAMPLE();
    upstream other_port{{{"/secret", text("internal")}}};
    upstream allowed{{{"/start", redirect_to(other_port.url("/secret"))}}};
    const std::vector<std::string> args = {"--allow", "127.0.0.1:" + allowed.port()};
    proxy_process proxy{args};
    REQUIRE(co_await proxy.started());
    const http::response r = co_await proxy.fetch(allowed.url("/start"));
    INFO(r.body() << proxy.errors());
    CHECK(r.status() == 502);
    CHECK(is_json_error(r));
    CHECK(contains(r.body(), other_port.url("/secret")));
    CHECK(allowed.connections() == 1);
    CHECK(other_port.connections() == 0);
}

CORIO_TEST_CASE("proxy example: a name allowed by the list that resolves to loopback is refused "
                "naming the address, and not connected",
                "[http][proxy]") {
    REQUIRE_EXAMPLE();
    upstream internal{{{"/", text("internal")}}};
    const std::vector<std::string> args = {"--allow", "localhost:" + internal.port()};
    proxy_process proxy{args};
    REQUIRE(co_await proxy.started());
    const http::response r = co_await proxy.fetch("http://localhost:" + internal.port() + "/");
    INFO(r.body() << proxy.errors());
    CHECK(r.status() == 502);
    CHECK(is_json_error(r));
    CHECK(contains(r.body(), "127.0.0.1:" + internal.port()));
    CHECK(contains(r.body(), "loopback"));
    CHECK(internal.connections() == 0);
}

CORIO_TEST_CASE("proxy example: with no --allow nothing is fetched, not even loopback",
                "[http][proxy]") {
    REQUIRE_EXAMPLE();
    upstream local{{{"/", text("local")}}};
    const std::vector<std::string> args;
    proxy_process proxy{args};
    REQUIRE(co_await proxy.started());
    const http::response by_address = co_await proxy.fetch(local.url("/"));
    const http::response by_name = co_await proxy.fetch("http://localhost:" + local.port() + "/");
    INFO(by_address.body() << by_name.body() << proxy.errors());
    CHECK(by_address.status() == 403);
    CHECK(is_json_error(by_address));
    CHECK(contains(by_address.body(), local.url("/")));
    CHECK(by_name.status() == 403);
    CHECK(local.connections() == 0);
}

CORIO_TEST_CASE("proxy example: an allowed 127.0.0.1:PORT is proxied, with a redirect on it",
                "[http][proxy]") {
    REQUIRE_EXAMPLE();
    upstream allowed{{{"/start", redirect_to("/final")}, {"/final", text("hello")}}};
    const std::vector<std::string> args = {"--allow", "127.0.0.1:" + allowed.port()};
    proxy_process proxy{args};
    REQUIRE(co_await proxy.started());
    const http::response r = co_await proxy.fetch(allowed.url("/start"));
    INFO(r.body() << proxy.errors());
    CHECK(r.status() == 200);
    CHECK(r.body() == "hello");
    CHECK(r.header("content-type") == "text/plain");
    CHECK(allowed.connections() == 2);
}

// SPDX-License-Identifier: MIT
// corio's HTTP server against clients no one here wrote: curl, Python's http.client, ab, wrk
// and slowhttptest, each started by the test against a server on 127.0.0.1.
#include "../support/corio_test.hpp"
#include "../support/http_peer.hpp"
#include "../support/subprocess.hpp"
#if defined(CORIO_HAVE_TLS)
#include "../support/test_pki.hpp"
#endif

#include <corio/http/server.hpp>

#include <unistd.h>

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using corio::task;
using corio::net::address;
using corio::net::tcp_listener;
using corio::test::contains;
using corio::test::subprocess;
namespace http = corio::http;

namespace {

bool installed(const char* program) {
    const std::string path = std::string("/usr/bin/") + program;
    return ::access(path.c_str(), X_OK) == 0;
}

task<http::response> hello(http::request&) { co_return http::response::text(200, "Hello, World!"); }
task<http::response> echo(http::request& req) {
    co_return http::response::text(200, "got " + std::to_string(req.body().size()) +
                                            " bytes: " + std::string(req.body().substr(0, 16)));
}

/// Runs a server while a peer program runs; returns the program's output (stdout).
class peer_test {
public:
    explicit peer_test(http::server_options options = {})
        : srv_(std::make_shared<http::server>(routes(), std::move(options))) {
        tcp_listener l = tcp_listener::bind(address::parse("127.0.0.1:0"));
        url_ = "http://" + l.local_address().to_string();
        serving_ = corio::spawn(corio::test::serve_owned(srv_, std::move(l)));
    }
    peer_test(const peer_test&) = delete;
    peer_test& operator=(const peer_test&) = delete;
    ~peer_test() { serving_.cancel(); } // a test that ended early: the server unwinds later
#if defined(CORIO_HAVE_TLS)
    /// Serves HTTPS with `tls`.
    peer_test(corio::tls::context tls, http::server_options options)
        : srv_(std::make_shared<http::server>(routes(), std::move(options))) {
        tcp_listener l = tcp_listener::bind(address::parse("127.0.0.1:0"));
        port_ = std::to_string(l.local_address().port());
        url_ = "https://localhost:" + port_;
        serving_ = corio::spawn(corio::test::serve_owned(srv_, std::move(l), std::move(tls)));
    }
#endif
    [[nodiscard]] const std::string& port() const { return port_; }
    [[nodiscard]] const std::string& url() const { return url_; }
    http::server& server() { return *srv_; }

    /// Runs `argv` to its end and returns what it printed.
    task<std::string> output_of(std::vector<std::string> argv) {
        subprocess p{std::move(argv)};
        const std::string out = co_await p.read_until("\x01never printed\x01");
        INFO(p.errors());
        co_return out;
    }

    task<> stop() {
        srv_->stop();
        co_await serving_;
    }

private:
    static http::router routes() {
        http::router r;
        r.get("/hello", hello);
        r.post("/echo", echo);
        return r;
    }

    std::shared_ptr<http::server> srv_;
    std::string url_;
    std::string port_;
    corio::join_handle<> serving_;
};

} // namespace

static task<> peer_body_1();
TEST_CASE("http server and curl: GET, HEAD, POST, 100-continue, HTTP/1.0, keep-alive",
          "[http][server][interop]") {
    if (!installed("curl"))
        CORIO_SKIP("curl is not installed");
    corio::test::run(peer_body_1());
}
static task<> peer_body_1() {
    peer_test t;
    const std::vector<std::string> cmd1 = {"curl", "-sS", "-i", t.url() + "/hello"};
    const std::string get = co_await t.output_of(cmd1);
    CHECK(contains(get, "HTTP/1.1 200 OK"));
    CHECK(contains(get, "\r\n\r\nHello, World!"));
    const std::vector<std::string> cmd2 = {"curl", "-sS", "-I", t.url() + "/hello"};
    const std::string head = co_await t.output_of(cmd2);
    CHECK(contains(head, "Content-Length: 13"));
    CHECK_FALSE(contains(head, "Hello"));
    // A large body makes curl send Expect: 100-continue and wait for the interim answer.
    const std::string big(100'000, 'x');
    const std::vector<std::string> cmd3 = {
        "curl", "-sS", "-i", "-H", "Expect: 100-continue", "--data-binary", big, t.url() + "/echo"};
    const std::string post = co_await t.output_of(cmd3);
    CHECK(contains(post, "HTTP/1.1 100 Continue"));
    CHECK(contains(post, "got 100000 bytes: xxxxxxxxxxxxxxxx"));
    const std::vector<std::string> cmd4 = {"curl",
                                           "-sS",
                                           "-H",
                                           "Transfer-Encoding: chunked",
                                           "--data-binary",
                                           "chunked body",
                                           t.url() + "/echo"};
    const std::string chunked = co_await t.output_of(cmd4);
    CHECK(chunked == "got 12 bytes: chunked body");
    const std::vector<std::string> cmd5 = {"curl", "-sS", "-i", "--http1.0", t.url() + "/hello"};
    const std::string old = co_await t.output_of(cmd5);
    CHECK(contains(old, "HTTP/1.0 200 OK"));
    CHECK(contains(old, "Connection: close"));
    co_await t.stop();
}

static task<> peer_body_2();
TEST_CASE("http server and python http.client: keep-alive and a request without Host",
          "[http][server][interop]") {
    if (!installed("python3"))
        CORIO_SKIP("python3 is not installed");
    corio::test::run(peer_body_2());
}
static task<> peer_body_2() {
    peer_test t;
    const std::string port = t.url().substr(t.url().rfind(':') + 1);
    const std::string script = R"(
import http.client, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]))
for i in range(3):
    c.request("GET", "/hello")
    r = c.getresponse()
    print(r.status, r.read().decode(), r.getheader("Connection"))
c.request("POST", "/echo", body=b"abc", headers={"Content-Type": "text/plain"})
r = c.getresponse()
print(r.status, r.read().decode())
c.putrequest("GET", "/hello", skip_host=True)
c.endheaders()
r = c.getresponse()
print(r.status, r.getheader("Connection"))
)";
    const std::vector<std::string> cmd6 = {"python3", "-c", script, port};
    const std::string out = co_await t.output_of(cmd6);
    CHECK(out == "200 Hello, World! None\n200 Hello, World! None\n200 Hello, World! None\n"
                 "200 got 3 bytes: abc\n400 close\n");
    co_await t.stop();
}

static task<> peer_body_3();
TEST_CASE("http server and ab: 2,000 keep-alive requests, none failed", "[http][server][interop]") {
    if (!installed("ab"))
        CORIO_SKIP("ab (apache2-utils) is not installed");
    corio::test::run(peer_body_3());
}
static task<> peer_body_3() {
    peer_test t;
    const std::vector<std::string> cmd7 = {"ab",   "-q", "-k", "-n",
                                           "2000", "-c", "20", t.url() + "/hello"};
    const std::string out = co_await t.output_of(cmd7);
    INFO(out);
    CHECK(contains(out, "Complete requests:      2000"));
    CHECK(contains(out, "Failed requests:        0"));
    CHECK(contains(out, "Keep-Alive requests:    2000"));
    co_await t.stop();
}

static task<> peer_body_4();
TEST_CASE("http server and wrk: pipelined requests are all answered", "[http][server][interop]") {
    if (!installed("wrk"))
        CORIO_SKIP("wrk is not installed");
    corio::test::run(peer_body_4());
}
static task<> peer_body_4() {
    peer_test t;
    char lua_path[] = "/tmp/corio-pipeline-XXXXXX";
    const int fd = ::mkstemp(lua_path);
    const std::string lua = R"(
init = function(args)
  local r = {}
  for i = 1, 16 do r[i] = wrk.format("GET", "/hello") end
  req = table.concat(r)
end
request = function() return req end
)";
    REQUIRE(::write(fd, lua.data(), lua.size()) == static_cast<ssize_t>(lua.size()));
    ::close(fd);
    const std::vector<std::string> cmd8 = {
        "wrk", "-t1", "-c8", "-d1s", "-s", lua_path, t.url() + "/hello"};
    const std::string out = co_await t.output_of(cmd8);
    ::unlink(lua_path);
    INFO(out);
    CHECK(contains(out, "requests in"));
    CHECK_FALSE(contains(out, "Socket errors"));
    CHECK_FALSE(contains(out, "Non-2xx"));
    co_await t.stop();
}

static task<> peer_body_5();
TEST_CASE("http server and slowhttptest: slowloris connections are cut, others served",
          "[http][server][interop][bad-input]") {
    if (!installed("slowhttptest"))
        CORIO_SKIP("slowhttptest is not installed");
    corio::test::run(peer_body_5());
}
/// Samples the server's open connections while an attack runs: the peak, and the fewest seen
/// after it.
struct connection_samples {
    std::size_t peak = 0;
    std::size_t low_after_peak = 0;
    bool done = false;
};
static task<> sample_connections(const http::server& srv, connection_samples& s) {
    while (!s.done) {
        const std::size_t n = srv.connection_count();
        if (n > s.peak)
            s.peak = s.low_after_peak = n;
        else if (n < s.low_after_peak)
            s.low_after_peak = n;
        co_await corio::sleep_for(50ms);
    }
}

static task<> peer_body_5() {
    peer_test t{{.header_timeout = 1s}};
    connection_samples samples;
    corio::join_handle<> sampler = corio::spawn(sample_connections(t.server(), samples));
    // 200 connections sending a header line every second for 4 seconds.
    const std::vector<std::string> cmd9 = {
        "slowhttptest", "-H", "-c", "200", "-r", "200", "-i", "1",
        "-l",           "4",  "-x", "10",  "-p", "1",   "-u", t.url() + "/hello"};
    const std::string out = co_await t.output_of(cmd9);
    samples.done = true;
    co_await sampler;
    INFO(out);
    INFO("peak " << samples.peak << ", fewest after it " << samples.low_after_peak);
    CHECK(contains(out, "service available"));
    // Sampled during the attack: the slow connections were open at once (the attack was
    // real), then the header timeout (1 s, a quarter of the attack) cut them while the attack
    // still ran, instead of letting them pile up.
    CHECK(samples.peak >= 100);
    CHECK(samples.low_after_peak < samples.peak / 2);
    // slowhttptest's own verdict: it ended because the server closed every connection, not at
    // its time limit (what it says against a server without a header timeout).
    CHECK(contains(out, "No open connections left"));
    const std::vector<std::string> cmd10 = {"curl", "-sS", t.url() + "/hello"};
    const std::string curl = co_await t.output_of(cmd10);
    CHECK(curl == "Hello, World!");
    co_await t.stop();
}

#if defined(CORIO_HAVE_TLS)
static task<> https_body();
TEST_CASE("http server over TLS and curl: HTTPS with a verified certificate",
          "[http][server][interop][tls]") {
    if (!installed("curl"))
        CORIO_SKIP("curl is not installed");
    corio::test::run(https_body());
}
static task<> https_body() {
    using corio::test::pki;
    peer_test t{corio::tls::context::server(pki().good, pki().leaf_key), {}};
    const std::vector<std::string> cmd = {"curl",
                                          "-sS",
                                          "--cacert",
                                          pki().ca,
                                          "--resolve",
                                          "localhost:" + t.port() + ":127.0.0.1",
                                          t.url() + "/hello",
                                          t.url() + "/hello"};
    const std::string out = co_await t.output_of(cmd);
    CHECK(out == "Hello, World!Hello, World!");
    // A client that does not trust the certificate fails its handshake; the server goes on.
    const std::vector<std::string> untrusting = {
        "curl", "-sS", "--resolve", "localhost:" + t.port() + ":127.0.0.1", t.url() + "/hello"};
    const std::string refused = co_await t.output_of(untrusting);
    CHECK(refused.empty());
    const std::string again = co_await t.output_of(cmd);
    CHECK(again == "Hello, World!Hello, World!");
    co_await t.stop();
}
#endif

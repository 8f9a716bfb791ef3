// SPDX-License-Identifier: MIT
#include "../support/corio_test.hpp"
#include "../support/http_peer.hpp"
#include "../support/read_head.hpp"
#include "../support/subprocess.hpp"
#if defined(CORIO_HAVE_TLS)
#include "../support/test_pki.hpp"
#endif

#include <corio/http/client.hpp>
#include <corio/http/server.hpp>

#include <dirent.h>
#include <zlib.h>

#include <array>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using corio::task;
using corio::net::address;
using corio::net::tcp_listener;
using corio::net::tcp_stream;
using corio::test::contains;
namespace http = corio::http;

namespace {

std::size_t open_descriptors() {
    std::size_t n = 0;
    if (DIR* d = ::opendir("/proc/self/fd")) {
        while (::readdir(d) != nullptr)
            ++n;
        ::closedir(d);
    }
    return n;
}

std::string gzip(const std::string& data) {
    z_stream z{};
    deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 16 + 15, 8, Z_DEFAULT_STRATEGY);
    std::string out(deflateBound(&z, data.size()) + 32, '\0');
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
    z.avail_in = static_cast<uInt>(data.size());
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = static_cast<uInt>(out.size());
    deflate(&z, Z_FINISH);
    out.resize(z.total_out);
    deflateEnd(&z);
    return out;
}

// --- a well-behaved server: corio's own ------------------------------------------------------

task<http::response> hello(http::request&) { co_return http::response::text(200, "Hello, World!"); }

task<http::response> echo(http::request& req) {
    std::string text = req.method + " " + req.url + " body=" + std::string(req.body()) +
                       " type=" + std::string(req.header("content-type").value_or("-")) +
                       " auth=" + std::string(req.header("authorization").value_or("-")) +
                       " cookie=" + std::string(req.header("cookie").value_or("-")) +
                       " ua=" + std::string(req.header("user-agent").value_or("-"));
    co_return http::response::text(200, text);
}

task<http::response> redirect(http::request& req) {
    http::response r = http::response::empty(std::stoi(std::string(req.param("code"))));
    r.set_header("Location", std::string(req.query("to").value_or("/echo")));
    co_return r;
}

task<http::response> no_location(http::request&) { co_return http::response::empty(302); }

task<http::response> loop(http::request&) {
    http::response r = http::response::empty(302);
    r.set_header("Location", "/loop");
    co_return r;
}

task<http::response> gzipped(http::request& req) {
    const bool accepts = contains(std::string(req.header("accept-encoding").value_or("")), "gzip");
    http::response r =
        http::response::text(200, accepts ? gzip(std::string(5000, 'z')) : std::string(5000, 'z'));
    if (accepts)
        r.set_header("Content-Encoding", "gzip");
    co_return r;
}

task<http::response> big(http::request&) {
    co_return http::response::text(200, std::string(2 << 20, 'b'));
}

task<> numbers(http::body_writer& w) {
    for (int i = 0; i < 100; ++i)
        co_await w.write(std::to_string(i) + "\n");
}
task<http::response> streamed(http::request&) {
    co_return http::response::stream(200, "text/plain",
                                     [](http::body_writer& w) { return numbers(w); });
}

task<> stall_after_a_bit(http::body_writer& w) {
    co_await w.write("the beginning");
    co_await corio::sleep_for(1h);
}
task<http::response> stalls(http::request&) {
    co_return http::response::stream(200, "text/plain",
                                     [](http::body_writer& w) { return stall_after_a_bit(w); });
}

http::router routes() {
    http::router r;
    r.get("/hello", hello);
    r.route("GET", "/echo", echo);
    r.route("POST", "/echo", echo);
    r.route("PUT", "/echo", echo);
    r.route("HEAD", "/echo", echo);
    r.get("/redirect/{code}", redirect);
    r.post("/redirect/{code}", redirect);
    r.put("/redirect/{code}", redirect);
    r.get("/no-location", no_location);
    r.get("/loop", loop);
    r.get("/gzip", gzipped);
    r.get("/big", big);
    r.get("/stream", streamed);
    r.get("/stalls", stalls);
    return r;
}

class local_server {
public:
    local_server() : srv_(std::make_shared<http::server>(routes())) {
        tcp_listener l = tcp_listener::bind(address::parse("127.0.0.1:0"));
        base_ = "http://" + l.local_address().to_string();
        serving_ = corio::spawn(corio::test::serve_owned(srv_, std::move(l)));
    }
    local_server(const local_server&) = delete;
    local_server& operator=(const local_server&) = delete;
    ~local_server() { serving_.cancel(); } // a test that ended early: the server unwinds later
    [[nodiscard]] std::string url(const std::string& path) const { return base_ + path; }
    task<> stop() {
        srv_->stop();
        co_await serving_;
    }

private:
    std::shared_ptr<http::server> srv_;
    std::string base_;
    corio::join_handle<> serving_;
};

// --- a server that misbehaves on purpose -----------------------------------------------------

/// Answers each connection's first request head with `reply` (then closes, unless
/// `keep_open`), counting connections.
class canned_server {
public:
    explicit canned_server(std::string reply, bool keep_open = false)
        : l_(tcp_listener::bind(address::parse("127.0.0.1:0"))), reply_(std::move(reply)) {
        base_ = "http://" + l_.local_address().to_string();
        task_ = corio::spawn(serve(*this, keep_open));
    }
    ~canned_server() { task_.cancel(); }
    [[nodiscard]] std::string url(const std::string& path) const { return base_ + path; }
    [[nodiscard]] int connections() const noexcept { return connections_; }
    /// Connections it has answered and closed.
    [[nodiscard]] int closed() const noexcept { return *closed_; }
    /// Waits until it has closed `n` connections.
    task<> wait_closed(int n) const {
        while (*closed_ < n)
            co_await corio::sleep_for(1ms);
    }

private:
    static task<> serve(canned_server& self, bool keep_open) {
        for (;;) {
            tcp_stream s = co_await self.l_.accept();
            ++self.connections_;
            corio::spawn(answer(std::move(s), self.reply_, keep_open, self.closed_)).detach();
        }
    }
    static task<> answer(tcp_stream s, std::string reply, bool keep_open,
                         std::shared_ptr<int> closed) {
        const std::string head = co_await corio::test::read_request_head(s);
        if (head.empty())
            co_return;
        co_await s.write_all(reply);
        if (keep_open)
            co_await corio::sleep_for(1h);
        co_await s.close();
        ++*closed;
    }

    tcp_listener l_;
    std::string reply_;
    std::string base_;
    corio::join_handle<> task_;
    int connections_ = 0;
    std::shared_ptr<int> closed_ = std::make_shared<int>(0); // outlives it in detached answers
};

/// The message of the `E` a request throws ("" when it succeeds).
template <class E>
task<std::string> failure_of(http::client& cli, std::string url) {
    std::string message;
    try {
        const http::response r = co_await cli.get(std::move(url));
    } catch (const E& e) {
        message = e.what();
    }
    co_return message;
}

} // namespace

CORIO_TEST_CASE("http client: GET, POST, PUT, HEAD with default headers", "[http][client]") {
    local_server srv;
    http::client cli;
    const http::response r = co_await cli.get(srv.url("/hello"));
    CHECK(r.status() == 200);
    CHECK(r.body() == "Hello, World!");
    CHECK(r.header("content-type") == "text/plain; charset=utf-8");
    CHECK(r.url() == srv.url("/hello"));
    const http::headers json{{"content-type", "application/json"}};
    const http::response post = co_await cli.post(srv.url("/echo"), "{}", json);
    CHECK(post.body() == "POST /echo body={} type=application/json auth=- cookie=- ua=corio/" +
                             std::string(CORIO_VERSION_STRING));
    // A named request: g++ 12 miscompiles a braced aggregate inside co_await (PR 107288).
    http::request put_request{.method = "PUT", .url = srv.url("/echo?x=1"), .body = "data"};
    const http::response put = co_await cli.request(std::move(put_request));
    CHECK(contains(put.body(), "PUT /echo?x=1 body=data"));
    const http::response head = co_await cli.head(srv.url("/echo"));
    CHECK(head.status() == 200);
    CHECK(head.body().empty());
    CHECK(cli.open_connections() == 1); // one kept-alive connection served all four
    co_await srv.stop();
}

CORIO_TEST_CASE("http client: redirects follow RFC 9110", "[http][client]") {
    local_server srv;
    local_server other; // another origin
    http::client cli;
    const http::headers secrets{{"authorization", "Bearer s"}, {"cookie", "c=1"}};
    const http::headers text_plain{{"content-type", "text/plain"}};
    for (const int code : {301, 302, 303}) {
        const http::response r =
            co_await cli.post(srv.url("/redirect/" + std::to_string(code)), "payload", text_plain);
        INFO(code);
        CHECK(r.body() == "GET /echo body= type=- auth=- cookie=- ua=corio/" +
                              std::string(CORIO_VERSION_STRING));
        CHECK(r.url() == srv.url("/echo"));
    }
    for (const int code : {307, 308}) {
        const http::response r =
            co_await cli.post(srv.url("/redirect/" + std::to_string(code)), "payload", text_plain);
        INFO(code);
        CHECK(contains(r.body(), "POST /echo body=payload type=text/plain"));
    }
    // Same origin: credentials go along; another origin: they do not.
    http::request same{.url = srv.url("/redirect/302?to=/echo"), .headers = secrets};
    const http::response kept = co_await cli.request(std::move(same));
    CHECK(contains(kept.body(), "auth=Bearer s cookie=c=1"));
    http::request cross{.url = srv.url("/redirect/302?to=" + other.url("/echo")),
                        .headers = secrets};
    const http::response dropped = co_await cli.request(std::move(cross));
    CHECK(contains(dropped.body(), "auth=- cookie=-"));
    CHECK(dropped.url() == other.url("/echo"));
    // Relative targets resolve against the current URL.
    const http::response relative = co_await cli.get(srv.url("/redirect/301?to=../hello"));
    CHECK(relative.body() == "Hello, World!");
    // A 3xx without Location comes back as it is; so does any 3xx when not following.
    const http::response bare = co_await cli.get(srv.url("/no-location"));
    CHECK(bare.status() == 302);
    http::client stay{{.follow_redirects = false}};
    const http::response not_followed = co_await stay.get(srv.url("/redirect/301"));
    CHECK(not_followed.status() == 301);
    co_await srv.stop();
    co_await other.stop();
}

CORIO_TEST_CASE("http client: redirect loops and unsupported schemes are errors",
                "[http][client][bad-input]") {
    local_server srv;
    http::client cli{{.max_redirects = 5}};
    const std::string loop = co_await failure_of<http::too_many_redirects>(cli, srv.url("/loop"));
    CHECK(contains(loop, "more than 5 redirects"));
    CHECK(contains(loop, "GET " + srv.url("/loop")));
    const std::string ftp = co_await failure_of<http::unsupported_scheme>(
        cli, srv.url("/redirect/302?to=ftp://files.test/x"));
    CHECK(contains(ftp, "unsupported scheme 'ftp'"));
    const std::string bad_url = co_await failure_of<http::error>(cli, "not a url");
    CHECK(contains(bad_url, "corio::http::client GET not a url"));
    co_await srv.stop();
}

CORIO_TEST_CASE("http client: gzip, chunked and large bodies, and streaming", "[http][client]") {
    local_server srv;
    http::client cli;
    const http::response z = co_await cli.get(srv.url("/gzip"));
    CHECK(z.header("content-encoding") == "gzip");
    CHECK(z.body() == std::string(5000, 'z'));
    http::client raw{{.decompress = false}};
    const http::response plain = co_await raw.get(srv.url("/gzip"));
    CHECK_FALSE(plain.header("content-encoding").has_value());
    const http::response chunked = co_await cli.get(srv.url("/stream"));
    CHECK(chunked.header("transfer-encoding") == "chunked");
    CHECK(chunked.body().size() == 290);
    const http::response large = co_await cli.get(srv.url("/big"));
    CHECK(large.body().size() == std::size_t{2} << 20);
    http::response_stream s = co_await cli.stream(srv.url("/big"));
    CHECK(s.status() == 200);
    std::size_t total = 0;
    int chunks = 0;
    for (;;) {
        std::optional<std::string> chunk = co_await s.next_chunk();
        if (!chunk)
            break;
        total += chunk->size();
        ++chunks;
    }
    CHECK(total == std::size_t{2} << 20);
    CHECK(chunks > 1);
    // Read to its end, the stream's connection went back to the pool.
    const std::size_t open = cli.open_connections();
    const http::response again = co_await cli.get(srv.url("/hello"));
    CHECK(again.status() == 200);
    CHECK(cli.open_connections() == open);
    co_await srv.stop();
}

CORIO_TEST_CASE("http client: read and total timeouts", "[http][client][bad-input]") {
    local_server srv;
    http::client cli{{.read_timeout = 100ms}};
    const std::string stalled = co_await failure_of<http::timeout_error>(cli, srv.url("/stalls"));
    CHECK(contains(stalled, "GET " + srv.url("/stalls")));
    CHECK(contains(stalled, "read timeout"));
    CHECK(cli.idle_connections() == 0); // the stalled connection is not pooled
    http::client total{{.total_timeout = 100ms}};
    const std::string whole = co_await failure_of<http::timeout_error>(total, srv.url("/stalls"));
    CHECK(contains(whole, "total timeout"));
    co_await srv.stop();
}

CORIO_TEST_CASE("http client: broken responses are protocol errors, never pooled",
                "[http][client][bad-input]") {
    struct bad_case {
        std::string reply;
        std::string reason;
    };
    const std::vector<bad_case> cases = {
        {"HTTP/1.1 2OO OK\r\nContent-Length: 0\r\n\r\n", "malformed response"},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
         "malformed response"},
        {"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
         "malformed response"},
        {"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabc",
         "malformed response"},
        {std::string("HTTP/1.1 200 OK\r\nX-Nul: a") + '\0' + "b\r\nContent-Length: 0\r\n\r\n",
         "malformed response"},
        {"HTTP/1.1 200 OK\r\nX-CR: a\rb\r\nContent-Length: 0\r\n\r\n", "malformed response"},
    };
    http::client cli;
    const std::size_t before = open_descriptors();
    for (const bad_case& c : cases) {
        canned_server bad{c.reply};
        const std::string m = co_await failure_of<http::protocol_error>(cli, bad.url("/x"));
        INFO(c.reply);
        CHECK(contains(m, "corio::http::client GET " + bad.url("/x")));
        CHECK(contains(m, c.reason));
        CHECK(cli.open_connections() == 0);
    }
    CHECK(open_descriptors() == before);
}

CORIO_TEST_CASE("http client: limits on the header block and the body",
                "[http][client][bad-input]") {
    canned_server huge_head{"HTTP/1.1 200 OK\r\nX-Big: " + std::string(70 * 1024, 'h') +
                            "\r\nContent-Length: 0\r\n\r\n"};
    http::client cli{{.max_body_bytes = 1000}};
    const std::string head = co_await failure_of<http::header_too_large>(cli, huge_head.url("/"));
    CHECK(contains(head, "header fields too large"));
    CHECK(contains(head, "max_header_bytes = 65536"));
    canned_server big_body{"HTTP/1.1 200 OK\r\nContent-Length: 2000\r\n\r\n" +
                           std::string(2000, 'b')};
    const std::string body = co_await failure_of<http::body_too_large>(cli, big_body.url("/"));
    CHECK(contains(body, "body larger than the limit"));
    CHECK(contains(body, "max_body_bytes = 1000"));
    CHECK(cli.open_connections() == 0);
}

CORIO_TEST_CASE("http client: a kept-alive connection the server closed is retried once",
                "[http][client][bad-input]") {
    // Every connection answers one request as keep-alive and then closes.
    canned_server flaky{"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"};
    http::client cli;
    const http::response first = co_await cli.get(flaky.url("/a"));
    CHECK(first.body() == "ok");
    CHECK(cli.idle_connections() == 1);
    co_await flaky.wait_closed(1); // the server has closed the kept-alive connection
    const http::response second = co_await cli.get(flaky.url("/b"));
    CHECK(second.body() == "ok"); // no error surfaced
    CHECK(flaky.connections() == 2);
    // A POST is not retried: it may have been processed.
    co_await flaky.wait_closed(2);
    std::string post_error;
    try {
        const http::response r = co_await cli.post(flaky.url("/c"), "x");
    } catch (const http::protocol_error& e) {
        post_error = e.what();
    }
    CHECK(contains(post_error, "POST " + flaky.url("/c")));
}

CORIO_TEST_CASE("http client: connection refused, and limits on connections",
                "[http][client][bad-input]") {
    http::client cli{{.max_connections = 2}};
    std::uint16_t closed_port = 0;
    {
        tcp_listener l = tcp_listener::bind(address::parse("127.0.0.1:0"));
        closed_port = l.local_address().port();
    }
    const std::string url = "http://127.0.0.1:" + std::to_string(closed_port) + "/x";
    const std::string refused = co_await failure_of<http::connect_error>(cli, url);
    CHECK(contains(refused, "GET " + url));
    CHECK(contains(refused, "Connection refused"));
    // Ten requests through a pool of two: never more than two connections.
    local_server srv;
    std::vector<task<http::response>> requests;
    for (int i = 0; i < 10; ++i)
        requests.push_back(cli.get(srv.url("/hello")));
    const std::vector<http::response> all = co_await corio::gather(std::move(requests));
    CHECK(all.size() == 10);
    CHECK(cli.open_connections() <= 2);
    co_await srv.stop();
}

#if defined(CORIO_HAVE_TLS)
CORIO_TEST_CASE("http client: HTTPS verifies the server, against openssl s_server",
                "[http][client][tls][interop]") {
    using corio::test::pki;
    corio::test::subprocess server{"openssl", "s_server", "-accept", "127.0.0.1:0",
                                   "-cert",   pki().good, "-key",    pki().leaf_key,
                                   "-www",    "-naccept", "2"};
    const std::string line = co_await server.read_line_starting("ACCEPT ");
    const std::string port = line.substr(line.rfind(':') + 1);
    http::client cli{{.tls = corio::tls::context::client().load_ca_file(pki().ca)}};
    const http::response r = co_await cli.get("https://127.0.0.1:" + port + "/");
    CHECK(r.status() == 200);
    CHECK(contains(r.body(), "s_server"));
    http::client untrusting;
    const std::string m =
        co_await failure_of<http::tls_error>(untrusting, "https://127.0.0.1:" + port + "/");
    CHECK(contains(m, "certificate verify failed"));
}
#endif

CORIO_TEST_CASE("http client: Python's http.server serves files", "[http][client][interop]") {
    char dir[] = "/tmp/corio-www-XXXXXX";
    REQUIRE(::mkdtemp(dir) != nullptr);
    const std::string file = std::string(dir) + "/page.html";
    {
        FILE* f = std::fopen(file.c_str(), "w");
        std::fputs("<html><title>corio</title></html>\n", f);
        std::fclose(f);
    }
    corio::test::subprocess server{"python3",     "-u", "-m", "http.server", "--bind", "127.0.0.1",
                                   "--directory", dir,  "0"};
    const std::string line = co_await server.read_line_starting("Serving HTTP");
    const std::size_t at = line.find(" port ");
    REQUIRE(at != std::string::npos);
    const std::string port = line.substr(at + 6, line.find(' ', at + 6) - at - 6);
    http::client cli;
    const http::response page = co_await cli.get("http://127.0.0.1:" + port + "/page.html");
    CHECK(page.status() == 200);
    CHECK(page.body() == "<html><title>corio</title></html>\n");
    const http::response missing = co_await cli.get("http://127.0.0.1:" + port + "/nope");
    CHECK(missing.status() == 404);
    std::filesystem::remove_all(dir);
}

CORIO_TEST_CASE("http client: nginx serves static files with keep-alive, gzip and chunks",
                "[http][client][interop]") {
    if (::access("/usr/sbin/nginx", X_OK) != 0)
        CORIO_CO_SKIP("nginx is not installed");
    char dir_template[] = "/tmp/corio-nginx-XXXXXX";
    REQUIRE(::mkdtemp(dir_template) != nullptr);
    const std::string dir = dir_template;
    const std::string page(20000, 'p'); // large enough for nginx to compress
    {
        FILE* f = std::fopen((dir + "/page.txt").c_str(), "w");
        std::fwrite(page.data(), 1, page.size(), f);
        std::fclose(f);
    }
    // nginx cannot take port 0 and say which it got: probe a free port, and when another test
    // (ctest -j2) takes it first, nginx exits and we try again with another.
    std::optional<corio::test::subprocess> nginx;
    std::string base;
    http::client cli;
    std::optional<http::response> first;
    for (int attempt = 0; attempt < 5 && !first; ++attempt) {
        std::uint16_t port = 0;
        {
            tcp_listener probe = tcp_listener::bind(address::parse("127.0.0.1:0"));
            port = probe.local_address().port();
        }
        FILE* conf = std::fopen((dir + "/nginx.conf").c_str(), "w");
        std::fprintf(conf,
                     "daemon off; master_process off; worker_processes 1; user root;\n"
                     "pid %s/nginx.pid; error_log %s/error.log;\n"
                     "events { worker_connections 64; }\n"
                     "http { access_log off; client_body_temp_path %s; proxy_temp_path %s;\n"
                     "  fastcgi_temp_path %s; uwsgi_temp_path %s; scgi_temp_path %s;\n"
                     "  gzip on; gzip_types text/plain; gzip_min_length 100;\n"
                     "  types { text/plain txt; }\n"
                     "  server { listen 127.0.0.1:%u; root %s; } }\n",
                     dir.c_str(), dir.c_str(), dir.c_str(), dir.c_str(), dir.c_str(), dir.c_str(),
                     dir.c_str(), static_cast<unsigned>(port), dir.c_str());
        std::fclose(conf);
        nginx.emplace(
            std::vector<std::string>{"/usr/sbin/nginx", "-p", dir, "-c", dir + "/nginx.conf"});
        base = "http://127.0.0.1:" + std::to_string(port);
        // Until nginx listens, or has exited (the port was taken).
        for (int i = 0; i < 250 && !first && !nginx->exited(); ++i) {
            try {
                first = co_await cli.get(base + "/page.txt");
            } catch (const http::connect_error&) {
            }
            if (!first)
                co_await corio::sleep_for(20ms);
        }
    }
    REQUIRE(first.has_value());
    INFO(nginx->errors());
    CHECK(first->status() == 200);
    CHECK(first->header("content-encoding") == "gzip");
    CHECK(first->header("transfer-encoding") == "chunked");
    CHECK(first->body() == page);
    for (int i = 0; i < 5; ++i) {
        const http::response again = co_await cli.get(base + "/page.txt");
        CHECK(again.body() == page);
    }
    CHECK(cli.open_connections() == 1); // kept alive throughout
    const http::response missing = co_await cli.get(base + "/missing");
    CHECK(missing.status() == 404);
    std::filesystem::remove_all(dir);
}

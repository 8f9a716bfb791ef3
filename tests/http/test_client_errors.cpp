// SPDX-License-Identifier: MIT
// The client against scripted peers: bodiless responses, obs-fold, header limits, the error
// taxonomy, and the redirect and address filters.
#include "../support/corio_test.hpp"
#include "../support/read_head.hpp"
#if defined(CORIO_HAVE_TLS)
#include "../support/test_pki.hpp"
#endif

#include <corio/http/client.hpp>
#include <corio/http/parser.hpp>

#include <sys/socket.h>

#include <algorithm>
#include <array>
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

/// How a scripted peer ends a connection after its first reply (by default it does not).
struct ending {
    bool close_after = false; ///< closes, in order
    bool reset = false;       ///< resets (RST)
};

/// A peer that answers the requests of each connection in turn with the next of `replies`
/// (the last one repeats), counting connections and requests. With `close_after`, each
/// connection is closed after its first reply; with `reset`, closed by a reset (RST). With no
/// replies, it reads and never answers. Requests are read up to their head (no bodies).
class scripted_server {
public:
    explicit scripted_server(std::vector<std::string> replies, ending o = {})
        : state_(std::make_shared<state>(std::move(replies), o)) {
        base_ = "http://" + state_->listener.local_address().to_string();
        task_ = corio::spawn(serve(state_));
    }
    scripted_server(const scripted_server&) = delete;
    scripted_server& operator=(const scripted_server&) = delete;
    ~scripted_server() { task_.cancel(); }

    [[nodiscard]] std::string url(const std::string& path) const { return base_ + path; }
    [[nodiscard]] std::uint16_t port() const { return state_->listener.local_address().port(); }
    [[nodiscard]] int connections() const noexcept { return state_->connections; }
    [[nodiscard]] int requests() const noexcept { return state_->requests; }

private:
    struct state {
        state(std::vector<std::string> r, ending o)
            : listener(tcp_listener::bind(address::parse("127.0.0.1:0"))), replies(std::move(r)),
              opts(o) {}
        tcp_listener listener;
        std::vector<std::string> replies;
        ending opts;
        int connections = 0;
        int requests = 0;
    };

    static task<> serve(std::shared_ptr<state> st) {
        for (;;) {
            tcp_stream s = co_await st->listener.accept();
            ++st->connections;
            corio::spawn(answer(std::move(s), st)).detach();
        }
    }
    static task<> answer(tcp_stream s, std::shared_ptr<state> st) {
        try {
            co_await converse(s, *st);
        } catch (const std::system_error&) {
            // the client reset the connection: it refused what it read
        }
    }
    static task<> converse(tcp_stream& s, state& st) {
        std::string got;
        std::array<std::byte, 4096> buf{};
        for (std::size_t i = 0;; ++i) {
            std::size_t end = 0;
            while ((end = got.find("\r\n\r\n")) == std::string::npos) {
                const std::size_t n = co_await s.read_some(buf);
                if (n == 0)
                    co_return;
                got.append(reinterpret_cast<const char*>(buf.data()), n);
            }
            got.erase(0, end + 4);
            ++st.requests;
            if (st.replies.empty())
                continue; // never answers
            co_await s.write_all(st.replies[std::min(i, st.replies.size() - 1)]);
            if (st.opts.reset) {
                const ::linger l{.l_onoff = 1, .l_linger = 0};
                ::setsockopt(s.native_handle(), SOL_SOCKET, SO_LINGER, &l, sizeof l);
            }
            if (st.opts.close_after || st.opts.reset)
                co_return; // the stream's destructor closes (or resets) the connection
        }
    }

    std::shared_ptr<state> state_;
    std::string base_;
    corio::join_handle<> task_;
};

#if defined(CORIO_HAVE_TLS)
/// Accepts one TLS connection on `l`, answers its first request head with `reply`, and drops
/// the connection without close_notify (a truncation, as an attacker or a crash would).
task<> tls_truncating_peer(tcp_listener& l, std::string reply) {
    tcp_stream tcp = co_await l.accept();
    corio::tls::context ctx =
        corio::tls::context::server(corio::test::pki().good, corio::test::pki().leaf_key);
    corio::tls::stream s = co_await corio::tls::stream::accept(std::move(tcp), std::move(ctx));
    const std::string head = co_await corio::test::read_request_head(s);
    if (head.empty())
        co_return;
    co_await s.write_all(reply);
} // the stream's destructor closes the socket: no close_notify
#endif

/// The `E` a GET of `url` throws, or nothing when it succeeds.
template <class E>
task<std::optional<E>> failure_of(http::client& cli, std::string url) {
    std::optional<E> caught;
    try {
        const http::response r = co_await cli.get(std::move(url));
    } catch (const E& e) {
        caught.emplace(e);
    }
    co_return caught;
}

/// The number of times `part` occurs in `text`.
std::size_t count_of(const std::string& text, const std::string& part) {
    std::size_t n = 0;
    for (std::size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1))
        ++n;
    return n;
}

std::string fields(int count) {
    std::string out;
    for (int i = 0; i < count; ++i)
        out += "x" + std::to_string(i) + ": v\r\n";
    return out;
}

} // namespace

// --- bodiless responses (RFC 9112 §6.3 rule 1) ------------------------------------------------

CORIO_TEST_CASE("http client: 204, 304 and 1xx with Content-Length have no body, and the "
                "connection is reused",
                "[http][client][errors]") {
    scripted_server srv{{
        "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n",
        "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\nETag: \"e\"\r\n\r\n",
        "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\nContent-Length: 5\r\n\r\n"
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nlast",
    }};
    // A client that waited for the 5 bytes would fail here with a read timeout.
    http::client cli{{.read_timeout = 5s}};
    const http::response no_content = co_await cli.get(srv.url("/a"));
    CHECK(no_content.status() == 204);
    CHECK(no_content.body().empty());
    const http::response not_modified = co_await cli.get(srv.url("/b"));
    CHECK(not_modified.status() == 304);
    CHECK(not_modified.body().empty());
    CHECK(not_modified.header("etag") == "\"e\"");
    const http::response after_hints = co_await cli.get(srv.url("/c"));
    CHECK(after_hints.status() == 200);
    CHECK(after_hints.body() == "ok");
    const http::response last = co_await cli.get(srv.url("/d"));
    CHECK(last.body() == "last");
    CHECK(srv.requests() == 4);
    CHECK(srv.connections() == 1); // every response ended where it should: one connection
}

CORIO_TEST_CASE("http client: a response to HEAD has no body whatever Content-Length says",
                "[http][client][errors]") {
    scripted_server srv{{
        "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    }};
    // The Content-Length of a HEAD response is the GET's: above max_body_bytes is no error.
    http::client cli{{.read_timeout = 5s, .max_body_bytes = 100}};
    const http::response sized = co_await cli.head(srv.url("/a"));
    CHECK(sized.status() == 200);
    CHECK(sized.body().empty());
    CHECK(sized.header("content-length") == "1000");
    const http::response chunked = co_await cli.head(srv.url("/b"));
    CHECK(chunked.body().empty());
    const http::response get = co_await cli.get(srv.url("/c"));
    CHECK(get.body() == "ok");
    CHECK(srv.connections() == 1);
}

// --- obs-fold -------------------------------------------------------------------------------

CORIO_TEST_CASE("http client: obs-fold in a response header is unfolded to one space",
                "[http][client][errors]") {
    scripted_server srv{{"HTTP/1.1 200 OK\r\nX-Fold: a  \r\n   b\r\n\tc\r\n"
                         "X-Late:\r\n  d\r\nX-Plain: e \r\nContent-Length: 2\r\n\r\nok"}};
    http::client cli;
    const http::response r = co_await cli.get(srv.url("/"));
    CHECK(r.status() == 200);
    CHECK(r.header("x-fold") == "a b c");
    CHECK(r.header("x-late") == "d");
    CHECK(r.header("x-plain") == "e");
    CHECK(r.body() == "ok");
}

TEST_CASE("http parser: a response's obs-fold is unfolded however the input is split, a "
          "request's is refused",
          "[http][client][errors]") {
    const std::string head = "HTTP/1.1 200 OK\r\nX-Fold: one \r\n  two\r\n\t three\r\n"
                             "Content-Length: 0\r\n\r\n";
    // Every split into two pieces, and byte by byte.
    for (std::size_t cut = 1; cut <= head.size(); ++cut) {
        http::parser p{http::parser::kind::response};
        std::string_view rest = head;
        http::parser::event ev = http::parser::event::need_more;
        for (const std::size_t step : {cut, head.size()}) {
            std::string_view piece = rest.substr(0, std::min(step, rest.size()));
            while (!piece.empty() && ev == http::parser::event::need_more) {
                const http::parser::result r = p.parse(piece);
                piece.remove_prefix(r.consumed);
                rest.remove_prefix(r.consumed);
                ev = r.what;
            }
        }
        INFO("split at " << cut);
        REQUIRE(ev == http::parser::event::head);
        CHECK(p.headers().get("x-fold") == "one two three");
    }
    {
        http::parser p{http::parser::kind::response};
        http::parser::event ev = http::parser::event::need_more;
        for (std::size_t i = 0; i < head.size() && ev == http::parser::event::need_more; ++i)
            ev = p.parse(std::string_view(head).substr(i, 1)).what;
        REQUIRE(ev == http::parser::event::head);
        CHECK(p.headers().get("x-fold") == "one two three");
    }
    http::parser request{http::parser::kind::request};
    const http::parser::result r =
        request.parse("GET / HTTP/1.1\r\nHost: h\r\nX-Fold: a\r\n b\r\n\r\n");
    CHECK(r.what == http::parser::event::error);
    CHECK(request.error_status() == 400);
}

// --- header limits --------------------------------------------------------------------------

CORIO_TEST_CASE("http client: 200 header fields pass by default, 10,000 are header_too_large",
                "[http][client][errors]") {
    scripted_server many{{"HTTP/1.1 200 OK\r\n" + fields(200) + "Content-Length: 2\r\n\r\nok"}};
    http::client cli;
    CHECK(cli.options().max_header_count >= 256);
    const http::response r = co_await cli.get(many.url("/"));
    CHECK(r.body() == "ok");
    CHECK(r.header("x199") == "v");

    std::string tiny; // 10,000 one-byte fields, 50 KB: under the 64 KiB of max_header_bytes
    for (int i = 0; i < 10000; ++i)
        tiny += "a:b\r\n";
    scripted_server flood{{"HTTP/1.1 200 OK\r\n" + tiny + "Content-Length: 0\r\n\r\n"}};
    const std::size_t open = cli.open_connections(); // the kept-alive one to `many`
    const std::optional<http::header_too_large> e =
        co_await failure_of<http::header_too_large>(cli, flood.url("/"));
    REQUIRE(e.has_value());
    CHECK(e->kind() == http::error_kind::header_too_large);
    CHECK(e->which() == http::header_limit::fields);
    CHECK(e->limit() == cli.options().max_header_count);
    const std::string m = e->what();
    CHECK(contains(m, "GET " + flood.url("/")));
    CHECK(contains(m, "max_header_count = " + std::to_string(cli.options().max_header_count)));
    CHECK(contains(m, "fields"));
    CHECK(cli.open_connections() == open); // the refused response's connection is closed
}

CORIO_TEST_CASE("http client: both header limits are configurable and named when passed",
                "[http][client][errors]") {
    scripted_server eleven{{"HTTP/1.1 200 OK\r\n" + fields(10) + "Content-Length: 0\r\n\r\n"}};
    http::client few{{.max_header_count = 10}};
    const std::optional<http::header_too_large> count =
        co_await failure_of<http::header_too_large>(few, eleven.url("/"));
    REQUIRE(count.has_value());
    CHECK(count->which() == http::header_limit::fields);
    CHECK(count->limit() == 10);
    CHECK(contains(count->what(), "max_header_count = 10 fields"));
    http::client enough{{.max_header_count = 11}};
    const http::response ok = co_await enough.get(eleven.url("/"));
    CHECK(ok.status() == 200);

    scripted_server wide{
        {"HTTP/1.1 200 OK\r\nX-Wide: " + std::string(2000, 'w') + "\r\nContent-Length: 0\r\n\r\n"}};
    http::client small{{.max_header_bytes = 1024}};
    const std::optional<http::header_too_large> bytes =
        co_await failure_of<http::header_too_large>(small, wide.url("/"));
    REQUIRE(bytes.has_value());
    CHECK(bytes->which() == http::header_limit::bytes);
    CHECK(bytes->limit() == 1024);
    CHECK(contains(bytes->what(), "max_header_bytes = 1024 bytes"));
    CHECK(contains(bytes->what(), "GET " + wide.url("/")));
    // A status line alone over the limit is the same limit.
    scripted_server long_line{{"HTTP/1.1 200 " + std::string(2000, 'r') + "\r\n\r\n"}};
    const std::optional<http::header_too_large> line =
        co_await failure_of<http::header_too_large>(small, long_line.url("/"));
    REQUIRE(line.has_value());
    CHECK(line->which() == http::header_limit::bytes);
    CHECK(contains(line->what(), "status line too long"));
}

// --- body truncation --------------------------------------------------------------------------

CORIO_TEST_CASE("http client: a body cut short is body_truncated, in every framing",
                "[http][client][errors]") {
    struct cut_case {
        std::string reply;
        ending how;
    };
    const std::vector<cut_case> cases = {
        {"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten..", {.close_after = true}},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
         {.close_after = true}},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", {.close_after = true}},
        {"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten..", {.reset = true}},
    };
    http::client cli;
    for (const cut_case& c : cases) {
        scripted_server srv{{c.reply}, c.how};
        INFO(c.reply << (c.how.reset ? " (reset)" : " (closed)"));
        const std::optional<http::body_truncated> e =
            co_await failure_of<http::body_truncated>(cli, srv.url("/x"));
        REQUIRE(e.has_value());
        CHECK(e->kind() == http::error_kind::body_truncated);
        CHECK(contains(e->what(), "GET " + srv.url("/x")));
        CHECK(contains(e->what(), "before the body ended"));
        CHECK(cli.open_connections() == 0);
    }
    // The same through a stream.
    scripted_server srv{{cases[1].reply}, {.close_after = true}};
    http::response_stream s = co_await cli.stream(srv.url("/s"));
    std::string got;
    std::optional<http::error_kind> kind;
    try {
        for (;;) {
            std::optional<std::string> chunk = co_await s.next_chunk();
            if (!chunk)
                break;
            got += *chunk;
        }
    } catch (const http::body_truncated& e) {
        kind = e.kind();
    }
    CHECK(got == "hello");
    CHECK(kind == http::error_kind::body_truncated);
}

#if defined(CORIO_HAVE_TLS)
CORIO_TEST_CASE("http client: a TLS connection closed without close_notify mid-body is "
                "body_truncated",
                "[http][client][errors][tls]") {
    const std::vector<std::string> replies = {
        "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten..",
        "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end, but cut", // close-delimited
    };
    http::client cli{{.tls = corio::tls::context::client().load_ca_file(corio::test::pki().ca)}};
    for (const std::string& reply : replies) {
        tcp_listener l = tcp_listener::bind(address::parse("127.0.0.1:0"));
        const std::string url =
            "https://127.0.0.1:" + std::to_string(l.local_address().port()) + "/t";
        corio::join_handle<> peer = corio::spawn(tls_truncating_peer(l, reply));
        INFO(reply);
        const std::optional<http::body_truncated> e =
            co_await failure_of<http::body_truncated>(cli, url);
        co_await peer;
        REQUIRE(e.has_value());
        CHECK(e->kind() == http::error_kind::body_truncated);
        CHECK(contains(e->what(), "GET " + url));
        CHECK(contains(e->what(), "close_notify"));
    }
}
#endif

#if !defined(CORIO_HAVE_TLS)
CORIO_TEST_CASE("http client: without corio::tls, https:// is unsupported_scheme and connects "
                "nowhere",
                "[http][client][errors]") {
    http::client cli;
    const std::optional<http::unsupported_scheme> e =
        co_await failure_of<http::unsupported_scheme>(cli, "https://127.0.0.1:1/x");
    REQUIRE(e.has_value());
    CHECK(e->scheme() == "https");
    CHECK(contains(e->what(), "corio::tls"));
    CHECK(cli.open_connections() == 0);
}
#endif

// --- redirects --------------------------------------------------------------------------------

CORIO_TEST_CASE("http client: a redirect to an unsupported scheme connects nowhere",
                "[http][client][errors]") {
    scripted_server target{{"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"}};
    const std::string ftp = "ftp://127.0.0.1:" + std::to_string(target.port()) + "/file";
    scripted_server srv{
        {"HTTP/1.1 302 Found\r\nLocation: " + ftp + "\r\nContent-Length: 0\r\n\r\n"}};
    http::client cli;
    const std::optional<http::unsupported_scheme> e =
        co_await failure_of<http::unsupported_scheme>(cli, srv.url("/r"));
    REQUIRE(e.has_value());
    CHECK(e->kind() == http::error_kind::unsupported_scheme);
    CHECK(e->scheme() == "ftp");
    CHECK(contains(e->what(), "GET " + srv.url("/r")));
    CHECK(contains(e->what(), "unsupported scheme 'ftp'"));
    CHECK(srv.connections() == 1);
    CHECK(target.connections() == 0);
    // The request's own URL.
    const std::optional<http::unsupported_scheme> direct =
        co_await failure_of<http::unsupported_scheme>(cli, ftp);
    REQUIRE(direct.has_value());
    CHECK(direct->scheme() == "ftp");
    CHECK(target.connections() == 0);
    const std::optional<http::error> bad = co_await failure_of<http::error>(cli, "not a url");
    REQUIRE(bad.has_value());
    CHECK(bad->kind() == http::error_kind::invalid_url);
}

CORIO_TEST_CASE("http client: redirect_filter sees every hop, and false returns the 3xx",
                "[http][client][errors]") {
    scripted_server srv{{
        "HTTP/1.1 302 Found\r\nLocation: /second\r\nContent-Length: 3\r\n\r\n302",
        "HTTP/1.1 301 Moved\r\nLocation: /third\r\nContent-Length: 3\r\n\r\n301",
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    }};
    std::vector<std::string> seen;
    http::client cli{{.redirect_filter = [&seen](const http::url& next) {
        seen.push_back(next.to_string());
        return next.path() != "/third";
    }}};
    const http::response r = co_await cli.get(srv.url("/first"));
    CHECK(r.status() == 301);
    CHECK(r.body() == "301");
    CHECK(r.header("location") == "/third");
    CHECK(r.url() == srv.url("/second"));
    CHECK(seen == std::vector<std::string>{srv.url("/second"), srv.url("/third")});
    CHECK(srv.requests() == 2); // /third was never asked for
    // The filter is asked before max_redirects: a refused hop is never too many.
    http::client stop_all{
        {.max_redirects = 0, .redirect_filter = [](const http::url&) { return false; }}};
    const http::response first = co_await stop_all.get(srv.url("/first"));
    CHECK(first.status() == 302);
}

// --- connect_filter and deny_private_addresses ------------------------------------------------

CORIO_TEST_CASE("http client: connect_filter refuses an address before connecting, naming it",
                "[http][client][errors]") {
    scripted_server srv{{"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"}};
    http::client guarded{{.connect_filter = http::deny_private_addresses}};
    const std::optional<http::connect_error> e =
        co_await failure_of<http::connect_error>(guarded, srv.url("/"));
    REQUIRE(e.has_value());
    CHECK(e->kind() == http::error_kind::connect);
    const std::string where = "127.0.0.1:" + std::to_string(srv.port());
    CHECK(contains(e->what(), "GET " + srv.url("/")));
    CHECK(contains(e->what(), where + ": refused by connect_filter: a loopback address"));
    CHECK(srv.connections() == 0);
    // A name is filtered by the addresses it resolves to.
    const std::string by_name = "http://localhost:" + std::to_string(srv.port()) + "/";
    const std::optional<http::connect_error> named =
        co_await failure_of<http::connect_error>(guarded, by_name);
    REQUIRE(named.has_value());
    CHECK(contains(named->what(), where + ": refused by connect_filter"));
    CHECK(srv.connections() == 0);
    // The filter sees each address and the client connects to the first it allows.
    std::vector<std::string> seen;
    http::client v4_only{{.connect_filter = [&seen](const address& a) {
        seen.push_back(a.to_string());
        return a.is_v4() ? std::nullopt : std::optional<std::string>("not IPv4");
    }}};
    const http::response r = co_await v4_only.get(by_name);
    CHECK(r.body() == "ok");
    CHECK(std::find(seen.begin(), seen.end(), where) != seen.end());
    CHECK(srv.connections() == 1);
}

TEST_CASE("http client: deny_private_addresses refuses every non-global range, in v4, v6 and "
          "mapped forms",
          "[http][client][errors]") {
    const std::vector<std::string> refused = {
        "0.0.0.0",
        "0.1.2.3",
        "10.0.0.1",
        "10.255.255.255",
        "100.64.0.1",
        "100.127.255.255",
        "127.0.0.1",
        "127.255.255.254",
        "169.254.0.1",
        "169.254.169.254",
        "172.16.0.1",
        "172.31.255.255",
        "192.0.0.8",
        "192.168.0.1",
        "192.168.255.255",
        "198.18.0.1",
        "198.19.255.255",
        "224.0.0.1",
        "239.255.255.250",
        "240.0.0.1",
        "255.255.255.255",
        "::",
        "::1",
        "::127.0.0.1",
        "fc00::1",
        "fd12:3456::1",
        "fe80::1",
        "febf::1",
        "fec0::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:10.1.2.3",
        "::ffff:169.254.169.254",
        "::ffff:192.168.1.1",
        "::ffff:172.16.0.1",
        "::ffff:0.0.0.0",
        "::ffff:100.64.0.1",
        "64:ff9b::127.0.0.1",
        "64:ff9b::a9fe:a9fe",
    };
    for (const std::string& ip : refused) {
        const std::optional<address> a = address::from_ip(ip, 80);
        REQUIRE(a.has_value());
        INFO(ip);
        const std::optional<std::string> why = http::deny_private_addresses(*a);
        CHECK(why.has_value());
    }
    const std::vector<std::string> allowed = {
        "1.1.1.1",         "8.8.8.8",          "9.255.255.255",
        "11.0.0.0",        "100.63.255.255",   "100.128.0.0",
        "126.255.255.255", "128.0.0.0",        "169.253.255.255",
        "169.255.0.0",     "172.15.255.255",   "172.32.0.0",
        "192.167.255.255", "192.169.0.0",      "198.17.255.255",
        "198.20.0.0",      "223.255.255.255",  "2001:4860:4860::8888",
        "2606:4700::1111", "fbff::1",          "fe00::1",
        "::ffff:8.8.8.8",  "64:ff9b::8.8.8.8",
    };
    for (const std::string& ip : allowed) {
        const std::optional<address> a = address::from_ip(ip, 443);
        REQUIRE(a.has_value());
        INFO(ip);
        CHECK_FALSE(http::deny_private_addresses(*a).has_value());
    }
    // The reasons say which range.
    CHECK(http::deny_private_addresses(*address::from_ip("169.254.169.254", 80)) ==
          "a link-local address (169.254.0.0/16)");
    CHECK(http::deny_private_addresses(*address::from_ip("::ffff:127.0.0.1", 80)) ==
          "the IPv4-mapped form of a loopback address (127.0.0.0/8)");
    CHECK(http::deny_private_addresses(*address::from_ip("fd00::1", 80)) ==
          "a unique-local address (fc00::/7)");
}

// --- the taxonomy -----------------------------------------------------------------------------

TEST_CASE("http client: one catch takes http::timeout_error as corio::timeout_error, "
          "http::error, std::runtime_error or std::exception",
          "[http][client][errors]") {
    const auto thrown = [] {
        throw http::timeout_error(http::timeout_kind::read, 250ms, "corio::http::client GET u: x");
    };
    int caught = 0;
    try {
        thrown();
    } catch (const corio::timeout_error& e) {
        ++caught;
        CHECK(e.limit() == 250ms);
        CHECK(std::string(e.what()) == "corio::http::client GET u: x");
    }
    try {
        thrown();
    } catch (const http::error& e) {
        ++caught;
        CHECK(e.kind() == http::error_kind::timeout);
    }
    try {
        thrown();
    } catch (const std::runtime_error& e) {
        ++caught;
        CHECK(std::string(e.what()) == "corio::http::client GET u: x");
    }
    try {
        thrown();
    } catch (const std::exception& e) {
        ++caught;
        CHECK(std::string(e.what()) == "corio::http::client GET u: x");
    }
    CHECK(caught == 4);
}

CORIO_TEST_CASE("http client: read and total timeouts say which, and are corio::timeout_errors",
                "[http][client][errors]") {
    scripted_server silent{std::vector<std::string>{}}; // reads requests, never answers
    http::client reading{{.read_timeout = 50ms}};
    std::optional<http::timeout_kind> which;
    std::chrono::nanoseconds limit{};
    std::string message;
    try {
        const http::response r = co_await reading.get(silent.url("/"));
    } catch (const corio::timeout_error& e) {
        limit = e.limit();
        message = e.what();
        if (const auto* h = dynamic_cast<const http::timeout_error*>(&e))
            which = h->which();
    }
    CHECK(which == http::timeout_kind::read);
    CHECK(limit == 50ms);
    CHECK(contains(message, "read timeout of 50 ms"));

    http::client total{{.read_timeout = 1h, .total_timeout = 50ms}};
    const std::optional<http::timeout_error> whole =
        co_await failure_of<http::timeout_error>(total, silent.url("/"));
    REQUIRE(whole.has_value());
    CHECK(whole->which() == http::timeout_kind::total);
    CHECK(whole->limit() == 50ms);
    CHECK(whole->kind() == http::error_kind::timeout);
    // Around a read timeout, the total timeout leaves it as it is.
    http::client both{{.read_timeout = 50ms, .total_timeout = 1h}};
    const std::optional<http::timeout_error> inner =
        co_await failure_of<http::timeout_error>(both, silent.url("/"));
    REQUIRE(inner.has_value());
    CHECK(inner->which() == http::timeout_kind::read);
}

CORIO_TEST_CASE("http client: a refused connection names the address and its reason once",
                "[http][client][errors]") {
    std::uint16_t closed_port = 0;
    {
        tcp_listener l = tcp_listener::bind(address::parse("127.0.0.1:0"));
        closed_port = l.local_address().port();
    }
    http::client cli;
    const std::string url = "http://127.0.0.1:" + std::to_string(closed_port) + "/x";
    const std::optional<http::connect_error> e = co_await failure_of<http::connect_error>(cli, url);
    REQUIRE(e.has_value());
    CHECK(e->kind() == http::error_kind::connect);
    const std::string m = e->what();
    INFO(m);
    CHECK(contains(m, "GET " + url));
    CHECK(contains(m, "127.0.0.1:" + std::to_string(closed_port)));
    CHECK(count_of(m, "Connection refused") == 1);
}

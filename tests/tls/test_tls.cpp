// SPDX-License-Identifier: MIT
#include "../support/corio_test.hpp"
#include "../support/subprocess.hpp"
#include "../support/test_pki.hpp"

#include <corio/net/tcp_listener.hpp>
#include <corio/net/tcp_stream.hpp>
#include <corio/tls/context.hpp>
#include <corio/tls/stream.hpp>

#include <dirent.h>
#include <openssl/ssl.h>

#include <array>
#include <cstddef>
#include <exception>
#include <string>
#include <system_error>
#include <tuple>
#include <vector>

using namespace std::chrono_literals;
using corio::task;
using corio::net::address;
using corio::net::tcp_listener;
using corio::net::tcp_stream;
using corio::test::contains;
using corio::test::pki;
namespace tls = corio::tls;

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

tls::context server_context(const std::string& cert) {
    return tls::context::server(cert, pki().leaf_key);
}
tls::context client_context() { return tls::context::client().load_ca_file(pki().ca); }

std::string pattern(std::size_t size) {
    std::string s(size, '\0');
    for (std::size_t i = 0; i < size; ++i)
        s[i] = static_cast<char>('a' + (i * 7 + i / 4096) % 26);
    return s;
}

template <class Stream>
task<std::string> read_all(Stream& s) {
    std::string out;
    std::array<std::byte, 65536> buf{};
    for (;;) {
        const std::size_t n = co_await s.read_some(buf);
        if (n == 0)
            co_return out;
        out.append(reinterpret_cast<const char*>(buf.data()), n);
    }
}

template <class Stream>
task<std::string> read_exactly(Stream& s, std::size_t size) {
    std::string out;
    std::array<std::byte, 65536> buf{};
    while (out.size() < size) {
        const std::size_t n = co_await s.read_some(buf);
        if (n == 0)
            break;
        out.append(reinterpret_cast<const char*>(buf.data()), n);
    }
    co_return out;
}

/// Accepts one TLS connection and echoes until close_notify, then answers with its own.
task<> tls_echo_once(tcp_listener& l, tls::context ctx) {
    tcp_stream tcp = co_await l.accept();
    tls::stream s = co_await tls::stream::accept(std::move(tcp), ctx);
    std::array<std::byte, 16384> buf{};
    for (;;) {
        const std::size_t n = co_await s.read_some(buf);
        if (n == 0)
            break;
        co_await s.write_all(std::span(buf.data(), n));
    }
    co_await s.shutdown();
    co_await s.close();
}

/// Accepts one connection and tries the server handshake; its outcome is not the test's point.
task<> accept_and_try_handshake(tcp_listener& l, tls::context ctx) {
    tcp_stream tcp = co_await l.accept();
    try {
        tls::stream s = co_await tls::stream::accept(std::move(tcp), ctx);
        co_await s.close();
    } catch (const std::exception&) {
    }
}

/// What the client's handshake against a server presenting `cert` throws ("" if it succeeds).
task<std::string> client_error(const std::string& cert, std::string host,
                               tls::context client = client_context()) {
    tcp_listener l = tcp_listener::bind(address::parse("127.0.0.1:0"));
    auto server = corio::spawn(accept_and_try_handshake(l, server_context(cert)));
    std::string message;
    std::exception_ptr failure; // anything but a TLS error: the server is stopped, then it
                                // is rethrown (the server must not outlive `l`)
    try {
        tcp_stream tcp = co_await tcp_stream::connect(l.local_address());
        tls::stream s = co_await tls::stream::connect(std::move(tcp), client, host);
        co_await s.close();
    } catch (const tls::error& e) {
        message = e.what();
    } catch (...) {
        failure = std::current_exception();
        server.cancel();
    }
    try {
        co_await server;
    } catch (...) {
        if (!failure)
            throw;
    }
    if (failure)
        std::rethrow_exception(failure);
    co_return message;
}

task<> write_then_shutdown(tls::stream& s, const std::string& data) {
    co_await s.write_all(data);
    co_await s.shutdown();
}

} // namespace

CORIO_TEST_CASE("tls: echo round trip with a verified certificate, ALPN and close_notify",
                "[tls]") {
    tcp_listener l = tcp_listener::bind(address::parse("127.0.0.1:0"));
    tls::context server_ctx = server_context(pki().good);
    server_ctx.set_alpn({"h2", "http/1.1"});
    auto server = corio::spawn(tls_echo_once(l, server_ctx));

    tls::context client_ctx = client_context();
    client_ctx.set_alpn({"http/1.1"});
    tcp_stream tcp = co_await tcp_stream::connect(l.local_address());
    tls::stream s = co_await tls::stream::connect(std::move(tcp), client_ctx, "localhost");
    CHECK(s.alpn() == "http/1.1");
    CHECK(s.protocol() == "TLSv1.3");
    CHECK(s.peer_address() == l.local_address());

    // 4 MiB each way at once: the writer and the reader run concurrently on one stream.
    const std::string data = pattern(4 << 20);
    // gather waits for both, also when one fails, so neither outlives `s`.
    auto both = corio::gather(write_then_shutdown(s, data), read_all(s));
    auto done = co_await std::move(both);
    const std::string back = std::get<1>(std::move(done));
    co_await server;
    CHECK(back.size() == data.size());
    CHECK(back == data);
    co_await s.close();
    CHECK_FALSE(s.is_open());
}

CORIO_TEST_CASE("tls: an IP address is checked against the certificate's IP entries", "[tls]") {
    // The good certificate has IP:127.0.0.1; the wrong-host one has only a DNS name.
    const std::string good = co_await client_error(pki().good, "127.0.0.1");
    CHECK(good == "");
    const std::string m = co_await client_error(pki().wrong_host, "127.0.0.1");
    INFO(m);
    CHECK(contains(m, "127.0.0.1:"));
    CHECK(contains(m, "IP address mismatch"));
}

CORIO_TEST_CASE("tls: SNI carries host names but never IP addresses", "[tls]") {
    for (const std::string host : {"localhost", "127.0.0.1"}) {
        tcp_listener l = tcp_listener::bind(address::parse("127.0.0.1:0"));
        std::string seen = "(not set)";
        auto server = corio::spawn([](tcp_listener& l, std::string& seen) -> task<> {
            tls::stream s =
                co_await tls::stream::accept(co_await l.accept(), server_context(pki().good));
            const char* name = SSL_get_servername(s.native_handle(), TLSEXT_NAMETYPE_host_name);
            seen = name != nullptr ? name : "";
            co_await s.close();
        }(l, seen));
        tcp_stream tcp = co_await tcp_stream::connect(l.local_address());
        tls::stream s = co_await tls::stream::connect(std::move(tcp), client_context(), host);
        co_await server;
        CHECK(seen == (host == "localhost" ? "localhost" : ""));
        co_await s.close();
    }
}

CORIO_TEST_CASE("tls: the client rejects each bad certificate with a clear message",
                "[tls][bad-input]") {
    struct bad_case {
        std::string cert;
        std::string reason;
    };
    const std::vector<bad_case> cases = {
        {pki().expired, "certificate verify failed: certificate has expired"},
        {pki().wrong_host, "certificate verify failed: hostname mismatch"},
        {pki().self_signed, "certificate verify failed: self-signed certificate"},
        {pki().untrusted, "certificate verify failed: unable to get local issuer certificate"},
    };
    for (const bad_case& c : cases) {
        const std::string m = co_await client_error(c.cert, "localhost");
        INFO(c.cert << " -> " << m);
        CHECK(contains(m, "corio::tls::stream::connect localhost:"));
        CHECK(contains(m, c.reason));
    }
    // The same certificates pass when verification is off (and only then).
    tls::context trusting = tls::context::client();
    trusting.set_verify_peer(false);
    const std::string unverified = co_await client_error(pki().self_signed, "localhost", trusting);
    CHECK(unverified == "");
}

CORIO_TEST_CASE("tls: verify_result tells the reason apart", "[tls][bad-input]") {
    tcp_listener l = tcp_listener::bind(address::parse("127.0.0.1:0"));
    auto server = corio::spawn(accept_and_try_handshake(l, server_context(pki().expired)));
    long result = X509_V_OK;
    try {
        tls::stream s = co_await tls::stream::connect(
            co_await tcp_stream::connect(l.local_address()), client_context(), "localhost");
    } catch (const tls::error& e) {
        result = e.verify_result();
    }
    co_await server;
    CHECK(result == X509_V_ERR_CERT_HAS_EXPIRED);
}

CORIO_TEST_CASE("tls: a peer that closes during the handshake is a clear error",
                "[tls][bad-input]") {
    tcp_listener l = tcp_listener::bind(address::parse("127.0.0.1:0"));
    auto server = corio::spawn([](tcp_listener& l) -> task<> {
        tcp_stream s = co_await l.accept();
        std::array<std::byte, 64> buf{};
        [[maybe_unused]] const std::size_t n = co_await s.read_some(buf); // part of the hello
        co_await s.close();
    }(l));
    std::string message;
    try {
        tls::stream s = co_await tls::stream::connect(
            co_await tcp_stream::connect(l.local_address()), client_context(), "localhost");
    } catch (const tls::error& e) {
        message = e.what();
    } catch (const std::system_error& e) { // a reset instead of an orderly close
        message = e.what();
    }
    co_await server;
    INFO(message);
    CHECK(contains(message, "localhost:"));
    CHECK((contains(message, "closed the connection during the TLS handshake") ||
           contains(message, "Connection reset by peer")));
}

CORIO_TEST_CASE("tls: a plaintext peer on a TLS port is a clear error", "[tls][bad-input]") {
    tcp_listener l = tcp_listener::bind(address::parse("127.0.0.1:0"));
    auto server = corio::spawn([](tcp_listener& l) -> task<> {
        tcp_stream s = co_await l.accept();
        co_await s.write_all("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        co_await s.shutdown();
        std::array<std::byte, 4096> buf{};
        for (;;) {
            const std::size_t n = co_await s.read_some(buf);
            if (n == 0)
                break;
        }
    }(l));
    std::string message;
    try {
        tls::stream s = co_await tls::stream::connect(
            co_await tcp_stream::connect(l.local_address()), client_context(), "localhost");
    } catch (const tls::error& e) {
        message = e.what();
    }
    co_await server;
    INFO(message);
    CHECK(contains(message, "corio::tls::stream::connect localhost:"));
    CHECK(contains(message, "wrong version number"));
}

CORIO_TEST_CASE("tls: a peer that closes without close_notify is a truncation error",
                "[tls][bad-input]") {
    tcp_listener l = tcp_listener::bind(address::parse("127.0.0.1:0"));
    auto server = corio::spawn([](tcp_listener& l) -> task<> {
        tls::stream s =
            co_await tls::stream::accept(co_await l.accept(), server_context(pki().good));
        co_await s.write_all("partial body");
        // Closes the socket under the TLS session: no close_notify.
        tcp_stream raw{::dup(s.tcp().native_handle())};
        s = tls::stream{};
        co_await raw.close();
    }(l));
    tls::stream s = co_await tls::stream::connect(co_await tcp_stream::connect(l.local_address()),
                                                  client_context(), "localhost");
    co_await server;
    const std::string body = co_await read_exactly(s, 12);
    CHECK(body == "partial body");
    std::string message;
    bool truncated = false;
    try {
        std::array<std::byte, 64> buf{};
        [[maybe_unused]] const std::size_t n = co_await s.read_some(buf);
    } catch (const tls::error& e) {
        message = e.what();
        truncated = e.truncated();
    }
    INFO(message);
    CHECK(truncated);
    CHECK(contains(message, "corio::tls::stream::read localhost:"));
    CHECK(contains(message, "without close_notify (truncated)"));
    // Once failed, the stream refuses further I/O instead of guessing.
    std::string again;
    try {
        co_await s.write_all("more");
    } catch (const tls::error& e) {
        again = e.what();
    }
    CHECK(contains(again, "can no longer be used"));
}

CORIO_TEST_CASE("tls: a read with no data can be cancelled and timed out, losing nothing",
                "[tls][cancel]") {
    tcp_listener l = tcp_listener::bind(address::parse("127.0.0.1:0"));
    corio::event go;
    auto server = corio::spawn([](tcp_listener& l, corio::event& go) -> task<> {
        tls::stream s =
            co_await tls::stream::accept(co_await l.accept(), server_context(pki().good));
        co_await go.wait();
        co_await s.write_all("after the timeout");
        co_await s.shutdown();
        co_await read_all(s);
    }(l, go));
    tls::stream s = co_await tls::stream::connect(co_await tcp_stream::connect(l.local_address()),
                                                  client_context(), "localhost");
    std::array<std::byte, 64> buf{};
    bool timed_out = false;
    try {
        [[maybe_unused]] const std::size_t n = co_await corio::timeout(20ms, s.read_some(buf));
    } catch (const corio::timeout_error&) {
        timed_out = true;
    }
    CHECK(timed_out);
    go.set();
    const std::string after = co_await read_all(s);
    CHECK(after == "after the timeout");
    co_await s.shutdown();
    co_await server;
}

CORIO_TEST_CASE("tls: a key update the peer asks for is answered while reading", "[tls]") {
    // The server requests a key update: the client's read must send its own before it waits,
    // or the server's next read would never see the client's data under the new keys.
    tcp_listener l = tcp_listener::bind(address::parse("127.0.0.1:0"));
    auto server = corio::spawn([](tcp_listener& l) -> task<> {
        tls::stream s =
            co_await tls::stream::accept(co_await l.accept(), server_context(pki().good));
        for (int round = 0; round < 3; ++round) {
            REQUIRE(SSL_key_update(s.native_handle(), SSL_KEY_UPDATE_REQUESTED) == 1);
            co_await s.write_all("ping");
            const std::string pong = co_await read_exactly(s, 4);
            CHECK(pong == "pong");
        }
        co_await s.shutdown();
        co_await read_all(s);
    }(l));
    tls::stream s = co_await tls::stream::connect(co_await tcp_stream::connect(l.local_address()),
                                                  client_context(), "localhost");
    for (int round = 0; round < 3; ++round) {
        const std::string ping = co_await read_exactly(s, 4);
        CHECK(ping == "ping");
        co_await s.write_all("pong");
    }
    const std::string rest = co_await read_all(s);
    CHECK(rest == "");
    co_await s.shutdown();
    co_await server;
}

CORIO_TEST_CASE("tls: 200 failed handshakes leak no descriptor", "[tls][bad-input]") {
    tcp_listener l = tcp_listener::bind(address::parse("127.0.0.1:0"));
    // Warm up: the loop's first connection allocates what it keeps.
    const std::string warm_up = co_await client_error(pki().good, "localhost");
    CHECK(warm_up == "");
    const std::size_t before = open_descriptors();
    const tls::context client = client_context(); // loading the system trust store is slow
    for (int i = 0; i < 200; ++i) {
        const std::string m = co_await client_error(pki().wrong_host, "localhost", client);
        REQUIRE(contains(m, "hostname mismatch"));
    }
    CHECK(open_descriptors() == before);
}

TEST_CASE("tls: contexts name the file they cannot load", "[tls][bad-input]") {
    using corio::test::message_of;
    const std::string missing = message_of<tls::error>(
        [] { (void)tls::context::server("/nonexistent/cert.pem", pki().leaf_key); });
    CHECK(contains(missing, "corio::tls::context::server: cannot load the certificate chain "
                            "'/nonexistent/cert.pem'"));
    const std::string key = message_of<tls::error>(
        [] { (void)tls::context::server(pki().good, "/nonexistent/key.pem"); });
    CHECK(contains(key, "'/nonexistent/key.pem'"));
    // The CA certificate is not a key.
    const std::string wrong =
        message_of<tls::error>([] { (void)tls::context::server(pki().good, pki().ca); });
    CHECK(contains(wrong, "'" + pki().ca + "'"));
    const std::string ca = message_of<tls::error>(
        [] { (void)tls::context::client().load_ca_file("/nonexistent/ca.pem"); });
    CHECK(contains(ca, "'/nonexistent/ca.pem'"));
    const std::string alpn =
        message_of<tls::error>([] { (void)tls::context::client().set_alpn({""}); });
    CHECK(contains(alpn, "1 to 255 characters"));
}

// --- real peers: openssl s_client and s_server ----------------------------------------------

namespace {

/// The port `openssl s_server` prints once it listens ("ACCEPT 127.0.0.1:port").
task<std::uint16_t> accept_port(corio::test::subprocess& server) {
    const std::string line = co_await server.read_line_starting("ACCEPT ");
    const std::size_t colon = line.rfind(':');
    INFO(line << server.errors());
    REQUIRE(colon != std::string::npos);
    co_return static_cast<std::uint16_t>(std::stoi(line.substr(colon + 1)));
}

} // namespace

CORIO_TEST_CASE("tls: the corio server talks to openssl s_client", "[tls][interop]") {
    tcp_listener l = tcp_listener::bind(address::parse("127.0.0.1:0"));
    auto server = corio::spawn(tls_echo_once(l, server_context(pki().good)));
    corio::test::subprocess client{"openssl",
                                   "s_client",
                                   "-connect",
                                   l.local_address().to_string(),
                                   "-CAfile",
                                   pki().ca,
                                   "-verify_return_error",
                                   "-verify_hostname",
                                   "localhost",
                                   "-servername",
                                   "localhost",
                                   "-quiet",
                                   "-no_ign_eof"};
    co_await client.write("hello from s_client\n");
    const std::string echoed = co_await client.read_until("\n");
    INFO(client.errors());
    CHECK(echoed == "hello from s_client\n");
    client.close_stdin(); // s_client sends close_notify at the end of its input
    const std::string all = co_await client.read_until("never printed");
    CHECK(all == echoed);
    co_await server;
}

CORIO_TEST_CASE("tls: the corio client talks to openssl s_server", "[tls][interop]") {
    corio::test::subprocess server{"openssl", "s_server", "-accept", "127.0.0.1:0",
                                   "-cert",   pki().good, "-key",    pki().leaf_key,
                                   "-rev",    "-naccept", "1"};
    const std::uint16_t port = co_await accept_port(server);
    tls::stream s = co_await tls::stream::connect(
        co_await tcp_stream::connect(address::ipv4_loopback(port)), client_context(), "localhost");
    co_await s.write_all("hello s_server\n");
    // -rev answers each line reversed.
    const std::string back = co_await read_exactly(s, 15);
    INFO(server.errors());
    CHECK(back == "revres_s olleh\n");
    co_await s.close();
}

CORIO_TEST_CASE("tls: a TLS 1.1-only server is refused", "[tls][interop][bad-input]") {
    corio::test::subprocess server{"openssl",
                                   "s_server",
                                   "-accept",
                                   "127.0.0.1:0",
                                   "-cert",
                                   pki().good,
                                   "-key",
                                   pki().leaf_key,
                                   "-tls1_1",
                                   "-cipher",
                                   "DEFAULT:@SECLEVEL=0",
                                   "-naccept",
                                   "1"};
    const std::uint16_t port = co_await accept_port(server);
    std::string message;
    try {
        tls::stream s = co_await tls::stream::connect(
            co_await tcp_stream::connect(address::ipv4_loopback(port)), client_context(),
            "localhost");
    } catch (const tls::error& e) {
        message = e.what();
    }
    INFO(message);
    CHECK(contains(message, "corio::tls::stream::connect localhost:" + std::to_string(port)));
    CHECK((contains(message, "protocol version") || contains(message, "unsupported protocol")));
}

// SPDX-License-Identifier: MIT
// The default cipher policy (Mozilla's "intermediate") and its setters, against real peers:
// openssl s_client and s_server from the openssl program.
#include "../support/corio_test.hpp"
#include "../support/subprocess.hpp"
#include "../support/test_pki.hpp"

#include <corio/net/tcp_listener.hpp>
#include <corio/net/tcp_stream.hpp>
#include <corio/tls/context.hpp>
#include <corio/tls/stream.hpp>

#include <openssl/rsa.h>
#include <openssl/ssl.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using corio::task;
using corio::net::address;
using corio::net::tcp_listener;
using corio::net::tcp_stream;
using corio::test::contains;
using corio::test::message_of;
using corio::test::pki;
namespace tls = corio::tls;

namespace {

/// The openssl program's extra options. A braced list of string literals inside a co_await
/// expression does not compile with GCC 12 ("array used as initializer"): build it here.
template <class... Args>
std::vector<std::string> options(const Args&... args) {
    return {std::string(args)...};
}

/// A bound on each scenario: a peer that never answers fails the test instead of hanging it.
constexpr auto scenario_limit = 30s;

bool openssl_installed() {
    const char* path = std::getenv("PATH");
    std::string dirs = path != nullptr ? path : "/usr/bin:/bin";
    std::size_t begin = 0;
    while (begin <= dirs.size()) {
        std::size_t end = dirs.find(':', begin);
        if (end == std::string::npos)
            end = dirs.size();
        if (::access((dirs.substr(begin, end - begin) + "/openssl").c_str(), X_OK) == 0)
            return true;
        begin = end + 1;
    }
    return false;
}

/// An RSA leaf (self-signed, DNS:localhost and IP:127.0.0.1): the test PKI's keys are P-256,
/// and the suites with RSA key exchange or authentication (AES128-SHA256,
/// ECDHE-RSA-AES128-GCM-SHA256) need an RSA certificate to be negotiable at all.
struct rsa_leaf {
    std::string cert;
    std::string key;
};
const rsa_leaf& rsa() {
    static const rsa_leaf leaf = [] {
        namespace d = corio::test::pki_detail;
        const d::key_ptr key{EVP_RSA_gen(2048), &EVP_PKEY_free};
        d::check(key != nullptr, "RSA key generation");
        constexpr long day = 24 * 3600;
        const d::cert_ptr cert = d::make_cert(key.get(), "localhost", "DNS:localhost,IP:127.0.0.1",
                                              nullptr, key.get(), -day, day, false, 20);
        rsa_leaf made{pki().dir + "/rsa.pem", pki().dir + "/rsa.key"};
        d::write_cert(made.cert, cert.get());
        d::write_key(made.key, key.get());
        return made;
    }();
    return leaf;
}

tls::context ec_server() { return tls::context::server(pki().good, pki().leaf_key); }
tls::context rsa_server() { return tls::context::server(rsa().cert, rsa().key); }
tls::context ec_client() { return tls::context::client().load_ca_file(pki().ca); }
tls::context rsa_client() { return tls::context::client().load_ca_file(rsa().cert); }

/// What one handshake came to, as the corio side saw it.
struct handshake {
    std::string protocol; // "TLSv1.2", ...; "" when it failed
    std::string cipher;   // OpenSSL's name of the negotiated suite
    std::string error;    // the tls::error's message when it failed
    std::string peer;     // the openssl program's output, for INFO
};

handshake succeeded(const tls::stream& s) {
    return {std::string(s.protocol()),
            SSL_CIPHER_get_name(SSL_get_current_cipher(s.native_handle())), "", ""};
}

/// A corio server with `ctx` answers one `openssl s_client` run with the `extra` options.
task<handshake> serve_s_client(tls::context ctx, std::vector<std::string> extra) {
    tcp_listener l = tcp_listener::bind(address::parse("127.0.0.1:0"));
    std::vector<std::string> argv{"openssl",     "s_client",
                                  "-connect",    l.local_address().to_string(),
                                  "-servername", "localhost"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    corio::test::subprocess client{argv};
    client.close_stdin(); // s_client sends close_notify and exits at the end of its input
    handshake h;
    try {
        tls::stream s = co_await tls::stream::accept(co_await l.accept(), ctx);
        h = succeeded(s);
        co_await s.close();
    } catch (const tls::error& e) {
        h.error = e.what();
    }
    co_await client.read_until("never printed"); // until s_client exits
    h.peer = client.errors();
    co_return h;
}

/// The port `openssl s_server` prints once it listens ("ACCEPT 127.0.0.1:port").
task<std::uint16_t> accept_port(corio::test::subprocess& server) {
    const std::string line = co_await server.read_line_starting("ACCEPT ");
    const std::size_t colon = line.rfind(':');
    INFO(line << server.errors());
    REQUIRE(colon != std::string::npos);
    co_return static_cast<std::uint16_t>(std::stoi(line.substr(colon + 1)));
}

/// A corio client with `ctx` connects to an `openssl s_server` run with the `extra` options.
task<handshake> connect_to_s_server(tls::context ctx, std::vector<std::string> extra) {
    std::vector<std::string> argv{"openssl", "s_server", "-accept", "127.0.0.1:0", "-naccept", "1"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    corio::test::subprocess server{argv};
    const std::uint16_t port = co_await accept_port(server);
    handshake h;
    try {
        tls::stream s = co_await tls::stream::connect(
            co_await tcp_stream::connect(address::ipv4_loopback(port)), ctx, "localhost");
        h = succeeded(s);
        co_await s.close();
    } catch (const tls::error& e) {
        h.error = e.what();
    }
    h.peer = server.errors();
    co_return h;
}

/// A corio client with `client` against a corio server with `server`.
task<handshake> corio_pair(tls::context server, tls::context client) {
    tcp_listener l = tcp_listener::bind(address::parse("127.0.0.1:0"));
    auto accepted = corio::spawn([](tcp_listener& l, tls::context ctx) -> task<> {
        tcp_stream tcp = co_await l.accept();
        try {
            tls::stream s = co_await tls::stream::accept(std::move(tcp), ctx);
            co_await s.close();
        } catch (const tls::error&) {
        }
    }(l, server));
    handshake h;
    try {
        tls::stream s = co_await tls::stream::connect(
            co_await tcp_stream::connect(l.local_address()), client, "localhost");
        h = succeeded(s);
        co_await s.close();
    } catch (const tls::error& e) {
        h.error = e.what();
    }
    co_await accepted;
    co_return h;
}

/// The TLS 1.2 (`tls13 == false`) or TLS 1.3 suites a context offers, ':'-separated.
std::string offered(const tls::context& ctx, bool tls13) {
    std::string names;
    const STACK_OF(SSL_CIPHER)* ciphers = SSL_CTX_get_ciphers(ctx.native_handle());
    for (int i = 0; i < sk_SSL_CIPHER_num(ciphers); ++i) {
        const SSL_CIPHER* c = sk_SSL_CIPHER_value(ciphers, i);
        if ((SSL_CIPHER_get_kx_nid(c) == NID_kx_any) != tls13)
            continue;
        names += (names.empty() ? "" : ":") + std::string(SSL_CIPHER_get_name(c));
    }
    return names;
}

} // namespace

// --- the defaults -------------------------------------------------------------------------------

TEST_CASE("tls policy: client and server contexts offer exactly the intermediate suites",
          "[tls][policy]") {
    for (const tls::context& ctx : {tls::context::client(), ec_server()}) {
        CHECK(offered(ctx, false) == tls::context::default_ciphers);
        CHECK(offered(ctx, true) == tls::context::default_ciphersuites);
        // Client order: the server does not impose its own.
        CHECK((SSL_CTX_get_options(ctx.native_handle()) & SSL_OP_CIPHER_SERVER_PREFERENCE) == 0);
    }
}

CORIO_TEST_CASE("tls policy: the server refuses CBC and RSA key exchange from openssl s_client",
                "[tls][policy][interop]") {
    if (!openssl_installed())
        CORIO_CO_SKIP("the openssl program is not installed");
    struct refused_case {
        tls::context ctx;
        std::string cipher;
    };
    const std::vector<refused_case> cases = {
        {rsa_server(), "AES128-SHA256"},             // RSA key exchange, CBC
        {rsa_server(), "ECDHE-RSA-AES128-SHA256"},   // forward secret, but CBC
        {rsa_server(), "ECDHE-RSA-AES256-SHA"},      // CBC with a SHA-1 MAC
        {ec_server(), "ECDHE-ECDSA-AES128-SHA256"},  // the same with the ECDSA certificate
        {rsa_server(), "DHE-RSA-AES128-GCM-SHA256"}, // Mozilla's DHE entries are left out
    };
    for (const refused_case& c : cases) {
        const handshake h = co_await corio::timeout(
            scenario_limit, serve_s_client(c.ctx, options("-tls1_2", "-cipher", c.cipher)));
        INFO(c.cipher << " -> " << h.cipher << h.error << "\n" << h.peer);
        CHECK(h.protocol == "");
        CHECK(contains(h.error, "corio::tls::stream::accept"));
        CHECK(contains(h.error, "no shared cipher"));
    }
}

CORIO_TEST_CASE("tls policy: the server accepts ECDHE with AES-GCM or ChaCha20 from s_client",
                "[tls][policy][interop]") {
    if (!openssl_installed())
        CORIO_CO_SKIP("the openssl program is not installed");
    struct accepted_case {
        tls::context ctx;
        std::string cipher;
    };
    const std::vector<accepted_case> cases = {
        {rsa_server(), "ECDHE-RSA-AES128-GCM-SHA256"},
        {rsa_server(), "ECDHE-RSA-AES256-GCM-SHA384"},
        {rsa_server(), "ECDHE-RSA-CHACHA20-POLY1305"},
        {ec_server(), "ECDHE-ECDSA-AES128-GCM-SHA256"},
        {ec_server(), "ECDHE-ECDSA-CHACHA20-POLY1305"},
    };
    for (const accepted_case& c : cases) {
        const handshake h = co_await corio::timeout(
            scenario_limit, serve_s_client(c.ctx, options("-tls1_2", "-cipher", c.cipher)));
        INFO(c.cipher << " -> " << h.error << "\n" << h.peer);
        CHECK(h.protocol == "TLSv1.2");
        CHECK(h.cipher == c.cipher);
    }
}

CORIO_TEST_CASE("tls policy: the server accepts TLS 1.3 from s_client with each default suite",
                "[tls][policy][interop]") {
    if (!openssl_installed())
        CORIO_CO_SKIP("the openssl program is not installed");
    for (const std::string suite :
         {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"}) {
        const handshake h = co_await corio::timeout(
            scenario_limit,
            serve_s_client(ec_server(), options("-tls1_3", "-ciphersuites", suite)));
        INFO(suite << " -> " << h.error << "\n" << h.peer);
        CHECK(h.protocol == "TLSv1.3");
        CHECK(h.cipher == suite);
    }
}

CORIO_TEST_CASE("tls policy: the server agrees on X25519, P-256 or P-384 only",
                "[tls][policy][interop]") {
    if (!openssl_installed())
        CORIO_CO_SKIP("the openssl program is not installed");
    for (const std::string group : {"X25519", "P-256", "P-384"}) {
        const handshake h = co_await corio::timeout(
            scenario_limit, serve_s_client(ec_server(), options("-tls1_3", "-groups", group)));
        INFO(group << " -> " << h.error << "\n" << h.peer);
        CHECK(h.protocol == "TLSv1.3");
    }
    for (const std::string group : {"P-521", "ffdhe2048"}) {
        const handshake h = co_await corio::timeout(
            scenario_limit, serve_s_client(ec_server(), options("-tls1_3", "-groups", group)));
        INFO(group << " -> " << h.protocol << h.error << "\n" << h.peer);
        CHECK(h.protocol == "");
        CHECK(contains(h.error, "corio::tls::stream::accept"));
    }
}

CORIO_TEST_CASE("tls policy: the client refuses an s_server that offers only AES128-SHA256",
                "[tls][policy][interop]") {
    if (!openssl_installed())
        CORIO_CO_SKIP("the openssl program is not installed");
    for (const std::string cipher : {"AES128-SHA256", "ECDHE-RSA-AES128-SHA256"}) {
        const handshake h = co_await corio::timeout(
            scenario_limit,
            connect_to_s_server(rsa_client(), options("-cert", rsa().cert, "-key", rsa().key,
                                                      "-tls1_2", "-cipher", cipher)));
        INFO(cipher << " -> " << h.cipher << "\n" << h.peer);
        CHECK(h.protocol == "");
        CHECK(contains(h.error, "corio::tls::stream::connect localhost:"));
        CHECK(contains(h.error, "handshake failure"));
    }
}

CORIO_TEST_CASE("tls policy: the client agrees with an s_server on ECDHE-RSA-AES128-GCM-SHA256",
                "[tls][policy][interop]") {
    if (!openssl_installed())
        CORIO_CO_SKIP("the openssl program is not installed");
    const handshake h = co_await corio::timeout(
        scenario_limit,
        connect_to_s_server(rsa_client(), options("-cert", rsa().cert, "-key", rsa().key, "-tls1_2",
                                                  "-cipher", "ECDHE-RSA-AES128-GCM-SHA256")));
    INFO(h.error << "\n" << h.peer);
    CHECK(h.protocol == "TLSv1.2");
    CHECK(h.cipher == "ECDHE-RSA-AES128-GCM-SHA256");
}

// --- changing the policy ------------------------------------------------------------------------

CORIO_TEST_CASE("tls policy: set_ciphers restricts a server to one suite",
                "[tls][policy][interop]") {
    if (!openssl_installed())
        CORIO_CO_SKIP("the openssl program is not installed");
    tls::context one = ec_server();
    one.set_ciphers("ECDHE-ECDSA-AES256-GCM-SHA384");
    CHECK(offered(one, false) == "ECDHE-ECDSA-AES256-GCM-SHA384");
    CHECK(offered(one, true) == tls::context::default_ciphersuites); // TLS 1.3 untouched
    // s_client offers its whole default list: the server's one suite is what it gets.
    const handshake any =
        co_await corio::timeout(scenario_limit, serve_s_client(one, options("-tls1_2")));
    INFO(any.error << "\n" << any.peer);
    CHECK(any.cipher == "ECDHE-ECDSA-AES256-GCM-SHA384");
    // A suite of the default list is no longer enough.
    const handshake other = co_await corio::timeout(
        scenario_limit,
        serve_s_client(one, options("-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256")));
    CHECK(other.protocol == "");
    CHECK(contains(other.error, "no shared cipher"));
}

CORIO_TEST_CASE("tls policy: the default list can be extended with a suite it lacks",
                "[tls][policy][interop]") {
    if (!openssl_installed())
        CORIO_CO_SKIP("the openssl program is not installed");
    tls::context wider = ec_server();
    wider.set_ciphers(std::string(tls::context::default_ciphers) + ":ECDHE-ECDSA-AES128-SHA256");
    const handshake h = co_await corio::timeout(
        scenario_limit,
        serve_s_client(wider, options("-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA256")));
    INFO(h.error << "\n" << h.peer);
    CHECK(h.cipher == "ECDHE-ECDSA-AES128-SHA256");
    // Mozilla's DHE entries, for the clients that need them.
    tls::context dhe = rsa_server();
    dhe.set_ciphers(std::string(tls::context::default_ciphers) + ":DHE-RSA-AES128-GCM-SHA256");
    const handshake d = co_await corio::timeout(
        scenario_limit,
        serve_s_client(dhe, options("-tls1_2", "-cipher", "DHE-RSA-AES128-GCM-SHA256")));
    INFO(d.error << "\n" << d.peer);
    CHECK(d.cipher == "DHE-RSA-AES128-GCM-SHA256");
}

CORIO_TEST_CASE("tls policy: set_ciphers, set_ciphersuites and set_groups steer a client",
                "[tls][policy]") {
    tls::context tls12 = ec_client();
    tls12.set_versions(tls::version::tls1_2, tls::version::tls1_2)
        .set_ciphers("ECDHE-ECDSA-CHACHA20-POLY1305");
    const handshake a = co_await corio::timeout(scenario_limit, corio_pair(ec_server(), tls12));
    INFO(a.error);
    CHECK(a.protocol == "TLSv1.2");
    CHECK(a.cipher == "ECDHE-ECDSA-CHACHA20-POLY1305");

    tls::context tls13 = ec_client();
    tls13.set_ciphersuites("TLS_AES_256_GCM_SHA384").set_groups("P-384");
    const handshake b = co_await corio::timeout(scenario_limit, corio_pair(ec_server(), tls13));
    INFO(b.error);
    CHECK(b.protocol == "TLSv1.3");
    CHECK(b.cipher == "TLS_AES_256_GCM_SHA384");

    // No group in common with the server's defaults: no handshake.
    tls::context p521 = ec_client();
    p521.set_groups("P-521");
    const handshake c = co_await corio::timeout(scenario_limit, corio_pair(ec_server(), p521));
    CHECK(c.protocol == "");
    CHECK(contains(c.error, "corio::tls::stream::connect localhost:"));
}

TEST_CASE("tls policy: an unknown or empty list is an error naming it",
          "[tls][policy][bad-input]") {
    using tls::context;
    const auto ciphers = [](std::string list) {
        return message_of<tls::error>([&] { (void)context::client().set_ciphers(list); });
    };
    const auto suites = [](std::string list) {
        return message_of<tls::error>([&] { (void)context::client().set_ciphersuites(list); });
    };
    const auto groups = [](std::string list) {
        return message_of<tls::error>([&] { (void)context::client().set_groups(list); });
    };

    const std::string unknown = ciphers("NOT-A-CIPHER");
    CHECK(contains(unknown, "corio::tls::context::client::set_ciphers: 'NOT-A-CIPHER' is not a "
                            "TLS 1.2 cipher: no cipher match"));
    // OpenSSL alone would skip an unknown entry in a list that has a known one.
    const std::string typo = ciphers("ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA265");
    CHECK(contains(typo, "'ECDHE-RSA-AES128-GCM-SHA265' in 'ECDHE-RSA-AES128-GCM-SHA256:"
                         "ECDHE-RSA-AES128-GCM-SHA265' is not a TLS 1.2 cipher"));
    CHECK(contains(ciphers("TLS_AES_128_GCM_SHA256"), "is not a TLS 1.2 cipher"));
    CHECK(contains(ciphers("ECDHE-RSA-AES128-GCM-SHA256:!ECDHE"),
                   "'ECDHE-RSA-AES128-GCM-SHA256:!ECDHE' selects no TLS 1.2 cipher"));
    CHECK(contains(ciphers(""), "set_ciphers: the TLS 1.2 cipher list is empty"));

    CHECK(contains(suites("TLS_BOGUS_SHA256"),
                   "corio::tls::context::client::set_ciphersuites: 'TLS_BOGUS_SHA256' is not a "
                   "TLS 1.3 cipher suite"));
    CHECK(contains(suites("TLS_AES_128_GCM_SHA256:ECDHE-RSA-AES128-GCM-SHA256"),
                   "'ECDHE-RSA-AES128-GCM-SHA256' in 'TLS_AES_128_GCM_SHA256:"
                   "ECDHE-RSA-AES128-GCM-SHA256' is not a TLS 1.3 cipher suite"));
    CHECK(contains(suites(""), "set_ciphersuites: the TLS 1.3 cipher suite list is empty"));

    CHECK(contains(groups("X25519:P-999"),
                   "corio::tls::context::client::set_groups: cannot set the groups "
                   "'X25519:P-999'"));
    CHECK(contains(groups(""), "set_groups: the group list is empty"));

    // A failed setter leaves the context as it was.
    context ctx = ec_server();
    CHECK_THROWS_AS(ctx.set_ciphers("ECDHE-RSA-AES128-GCM-SHA256:!ECDHE"), tls::error);
    CHECK_THROWS_AS(ctx.set_ciphersuites("TLS_AES_128_GCM_SHA256:TLS_BOGUS"), tls::error);
    CHECK(offered(ctx, false) == context::default_ciphers);
    CHECK(offered(ctx, true) == context::default_ciphersuites);
    // Excluding what this OpenSSL lacks (RC4 is gone from OpenSSL 3's default provider) is fine.
    CHECK_NOTHROW(ctx.set_ciphers("ECDHE+AESGCM:!aNULL:!RC4:@STRENGTH"));
}

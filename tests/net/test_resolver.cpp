// SPDX-License-Identifier: MIT
// Name resolution against a real DNS server (dnsmasq, started by each test on 127.0.0.1 with
// records the test writes), and the getaddrinfo fallback, which every build compiles and tests
// directly.
#include "../support/corio_test.hpp"

#include <corio/net/resolver.hpp>
#include <corio/net/tcp_listener.hpp>
#include <corio/net/tcp_stream.hpp>

#include <dirent.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <semaphore>
#include <sstream>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using corio::task;
using corio::net::address;
using corio::net::resolve_errc;
using corio::net::resolve_error;
using corio::net::resolver;
using corio::net::resolver_options;
using corio::net::tcp_listener;
using corio::net::tcp_stream;
using corio::test::contains;

extern char** environ; // NOLINT: POSIX, for posix_spawn

namespace {

[[maybe_unused]] std::size_t open_descriptors() {
    std::size_t n = 0;
    if (DIR* d = ::opendir("/proc/self/fd")) {
        while (::readdir(d) != nullptr)
            ++n;
        ::closedir(d);
    }
    return n;
}

/// A UDP socket on 127.0.0.1 that nobody reads: a DNS server that never answers.
class silent_server {
public:
    silent_server() : fd_(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) {
        REQUIRE(fd_ >= 0);
        const address any = address::ipv4_loopback(0);
        REQUIRE(::bind(fd_, any.data(), any.size()) == 0);
        sockaddr_storage ss{};
        socklen_t len = sizeof ss;
        REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&ss), &len) == 0);
        at_ = address::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), len);
    }
    silent_server(const silent_server&) = delete;
    silent_server& operator=(const silent_server&) = delete;
    ~silent_server() { ::close(fd_); }
    [[nodiscard]] address at() const { return at_; }

private:
    int fd_;
    address at_;
};

/// True when nothing is bound to 127.0.0.1:`port` for `type` (SOCK_DGRAM, SOCK_STREAM).
bool port_free(std::uint16_t port, int type) {
    const int fd = ::socket(AF_INET, type | SOCK_CLOEXEC, 0);
    const address a = address::ipv4_loopback(port);
    const bool ok = ::bind(fd, a.data(), a.size()) == 0;
    ::close(fd);
    return ok;
}

/// A port free for UDP and TCP on 127.0.0.1 (free when asked; dnsmasq takes it just after).
std::uint16_t free_port() {
    for (;;) {
        const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        const address any = address::ipv4_loopback(0);
        REQUIRE(::bind(fd, any.data(), any.size()) == 0);
        sockaddr_storage ss{};
        socklen_t len = sizeof ss;
        REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0);
        ::close(fd);
        const std::uint16_t port =
            address::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), len).port();
        if (port_free(port, SOCK_STREAM))
            return port;
    }
}

/// A dnsmasq serving the test's records on 127.0.0.1, with every query logged to a file.
/// Started by the constructor, stopped (SIGTERM, waitpid) by the destructor.
class dns_server {
public:
    static const char* program() {
        for (const char* p : {"/usr/sbin/dnsmasq", "/usr/bin/dnsmasq", "/sbin/dnsmasq"})
            if (::access(p, X_OK) == 0)
                return p;
        return nullptr;
    }

    dns_server() {
        std::string dir_template = "/tmp/corio-dns-XXXXXX";
        REQUIRE(::mkdtemp(dir_template.data()) != nullptr);
        dir_ = dir_template;
        log_ = dir_ + "/queries.log";
        for (int attempt = 0; attempt < 10; ++attempt) {
            port_ = free_port();
            if (start())
                return;
        }
        FAIL("dnsmasq did not start");
    }
    dns_server(const dns_server&) = delete;
    dns_server& operator=(const dns_server&) = delete;
    ~dns_server() {
        stop();
        std::remove(log_.c_str());
        ::rmdir(dir_.c_str());
    }

    [[nodiscard]] address at() const { return address::ipv4_loopback(port_); }

    /// Options that send every query to this server only, with no search domains.
    [[nodiscard]] resolver_options options() const {
        resolver_options o;
        o.servers = {at()};
        o.search_domains = std::vector<std::string>{};
        o.timeout = 2s;
        o.tries = 3;
        return o;
    }

    /// How many queries (A and AAAA) dnsmasq has logged for `name`. dnsmasq logs a query
    /// before it answers it, so once a lookup has its answer, its queries are counted.
    [[nodiscard]] int queries_for(const std::string& name) const {
        std::ifstream in(log_);
        int n = 0;
        for (std::string line; std::getline(in, line);)
            if (contains(line, "query[") && contains(line, "] " + name + " from "))
                ++n;
        return n;
    }

private:
    bool start() {
        std::vector<std::string> args = {
            program(),
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--pid-file=",
            "--listen-address=127.0.0.1",
            "--bind-interfaces",
            "--port=" + std::to_string(port_),
            "--log-queries",
            "--log-facility=" + log_,
            "--local=/corio.test/", // NXDOMAIN for the names below that are not listed
            "--address=/a.corio.test/10.1.2.3",
            "--host-record=six.corio.test,::1",
            "--host-record=both.corio.test,10.0.0.1,fd00::1",
            "--host-record=multi.corio.test,127.0.0.2",
            "--host-record=multi.corio.test,127.0.0.1",
            "--host-record=ttl.corio.test,10.0.0.7,30",
            "--address=/bulk.corio.test/10.9.9.9",
            "--txt-record=text.corio.test,no address here",
        };
        // More A records than fit in a 512-byte UDP answer: truncated, asked again over TCP.
        for (int i = 1; i <= 40; ++i)
            args.push_back("--host-record=big.corio.test,10.0.1." + std::to_string(i));
        std::vector<char*> argv;
        for (std::string& a : args)
            argv.push_back(a.data());
        argv.push_back(nullptr);
        REQUIRE(::posix_spawn(&pid_, program(), nullptr, nullptr, argv.data(), environ) == 0);
        // Ready once its UDP port is taken; gone if it exited (the port was taken meanwhile).
        for (int i = 0; i < 2000; ++i) {
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                return false;
            }
            if (!port_free(port_, SOCK_DGRAM))
                return true;
            std::this_thread::sleep_for(5ms);
        }
        stop();
        return false;
    }

    void stop() {
        if (pid_ <= 0)
            return;
        ::kill(pid_, SIGTERM);
        int status = 0;
        ::waitpid(pid_, &status, 0);
        pid_ = -1;
    }

    std::string dir_;
    std::string log_;
    pid_t pid_ = -1;
    std::uint16_t port_ = 0;
};

[[maybe_unused]] std::vector<std::string> ips(const std::vector<address>& list) {
    std::vector<std::string> out;
    for (const address& a : list)
        out.push_back(a.ip_string());
    return out;
}

[[maybe_unused]] std::vector<std::string> sorted(std::vector<std::string> v) {
    std::sort(v.begin(), v.end());
    return v;
}

bool is_loopback(const address& a) {
    if (a.is_v4())
        return a.ip_string().rfind("127.", 0) == 0;
    return a.ip_string() == "::1";
}

} // namespace

/// A coroutine test case with a dnsmasq of its own (`dns`), skipped where dnsmasq is missing.
#define DNS_TEST_CASE(name, tags) DNS_TEST_CASE_IMPL(name, tags, __COUNTER__)
#define DNS_TEST_CASE_IMPL(name, tags, n) DNS_TEST_CASE_IMPL2(name, tags, n)
#define DNS_TEST_CASE_IMPL2(name, tags, n)                                                         \
    static ::corio::task<> dns_test_body_##n(dns_server& dns);                                     \
    TEST_CASE(name, tags) {                                                                        \
        if (dns_server::program() == nullptr)                                                      \
            CORIO_SKIP("dnsmasq is not installed (Debian: dnsmasq-base)");                         \
        dns_server dns;                                                                            \
        ::corio::test::run(dns_test_body_##n(dns));                                                \
    }                                                                                              \
    static ::corio::task<> dns_test_body_##n([[maybe_unused]] dns_server& dns)

// --- answers -------------------------------------------------------------------------------

#if defined(CORIO_HAVE_CARES)

DNS_TEST_CASE("resolver: A, AAAA and several A records come back from a DNS server",
              "[net][resolver][dns]") {
    resolver r{dns.options()};
    const std::vector<address> a = co_await r.resolve("a.corio.test", 80);
    REQUIRE(a.size() == 1);
    CHECK(a[0] == address::parse("10.1.2.3:80"));

    const std::vector<address> six = co_await r.resolve("six.corio.test", 443);
    REQUIRE(six.size() == 1);
    CHECK(six[0] == address::parse("[::1]:443"));

    const std::vector<address> both = co_await r.resolve("both.corio.test", 8080);
    CHECK(sorted(ips(both)) == std::vector<std::string>{"10.0.0.1", "fd00::1"});
    for (const address& x : both)
        CHECK(x.port() == 8080);

    const std::vector<address> multi = co_await r.resolve("multi.corio.test", 1);
    CHECK(sorted(ips(multi)) == std::vector<std::string>{"127.0.0.1", "127.0.0.2"});

    // DNS names do not care about case.
    const std::vector<address> upper = co_await r.resolve("A.Corio.TEST", 80);
    CHECK(ips(upper) == std::vector<std::string>{"10.1.2.3"});
}

DNS_TEST_CASE("resolver: search domains from the options complete short names",
              "[net][resolver][dns]") {
    resolver_options o = dns.options();
    o.search_domains = std::vector<std::string>{"nowhere.corio.test", "corio.test"};
    resolver r{o};
    const std::vector<address> a = co_await r.resolve("a", 80);
    CHECK(ips(a) == std::vector<std::string>{"10.1.2.3"});
}

DNS_TEST_CASE("resolver: an answer too large for UDP comes back over TCP", "[net][resolver][dns]") {
    resolver r{dns.options()};
    const std::vector<address> big = co_await r.resolve("big.corio.test", 80);
    CHECK(big.size() == 40);
    // A and AAAA over UDP, then A again over TCP (the AAAA answer, empty, was not truncated).
    CHECK(dns.queries_for("big.corio.test") == 3);
    const std::size_t before = open_descriptors();
    co_await corio::yield_now(); // idle: c-ares's sockets stay open, no poll is left armed
    CHECK(open_descriptors() == before);
}

#endif // CORIO_HAVE_CARES

CORIO_TEST_CASE("resolver: numeric hosts skip the lookup and need no server", "[net][resolver]") {
    // Every lookup this resolver made would time out: the numeric hosts make none.
    silent_server silent;
    resolver_options o;
#if defined(CORIO_HAVE_CARES)
    o.servers = {silent.at()};
    o.timeout = 10ms;
    o.tries = 1;
#endif
    resolver r{o};
    const std::vector<address> v4 = co_await r.resolve("10.0.0.1", 80);
    CHECK(v4 == std::vector<address>{address::parse("10.0.0.1:80")});
    const std::vector<address> v6 = co_await r.resolve("::1", 443);
    CHECK(v6 == std::vector<address>{address::parse("[::1]:443")});
    const std::vector<address> bracketed = co_await r.resolve("[2001:db8::7]", 8443);
    CHECK(bracketed == std::vector<address>{address::parse("[2001:db8::7]:8443")});
    const std::vector<address> scoped = co_await r.resolve("fe80::1%1", 22);
    REQUIRE(scoped.size() == 1);
    CHECK(scoped[0].ip_string() == "fe80::1%1");
    // The loop's own resolver does the same.
    const std::vector<address> free_fn = co_await corio::net::resolve("127.0.0.1", 9);
    CHECK(free_fn == std::vector<address>{address::parse("127.0.0.1:9")});
    CHECK(r.cache_size() == 0);
}

namespace {
task<std::string> resolve_error_of(resolver& r, std::string host, std::uint16_t port,
                                   resolve_errc expected) {
    try {
        const std::vector<address> got = co_await r.resolve(host, port);
        FAIL("resolved " << host << " to " << got.size() << " address(es)");
    } catch (const resolve_error& e) {
        CHECK(e.code() == expected);
        CHECK(e.host() == host);
        CHECK(e.port() == port);
        co_return e.what();
    }
    co_return "";
}
} // namespace

CORIO_TEST_CASE("resolver: malformed numeric hosts are bad names, not lookups",
                "[net][resolver][bad-input]") {
    resolver r;
    std::string what = co_await resolve_error_of(r, "", 80, resolve_errc::bad_name);
    CHECK(what == "corio::net::resolve :80: empty host name");
    what = co_await resolve_error_of(r, "[::1", 80, resolve_errc::bad_name);
    CHECK(contains(what, "corio::net::resolve [::1:80: unbalanced brackets"));
    what = co_await resolve_error_of(r, "[10.0.0.1]", 80, resolve_errc::bad_name);
    CHECK(contains(what, "brackets must hold an IPv6 address"));
    what = co_await resolve_error_of(r, "1:2:3", 80, resolve_errc::bad_name);
    CHECK(contains(what, "not a valid IPv6 address"));
}

// --- errors ----------------------------------------------------------------------------------

#if defined(CORIO_HAVE_CARES)

DNS_TEST_CASE("resolver: NXDOMAIN and a name without addresses name the host and the reason",
              "[net][resolver][dns][bad-input]") {
    resolver r{dns.options()};
    std::string what =
        co_await resolve_error_of(r, "missing.corio.test", 80, resolve_errc::not_found);
    CHECK(what == "corio::net::resolve missing.corio.test:80: host not found (NXDOMAIN)");
    what = co_await resolve_error_of(r, "text.corio.test", 443, resolve_errc::no_addresses);
    CHECK(contains(what, "corio::net::resolve text.corio.test:443: no addresses"));
    // One catch for every way a connect by name fails.
    try {
        const std::vector<address> none = co_await r.resolve("missing.corio.test", 80);
        FAIL("resolved");
    } catch (const std::system_error& e) {
        CHECK(e.code() == resolve_errc::not_found);
        CHECK(e.code().category().name() == std::string("corio.resolve"));
    }
}

CORIO_TEST_CASE("resolver: a server that never answers gives a DNS timeout",
                "[net][resolver][timeout]") {
    silent_server silent;
    resolver_options o;
    o.servers = {silent.at()};
    o.search_domains = std::vector<std::string>{};
    o.timeout = 50ms;
    o.tries = 2;
    resolver r{o};
    const std::size_t before = open_descriptors();
    const std::string what =
        co_await resolve_error_of(r, "quiet.corio.test", 53, resolve_errc::timeout);
    CHECK(what == "corio::net::resolve quiet.corio.test:53: DNS timeout after 2 tries");
    CHECK(open_descriptors() == before); // c-ares closed its socket
}

CORIO_TEST_CASE("resolver: a DNS port nobody listens on is unreachable",
                "[net][resolver][bad-input]") {
    // Bound then closed: the kernel answers the query with ICMP port unreachable.
    std::uint16_t closed = 0;
    {
        silent_server gone;
        closed = gone.at().port();
    }
    resolver_options o;
    o.servers = {address::ipv4_loopback(closed)};
    o.search_domains = std::vector<std::string>{};
    o.timeout = 50ms;
    o.tries = 2;
    resolver r{o};
    try {
        const std::vector<address> got = co_await r.resolve("nobody.corio.test", 80);
        FAIL("resolved");
    } catch (const resolve_error& e) {
        CHECK(e.code() == resolve_errc::server_unreachable);
        CHECK(std::string(e.what()) == "corio::net::resolve nobody.corio.test:80: no DNS server "
                                       "could be reached (connection refused)");
    }
}

namespace {
task<std::vector<address>> resolve_with_own_resolver(resolver_options o, std::string host) {
    resolver r{o};
    std::vector<address> got = co_await r.resolve(host, 80);
    co_return got;
}
} // namespace

CORIO_TEST_CASE("resolver: a lookup cancelled by timeout leaves nothing behind",
                "[net][resolver][cancel]") {
    silent_server silent;
    resolver_options o;
    o.servers = {silent.at()};
    o.search_domains = std::vector<std::string>{};
    o.timeout = 10s; // far beyond the test: only the cancellation ends the lookups
    const std::size_t before = open_descriptors();
    {
        resolver r{o};
        for (int i = 0; i < 3; ++i)
            CHECK_THROWS_AS(co_await corio::timeout(10ms, r.resolve("slow.corio.test", 80)),
                            corio::timeout_error);
        // The abandoned query is still in c-ares; destroying the resolver ends it.
    }
    // A resolver owned by the cancelled coroutine itself goes with its frame.
    CHECK_THROWS_AS(co_await corio::timeout(10ms, resolve_with_own_resolver(o, "slow.corio.test")),
                    corio::timeout_error);
    co_await corio::yield_now(); // the cancelled polls' completions
    CHECK(open_descriptors() == before);
}

TEST_CASE("resolver: a loop torn down with a lookup pending drains it", "[net][resolver][cancel]") {
    silent_server silent;
    const std::size_t before = open_descriptors();
    {
        corio::event_loop loop;
        struct local {
            static task<> main(address server) {
                resolver_options o;
                o.servers = {server};
                o.timeout = 10s;
                const std::size_t idle = open_descriptors();
                // Left pending: the loop's destructor cancels it and waits for its polls.
                corio::spawn(resolve_with_own_resolver(o, "pending.corio.test")).detach();
                co_await corio::yield_now();
                co_await corio::yield_now();
                CHECK(open_descriptors() > idle); // the query is out, its socket polled
            }
        };
        corio::test::watchdog dog{30};
        loop.run(local::main(silent.at()));
    }
    CHECK(open_descriptors() == before);
}

DNS_TEST_CASE("resolver: a cancelled lookup does not disturb another sharing its query",
              "[net][resolver][dns][cancel]") {
    resolver r{dns.options()};
    auto first = corio::spawn(r.resolve("both.corio.test", 80));
    auto second = corio::spawn(r.resolve("both.corio.test", 80));
    co_await corio::yield_now(); // both are waiting for the one query now
    first.cancel();
    CHECK_THROWS_AS(co_await first, corio::cancelled_error);
    const std::vector<address> got = co_await second;
    CHECK(sorted(ips(got)) == std::vector<std::string>{"10.0.0.1", "fd00::1"});
    CHECK(dns.queries_for("both.corio.test") == 2); // one A and one AAAA query, shared
}

DNS_TEST_CASE("resolver: lookups beyond max_queries wait their turn, and may be cancelled there",
              "[net][resolver][dns][cancel]") {
    silent_server silent;
    resolver_options o = dns.options();
    o.servers = {silent.at()}; // the first name holds the only place until it is cancelled
    o.max_queries = 1;
    o.timeout = 10s;
    resolver r{o};
    auto stuck = corio::spawn(r.resolve("stuck.corio.test", 80));
    co_await corio::yield_now();
    // Waits in the backlog: cancelled there, it was never sent.
    CHECK_THROWS_AS(co_await corio::timeout(10ms, r.resolve("queued.corio.test", 80)),
                    corio::timeout_error);
    stuck.cancel();
    CHECK_THROWS_AS(co_await stuck, corio::cancelled_error);

    // One place, a working server: three names go one after the other.
    resolver_options one = dns.options();
    one.max_queries = 1;
    resolver serial{one};
    auto a = corio::spawn(serial.resolve("a.corio.test", 1));
    auto b = corio::spawn(serial.resolve("six.corio.test", 2));
    auto c = corio::spawn(serial.resolve("ttl.corio.test", 3));
    const std::vector<address> got_a = co_await a;
    const std::vector<address> got_b = co_await b;
    const std::vector<address> got_c = co_await c;
    CHECK(got_a == std::vector<address>{address::parse("10.1.2.3:1")});
    CHECK(got_b == std::vector<address>{address::parse("[::1]:2")});
    CHECK(got_c == std::vector<address>{address::parse("10.0.0.7:3")});
}

// --- cache -----------------------------------------------------------------------------------

TEST_CASE("resolver: the cache answers again without a query until the TTL passes",
          "[net][resolver][dns][cache]") {
    if (dns_server::program() == nullptr)
        CORIO_SKIP("dnsmasq is not installed (Debian: dnsmasq-base)");
    dns_server dns;
    corio::manual_clock clock;
    struct local {
        static task<> main(dns_server& dns, corio::manual_clock& clock) {
            resolver r{dns.options()};
            // ttl.corio.test has a 30 s TTL.
            std::vector<address> got = co_await r.resolve("ttl.corio.test", 80);
            CHECK(ips(got) == std::vector<std::string>{"10.0.0.7"});
            const int asked = dns.queries_for("ttl.corio.test");
            CHECK(asked == 2); // A and AAAA
            CHECK(r.cache_size() == 1);

            clock.advance(29s);
            got = co_await r.resolve("TTL.corio.test", 443); // any case, any port
            CHECK(got == std::vector<address>{address::parse("10.0.0.7:443")});
            CHECK(dns.queries_for("ttl.corio.test") == asked);

            clock.advance(2s); // past the TTL
            got = co_await r.resolve("ttl.corio.test", 80);
            CHECK(ips(got) == std::vector<std::string>{"10.0.0.7"});
            CHECK(dns.queries_for("ttl.corio.test") == 2 * asked);

            // A TTL of 0 (a.corio.test) is never cached; nor is NXDOMAIN.
            co_await r.resolve("a.corio.test", 80);
            co_await r.resolve("a.corio.test", 80);
            CHECK(dns.queries_for("a.corio.test") == 4);
            for (int i = 0; i < 2; ++i)
                CHECK_THROWS_AS(co_await r.resolve("missing.corio.test", 80), resolve_error);
            CHECK(dns.queries_for("missing.corio.test") == 4);
            CHECK(r.cache_size() == 1);

            r.clear_cache();
            CHECK(r.cache_size() == 0);
            co_await r.resolve("ttl.corio.test", 80);
            CHECK(dns.queries_for("ttl.corio.test") == 3 * asked);
        }
    };
    corio::test::run(local::main(dns, clock), {.clock = &clock});
}

TEST_CASE("resolver: the cache keeps at most cache_size names", "[net][resolver][dns][cache]") {
    if (dns_server::program() == nullptr)
        CORIO_SKIP("dnsmasq is not installed (Debian: dnsmasq-base)");
    dns_server dns;
    struct local {
        static task<> main(dns_server& dns) {
            resolver_options o = dns.options();
            o.cache_size = 1;
            resolver r{o};
            co_await r.resolve("ttl.corio.test", 80);
            CHECK(r.cache_size() == 1);
            co_await r.resolve("ttl.corio.test", 80); // cached
            CHECK(dns.queries_for("ttl.corio.test") == 2);
            o.cache_size = 0;
            resolver uncached{o};
            co_await uncached.resolve("ttl.corio.test", 80);
            co_await uncached.resolve("ttl.corio.test", 80);
            CHECK(uncached.cache_size() == 0);
            CHECK(dns.queries_for("ttl.corio.test") == 6);
        }
    };
    corio::test::run(local::main(dns));
}

// --- load ------------------------------------------------------------------------------------

namespace {
task<int> resolves_bulk(resolver& r, int i) {
    const std::string name = "n" + std::to_string(i) + ".bulk.corio.test";
    const std::vector<address> got = co_await r.resolve(name, 80);
    co_return got == std::vector<address>{address::parse("10.9.9.9:80")} ? 1 : 0;
}
} // namespace

DNS_TEST_CASE("resolver: 1,000 concurrent lookups through one resolver all succeed",
              "[net][resolver][dns][load]") {
    resolver r{dns.options()}; // at most max_queries (64) names in flight, the rest queue
    std::vector<corio::join_handle<int>> lookups;
    for (int i = 0; i < 1000; ++i)
        lookups.push_back(corio::spawn(resolves_bulk(r, i)));
    int ok = 0;
    for (auto& l : lookups)
        ok += co_await l;
    CHECK(ok == 1000);
}

#endif // CORIO_HAVE_CARES

// --- the hosts file --------------------------------------------------------------------------

CORIO_TEST_CASE("resolver: /etc/hosts is honoured: localhost is loopback",
                "[net][resolver][hosts]") {
    const std::vector<address> got = co_await corio::net::resolve("localhost", 8080);
    REQUIRE(!got.empty());
    for (const address& a : got) {
        CHECK(is_loopback(a));
        CHECK(a.port() == 8080);
    }
#if defined(CORIO_HAVE_CARES)
    // Before DNS: a resolver whose only server never answers still knows localhost.
    silent_server silent;
    resolver_options o;
    o.servers = {silent.at()};
    o.timeout = 10ms;
    o.tries = 1;
    resolver r{o};
    const std::vector<address> again = co_await r.resolve("localhost", 80);
    REQUIRE(!again.empty());
    CHECK(is_loopback(again.front()));
#endif
}

// --- connect by name -------------------------------------------------------------------------

#if defined(CORIO_HAVE_CARES)

DNS_TEST_CASE("tcp: connect by name tries every address until one accepts",
              "[net][resolver][dns][tcp]") {
    resolver r{dns.options()};
    const std::vector<address> order = co_await r.resolve("multi.corio.test", 0);
    REQUIRE(order.size() == 2);
    // Listen on the second address only: the first refuses, the connect goes on to the second.
    std::optional<tcp_listener> l{tcp_listener::bind(order[1])};
    const std::uint16_t port = l->local_address().port();
    tcp_stream s = co_await tcp_stream::connect("multi.corio.test", port, r);
    CHECK(s.peer_address() == order[1].with_port(port));
    s = tcp_stream{};
    l.reset();

    // Nobody listens now: the error names host:port and each address tried, with the reason.
    try {
        tcp_stream none = co_await tcp_stream::connect("multi.corio.test", port, r);
        FAIL("connected to a closed port");
    } catch (const std::system_error& e) {
        CHECK(e.code().value() == ECONNREFUSED);
        const std::string what = e.what();
        CHECK(contains(what,
                       "corio::net::tcp_stream::connect multi.corio.test:" + std::to_string(port)));
        // "(tried A: Connection refused, then B): Connection refused": each reason once.
        CHECK(contains(what, "(tried " + order[0].with_port(port).to_string() +
                                 ": Connection refused, then " +
                                 order[1].with_port(port).to_string() + "): Connection refused"));
    }
    // A name that does not resolve fails with the resolver's error.
    try {
        tcp_stream none = co_await tcp_stream::connect("missing.corio.test", port, r);
        FAIL("connected to a missing name");
    } catch (const resolve_error& e) {
        CHECK(e.code() == resolve_errc::not_found);
    }
}

DNS_TEST_CASE("tcp: 1,000 failed connects by name leak no descriptor",
              "[net][resolver][dns][tcp][bad-input]") {
    resolver r{dns.options()};
    const std::uint16_t dead = tcp_listener::bind(address::ipv4_loopback(0)).local_address().port();
    CHECK_THROWS_AS(co_await tcp_stream::connect("multi.corio.test", dead, r), std::system_error);
    co_await corio::yield_now(); // the first lookup's polls are cancelled and gone
    const std::size_t before = open_descriptors();
    int failures = 0;
    for (int i = 0; i < 1000; ++i) {
        try {
            tcp_stream s = co_await tcp_stream::connect("multi.corio.test", dead, r);
        } catch (const std::system_error& e) {
            failures += e.code().value() == ECONNREFUSED ? 1 : 0;
        }
    }
    CHECK(failures == 1000);
    co_await corio::yield_now();
    CHECK(open_descriptors() == before);
}

#endif // CORIO_HAVE_CARES

CORIO_TEST_CASE("tcp: connect by name through the loop's resolver", "[net][resolver][tcp]") {
    tcp_listener l = tcp_listener::bind(address::ipv4_loopback(0));
    const std::uint16_t port = l.local_address().port();
    auto accepted = corio::spawn(l.accept());
    tcp_stream s = co_await tcp_stream::connect("127.0.0.1", port);
    tcp_stream server_side = co_await accepted;
    CHECK(s.peer_address() == address::ipv4_loopback(port));
    // localhost comes from /etc/hosts; connect reaches the listener through one of its
    // addresses (an IPv6 ::1 first refuses, then 127.0.0.1 accepts).
    auto accepted_again = corio::spawn(l.accept());
    tcp_stream by_name = co_await tcp_stream::connect("localhost", port);
    tcp_stream server_again = co_await accepted_again;
    CHECK(by_name.peer_address() == address::ipv4_loopback(port));
}

// --- the getaddrinfo fallback ------------------------------------------------------------------

namespace gai {

using corio::detail::getaddrinfo_resolver;
using corio::detail::lookup_result;

std::atomic<int> calls{0};
std::counting_semaphore<16> release{0};

lookup_result counting(const std::string& name) noexcept {
    ++calls;
    return corio::detail::getaddrinfo_blocking(name);
}
lookup_result blocks_until_released(const std::string& /*name*/) noexcept {
    release.acquire();
    lookup_result r;
    r.addresses.push_back(address::parse("10.0.0.1:0"));
    return r;
}
lookup_result nxdomain(const std::string& /*name*/) noexcept {
    return corio::detail::getaddrinfo_failure(EAI_NONAME, 0);
}
lookup_result again(const std::string& /*name*/) noexcept {
    return corio::detail::getaddrinfo_failure(EAI_AGAIN, 0);
}

task<std::vector<address>> resolve(getaddrinfo_resolver& backend, std::string host,
                                   std::uint16_t port) {
    std::vector<address> got = co_await corio::detail::resolve_with(&backend, host, port);
    co_return got;
}

task<std::string> error_of(getaddrinfo_resolver& backend, std::string host, std::uint16_t port) {
    try {
        co_await resolve(backend, host, port);
    } catch (const resolve_error& e) {
        co_return e.what();
    }
    co_return "no error";
}

} // namespace gai

CORIO_TEST_CASE("resolver (getaddrinfo fallback): localhost, numeric hosts, no cache",
                "[net][resolver][getaddrinfo]") {
    gai::calls = 0;
    gai::getaddrinfo_resolver backend{corio::event_loop::current(), {}, &gai::counting};
    const std::vector<address> local = co_await gai::resolve(backend, "localhost", 8080);
    REQUIRE(!local.empty());
    for (const address& a : local) {
        CHECK(is_loopback(a));
        CHECK(a.port() == 8080);
    }
    CHECK(gai::calls == 1);
    const std::vector<address> numeric = co_await gai::resolve(backend, "[::1]", 80);
    CHECK(numeric == std::vector<address>{address::parse("[::1]:80")});
    CHECK(gai::calls == 1); // numeric: no getaddrinfo
    co_await gai::resolve(backend, "localhost", 8080);
    CHECK(gai::calls == 2); // no TTL, no cache
}

CORIO_TEST_CASE("resolver (getaddrinfo fallback): errors read as with c-ares",
                "[net][resolver][getaddrinfo][bad-input]") {
    // (co_await never inside CHECK: its expansion puts the expression in a short-circuit,
    // which g++ 12 miscompiles.)
    gai::getaddrinfo_resolver nx{corio::event_loop::current(), {}, &gai::nxdomain};
    std::string what = co_await gai::error_of(nx, "example.invalid", 80);
    CHECK(what == "corio::net::resolve example.invalid:80: host not found (NXDOMAIN)");
    gai::getaddrinfo_resolver slow{corio::event_loop::current(), {}, &gai::again};
    what = co_await gai::error_of(slow, "example.invalid", 80);
    CHECK(contains(what, "corio::net::resolve example.invalid:80: DNS timeout"));
    what = co_await gai::error_of(nx, "", 80);
    CHECK(what == "corio::net::resolve :80: empty host name");
    resolver_options with_servers;
    with_servers.servers = {address::ipv4_loopback(53)};
    CHECK_THROWS_AS((gai::getaddrinfo_resolver{corio::event_loop::current(), with_servers}),
                    std::invalid_argument);
}

CORIO_TEST_CASE("resolver (getaddrinfo fallback): a cancelled lookup lets go of its pool job",
                "[net][resolver][getaddrinfo][cancel]") {
    gai::getaddrinfo_resolver backend{
        corio::event_loop::current(), {}, &gai::blocks_until_released};
    CHECK_THROWS_AS(co_await corio::timeout(10ms, gai::resolve(backend, "stuck.example", 80)),
                    corio::timeout_error);
    gai::release.release(); // the job ends on the pool; the loop's drain waits for it
    // The next lookup is answered normally.
    auto next = corio::spawn(gai::resolve(backend, "next.example", 80));
    co_await corio::yield_now();
    gai::release.release();
    const std::vector<address> got = co_await next;
    CHECK(got == std::vector<address>{address::parse("10.0.0.1:80")});
}

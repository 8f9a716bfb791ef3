// SPDX-License-Identifier: MIT
#include "../support/corio_test.hpp"

#include <corio/http/url.hpp>

#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

using corio::http::url;

TEST_CASE("url: parse splits scheme, host, port and target", "[http][url]") {
    const url u = url::parse("HTTP://User@Example.TEST:8080/a b/c?q=1#frag");
    CHECK(u.scheme == "http");
    CHECK(u.host == "example.test");
    CHECK(u.port == 8080);
    CHECK(u.target == "/a%20b/c?q=1");
    CHECK(u.host_header() == "example.test:8080");
    const url v6 = url::parse("https://[::1]/");
    CHECK(v6.host == "::1");
    CHECK(v6.port == 443);
    CHECK(v6.host_header() == "[::1]");
    CHECK(v6.origin() == "https://[::1]:443");
    CHECK(url::parse("http://h?x").target == "/?x");
}

TEST_CASE("url: bad URLs name what is wrong", "[http][url][bad-input]") {
    const std::vector<std::pair<std::string, std::string>> bad = {
        {"example.test/x", "no scheme"},
        {"ftp://example.test/", "unsupported scheme 'ftp'"},
        {"http:///x", "no host"},
        {"http://h:99999/", "invalid port"},
        {"http://h:0/", "invalid port"},
        {"http://[::1/", "unterminated IPv6"},
        {"http://a b/", "invalid character"},
    };
    for (const auto& [text, why] : bad) {
        const std::string m =
            corio::test::message_of<std::invalid_argument>([&] { (void)url::parse(text); });
        INFO(text << " -> " << m);
        CHECK(corio::test::contains(m, why));
    }
}

TEST_CASE("url: resolve follows RFC 3986's examples", "[http][url]") {
    // RFC 3986 §5.4.1 and §5.4.2, base "http://a/b/c/d;p?q".
    const url base = url::parse("http://a/b/c/d;p?q");
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"g", "http://a/b/c/g"},
        {"./g", "http://a/b/c/g"},
        {"g/", "http://a/b/c/g/"},
        {"/g", "http://a/g"},
        {"//g", "http://g/"},
        {"?y", "http://a/b/c/d;p?y"},
        {"g?y", "http://a/b/c/g?y"},
        {"#s", "http://a/b/c/d;p?q"},
        {"g#s", "http://a/b/c/g"},
        {";x", "http://a/b/c/;x"},
        {"", "http://a/b/c/d;p?q"},
        {".", "http://a/b/c/"},
        {"./", "http://a/b/c/"},
        {"..", "http://a/b/"},
        {"../", "http://a/b/"},
        {"../g", "http://a/b/g"},
        {"../..", "http://a/"},
        {"../../g", "http://a/g"},
        {"../../../g", "http://a/g"},
        {"/./g", "http://a/g"},
        {"/../g", "http://a/g"},
        {"g.", "http://a/b/c/g."},
        {"..g", "http://a/b/c/..g"},
        {"./../g", "http://a/b/g"},
        {"./g/.", "http://a/b/c/g/"},
        {"g/./h", "http://a/b/c/g/h"},
        {"g/../h", "http://a/b/c/h"},
        {"https://x/y", "https://x/y"},
        // Found by fuzz_url against uriparser: an absolute or network-path reference loses its
        // dot segments too (RFC 3986 §5.2.2).
        {"http://a/./D/b/../c", "http://a/D/c"},
        {"//g/x/../y?q", "http://g/y?q"},
    };
    for (const auto& [ref, want] : cases) {
        INFO("'" << ref << "'");
        CHECK(base.resolve(ref).to_string() == want);
    }
    CHECK_THROWS_AS((void)base.resolve("mailto:x@a"), std::invalid_argument);
    CHECK_THROWS_AS((void)base.resolve("javascript:void(0)"), std::invalid_argument);
}

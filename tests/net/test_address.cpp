// SPDX-License-Identifier: MIT
#include "../support/corio_test.hpp"

#include <corio/net/address.hpp>

#include <netinet/in.h>
#include <sys/socket.h>

#include <stdexcept>
#include <string>

using corio::net::address;
using corio::test::contains;
using corio::test::message_of;

TEST_CASE("address: parses and prints IPv4 and IPv6 with ports", "[net][address]") {
    const address v4 = address::parse("127.0.0.1:8080");
    CHECK(v4.is_v4());
    CHECK(v4.port() == 8080);
    CHECK(v4.ip_string() == "127.0.0.1");
    CHECK(v4.to_string() == "127.0.0.1:8080");
    CHECK(v4.size() == sizeof(sockaddr_in));

    const address v6 = address::parse("[::1]:443");
    CHECK(v6.is_v6());
    CHECK(v6.port() == 443);
    CHECK(v6.to_string() == "[::1]:443");
    CHECK(v6.size() == sizeof(sockaddr_in6));

    CHECK(address::parse("0.0.0.0:0") == address::ipv4_any(0));
    CHECK(address::parse("[::]:65535") == address::ipv6_any(65535));
    CHECK(address::parse("127.0.0.1:1") == address::ipv4_loopback(1));
    CHECK(address::parse("[::1]:2") == address::ipv6_loopback(2));
    CHECK(address::parse("[2001:db8::1]:80").ip_string() == "2001:db8::1");
}

TEST_CASE("address: to_string reads back through parse", "[net][address]") {
    for (const char* text : {"10.1.2.3:9", "[fe80::1%1]:80", "[2001:db8:0:0:1::7]:1234"}) {
        const address a = address::parse(text);
        CHECK(address::parse(a.to_string()) == a);
    }
}

TEST_CASE("address: numeric hosts are recognised, names are not", "[net][address]") {
    CHECK(address::from_ip("192.168.0.1", 80).has_value());
    CHECK(address::from_ip("::ffff:10.0.0.1", 80).has_value());
    CHECK_FALSE(address::from_ip("localhost", 80).has_value());
    CHECK_FALSE(address::from_ip("example.test", 80).has_value());
    CHECK_FALSE(address::from_ip("fe80::1%no-such-interface0", 80).has_value());
    CHECK(address::from_ip("fe80::1%lo", 80).has_value()); // scope by interface name
}

TEST_CASE("address: with_port and from_sockaddr keep the IP", "[net][address]") {
    const address a = address::parse("[::1]:1").with_port(2);
    CHECK(a.to_string() == "[::1]:2");
    const address b = address::from_sockaddr(a.data(), a.size());
    CHECK(b == a);
    sockaddr unix_like{};
    unix_like.sa_family = AF_UNIX;
    CHECK(contains(message_of<std::invalid_argument>(
                       [&] { (void)address::from_sockaddr(&unix_like, sizeof unix_like); }),
                   "family"));
}

TEST_CASE("address: bad text is an invalid_argument naming the text and the problem",
          "[net][address][bad-input]") {
    struct bad_case {
        const char* text;
        const char* says;
    };
    const bad_case cases[] = {
        {"127.0.0.1", "no port"},
        {"127.0.0.1:", "port"},
        {"127.0.0.1:65536", "port"},
        {"127.0.0.1:-1", "port"},
        {"127.0.0.1:80x", "port"},
        {"::1:443", "brackets"},
        {"[::1:443", "']'"},
        {"[::1]443", "port"},
        {"localhost:80", "not a numeric"},
        {"300.1.1.1:80", "not a numeric"},
        {"", "no port"},
    };
    for (const bad_case& c : cases) {
        INFO(c.text);
        const std::string what =
            message_of<std::invalid_argument>([&] { (void)address::parse(c.text); });
        CHECK(contains(what, std::string("\"") + c.text + "\""));
        CHECK(contains(what, c.says));
    }
}

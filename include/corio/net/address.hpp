// SPDX-License-Identifier: MIT
#pragma once

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace corio::net {

/// An IPv4 or IPv6 socket address: an IP and a port (IPv6 may carry a scope, `fe80::1%eth0`).
/// A small value type: copy it freely.
class address {
public:
    /// The IPv4 wildcard address 0.0.0.0, port 0.
    address() noexcept : address(ipv4_any(0)) {}

    /// Parses `"127.0.0.1:8080"`, `"[::1]:443"` or `"[fe80::1%eth0]:80"` (numeric hosts only; names
    /// go through `resolve`).
    /// **Errors**: `std::invalid_argument` naming the text and what is wrong with it.
    static address parse(std::string_view text) {
        std::string_view host;
        std::string_view port;
        if (!text.empty() && text.front() == '[') {
            const std::size_t close = text.find(']');
            if (close == std::string_view::npos)
                fail(text, "an IPv6 address opened with '[' has no ']'");
            host = text.substr(1, close - 1);
            if (close + 1 >= text.size() || text[close + 1] != ':')
                fail(text, "a port must follow ']' as \":<port>\"");
            port = text.substr(close + 2);
        } else {
            const std::size_t colon = text.rfind(':');
            if (colon == std::string_view::npos)
                fail(text, "no port (expected host:port)");
            host = text.substr(0, colon);
            if (host.find(':') != std::string_view::npos)
                fail(text, "an IPv6 address needs brackets, as in [::1]:443");
            port = text.substr(colon + 1);
        }
        const std::optional<std::uint16_t> p = parse_port(port);
        if (!p)
            fail(text, "the port must be a number from 0 to 65535");
        std::optional<address> a = from_ip(host, *p);
        if (!a)
            fail(text, "'" + std::string(host) + "' is not a numeric IPv4 or IPv6 address");
        return *a;
    }

    /// The address for a numeric IP (`"10.0.0.1"`, `"::1"`, `"fe80::1%eth0"`) and `port`, or
    /// nothing when `ip` is not numeric (a host name).
    static std::optional<address> from_ip(std::string_view ip, std::uint16_t port) {
        const std::string host(ip);
        address a{0};
        sockaddr_in v4{};
        if (::inet_pton(AF_INET, host.c_str(), &v4.sin_addr) == 1) {
            v4.sin_family = AF_INET;
            v4.sin_port = htons(port);
            std::memcpy(&a.storage_, &v4, sizeof v4);
            return a;
        }
        sockaddr_in6 v6{};
        const std::size_t percent = host.find('%');
        const std::string bare = host.substr(0, percent);
        if (::inet_pton(AF_INET6, bare.c_str(), &v6.sin6_addr) != 1)
            return std::nullopt;
        if (percent != std::string::npos) {
            const std::string scope = host.substr(percent + 1);
            std::uint32_t id = 0;
            const auto [end, ec] = std::from_chars(scope.data(), scope.data() + scope.size(), id);
            if (ec != std::errc{} || end != scope.data() + scope.size())
                id = ::if_nametoindex(scope.c_str());
            if (id == 0)
                return std::nullopt; // no such interface
            v6.sin6_scope_id = id;
        }
        v6.sin6_family = AF_INET6;
        v6.sin6_port = htons(port);
        std::memcpy(&a.storage_, &v6, sizeof v6);
        return a;
    }

    /// 0.0.0.0:`port` (all IPv4 interfaces) and 127.0.0.1:`port`.
    static address ipv4_any(std::uint16_t port) noexcept { return ipv4(INADDR_ANY, port); }
    static address ipv4_loopback(std::uint16_t port) noexcept {
        return ipv4(INADDR_LOOPBACK, port);
    }
    /// [::]:`port` (all IPv6 interfaces) and [::1]:`port`.
    static address ipv6_any(std::uint16_t port) noexcept { return ipv6(in6addr_any, port); }
    static address ipv6_loopback(std::uint16_t port) noexcept {
        return ipv6(in6addr_loopback, port);
    }

    /// The address the kernel filled in (accept, getsockname).
    /// **Errors**: `std::invalid_argument` for a family other than IPv4/IPv6 or a short length.
    static address from_sockaddr(const sockaddr* sa, socklen_t len) {
        address a{0};
        if (sa->sa_family == AF_INET && len >= static_cast<socklen_t>(sizeof(sockaddr_in)))
            std::memcpy(&a.storage_, sa, sizeof(sockaddr_in));
        else if (sa->sa_family == AF_INET6 && len >= static_cast<socklen_t>(sizeof(sockaddr_in6)))
            std::memcpy(&a.storage_, sa, sizeof(sockaddr_in6));
        else
            throw std::invalid_argument("corio::net::address: unsupported socket address family " +
                                        std::to_string(sa->sa_family) + " (length " +
                                        std::to_string(len) + ")");
        return a;
    }

    [[nodiscard]] bool is_v4() const noexcept { return family() == AF_INET; }
    [[nodiscard]] bool is_v6() const noexcept { return family() == AF_INET6; }
    [[nodiscard]] int family() const noexcept { return storage_.ss_family; }

    [[nodiscard]] std::uint16_t port() const noexcept {
        return ntohs(is_v4() ? v4().sin_port : v6().sin6_port);
    }
    /// The same IP with another port.
    [[nodiscard]] address with_port(std::uint16_t port) const noexcept {
        address a = *this;
        (is_v4() ? a.v4().sin_port : a.v6().sin6_port) = htons(port);
        return a;
    }

    /// The IP alone: `"127.0.0.1"`, `"::1"`, `"fe80::1%2"`.
    [[nodiscard]] std::string ip_string() const {
        std::array<char, INET6_ADDRSTRLEN> buf{};
        if (is_v4()) {
            ::inet_ntop(AF_INET, &v4().sin_addr, buf.data(), buf.size());
            return buf.data();
        }
        ::inet_ntop(AF_INET6, &v6().sin6_addr, buf.data(), buf.size());
        std::string ip = buf.data();
        if (v6().sin6_scope_id != 0) {
            ip += '%';
            ip += std::to_string(v6().sin6_scope_id);
        }
        return ip;
    }
    /// `"127.0.0.1:8080"` or `"[::1]:443"`: what `parse` reads back.
    [[nodiscard]] std::string to_string() const {
        // Appended piece by piece: g++ 12 at -O3 warns (-Wrestrict, a false positive, GCC bug
        // 105329) on `"[" + std::string`, which breaks -Werror builds of anything using this.
        std::string out;
        if (!is_v4())
            out += '[';
        out += ip_string();
        out += is_v4() ? ":" : "]:";
        out += std::to_string(port());
        return out;
    }

    /// For the socket calls.
    [[nodiscard]] const sockaddr* data() const noexcept {
        return reinterpret_cast<const sockaddr*>(&storage_);
    }
    [[nodiscard]] socklen_t size() const noexcept {
        return is_v4() ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
    }

    friend bool operator==(const address& a, const address& b) noexcept {
        return a.family() == b.family() && std::memcmp(a.data(), b.data(), a.size()) == 0;
    }

private:
    static address ipv4(in_addr_t ip, std::uint16_t port) noexcept {
        address a{0};
        sockaddr_in& v = a.v4();
        v.sin_family = AF_INET;
        v.sin_addr.s_addr = htonl(ip);
        v.sin_port = htons(port);
        return a;
    }
    static address ipv6(const in6_addr& ip, std::uint16_t port) noexcept {
        address a{0};
        sockaddr_in6& v = a.v6();
        v.sin6_family = AF_INET6;
        v.sin6_addr = ip;
        v.sin6_port = htons(port);
        return a;
    }
    static std::optional<std::uint16_t> parse_port(std::string_view text) noexcept {
        unsigned value = 0;
        const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
        if (text.empty() || ec != std::errc{} || end != text.data() + text.size() || value > 65535)
            return std::nullopt;
        return static_cast<std::uint16_t>(value);
    }
    [[noreturn]] static void fail(std::string_view text, const std::string& why) {
        throw std::invalid_argument("corio::net::address::parse: \"" + std::string(text) +
                                    "\": " + why);
    }

    explicit address(int) noexcept {} // zeroed storage, filled by the factories

    sockaddr_in& v4() noexcept { return reinterpret_cast<sockaddr_in&>(storage_); }
    sockaddr_in6& v6() noexcept { return reinterpret_cast<sockaddr_in6&>(storage_); }
    [[nodiscard]] const sockaddr_in& v4() const noexcept {
        return reinterpret_cast<const sockaddr_in&>(storage_);
    }
    [[nodiscard]] const sockaddr_in6& v6() const noexcept {
        return reinterpret_cast<const sockaddr_in6&>(storage_);
    }

    sockaddr_storage storage_{};
};

} // namespace corio::net

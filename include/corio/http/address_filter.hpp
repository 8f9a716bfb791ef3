// SPDX-License-Identifier: MIT
// Address policy for clients that fetch URLs users supply (proxies, crawlers): the ready
// `connect_filter` that keeps them off private networks.
#pragma once

#include <corio/net/address.hpp>

#include <netinet/in.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>

namespace corio::http {

/// A `connect_filter` for proxies and crawlers of URLs that users supply: refuses every
/// address that is not globally routable, so that neither a URL, a redirect nor a name that
/// resolves (or rebinds) to one reaches the machine's own services or its network. Refused:
/// IPv4 0.0.0.0/8, 10/8, 100.64/10 (CGNAT), 127/8, 169.254/16 (link-local, where clouds serve
/// their metadata at 169.254.169.254), 172.16/12, 192.0.0/24, 192.168/16, 198.18/15
/// (benchmarking), 224/4 (multicast), 240/4 (reserved, and 255.255.255.255); IPv6 `::`, `::1`,
/// the IPv4-compatible `::/96`, fc00::/7 (unique-local), fe80::/10 (link-local), fec0::/10
/// (site-local), ff00::/8 (multicast); and the IPv4-mapped (`::ffff:a.b.c.d`) and NAT64
/// (`64:ff9b::a.b.c.d`) forms of every IPv4 range above.
/// Returns nothing for an address it allows, and the reason for one it refuses.
inline std::optional<std::string> deny_private_addresses(const net::address& a) {
    const auto v4_reason = [](std::uint32_t ip) -> const char* {
        const auto in = [ip](std::uint32_t net, int bits) {
            return (ip >> (32 - bits)) == (net >> (32 - bits));
        };
        if (in(0x00000000, 8))
            return "a 'this network' address (0.0.0.0/8)";
        if (in(0x0A000000, 8))
            return "a private address (10.0.0.0/8, RFC 1918)";
        if (in(0x64400000, 10))
            return "a shared (carrier-grade NAT) address (100.64.0.0/10)";
        if (in(0x7F000000, 8))
            return "a loopback address (127.0.0.0/8)";
        if (in(0xA9FE0000, 16))
            return "a link-local address (169.254.0.0/16)";
        if (in(0xAC100000, 12))
            return "a private address (172.16.0.0/12, RFC 1918)";
        if (in(0xC0000000, 24))
            return "an IETF protocol assignment (192.0.0.0/24)";
        if (in(0xC0A80000, 16))
            return "a private address (192.168.0.0/16, RFC 1918)";
        if (in(0xC6120000, 15))
            return "a benchmarking address (198.18.0.0/15)";
        if (in(0xE0000000, 4))
            return "a multicast address (224.0.0.0/4)";
        if (in(0xF0000000, 4))
            return "a reserved or broadcast address (240.0.0.0/4)";
        return nullptr;
    };
    if (a.is_v4()) {
        const auto* sin = reinterpret_cast<const sockaddr_in*>(a.data());
        if (const char* why = v4_reason(ntohl(sin->sin_addr.s_addr)))
            return std::string(why);
        return std::nullopt;
    }
    const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(a.data());
    std::array<std::uint8_t, 16> b{};
    std::memcpy(b.data(), &sin6->sin6_addr, b.size());
    const auto embedded_v4 = [&b] {
        return std::uint32_t{b[12]} << 24 | std::uint32_t{b[13]} << 16 | std::uint32_t{b[14]} << 8 |
               std::uint32_t{b[15]};
    };
    const auto zero_until = [&b](std::size_t n) {
        for (std::size_t i = 0; i < n; ++i)
            if (b[i] != 0)
                return false;
        return true;
    };
    if (zero_until(10) && b[10] == 0xFF && b[11] == 0xFF) { // ::ffff:a.b.c.d
        if (const char* why = v4_reason(embedded_v4()))
            return std::string("the IPv4-mapped form of ") + why;
        return std::nullopt;
    }
    if (b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xFF && b[3] == 0x9B &&
        std::all_of(b.begin() + 4, b.begin() + 12, [](std::uint8_t x) { return x == 0; })) {
        if (const char* why = v4_reason(embedded_v4())) // 64:ff9b::a.b.c.d
            return std::string("the NAT64 form of ") + why;
        return std::nullopt;
    }
    if (zero_until(16))
        return std::string("the unspecified address (::)");
    if (zero_until(15) && b[15] == 1)
        return std::string("a loopback address (::1)");
    if (zero_until(12))
        return std::string("an IPv4-compatible address (::/96, deprecated)");
    if ((b[0] & 0xFE) == 0xFC)
        return std::string("a unique-local address (fc00::/7)");
    if (b[0] == 0xFE && (b[1] & 0xC0) == 0x80)
        return std::string("a link-local address (fe80::/10)");
    if (b[0] == 0xFE && (b[1] & 0xC0) == 0xC0)
        return std::string("a site-local address (fec0::/10, deprecated)");
    if (b[0] == 0xFF)
        return std::string("a multicast address (ff00::/8)");
    return std::nullopt;
}

} // namespace corio::http

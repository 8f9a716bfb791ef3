// SPDX-License-Identifier: MIT
// SHA-1 (FIPS 180-4), for the name Redis gives a script (EVALSHA). Not for security.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace corio::redis::detail {

/// The SHA-1 of `data`, as 40 lowercase hex digits (what SCRIPT LOAD answers).
inline std::string sha1_hex(std::string_view data) {
    std::array<std::uint32_t, 5> h{0x67452301U, 0xEFCDAB89U, 0x98BADCFEU, 0x10325476U, 0xC3D2E1F0U};
    const auto rotl = [](std::uint32_t v, int n) { return (v << n) | (v >> (32 - n)); };
    // The message, padded: 0x80, zeros, then its length in bits, big-endian, to 64 bytes.
    std::string m(data);
    const std::uint64_t bits = static_cast<std::uint64_t>(data.size()) * 8;
    m.push_back(static_cast<char>(0x80));
    while (m.size() % 64 != 56)
        m.push_back('\0');
    for (int i = 7; i >= 0; --i)
        m.push_back(static_cast<char>((bits >> (i * 8)) & 0xff));
    std::array<std::uint32_t, 80> w{};
    for (std::size_t block = 0; block < m.size(); block += 64) {
        for (std::size_t i = 0; i < 16; ++i) {
            w[i] = 0;
            for (std::size_t b = 0; b < 4; ++b)
                w[i] = (w[i] << 8) | static_cast<unsigned char>(m[block + i * 4 + b]);
        }
        for (std::size_t i = 16; i < 80; ++i)
            w[i] = rotl(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
        std::uint32_t a = h[0];
        std::uint32_t b = h[1];
        std::uint32_t c = h[2];
        std::uint32_t d = h[3];
        std::uint32_t e = h[4];
        for (std::size_t i = 0; i < 80; ++i) {
            std::uint32_t f = 0;
            std::uint32_t k = 0;
            if (i < 20) {
                f = (b & c) | (~b & d);
                k = 0x5A827999U;
            } else if (i < 40) {
                f = b ^ c ^ d;
                k = 0x6ED9EBA1U;
            } else if (i < 60) {
                f = (b & c) | (b & d) | (c & d);
                k = 0x8F1BBCDCU;
            } else {
                f = b ^ c ^ d;
                k = 0xCA62C1D6U;
            }
            const std::uint32_t t = rotl(a, 5) + f + e + k + w[i];
            e = d;
            d = c;
            c = rotl(b, 30);
            b = a;
            a = t;
        }
        h[0] += a;
        h[1] += b;
        h[2] += c;
        h[3] += d;
        h[4] += e;
    }
    static constexpr std::string_view digits = "0123456789abcdef";
    std::string out;
    out.reserve(40);
    for (const std::uint32_t v : h)
        for (int shift = 28; shift >= 0; shift -= 4)
            out.push_back(digits[(v >> shift) & 0xf]);
    return out;
}

} // namespace corio::redis::detail

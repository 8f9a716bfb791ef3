// SPDX-License-Identifier: MIT
#pragma once

#include <charconv>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

namespace corio::http {

/// An absolute http or https URL, split for a request: scheme, host, port, target.
///
/// **Errors**: `parse` throws `std::invalid_argument` naming the URL and what is wrong (no
/// scheme, an unsupported scheme, no host, a bad port, spaces or control characters).
struct url {
    std::string scheme; ///< "http" or "https" (lowercase)
    std::string host;   ///< a name, an IPv4 address, or an IPv6 address without brackets
    std::uint16_t port = 0;
    std::string target; ///< path and query ("/a/b?c=d"); "/" at least; no fragment

    /// Parses an absolute URL. Characters outside the URL syntax (spaces, non-ASCII) are
    /// percent-encoded in the target; the fragment is dropped.
    [[nodiscard]] static url parse(std::string_view text) {
        const auto bad = [&](const std::string& why) {
            return std::invalid_argument("corio::http::url: '" + std::string(text) + "' " + why);
        };
        const std::size_t colon = text.find("://");
        if (colon == std::string_view::npos)
            throw bad("is not an absolute URL (no scheme://)");
        url u;
        for (const char c : text.substr(0, colon))
            u.scheme += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
        if (u.scheme != "http" && u.scheme != "https")
            throw bad("has an unsupported scheme '" + u.scheme + "' (http and https are)");
        std::string_view rest = text.substr(colon + 3);
        const std::size_t end = rest.find_first_of("/?#");
        std::string_view authority = rest.substr(0, end);
        rest = end == std::string_view::npos ? std::string_view() : rest.substr(end);
        if (const std::size_t at = authority.rfind('@'); at != std::string_view::npos)
            authority = authority.substr(at + 1); // userinfo is not sent
        std::string_view port;
        if (!authority.empty() && authority.front() == '[') {
            const std::size_t close = authority.find(']');
            if (close == std::string_view::npos)
                throw bad("has an unterminated IPv6 address");
            u.host = authority.substr(1, close - 1);
            const std::string_view after = authority.substr(close + 1);
            if (!after.empty() && after.front() != ':')
                throw bad("has text after its IPv6 address");
            port = after.empty() ? after : after.substr(1);
        } else {
            const std::size_t p = authority.rfind(':');
            u.host = authority.substr(0, p);
            port = p == std::string_view::npos ? std::string_view() : authority.substr(p + 1);
            for (char& c : u.host)
                if (c >= 'A' && c <= 'Z')
                    c = static_cast<char>(c - 'A' + 'a');
        }
        if (u.host.empty())
            throw bad("has no host");
        for (const char c : u.host)
            if (static_cast<unsigned char>(c) <= ' ' || c == '/' || c == '\\' || c == '%' ||
                c == '\x7f')
                throw bad("has an invalid character in its host");
        u.port = u.scheme == "https" ? 443 : 80;
        if (!port.empty()) {
            unsigned value = 0;
            const auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
            if (ec != std::errc{} || ptr != port.data() + port.size() || value == 0 ||
                value > 65535)
                throw bad("has an invalid port '" + std::string(port) + "'");
            u.port = static_cast<std::uint16_t>(value);
        }
        rest = rest.substr(0, rest.find('#'));
        u.target = encode_target(rest.empty() || rest.front() == '?' ? "/" + std::string(rest)
                                                                     : std::string(rest));
        return u;
    }

    /// The URL `location` points to from this one: absolute, scheme-relative ("//host/x"),
    /// absolute-path ("/x") or relative ("x", "../x", "?q") (RFC 3986 §5.2, without dot
    /// segments removal beyond the simple cases).
    [[nodiscard]] url resolve(std::string_view location) const {
        if (location.find("://") != std::string_view::npos &&
            location.find("://") < location.find_first_of("/?#"))
            return parse(location);
        if (location.starts_with("//"))
            return parse(scheme + ":" + std::string(location));
        url next = *this;
        location = location.substr(0, location.find('#'));
        if (location.empty())
            return next;
        if (location.front() == '/') {
            next.target = encode_target(std::string(location));
        } else if (location.front() == '?') {
            next.target = encode_target(path() + std::string(location));
        } else {
            std::string base = path();
            base.erase(base.rfind('/') + 1);
            std::string_view rel = location;
            while (true) {
                if (rel.starts_with("./")) {
                    rel.remove_prefix(2);
                } else if (rel.starts_with("../")) {
                    rel.remove_prefix(3);
                    if (base.size() > 1) {
                        base.pop_back();
                        base.erase(base.rfind('/') + 1);
                    }
                } else {
                    break;
                }
            }
            next.target = encode_target(base + std::string(rel));
        }
        return next;
    }

    /// "scheme://host:port": what a connection can be shared by.
    [[nodiscard]] std::string origin() const {
        return scheme + "://" + host_for_header() + ":" + std::to_string(port);
    }
    /// The Host field's value: the host, bracketed if IPv6, with the port unless default.
    [[nodiscard]] std::string host_header() const {
        const bool default_port =
            (scheme == "http" && port == 80) || (scheme == "https" && port == 443);
        return default_port ? host_for_header() : host_for_header() + ":" + std::to_string(port);
    }
    /// The path part of the target.
    [[nodiscard]] std::string path() const { return target.substr(0, target.find('?')); }
    [[nodiscard]] std::string to_string() const { return scheme + "://" + host_header() + target; }

private:
    [[nodiscard]] std::string host_for_header() const {
        return host.find(':') != std::string::npos ? "[" + host + "]" : host;
    }

    // Percent-encodes what may not appear in a request target (spaces, controls, non-ASCII).
    static std::string encode_target(const std::string& raw) {
        static constexpr std::string_view hex = "0123456789ABCDEF";
        std::string out;
        out.reserve(raw.size());
        for (const char ch : raw) {
            const auto c = static_cast<unsigned char>(ch);
            if (c <= ' ' || c >= 0x7f || ch == '"' || ch == '<' || ch == '>' || ch == '\\' ||
                ch == '^' || ch == '`' || ch == '{' || ch == '|' || ch == '}') {
                out += '%';
                out += hex[c >> 4];
                out += hex[c & 15];
            } else {
                out += ch;
            }
        }
        return out;
    }
};

} // namespace corio::http

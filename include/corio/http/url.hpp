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

    /// The URL `ref` points to from this one (RFC 3986 §5.2): absolute ("https://h/x"),
    /// scheme-relative ("//h/x"), absolute-path ("/x"), relative ("x", "../x") or query-only
    /// ("?q"); dot segments are removed and the fragment dropped.
    /// **Errors**: `std::invalid_argument` for a scheme other than http and https
    /// ("mailto:", "ftp://") and for what `parse` refuses.
    [[nodiscard]] url resolve(std::string_view ref) const {
        ref = ref.substr(0, ref.find('#'));
        if (const std::size_t colon = scheme_end(ref); colon != std::string_view::npos) {
            std::string other;
            for (const char c : ref.substr(0, colon))
                other += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
            if (other != "http" && other != "https")
                throw std::invalid_argument("corio::http::url: '" + std::string(ref) +
                                            "' has an unsupported scheme '" + other +
                                            "' (http and https are)");
            return without_dot_segments(parse(ref));
        }
        if (ref.starts_with("//"))
            return without_dot_segments(parse(scheme + ":" + std::string(ref)));
        url next = *this;
        if (ref.empty())
            return next;
        const std::size_t q = ref.find('?');
        const std::string_view ref_path = ref.substr(0, q);
        const std::string_view ref_query = q == std::string_view::npos ? "" : ref.substr(q);
        if (ref_path.empty()) { // "?q": this path, that query
            next.target = encode_target(path() + std::string(ref_query));
        } else if (ref_path.front() == '/') {
            next.target = encode_target(remove_dot_segments(ref_path) + std::string(ref_query));
        } else {
            std::string merged = path();
            merged.erase(merged.rfind('/') + 1);
            merged += ref_path;
            next.target = encode_target(remove_dot_segments(merged) + std::string(ref_query));
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
    // Where a reference's scheme ends (its ':'), or npos when it has none (RFC 3986 §3.1:
    // ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) before any '/', '?' or '#').
    static std::size_t scheme_end(std::string_view ref) noexcept {
        const std::size_t colon = ref.find(':');
        if (colon == std::string_view::npos || colon == 0 || colon > ref.find_first_of("/?#"))
            return std::string_view::npos;
        const auto alpha = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
        if (!alpha(ref[0]))
            return std::string_view::npos;
        for (const char c : ref.substr(1, colon - 1))
            if (!alpha(c) && !(c >= '0' && c <= '9') && c != '+' && c != '-' && c != '.')
                return std::string_view::npos;
        return colon;
    }

    // RFC 3986 §5.2.4: "/a/b/../c/./d" becomes "/a/c/d".
    // RFC 3986 §5.2.2: an absolute or network-path reference loses its dot segments too.
    static url without_dot_segments(url u) {
        const std::size_t q = u.target.find('?');
        const std::string query = q == std::string::npos ? std::string() : u.target.substr(q);
        u.target = remove_dot_segments(std::string_view(u.target).substr(0, q)) + query;
        if (u.target.empty() || u.target.front() != '/')
            u.target.insert(0, "/");
        return u;
    }

    static std::string remove_dot_segments(std::string_view in) {
        std::string out;
        while (!in.empty()) {
            if (in.starts_with("../")) {
                in.remove_prefix(3);
            } else if (in.starts_with("./") || in.starts_with("/./")) {
                in.remove_prefix(2); // "./x" -> "x", "/./x" -> "/x"
            } else if (in == "/.") {
                in = "/";
            } else if (in.starts_with("/../") || in == "/..") {
                in = in.size() == 3 ? std::string_view("/") : in.substr(3);
                const std::size_t slash = out.rfind('/');
                out.erase(slash == std::string::npos ? 0 : slash);
            } else if (in == "." || in == "..") {
                in = {};
            } else {
                const std::size_t next = in.find('/', in.front() == '/' ? 1 : 0);
                out += in.substr(0, next);
                in = next == std::string_view::npos ? std::string_view() : in.substr(next);
            }
        }
        return out.empty() ? "/" : out;
    }

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

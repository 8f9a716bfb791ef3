// SPDX-License-Identifier: MIT
// libFuzzer target: http::url's parse and resolve, differentially against uriparser (RFC 3986):
// where both accept an absolute http(s) URL, scheme, host, port, path and query agree; where
// both resolve a reference against the RFC's base, the results agree.
#include "fuzz_support.hpp"

#include <corio/http/url.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <uriparser/Uri.h>

#include <array>
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace {

using corio::http::url;

/// A uriparser parse of `text`, freed at the end.
class uri {
public:
    explicit uri(std::string_view text) {
        const char* error = nullptr;
        ok_ = uriParseSingleUriExA(&u_, text.data(), text.data() + text.size(), &error) ==
              URI_SUCCESS;
    }
    uri() = default;
    uri(const uri&) = delete;
    uri& operator=(const uri&) = delete;
    ~uri() { uriFreeUriMembersA(&u_); }

    [[nodiscard]] bool ok() const noexcept { return ok_; }
    UriUriA& get() noexcept { return u_; }
    [[nodiscard]] const UriUriA& get() const noexcept { return u_; }
    void set_ok(bool ok) noexcept { ok_ = ok; }

    [[nodiscard]] std::string to_string() const {
        int chars = 0;
        if (uriToStringCharsRequiredA(&u_, &chars) != URI_SUCCESS)
            return {};
        std::string out(static_cast<std::size_t>(chars) + 1, '\0');
        if (uriToStringA(out.data(), &u_, chars + 1, nullptr) != URI_SUCCESS)
            return {};
        out.resize(static_cast<std::size_t>(chars));
        return out;
    }

private:
    UriUriA u_{};
    bool ok_ = false;
};

std::string text(const UriTextRangeA& r) {
    return r.first != nullptr ? std::string(r.first, r.afterLast) : std::string();
}
std::string lower(std::string s) {
    for (char& c : s)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

/// The host for comparing: an IPv6 address in one spelling (uriparser prints it in full).
std::string host_key(const std::string& host) {
    in6_addr a{};
    if (host.find(':') != std::string::npos && ::inet_pton(AF_INET6, host.c_str(), &a) == 1) {
        std::array<char, INET6_ADDRSTRLEN> text{};
        ::inet_ntop(AF_INET6, &a, text.data(), text.size());
        return text.data();
    }
    return lower(host);
}

std::optional<url> corio_parse(std::string_view s) {
    try {
        return url::parse(s);
    } catch (const std::invalid_argument&) {
        return std::nullopt;
    }
}

void compare_parse(std::string_view s) {
    const std::optional<url> c = corio_parse(s);
    uri u{s};
    if (!c || !u.ok())
        return;
    const UriUriA& r = u.get();
    const std::string scheme = lower(text(r.scheme));
    if ((scheme != "http" && scheme != "https") || r.hostText.first == nullptr ||
        r.hostText.first == r.hostText.afterLast || r.hostData.ipFuture.first != nullptr)
        return;
    if (c->scheme != scheme)
        corio::fuzz::fail("scheme differs from uriparser's", s);
    if (host_key(c->host) != host_key(text(r.hostText)))
        corio::fuzz::fail("host differs from uriparser's", s);
    const std::string port = text(r.portText);
    const unsigned expected =
        port.empty() ? (scheme == "https" ? 443U : 80U) : static_cast<unsigned>(std::stoul(port));
    if (c->port != expected)
        corio::fuzz::fail("port differs from uriparser's", s);
    std::string path;
    bool dots = false;
    for (const UriPathSegmentA* seg = r.pathHead; seg != nullptr; seg = seg->next) {
        const std::string part = text(seg->text);
        dots = dots || part == "." || part == "..";
        path += "/" + part;
    }
    if (path.empty())
        path = "/";
    if (!dots && c->path() != path)
        corio::fuzz::fail("path differs from uriparser's", s);
    const std::size_t q = c->target.find('?');
    const std::string query = q == std::string::npos ? "" : c->target.substr(q + 1);
    if ((r.query.first != nullptr) != (q != std::string::npos) || query != text(r.query))
        corio::fuzz::fail("query differs from uriparser's", s);
}

void compare_resolve(std::string_view ref) {
    static const url base_c = url::parse("http://a/b/c/d;p?q");
    static uri base_u{"http://a/b/c/d;p?q"};
    std::optional<url> c;
    try {
        c = base_c.resolve(ref);
    } catch (const std::invalid_argument&) {
    }
    uri r{ref};
    if (!c || !r.ok())
        return;
    uri resolved;
    if (uriAddBaseUriA(&resolved.get(), &r.get(), &base_u.get()) != URI_SUCCESS)
        return;
    resolved.set_ok(true);
    std::string theirs = resolved.to_string();
    if (const std::size_t hash = theirs.find('#'); hash != std::string::npos)
        theirs.resize(hash); // corio drops the fragment
    // uriparser writes a path that starts with "//" as "/.//" (so that it cannot be read as an
    // authority); RFC 3986 §5.2.4 keeps "//", as corio does.
    const std::size_t authority = theirs.find("//");
    const std::size_t path =
        authority == std::string::npos ? std::string::npos : theirs.find('/', authority + 2);
    if (path != std::string::npos && path < theirs.find('?') &&
        theirs.compare(path, 4, "/.//") == 0)
        theirs.erase(path, 2);
    const std::optional<url> again = corio_parse(theirs);
    if (!again)
        return; // uriparser's result is not a URL corio takes (an empty host, ...)
    if (again->scheme != c->scheme || host_key(again->host) != host_key(c->host) ||
        again->port != c->port || again->target != c->target)
        corio::fuzz::fail("resolve differs from uriparser's", std::string(ref) + " -> corio " +
                                                                  c->to_string() + ", uriparser " +
                                                                  theirs);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size > 4096)
        return 0;
    const std::string_view s(reinterpret_cast<const char*>(data), size);
    if (s.find('\0') != std::string_view::npos)
        return 0;
    compare_parse(s);
    compare_resolve(s);
    return 0;
}

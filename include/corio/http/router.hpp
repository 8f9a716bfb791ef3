// SPDX-License-Identifier: MIT
#pragma once

#include <corio/http/headers.hpp>
#include <corio/http/message.hpp>
#include <corio/task.hpp>

#include <cstddef>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace corio::http {

/// Decodes %XX escapes (and, with `plus_is_space`, '+' as a space, as in a query); nothing
/// when an escape is malformed.
[[nodiscard]] inline std::optional<std::string> percent_decode(std::string_view s,
                                                               bool plus_is_space = false) {
    const auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9')
            return c - '0';
        if (c >= 'a' && c <= 'f')
            return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
            return c - 'A' + 10;
        return -1;
    };
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        const char c = s[i];
        if (c == '%') {
            if (i + 2 >= s.size())
                return std::nullopt;
            const int hi = hex(s[i + 1]);
            const int lo = hex(s[i + 2]);
            if (hi < 0 || lo < 0)
                return std::nullopt;
            out += static_cast<char>(hi * 16 + lo);
            i += 2;
        } else if (c == '+' && plus_is_space) {
            out += ' ';
        } else {
            out += c;
        }
    }
    return out;
}

/// Handles one request: `[](http::request& req) -> corio::task<http::response> {...}`.
using handler = std::function<task<response>(request&)>;

/// Routes requests to handlers by method and path pattern. A pattern is a path whose segments
/// are literal or `{name}` (matching one non-empty segment, percent-decoded into
/// `req.param(name)`): `/users/{id}/posts`. Routes are tried in the order they were added.
///
/// A path no route matches is 404; a path that matches only for other methods is 405 with an
/// `Allow` field listing them. HEAD is answered by the GET route (without the body) unless a
/// HEAD route exists.
///
/// **Errors**: a pattern that does not start with '/' or has an unterminated or empty `{}`, and
/// a method and pattern added twice, throw `std::invalid_argument` naming them.
class router {
public:
    router& get(std::string_view pattern, handler h) { return route("GET", pattern, std::move(h)); }
    router& post(std::string_view pattern, handler h) {
        return route("POST", pattern, std::move(h));
    }
    router& put(std::string_view pattern, handler h) { return route("PUT", pattern, std::move(h)); }
    router& patch(std::string_view pattern, handler h) {
        return route("PATCH", pattern, std::move(h));
    }
    router& del(std::string_view pattern, handler h) {
        return route("DELETE", pattern, std::move(h));
    }
    router& head(std::string_view pattern, handler h) {
        return route("HEAD", pattern, std::move(h));
    }
    router& options(std::string_view pattern, handler h) {
        return route("OPTIONS", pattern, std::move(h));
    }

    /// Adds a route for any method token.
    router& route(std::string_view method, std::string_view pattern, handler h) {
        if (!is_token(method))
            throw std::invalid_argument("corio::http::router: '" + std::string(method) +
                                        "' is not a method");
        entry e{std::string(method), std::string(pattern), split(pattern), std::move(h)};
        for (const entry& other : routes_)
            if (other.method == e.method && other.pattern == e.pattern)
                throw std::invalid_argument("corio::http::router: " + e.method + " " + e.pattern +
                                            " is already routed");
        routes_.push_back(std::move(e));
        return *this;
    }

    /// What a request maps to.
    struct match {
        const handler* target = nullptr; ///< null when `status` says why not
        int status = 200;                ///< 200, 404, 405, or 400 (a malformed escape)
        std::string allow;               ///< for 405: the methods the path has
    };

    /// Finds the handler for `method` and `path`; fills `params` on success.
    [[nodiscard]] match find(std::string_view method, std::string_view path,
                             std::vector<std::pair<std::string, std::string>>& params) const {
        match result;
        result.status = 404;
        const bool head = method == "HEAD";
        const handler* get_fallback = nullptr;
        std::vector<std::pair<std::string, std::string>> get_params;
        for (const entry& e : routes_) {
            params.clear();
            const int m = matches(e, path, params);
            if (m == 0)
                continue;
            if (m < 0) {
                result.status = 400;
                return result;
            }
            if (e.method == method) {
                result.target = &e.target;
                result.status = 200;
                return result;
            }
            if (head && e.method == "GET" && get_fallback == nullptr) {
                get_fallback = &e.target;
                get_params = params;
            }
            append_allowed(result.allow, e.method);
            if (e.method == "GET")
                append_allowed(result.allow, "HEAD");
        }
        if (get_fallback != nullptr) {
            params = std::move(get_params);
            result.target = get_fallback;
            result.status = 200;
            result.allow.clear();
            return result;
        }
        params.clear();
        if (!result.allow.empty())
            result.status = 405;
        return result;
    }

    [[nodiscard]] bool empty() const noexcept { return routes_.empty(); }

    /// Every method some route serves (HEAD with GET, and OPTIONS always), as an `Allow`
    /// value: what `OPTIONS * HTTP/1.1` answers (RFC 9110 §9.3.7).
    [[nodiscard]] std::string methods() const {
        std::string allow;
        for (const entry& e : routes_) {
            append_allowed(allow, e.method);
            if (e.method == "GET")
                append_allowed(allow, "HEAD");
        }
        append_allowed(allow, "OPTIONS");
        return allow;
    }

private:
    struct segment {
        std::string text; // literal text, or the parameter's name
        bool param = false;
    };
    struct entry {
        std::string method;
        std::string pattern;
        std::vector<segment> segments;
        handler target;
    };

    static std::vector<segment> split(std::string_view pattern) {
        const auto bad = [&](const char* why) {
            return std::invalid_argument("corio::http::router: pattern '" + std::string(pattern) +
                                         "' " + why);
        };
        if (pattern.empty() || pattern[0] != '/')
            throw bad("must start with '/'");
        std::vector<segment> out;
        std::string_view rest = pattern.substr(1);
        for (;;) {
            const std::size_t slash = rest.find('/');
            const std::string_view s = rest.substr(0, slash);
            if (!s.empty() && s.front() == '{') {
                if (s.size() < 3 || s.back() != '}')
                    throw bad("has an empty or unterminated {parameter}");
                out.push_back({std::string(s.substr(1, s.size() - 2)), true});
            } else {
                if (s.find_first_of("{}") != std::string_view::npos)
                    throw bad("has a '{' or '}' inside a segment");
                out.push_back({std::string(s), false});
            }
            if (slash == std::string_view::npos)
                return out;
            rest = rest.substr(slash + 1);
        }
    }

    // 1: matches; 0: does not; -1: matches but a parameter is malformed.
    static int matches(const entry& e, std::string_view path,
                       std::vector<std::pair<std::string, std::string>>& params) {
        if (path.empty() || path[0] != '/')
            return 0;
        std::string_view rest = path.substr(1);
        for (std::size_t i = 0; i < e.segments.size(); ++i) {
            const std::size_t slash = rest.find('/');
            const bool last = i + 1 == e.segments.size();
            if (last != (slash == std::string_view::npos))
                return 0;
            const std::string_view s = rest.substr(0, slash);
            const segment& want = e.segments[i];
            if (want.param) {
                if (s.empty())
                    return 0;
                std::optional<std::string> value = percent_decode(s);
                if (!value)
                    return -1;
                params.emplace_back(want.text, std::move(*value));
            } else if (s != want.text) {
                return 0;
            }
            if (!last)
                rest = rest.substr(slash + 1);
        }
        return 1;
    }

    static void append_allowed(std::string& allow, std::string_view method) {
        std::string_view rest = allow;
        while (!rest.empty()) {
            const std::size_t comma = rest.find(", ");
            if (rest.substr(0, comma) == method)
                return;
            rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 2);
        }
        if (!allow.empty())
            allow += ", ";
        allow += method;
    }

    std::vector<entry> routes_;
};

} // namespace corio::http

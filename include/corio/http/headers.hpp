// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <cstddef>
#include <initializer_list>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace corio::http {

/// True when `a` and `b` are equal ignoring ASCII case (field names, methods' tokens).
[[nodiscard]] constexpr bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size())
        return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        char x = a[i];
        char y = b[i];
        if (x >= 'A' && x <= 'Z')
            x = static_cast<char>(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z')
            y = static_cast<char>(y - 'A' + 'a');
        if (x != y)
            return false;
    }
    return true;
}

/// True for RFC 9110's `tchar`: the characters of a token (field names, methods).
[[nodiscard]] constexpr bool is_token_char(char c) noexcept {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

/// True when `s` is a non-empty token.
[[nodiscard]] constexpr bool is_token(std::string_view s) noexcept {
    return !s.empty() && std::all_of(s.begin(), s.end(), is_token_char);
}

/// True when `s` may be a field value: no CR, LF or NUL (RFC 9110 §5.5), which would let a
/// value smuggle in another header or message.
[[nodiscard]] constexpr bool is_field_value(std::string_view s) noexcept {
    return s.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

/// A message's header fields, in the order they were added. Names compare case-insensitively;
/// a name may repeat (`Set-Cookie`), and lookups give the first.
///
/// **Errors**: adding a name that is not a token, or a value with CR, LF or NUL, throws
/// `std::invalid_argument` naming the field: a header can never inject another.
class headers {
public:
    using field = std::pair<std::string, std::string>;
    using const_iterator = std::vector<field>::const_iterator;

    headers() = default;
    headers(std::initializer_list<std::pair<std::string_view, std::string_view>> fields) {
        for (const auto& [name, value] : fields)
            add(name, value);
    }

    /// The value of the first field named `name`, or nothing.
    [[nodiscard]] std::optional<std::string_view> get(std::string_view name) const noexcept {
        for (const field& f : fields_)
            if (iequals(f.first, name))
                return std::string_view(f.second);
        return std::nullopt;
    }
    [[nodiscard]] bool contains(std::string_view name) const noexcept {
        return get(name).has_value();
    }
    [[nodiscard]] std::size_t count(std::string_view name) const noexcept {
        return static_cast<std::size_t>(
            std::count_if(fields_.begin(), fields_.end(),
                          [&](const field& f) { return iequals(f.first, name); }));
    }

    /// Room for `n` fields without reallocating.
    void reserve(std::size_t n) { fields_.reserve(n); }
    /// Appends a field (keeping any others of that name).
    void add(std::string_view name, std::string_view value) {
        check(name, value);
        fields_.emplace_back(std::string(name), std::string(value));
    }
    /// Replaces every field named `name` with one.
    void set(std::string_view name, std::string_view value) {
        check(name, value);
        for (auto it = fields_.begin(); it != fields_.end(); ++it) {
            if (iequals(it->first, name)) {
                it->second = value;
                fields_.erase(
                    std::remove_if(it + 1, fields_.end(),
                                   [&](const field& f) { return iequals(f.first, name); }),
                    fields_.end());
                return;
            }
        }
        fields_.emplace_back(std::string(name), std::string(value));
    }
    /// Removes every field named `name`; returns how many there were.
    std::size_t remove(std::string_view name) {
        const auto end = std::remove_if(fields_.begin(), fields_.end(),
                                        [&](const field& f) { return iequals(f.first, name); });
        const auto n = static_cast<std::size_t>(fields_.end() - end);
        fields_.erase(end, fields_.end());
        return n;
    }
    void clear() noexcept { fields_.clear(); }

    /// Appends a field the parser already checked (no validation).
    void add_unchecked(std::string name, std::string value) {
        fields_.emplace_back(std::move(name), std::move(value));
    }

    [[nodiscard]] const_iterator begin() const noexcept { return fields_.begin(); }
    [[nodiscard]] const_iterator end() const noexcept { return fields_.end(); }
    [[nodiscard]] std::size_t size() const noexcept { return fields_.size(); }
    [[nodiscard]] bool empty() const noexcept { return fields_.empty(); }

    friend bool operator==(const headers&, const headers&) = default;

private:
    static void check(std::string_view name, std::string_view value) {
        if (!is_token(name))
            throw std::invalid_argument("corio::http::headers: '" + std::string(name) +
                                        "' is not a valid field name");
        if (!is_field_value(value))
            throw std::invalid_argument("corio::http::headers: the value of '" + std::string(name) +
                                        "' contains CR, LF or NUL, which could inject a field");
    }

    std::vector<field> fields_;
};

} // namespace corio::http

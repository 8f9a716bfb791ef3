// SPDX-License-Identifier: MIT
#pragma once

#include <corio/redis/error.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace corio::redis {

/// One RESP reply (redis-py's decoded response, hiredis's `redisReply`): a status ("OK"), an
/// error, an integer, a bulk string (binary-safe), nil, or an array of replies.
class reply {
public:
    enum class type : std::uint8_t { nil, status, error, integer, string, array };

    reply() = default;
    static reply nil() { return {}; }
    static reply status(std::string s) { return {type::status, std::move(s)}; }
    static reply error(std::string s) { return {type::error, std::move(s)}; }
    static reply string(std::string s) { return {type::string, std::move(s)}; }
    static reply integer(long long v) {
        reply r;
        r.type_ = type::integer;
        r.integer_ = v;
        return r;
    }
    static reply array(std::vector<reply> elements) {
        reply r;
        r.type_ = type::array;
        r.elements_ = std::move(elements);
        return r;
    }

    [[nodiscard]] type kind() const noexcept { return type_; }
    [[nodiscard]] bool is_nil() const noexcept { return type_ == type::nil; }
    [[nodiscard]] bool is_error() const noexcept { return type_ == type::error; }
    [[nodiscard]] bool is_string() const noexcept { return type_ == type::string; }
    [[nodiscard]] bool is_integer() const noexcept { return type_ == type::integer; }
    [[nodiscard]] bool is_array() const noexcept { return type_ == type::array; }
    [[nodiscard]] bool is_status() const noexcept { return type_ == type::status; }

    /// The text of a bulk string, a status or an error.
    /// **Errors**: `redis::error` of kind `usage` for other types.
    [[nodiscard]] const std::string& str() const {
        if (type_ != type::string && type_ != type::status && type_ != type::error)
            wrong("a string");
        return text_;
    }
    /// A bulk string, or std::nullopt for nil.
    [[nodiscard]] std::optional<std::string> as_optional_string() const {
        if (type_ == type::nil)
            return std::nullopt;
        return str();
    }
    /// An integer reply.
    [[nodiscard]] long long as_integer() const {
        if (type_ != type::integer)
            wrong("an integer");
        return integer_;
    }
    /// The elements of an array reply.
    [[nodiscard]] const std::vector<reply>& elements() const {
        if (type_ != type::array)
            wrong("an array");
        return elements_;
    }
    [[nodiscard]] std::vector<reply>& elements() {
        if (type_ != type::array)
            wrong("an array");
        return elements_;
    }
    [[nodiscard]] const reply& operator[](std::size_t i) const { return elements().at(i); }
    [[nodiscard]] std::size_t size() const { return elements().size(); }

    /// The type's name: "nil", "status", "error", "integer", "string", "array".
    [[nodiscard]] const char* type_name() const noexcept {
        switch (type_) {
        case type::nil: return "nil";
        case type::status: return "status";
        case type::error: return "error";
        case type::integer: return "integer";
        case type::string: return "string";
        case type::array: return "array";
        }
        return "?";
    }

private:
    reply(type t, std::string text) : type_(t), text_(std::move(text)) {}

    [[noreturn]] void wrong(const char* wanted) const {
        throw redis::error(error_kind::usage, std::string("corio::redis::reply: read as ") +
                                                  wanted + ", but it is " + type_name() +
                                                  (type_ == type::error ? ": " + text_ : ""));
    }

    type type_ = type::nil;
    long long integer_ = 0;
    std::string text_;
    std::vector<reply> elements_;
};

} // namespace corio::redis

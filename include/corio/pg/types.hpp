// SPDX-License-Identifier: MIT
// How C++ values become query parameters and how result values become C++ values.
//
// Parameters go in PostgreSQL's text format (what `psql` would type), byte strings in binary
// (bytea, unescaped); the server infers each parameter's type from the statement. Results
// come back in text format and are parsed here, checked against the column's type.
#pragma once

#include <corio/pg/error.hpp>

#include <libpq-fe.h>

#include <array>
#include <charconv>
#include <chrono>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

namespace corio::pg {

/// `std::chrono::system_clock::time_point`: what `timestamptz` binds from and reads into.
using timestamp = std::chrono::system_clock::time_point;

/// One query parameter, encoded: its bytes, and whether it is NULL or binary (bytea).
struct param_value {
    std::string data;
    bool null = false;
    bool binary = false;
};

namespace detail {

/// PostgreSQL's type OIDs (pg_type.dat) that the conversions below check.
enum oid : Oid {
    bool_oid = 16,
    bytea_oid = 17,
    int8_oid = 20,
    int2_oid = 21,
    int4_oid = 23,
    text_oid = 25,
    oid_oid = 26,
    float4_oid = 700,
    float8_oid = 701,
    timestamp_oid = 1114,
    timestamptz_oid = 1184,
    numeric_oid = 1700,
};

/// A type's name for error messages: "int8", or "type 1043" for the others.
inline std::string type_name(Oid type) {
    switch (type) {
    case bool_oid: return "boolean";
    case bytea_oid: return "bytea";
    case int8_oid: return "bigint";
    case int2_oid: return "smallint";
    case int4_oid: return "integer";
    case text_oid: return "text";
    case oid_oid: return "oid";
    case float4_oid: return "real";
    case float8_oid: return "double precision";
    case timestamp_oid: return "timestamp";
    case timestamptz_oid: return "timestamptz";
    case numeric_oid: return "numeric";
    case 1043: return "varchar";
    case 1042: return "char";
    case 19: return "name";
    case 114: return "json";
    case 3802: return "jsonb";
    case 2950: return "uuid";
    case 1082: return "date";
    default: return "type " + std::to_string(type);
    }
}

template <class T>
struct is_optional : std::false_type {};
template <class T>
struct is_optional<std::optional<T>> : std::true_type {};

template <class T>
concept integer = std::integral<T> && !std::is_same_v<T, bool> && !std::is_same_v<T, char> &&
                  !std::is_same_v<T, char8_t> && !std::is_same_v<T, char16_t> &&
                  !std::is_same_v<T, char32_t> && !std::is_same_v<T, wchar_t>;

inline void append_2(std::string& out, unsigned v) {
    out.push_back(static_cast<char>('0' + v / 10));
    out.push_back(static_cast<char>('0' + v % 10));
}

/// "2024-01-02 03:04:05.123456+00": a timestamptz literal, in UTC.
inline std::string format_timestamp(timestamp t) {
    using namespace std::chrono;
    const auto us = floor<microseconds>(t);
    const auto day = floor<days>(us);
    const year_month_day ymd{day};
    const hh_mm_ss<microseconds> time{us - day};
    std::string out;
    out.reserve(32);
    const int y = static_cast<int>(ymd.year());
    if (y < 1)
        throw error(error_kind::type, "corio::pg: a timestamp before year 1 cannot be bound");
    std::array<char, 8> year{};
    const auto r = std::to_chars(year.data(), year.data() + year.size(), y);
    for (auto n = r.ptr - year.data(); n < 4; ++n)
        out.push_back('0');
    out.append(year.data(), r.ptr);
    out.push_back('-');
    append_2(out, static_cast<unsigned>(ymd.month()));
    out.push_back('-');
    append_2(out, static_cast<unsigned>(ymd.day()));
    out.push_back(' ');
    append_2(out, static_cast<unsigned>(time.hours().count()));
    out.push_back(':');
    append_2(out, static_cast<unsigned>(time.minutes().count()));
    out.push_back(':');
    append_2(out, static_cast<unsigned>(time.seconds().count()));
    out.push_back('.');
    const auto frac = static_cast<unsigned>(time.subseconds().count());
    for (unsigned div = 100000; div > 0; div /= 10)
        out.push_back(static_cast<char>('0' + frac / div % 10));
    out.append("+00");
    return out;
}

/// Parses a timestamp(tz) in DateStyle ISO: "2024-01-02 03:04:05[.ffffff][+hh[:mm[:ss]]]".
/// A value without offset (timestamp) is taken as UTC. False when it is not in that form.
inline bool parse_timestamp(std::string_view s, timestamp& out) {
    using namespace std::chrono;
    auto number = [&s](std::size_t pos, std::size_t len, int& v) {
        if (pos + len > s.size())
            return false;
        const char* b = s.data() + pos;
        const auto r = std::from_chars(b, b + len, v);
        return r.ec == std::errc{} && r.ptr == b + len;
    };
    const std::size_t dash = s.find('-', 1);
    if (dash == std::string_view::npos || dash < 4)
        return false;
    int y = 0;
    int mo = 0;
    int d = 0;
    int h = 0;
    int mi = 0;
    int sec = 0;
    if (!number(0, dash, y) || s.size() < dash + 15 || s[dash + 3] != '-' || s[dash + 6] != ' ' ||
        s[dash + 9] != ':' || s[dash + 12] != ':' || !number(dash + 1, 2, mo) ||
        !number(dash + 4, 2, d) || !number(dash + 7, 2, h) || !number(dash + 10, 2, mi) ||
        !number(dash + 13, 2, sec))
        return false;
    std::size_t pos = dash + 15;
    long micros = 0;
    if (pos < s.size() && s[pos] == '.') {
        long scale = 100000;
        for (++pos; pos < s.size() && s[pos] >= '0' && s[pos] <= '9'; ++pos, scale /= 10)
            micros += (s[pos] - '0') * scale;
    }
    int offset_s = 0;
    if (pos < s.size()) {
        const char sign = s[pos];
        if (sign != '+' && sign != '-')
            return false;
        int oh = 0;
        int om = 0;
        int os = 0;
        if (!number(pos + 1, 2, oh))
            return false;
        pos += 3;
        if (pos < s.size() && s[pos] == ':') {
            if (!number(pos + 1, 2, om))
                return false;
            pos += 3;
        }
        if (pos < s.size() && s[pos] == ':') {
            if (!number(pos + 1, 2, os))
                return false;
            pos += 3;
        }
        if (pos != s.size())
            return false;
        offset_s = (oh * 3600 + om * 60 + os) * (sign == '-' ? -1 : 1);
    }
    const year_month_day ymd{year{y}, month{static_cast<unsigned>(mo)},
                             day{static_cast<unsigned>(d)}};
    if (!ymd.ok())
        return false;
    out = time_point_cast<system_clock::duration>(sys_days{ymd} + hours{h} + minutes{mi} +
                                                  seconds{sec} - seconds{offset_s} +
                                                  microseconds{micros});
    return true;
}

inline int hex_digit(char c) noexcept {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

} // namespace detail

// --- parameters ------------------------------------------------------------------------------

/// Binds `std::nullopt` (and an empty `std::optional`) as NULL.
inline void encode(param_value& out, std::nullopt_t) { out.null = true; }

inline void encode(param_value& out, bool v) { out.data = v ? "t" : "f"; }

template <detail::integer T>
void encode(param_value& out, T v) {
    std::array<char, 24> buf{};
    const auto r = std::to_chars(buf.data(), buf.data() + buf.size(), v);
    out.data.assign(buf.data(), r.ptr);
}

template <std::floating_point T>
void encode(param_value& out, T v) {
    if (std::isnan(v)) {
        out.data = "NaN";
    } else if (std::isinf(v)) {
        out.data = v > 0 ? "Infinity" : "-Infinity";
    } else {
        std::array<char, 40> buf{};
        const auto r = std::to_chars(buf.data(), buf.data() + buf.size(), v); // shortest exact
        out.data.assign(buf.data(), r.ptr);
    }
}

/// Text. PostgreSQL's text cannot hold a NUL byte: such a string is refused here (bind it as
/// bytes instead) rather than cut short.
inline void encode(param_value& out, std::string_view v) {
    if (v.find('\0') != std::string_view::npos)
        throw error(error_kind::type,
                    "corio::pg: a text parameter holds a NUL byte at offset " +
                        std::to_string(v.find('\0')) +
                        "; PostgreSQL's text cannot store one: bind it as bytes (bytea)");
    out.data.assign(v);
}
inline void encode(param_value& out, const std::string& v) { encode(out, std::string_view(v)); }
inline void encode(param_value& out, const char* v) { encode(out, std::string_view(v)); }

/// Bytes (bytea), sent in binary: `std::vector<std::byte>`, `std::vector<unsigned char>`,
/// or a span of either.
template <class B>
    requires(std::is_same_v<B, std::byte> || std::is_same_v<B, unsigned char>)
void encode(param_value& out, std::span<const B> v) {
    out.data.assign(reinterpret_cast<const char*>(v.data()), v.size());
    out.binary = true;
}
template <class B>
    requires(std::is_same_v<B, std::byte> || std::is_same_v<B, unsigned char>)
void encode(param_value& out, const std::vector<B>& v) { encode(out, std::span<const B>(v)); }

/// A `timestamptz` (microseconds, UTC).
inline void encode(param_value& out, timestamp t) { out.data = detail::format_timestamp(t); }

template <class T>
void encode(param_value& out, const std::optional<T>& v) {
    if (v)
        encode(out, *v);
    else
        out.null = true;
}

/// True for the types a parameter can bind from (extend by overloading
/// `corio::pg::encode(param_value&, const T&)`).
template <class T>
concept bindable = requires(param_value& p, const T& v) {
    encode(p, v);
};

// --- result values ---------------------------------------------------------------------------

/// Where a value came from, for conversion errors: "column \"id\" (0), bigint".
struct value_origin {
    const char* column;
    int index;
    Oid type;
};

namespace detail {

[[noreturn]] inline void mismatch(const value_origin& at, const char* wanted,
                                  std::string_view why) {
    throw error(error_kind::type, "corio::pg::row::get: column \"" + std::string(at.column) +
                                      "\" (" + std::to_string(at.index) + ") is " +
                                      type_name(at.type) + ", read as " + wanted + ": " +
                                      std::string(why));
}

} // namespace detail

/// Converts a column's text value (never NULL here) to `T`; the overload set behind
/// `row::get<T>`. Extend it by specialising `corio::pg::decoder<T>`.
template <class T>
struct decoder;

template <>
struct decoder<bool> {
    static bool decode(std::string_view text, const value_origin& at) {
        if (at.type != detail::bool_oid)
            detail::mismatch(at, "bool", "not a boolean column");
        return text == "t";
    }
};

template <detail::integer T>
struct decoder<T> {
    static T decode(std::string_view text, const value_origin& at) {
        if (at.type != detail::int2_oid && at.type != detail::int4_oid &&
            at.type != detail::int8_oid && at.type != detail::oid_oid)
            detail::mismatch(at, "an integer", "not an integer column");
        T v{};
        const auto r = std::from_chars(text.data(), text.data() + text.size(), v);
        if (r.ec == std::errc::result_out_of_range)
            detail::mismatch(at, "an integer",
                             "the value " + std::string(text) + " does not fit the C++ type");
        if (r.ec != std::errc{} || r.ptr != text.data() + text.size())
            detail::mismatch(at, "an integer", "not a number: " + std::string(text));
        return v;
    }
};

template <std::floating_point T>
struct decoder<T> {
    static T decode(std::string_view text, const value_origin& at) {
        if (at.type != detail::float4_oid && at.type != detail::float8_oid &&
            at.type != detail::numeric_oid && at.type != detail::int2_oid &&
            at.type != detail::int4_oid && at.type != detail::int8_oid)
            detail::mismatch(at, "a floating-point number", "not a numeric column");
        if (text == "NaN")
            return std::numeric_limits<T>::quiet_NaN();
        if (text == "Infinity")
            return std::numeric_limits<T>::infinity();
        if (text == "-Infinity")
            return -std::numeric_limits<T>::infinity();
        T v{};
        const auto r = std::from_chars(text.data(), text.data() + text.size(), v);
        if (r.ec != std::errc{} || r.ptr != text.data() + text.size())
            detail::mismatch(at, "a floating-point number",
                             "not representable: " + std::string(text));
        return v;
    }
};

/// Any column as its text form (what psql prints).
template <>
struct decoder<std::string> {
    static std::string decode(std::string_view text, const value_origin&) {
        return std::string(text);
    }
};

/// Any column as its text form, viewing the result's memory (valid while the result lives).
template <>
struct decoder<std::string_view> {
    static std::string_view decode(std::string_view text, const value_origin&) { return text; }
};

/// A bytea column's bytes.
template <class B>
    requires(std::is_same_v<B, std::byte> || std::is_same_v<B, unsigned char>)
struct decoder<std::vector<B>> {
    static std::vector<B> decode(std::string_view text, const value_origin& at) {
        if (at.type != detail::bytea_oid)
            detail::mismatch(at, "bytes", "not a bytea column");
        if (text.size() < 2 || text[0] != '\\' || text[1] != 'x' || text.size() % 2 != 0)
            detail::mismatch(at, "bytes", "not in bytea's hex format (bytea_output = hex)");
        std::vector<B> out((text.size() - 2) / 2);
        for (std::size_t i = 0; i < out.size(); ++i) {
            const int hi = detail::hex_digit(text[2 + 2 * i]);
            const int lo = detail::hex_digit(text[3 + 2 * i]);
            if (hi < 0 || lo < 0)
                detail::mismatch(at, "bytes", "a bad hex digit in bytea's text");
            out[i] = static_cast<B>(hi * 16 + lo);
        }
        return out;
    }
};

/// A timestamptz (or a timestamp, taken as UTC), in DateStyle ISO (the server's default).
template <>
struct decoder<timestamp> {
    static timestamp decode(std::string_view text, const value_origin& at) {
        if (at.type != detail::timestamptz_oid && at.type != detail::timestamp_oid)
            detail::mismatch(at, "a timestamp", "not a timestamp column");
        timestamp t{};
        if (!detail::parse_timestamp(text, t))
            detail::mismatch(at, "a timestamp",
                             "cannot read \"" + std::string(text) +
                                 "\" (infinity, BC dates and DateStyles other than ISO are "
                                 "not supported)");
        return t;
    }
};

/// True for the types `row::get<T>` reads (`std::optional<T>` of each, for NULL).
template <class T>
concept decodable = requires(std::string_view text, const value_origin& at) {
    { decoder<T>::decode(text, at) } -> std::convertible_to<T>;
};

} // namespace corio::pg

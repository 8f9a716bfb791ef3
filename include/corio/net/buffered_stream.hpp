// SPDX-License-Identifier: MIT
#pragma once

#include <corio/net/detail/input_buffer.hpp>
#include <corio/task.hpp>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace corio::net {

/// The stream ended before what was asked for arrived (asyncio's IncompleteReadError).
/// `partial()` holds what did arrive.
class incomplete_read : public std::runtime_error {
public:
    incomplete_read(const std::string& what, std::string partial)
        : std::runtime_error(what), partial_(std::move(partial)) {}
    [[nodiscard]] const std::string& partial() const noexcept { return partial_; }

private:
    std::string partial_;
};

/// No delimiter within the line limit (asyncio's LimitOverrunError): the peer sent a line
/// longer than `max_line`; the bytes stay buffered.
class limit_overrun : public std::length_error {
public:
    using std::length_error::length_error;
};

/// How a `buffered_stream` buffers.
struct buffered_options {
    /// Bytes asked of the stream per read.
    std::size_t read_size = std::size_t{64} * 1024;
    /// The longest line (`read_until`, `read_line`) accepted, delimiter included.
    std::size_t max_line = std::size_t{64} * 1024;
};

/// Buffered reading over any stream with `read_some(std::span<std::byte>) -> task<size_t>` and
/// `write_all` (a `tcp_stream`, a TLS stream): `read_until`, `read_line`, `read_exact`, `peek`
/// (asyncio's StreamReader). Writes go straight through.
///
/// **Cancellation**: a cancelled read loses nothing: bytes already received stay buffered for
/// the next read.
/// **Errors**: `incomplete_read` at end of stream before what was asked for, `limit_overrun` for a
/// line over `max_line`, and whatever the stream throws.
template <class Stream>
class buffered_stream {
public:
    explicit buffered_stream(Stream stream, buffered_options options = {})
        : stream_(std::move(stream)), options_(options) {}

    /// Bytes up to and including the first `delim`.
    [[nodiscard]] task<std::string> read_until(std::string_view delim) {
        if (delim.empty())
            throw std::invalid_argument("corio::net::buffered_stream::read_until: empty delimiter");
        std::size_t searched = 0; // no match starts before this offset
        for (;;) {
            const std::string_view data = buffered();
            const std::size_t at = data.find(delim, searched);
            if (at != std::string_view::npos) {
                const std::size_t n = at + delim.size();
                if (n > options_.max_line)
                    throw overrun(delim);
                co_return take(n);
            }
            if (data.size() >= options_.max_line)
                throw overrun(delim);
            searched = data.size() >= delim.size() ? data.size() - delim.size() + 1 : 0;
            const bool more = co_await fill(); // a named local: g++ 12 and co_await in conditions
            if (!more)
                throw incomplete_read("corio::net::buffered_stream::read_until: end of stream "
                                      "before the delimiter",
                                      take(buffered().size()));
        }
    }

    /// A line including its '\n', or what is left at the end of the stream (empty at the end).
    [[nodiscard]] task<std::string> read_line() {
        try {
            co_return co_await read_until("\n");
        } catch (incomplete_read& e) {
            co_return e.partial();
        }
    }

    /// Exactly `n` bytes.
    [[nodiscard]] task<std::string> read_exact(std::size_t n) {
        while (buffered().size() < n) {
            const bool more = co_await fill();
            if (!more) {
                std::string partial = take(buffered().size());
                const std::string what = "corio::net::buffered_stream::read_exact: end of stream "
                                         "after " +
                                         std::to_string(partial.size()) + " of " +
                                         std::to_string(n) + " bytes";
                throw incomplete_read(what, std::move(partial));
            }
        }
        co_return take(n);
    }

    /// Up to `n` bytes without consuming them (reads once if nothing is buffered); empty at the
    /// end of the stream. The view is valid until the next read.
    [[nodiscard]] task<std::string_view> peek(std::size_t n) {
        if (buffered().empty()) {
            [[maybe_unused]] const bool more = co_await fill();
        }
        const std::string_view data = buffered();
        co_return data.substr(0, std::min(n, data.size()));
    }

    /// What is buffered, else one read of the stream; 0 at the end.
    [[nodiscard]] task<std::size_t> read_some(std::span<std::byte> out) {
        if (buffered().empty()) {
            const bool more = co_await fill();
            if (!more)
                co_return 0;
        }
        const std::string_view data = buffered();
        const std::size_t n = std::min(out.size(), data.size());
        std::memcpy(out.data(), data.data(), n);
        buf_.consume(n);
        co_return n;
    }

    [[nodiscard]] task<> write_all(std::span<const std::byte> bytes) {
        co_await stream_.write_all(bytes);
    }
    [[nodiscard]] task<> write_all(std::string_view text) { return stream_.write_all(text); }

    /// The stream underneath (bytes already buffered are not in it any more).
    [[nodiscard]] Stream& stream() noexcept { return stream_; }
    /// Bytes received but not read yet.
    [[nodiscard]] std::string_view buffered() const noexcept { return buf_.data(); }

private:
    /// Reads once more into the buffer; false at the end of the stream.
    task<bool> fill() {
        const std::size_t n =
            co_await stream_.read_some(buf_.space(options_.read_size).first(options_.read_size));
        buf_.commit(n);
        co_return n > 0;
    }

    std::string take(std::size_t n) {
        std::string out(buf_.data().substr(0, n));
        buf_.consume(n);
        return out;
    }

    [[nodiscard]] limit_overrun overrun(std::string_view delim) const {
        return limit_overrun("corio::net::buffered_stream: no \"" + std::string(delim) +
                             "\" within the line limit of " + std::to_string(options_.max_line) +
                             " bytes");
    }

    Stream stream_;
    buffered_options options_;
    corio::detail::input_buffer buf_{options_.read_size};
};

} // namespace corio::net

// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <limits>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

namespace corio::detail {

/// Received bytes waiting to be consumed: the one "make room, then receive" of corio's readers
/// (the HTTP server's and client's connections, TLS, `buffered_stream`, the multishot receive).
///
/// The unread bytes are `[begin, end)` of one array. `space(want)` makes room for `want` more
/// after them (moving them to the front when some were consumed, else growing the array, never
/// past `limit`); a receive writes there and `commit`s what it wrote; `consume` drops bytes from
/// the front, and the array starts over at 0 when everything was consumed, so a reader that
/// keeps up never moves a byte.
class input_buffer {
public:
    static constexpr std::size_t unlimited = std::numeric_limits<std::size_t>::max();

    /// Nothing allocated until the first `space`, which allocates at least `initial` bytes.
    explicit input_buffer(std::size_t initial = 4096, std::size_t limit = unlimited) noexcept
        : initial_(initial), limit_(std::max(limit, initial)) {}
    /// Takes `storage` (all of it free) as the array: for readers that recycle their arrays.
    explicit input_buffer(std::vector<char> storage, std::size_t limit = unlimited) noexcept
        : bytes_(std::move(storage)), initial_(bytes_.size()),
          limit_(std::max(limit, bytes_.size())) {}

    /// The unread bytes.
    [[nodiscard]] std::string_view data() const noexcept {
        return {bytes_.data() + begin_, end_ - begin_};
    }
    [[nodiscard]] std::size_t size() const noexcept { return end_ - begin_; }
    [[nodiscard]] bool empty() const noexcept { return begin_ == end_; }
    /// The array's size (what the buffer holds in memory).
    [[nodiscard]] std::size_t capacity() const noexcept { return bytes_.size(); }
    [[nodiscard]] std::size_t limit() const noexcept { return limit_; }

    /// The free space after the unread bytes, made at least `want` bytes long unless that
    /// would take the array past `limit` (then it is what the limit leaves: possibly empty).
    [[nodiscard]] std::span<std::byte> space(std::size_t want) {
        if (bytes_.size() - end_ < want) {
            if (begin_ > 0) // consumed bytes at the front: move the unread ones there
                compact();
            if (bytes_.size() - end_ < want && bytes_.size() < limit_) {
                const std::size_t grown = std::max({bytes_.size() * 2, end_ + want, initial_});
                bytes_.resize(std::min(grown, limit_));
            }
        }
        return std::as_writable_bytes(std::span(bytes_).subspan(end_));
    }
    /// Adds the `n` bytes a receive wrote at the start of `space()`.
    void commit(std::size_t n) noexcept { end_ += n; }
    /// Copies `n` bytes in after the unread ones; false, with nothing copied, when they do not
    /// fit under `limit`. Grows only as much as they need (no `initial` minimum): a reader
    /// that is handed its data, like the server's idle connection, keeps a small array.
    bool append(const void* from, std::size_t n) {
        if (bytes_.size() - end_ < n) {
            if (begin_ > 0)
                compact();
            if (bytes_.size() - end_ < n) {
                if (end_ + n > limit_)
                    return false;
                bytes_.resize(std::min(std::max(bytes_.size() * 2, end_ + n), limit_));
            }
        }
        std::memcpy(bytes_.data() + end_, from, n);
        end_ += n;
        return true;
    }
    /// Drops the first `n` unread bytes.
    void consume(std::size_t n) noexcept {
        begin_ += n;
        if (begin_ == end_)
            begin_ = end_ = 0;
    }
    /// Drops every unread byte.
    void clear() noexcept { begin_ = end_ = 0; }

    /// Gives the array away (for recycling), leaving the buffer empty and unallocated.
    [[nodiscard]] std::vector<char> release() noexcept {
        begin_ = end_ = 0;
        return std::exchange(bytes_, {});
    }

private:
    void compact() noexcept {
        std::memmove(bytes_.data(), bytes_.data() + begin_, end_ - begin_);
        end_ -= begin_;
        begin_ = 0;
    }

    std::vector<char> bytes_;
    std::size_t begin_ = 0;
    std::size_t end_ = 0;
    std::size_t initial_;
    std::size_t limit_;
};

} // namespace corio::detail

// SPDX-License-Identifier: MIT
#include "../support/corio_test.hpp"

#include <corio/net/buffered_stream.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

using corio::task;
using corio::net::buffered_options;
using corio::net::buffered_stream;
using corio::net::incomplete_read;
using corio::net::limit_overrun;

namespace {

/// A stream that hands out `data` in pieces: the first read ends at `split`, later ones give at
/// most `chunk` bytes; each read suspends once, like a socket.
class scripted_stream {
public:
    scripted_stream(std::string data, std::size_t split, std::size_t chunk)
        : data_(std::move(data)), split_(split), chunk_(chunk) {}

    task<std::size_t> read_some(std::span<std::byte> out) {
        co_await corio::yield_now();
        const std::size_t limit = pos_ < split_ ? split_ - pos_ : chunk_;
        const std::size_t n = std::min({out.size(), limit, data_.size() - pos_});
        std::memcpy(out.data(), data_.data() + pos_, n);
        pos_ += n;
        co_return n;
    }
    task<> write_all(std::span<const std::byte> bytes) {
        written.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
        co_return;
    }
    task<> write_all(std::string_view text) {
        written.append(text);
        co_return;
    }

    std::string written;

private:
    std::string data_;
    std::size_t pos_ = 0;
    std::size_t split_;
    std::size_t chunk_;
};

task<std::vector<std::string>> lines_of(buffered_stream<scripted_stream>& in) {
    std::vector<std::string> lines;
    for (;;) {
        std::string line = co_await in.read_line();
        if (line.empty())
            co_return lines;
        lines.push_back(std::move(line));
    }
}

} // namespace

CORIO_TEST_CASE("buffered_stream: read_until finds messages split at every byte boundary",
                "[net][buffered]") {
    const std::string text = "GET / HTTP/1.1\r\nHost: a\r\n\r\nbody";
    for (std::size_t split = 0; split <= text.size(); ++split) {
        for (std::size_t chunk : {std::size_t{1}, std::size_t{3}, std::size_t{1000}}) {
            INFO("split " << split << ", chunk " << chunk);
            buffered_stream<scripted_stream> in{scripted_stream{text, split, chunk}};
            std::string head = co_await in.read_until("\r\n\r\n");
            CHECK(head == "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
            std::string body = co_await in.read_exact(4);
            CHECK(body == "body");
        }
    }
}

CORIO_TEST_CASE("buffered_stream: read_line returns lines, then the rest, then empty",
                "[net][buffered]") {
    buffered_stream<scripted_stream> in{scripted_stream{"one\ntwo\nthree", 2, 2}};
    std::vector<std::string> lines = co_await lines_of(in);
    CHECK(lines == std::vector<std::string>{"one\n", "two\n", "three"});
}

CORIO_TEST_CASE("buffered_stream: end of stream before the delimiter or count is incomplete_read "
                "with the partial data",
                "[net][buffered][bad-input]") {
    buffered_stream<scripted_stream> a{scripted_stream{"no delimiter here", 5, 5}};
    try {
        std::string s = co_await a.read_until("\r\n");
        FAIL("got " << s);
    } catch (const incomplete_read& e) {
        CHECK(e.partial() == "no delimiter here");
    }
    buffered_stream<scripted_stream> b{scripted_stream{"short", 5, 5}};
    try {
        std::string s = co_await b.read_exact(10);
        FAIL("got " << s);
    } catch (const incomplete_read& e) {
        CHECK(e.partial() == "short");
        CHECK(corio::test::contains(e.what(), "5 of 10"));
    }
}

CORIO_TEST_CASE("buffered_stream: a line over the limit is limit_overrun naming the limit",
                "[net][buffered][bad-input]") {
    buffered_options small{.read_size = 8, .max_line = 16};
    buffered_stream<scripted_stream> in{scripted_stream{std::string(100, 'x') + "\n", 7, 7}, small};
    try {
        std::string s = co_await in.read_line();
        FAIL("got a line of " << s.size());
    } catch (const limit_overrun& e) {
        CHECK(corio::test::contains(e.what(), "16 bytes"));
    }
}

CORIO_TEST_CASE("buffered_stream: peek does not consume, read_some drains the buffer first",
                "[net][buffered]") {
    buffered_stream<scripted_stream> in{scripted_stream{"abcdef", 6, 6}};
    std::string_view first = co_await in.peek(3);
    CHECK(first == "abc");
    std::string line = co_await in.read_exact(2);
    CHECK(line == "ab");
    std::array<std::byte, 16> buf{};
    const std::size_t n = co_await in.read_some(buf);
    CHECK(std::string(reinterpret_cast<const char*>(buf.data()), n) == "cdef");
    const std::size_t end = co_await in.read_some(buf);
    CHECK(end == 0);
    co_await in.write_all("reply");
    CHECK(in.stream().written == "reply");
}

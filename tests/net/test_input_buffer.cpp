// SPDX-License-Identifier: MIT
#include "../support/catch.hpp"

#include <corio/net/detail/input_buffer.hpp>

#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

using corio::detail::input_buffer;

namespace {
/// Writes `text` into `b` as a receive would: into `space`, then `commit`.
void receive(input_buffer& b, std::string_view text) {
    const std::span<std::byte> room = b.space(text.size());
    REQUIRE(room.size() >= text.size());
    std::memcpy(room.data(), text.data(), text.size());
    b.commit(text.size());
}
} // namespace

TEST_CASE("input_buffer: nothing is allocated before the first space, which takes the initial "
          "size",
          "[net][buffer]") {
    input_buffer b{1024};
    CHECK(b.capacity() == 0);
    CHECK(b.space(1).size() == 1024);
    CHECK(b.empty());
}

TEST_CASE("input_buffer: consuming everything starts over at 0, so a reader that keeps up moves "
          "no byte",
          "[net][buffer]") {
    input_buffer b{16};
    receive(b, "0123456789");
    b.consume(10);
    CHECK(b.empty());
    CHECK(b.space(16).size() == 16); // the whole array again, not what was left after 10
    CHECK(b.capacity() == 16);
}

TEST_CASE("input_buffer: unread bytes move to the front before the array grows", "[net][buffer]") {
    input_buffer b{16};
    receive(b, "abcdefghijkl"); // 12 of 16
    b.consume(8);               // "ijkl" unread at 8..12
    receive(b, "mnopqrst");     // 8 more: fits once the 4 unread bytes move to the front
    CHECK(b.capacity() == 16);
    CHECK(b.data() == "ijklmnopqrst");
    receive(b, "uvwxyz"); // 6 more: now it grows
    CHECK(b.capacity() > 16);
    CHECK(b.data() == "ijklmnopqrstuvwxyz");
}

TEST_CASE("input_buffer: append grows only as much as the bytes need, and the limit holds",
          "[net][buffer]") {
    input_buffer b{16, 64}; // (a limit is never below the initial size)
    CHECK(b.append("hello", 5));
    CHECK(b.capacity() == 5); // not the initial 16: a reader handed its data keeps it small
    CHECK(b.data() == "hello");
    const std::string big(59, 'x');
    CHECK(b.append(big.data(), big.size())); // 64 in all: at the limit
    CHECK(b.size() == 64);
    CHECK_FALSE(b.append("!", 1)); // over it: refused, nothing copied
    CHECK(b.size() == 64);
    CHECK(b.space(1).empty()); // and no room for a receive either
}

TEST_CASE("input_buffer: release gives the array away for recycling, and a recycled array is "
          "used whole",
          "[net][buffer]") {
    input_buffer b{32};
    receive(b, "abc");
    std::vector<char> array = b.release();
    CHECK(array.size() == 32);
    CHECK(b.capacity() == 0);
    CHECK(b.empty());
    input_buffer again{std::move(array)};
    CHECK(again.capacity() == 32);
    CHECK(again.empty());
    CHECK(again.space(32).size() == 32);
}

// SPDX-License-Identifier: MIT
// libFuzzer target: net::buffered_stream's line reading over input split at fuzzed points, and
// net::address parsing.
//
// Invariants, beyond the sanitizers': the lines read, concatenated, are the input's prefix;
// no line is longer than `max_line`; an overrun is reported only when no delimiter is within
// `max_line`; an address that parses prints as text that parses to the same address.
#include "fuzz_support.hpp"

#include <corio/io/event_loop.hpp>
#include <corio/net/address.hpp>
#include <corio/net/buffered_stream.hpp>
#include <corio/task.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>

namespace {

using corio::task;

/// A stream whose reads return the input in fuzzed pieces.
class pieces {
public:
    pieces(std::string_view input, std::uint8_t step) : input_(input), step_(step) {}
    task<std::size_t> read_some(std::span<std::byte> buf) {
        // 1 to 64 bytes: never 0 before the end, which would read as the end of the stream.
        const std::size_t n = std::min({std::size_t{1} + step_ % 64, buf.size(), input_.size()});
        std::memcpy(buf.data(), input_.data(), n);
        input_.remove_prefix(n);
        step_ = static_cast<std::uint8_t>(step_ * 5 + 3); // varies the piece sizes
        co_return n;
    }
    task<> write_all(std::string_view) { co_return; }

private:
    std::string_view input_;
    std::uint8_t step_;
};

constexpr std::size_t max_line = 64;

task<> read_lines(std::string_view input, std::uint8_t step) {
    corio::net::buffered_stream<pieces> b{pieces{input, step},
                                          {.read_size = 16, .max_line = max_line}};
    std::string seen;
    for (;;) {
        std::string line;
        try {
            line = co_await b.read_line();
        } catch (const corio::net::limit_overrun&) {
            const std::string_view rest = input.substr(seen.size());
            const std::size_t nl = rest.find('\n');
            if (nl != std::string_view::npos && nl < max_line)
                corio::fuzz::fail("an overrun with a delimiter within max_line", "");
            co_return;
        }
        if (line.empty())
            break;
        if (line.size() > max_line)
            corio::fuzz::fail("a line longer than max_line", std::to_string(line.size()));
        seen += line;
        if (input.substr(0, seen.size()) != seen)
            corio::fuzz::fail("the lines are not the input", seen);
    }
    if (seen != input)
        corio::fuzz::fail("the lines stopped before the input's end", seen);
}

void parse_address(std::string_view text) {
    corio::net::address a;
    try {
        a = corio::net::address::parse(text);
    } catch (const std::invalid_argument&) {
        return;
    }
    const std::string printed = a.to_string();
    corio::net::address again;
    try {
        again = corio::net::address::parse(printed);
    } catch (const std::invalid_argument&) {
        corio::fuzz::fail("an address prints as text it does not parse", printed);
    }
    if (!(again == a))
        corio::fuzz::fail("an address does not survive printing and parsing", printed);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1 || size > 16 * 1024)
        return 0;
    const std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);
    static corio::event_loop loop;
    loop.run(read_lines(input, data[0]));
    if (input.size() <= 128)
        parse_address(input);
    return 0;
}

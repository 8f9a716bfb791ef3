// SPDX-License-Identifier: MIT
// What the tests' scripted HTTP peers share: reading a request's head before they answer.
#pragma once

#include <corio/task.hpp>

#include <array>
#include <cstddef>
#include <string>

namespace corio::test {

/// Reads from `s` (a tcp_stream, a tls::stream) up to and including the end of a request head
/// ("\r\n\r\n"), and what came after it in the same reads; "" when the stream ended first.
template <class Stream>
task<std::string> read_request_head(Stream& s) {
    std::string got;
    std::array<std::byte, 4096> buf{};
    while (got.find("\r\n\r\n") == std::string::npos) {
        const std::size_t n = co_await s.read_some(buf);
        if (n == 0)
            co_return std::string();
        got.append(reinterpret_cast<const char*>(buf.data()), n);
    }
    co_return got;
}

} // namespace corio::test

// SPDX-License-Identifier: MIT
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

namespace corio::http {

/// How a `server` treats its clients. Designated initializers:
/// `server_options{.max_body_bytes = 1 << 20, .header_timeout = 10s}`.
struct server_options {
    /// The request line and header fields together (431 over it; 414 for the line alone).
    std::size_t max_header_bytes = std::size_t{16} * 1024;
    /// The decoded request body (413 over it, answered before the body is read).
    std::size_t max_body_bytes = 1 << 20;
    /// Connections served at once; more wait in the listen backlog until one closes.
    std::size_t max_connections = 10'000;
    /// From a request's first byte to the end of its header fields (408 when it passes: what
    /// stops a client that sends its head a byte at a time, "slowloris").
    std::chrono::milliseconds header_timeout = std::chrono::seconds(10);
    /// How long an idle keep-alive connection waits for its next request (then it closes).
    std::chrono::milliseconds keep_alive_timeout = std::chrono::seconds(60);
    /// From the end of the head to the response's last byte sent: reading the body (408 when
    /// it passes there), the handler (503) and sending the response (the connection closes).
    std::chrono::milliseconds request_timeout = std::chrono::seconds(60);
    /// Header fields in one request (431 over it).
    std::size_t max_header_count = 100;
    /// The Server field's value ("" sends none).
    std::string server_name = "corio";
    /// Bytes a connection may receive ahead of the request being handled (pipelined requests
    /// from a client that does not read its answers): past it the server stops receiving from
    /// that connection until it catches up, so one client holds a bounded share of memory and
    /// never the loop's shared receive buffers (which it gives back at once).
    std::size_t max_read_ahead = std::size_t{64} * 1024;
};

} // namespace corio::http

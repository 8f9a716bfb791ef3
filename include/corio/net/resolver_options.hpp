// SPDX-License-Identifier: MIT
#pragma once

#include <corio/net/address.hpp>

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace corio::net {

/// How a `resolver` looks names up. Designated initializers:
/// `resolver r{{.timeout = 500ms, .tries = 2}}`. What is left unset comes from the system
/// (`/etc/resolv.conf`), as it would for getaddrinfo.
///
/// Built without c-ares, corio resolves with getaddrinfo, which reads only the system's
/// configuration: `servers` and `search_domains` are refused there (`std::invalid_argument`),
/// and `timeout`, `tries` and the cache do not apply.
struct resolver_options {
    /// How long the first try waits for each server; later rounds wait twice as long as the
    /// one before (c-ares's back-off). Unset: resolv.conf's `options timeout:`, else c-ares's
    /// 5 s.
    std::optional<std::chrono::milliseconds> timeout{};
    /// How many rounds of queries are sent to the servers before giving up with a DNS timeout.
    /// Unset: resolv.conf's `options attempts:`, else c-ares's 4.
    std::optional<int> tries{};
    /// The DNS servers to ask, in order (port 0 means 53), instead of resolv.conf's: for tests,
    /// and for programs that must not depend on the system's configuration.
    std::vector<address> servers{};
    /// The search domains tried for names with fewer dots than `ndots` (and after a name fails
    /// as given). Unset: resolv.conf's `search`; empty: none.
    std::optional<std::vector<std::string>> search_domains{};
    /// How many names the cache keeps (positive answers only, each for its DNS TTL); 0 turns
    /// the cache off.
    std::size_t cache_size = 1024;
    /// How many names may be in flight at once; more lookups wait their turn, in order. Each
    /// name is an A and an AAAA query sent at once: thousands sent in one burst overflow the
    /// socket buffers of the server or of the resolver, and each reply lost costs a whole
    /// timeout. Lookups of one name share a query, and a query every lookup gave up on no
    /// longer counts.
    std::size_t max_queries = 64;
};

} // namespace corio::net

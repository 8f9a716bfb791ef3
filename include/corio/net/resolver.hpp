// SPDX-License-Identifier: MIT
#pragma once

#include <corio/io/event_loop.hpp>
#include <corio/net/address.hpp>
#include <corio/net/detail/cares_resolver.hpp>
#include <corio/net/detail/getaddrinfo_resolver.hpp>
#include <corio/net/detail/lookup_result.hpp>
#include <corio/net/resolve_error.hpp>
#include <corio/net/resolver_options.hpp>
#include <corio/task.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace corio::detail {

/// The address of a numeric host (`10.0.0.1`, `::1`, `[::1]`, `fe80::1%eth0`) with `port`, or
/// nothing when `host` is a name.
/// **Errors**: `resolve_error` (`bad_name`) for an empty host, a '[' without its ']', brackets
/// around something other than an IPv6 address, or a ':' in what is not an IPv6 address.
inline std::optional<net::address> numeric_host(const std::string& host, std::uint16_t port) {
    const std::string_view h = host;
    if (h.empty())
        throw net::resolve_error(net::resolve_errc::bad_name, host, port, "empty host name");
    if (h.front() == '[' || h.back() == ']') {
        if (h.size() < 2 || h.front() != '[' || h.back() != ']')
            throw net::resolve_error(net::resolve_errc::bad_name, host, port,
                                     "unbalanced brackets (an IPv6 address is written [::1])");
        std::optional<net::address> a = net::address::from_ip(h.substr(1, h.size() - 2), port);
        if (!a || !a->is_v6())
            throw net::resolve_error(net::resolve_errc::bad_name, host, port,
                                     "brackets must hold an IPv6 address");
        return a;
    }
    std::optional<net::address> a = net::address::from_ip(h, port);
    if (!a && h.find(':') != std::string_view::npos)
        throw net::resolve_error(net::resolve_errc::bad_name, host, port,
                                 "not a valid IPv6 address (and a host name has no ':')");
    return a;
}

/// `list` with `port` on every address.
inline std::vector<net::address> with_port(std::vector<net::address> list, std::uint16_t port) {
    for (net::address& a : list)
        a = a.with_port(port);
    return list;
}

/// Resolves through `backend` (c-ares or getaddrinfo): numeric hosts first, then the cache,
/// then a lookup. Shared by both backends, so both behave and fail alike.
template <class Backend>
task<std::vector<net::address>> resolve_with(Backend* backend, std::string host,
                                             std::uint16_t port) {
    if (std::optional<net::address> numeric = numeric_host(host, port))
        co_return std::vector<net::address>{*numeric};
    const std::string key = name_key(host);
    std::optional<std::vector<net::address>> hit = backend->cached(key);
    if (hit)
        co_return with_port(std::move(*hit), port);
    auto lookup = backend->lookup(key);
    lookup_result r = co_await lookup;
    if (!r.ok())
        throw net::resolve_error(r.error, host, port, r.reason);
    co_return with_port(std::move(r.addresses), port);
}

} // namespace corio::detail

namespace corio::net {

// A resolver's layout depends on the backend corio was configured with. Each backend has its
// own inline namespace, so translation units built with different configurations fail to link
// instead of silently breaking the one-definition rule.
#if defined(CORIO_HAVE_CARES)
inline namespace resolver_cares {
#else
inline namespace resolver_getaddrinfo {
#endif

/// Resolves host names to addresses without blocking the loop (aiodns's role in asyncio).
///
/// With c-ares (the default where libc-ares is installed): one c-ares channel per resolver,
/// driven by the loop with no thread; its sockets are polled through the ring only while a
/// lookup waits. It honours /etc/hosts and /etc/resolv.conf (servers, search domains,
/// `options timeout: attempts: ndots:`), which `resolver_options` can override. Positive
/// answers are cached for their DNS TTL (`resolver_options::cache_size` names; negative answers
/// are not cached); lookups of one name that overlap share one query; at most
/// `resolver_options::max_queries` names are in flight, the other lookups wait their turn.
/// Without c-ares: getaddrinfo on the loop's blocking pool, no cache; same API, same errors.
///
/// Addresses come in the order the backend gives them, IPv6 and IPv4 together: RFC 6724's order,
/// as getaddrinfo sorts (an IPv6 address first where the machine has an IPv6 route for it),
/// without duplicates. Numeric hosts (`10.0.0.1`, `::1`, `[::1]`, `fe80::1%eth0`) skip the
/// lookup.
///
/// **Lifetime**: must outlive the lookups it runs and must not outlive its loop. The loop's
/// own resolver (`event_loop::service<resolver>()`, behind `corio::net::resolve`) lives as long
/// as the loop.
/// **Time**: c-ares's DNS timeouts follow real time; the cache's TTLs follow the loop's clock.
/// **Thread-safety**: the loop's thread only.
class resolver {
public:
    /// A resolver on the current thread's loop.
    /// **Errors**: `std::logic_error` when the thread has no loop; `std::invalid_argument` for
    /// options that make no sense (a timeout of 0, no tries) or that the backend cannot honour
    /// (servers without c-ares); `std::runtime_error` when c-ares cannot start.
    explicit resolver(const resolver_options& options = {})
        : impl_(event_loop::current("corio::net::resolver"), options) {}
    resolver(const resolver&) = delete;
    resolver& operator=(const resolver&) = delete;

    /// The addresses of `host` (a name or a numeric IP), each with `port`.
    /// **Resumption**: on the loop's thread once the answer is in; without suspending for
    /// numeric hosts, cached names and (with c-ares) names from /etc/hosts.
    /// **Cancellation**: a cancellation point (composes with `corio::timeout`). The query (or
    /// the getaddrinfo call) goes on without the cancelled lookup; with c-ares its answer still
    /// fills the cache.
    /// **Errors**: `resolve_error` naming the host, the port and the reason; its `code()` is a
    /// `resolve_errc` (`not_found`, `timeout`, `no_addresses`, ...).
    [[nodiscard]] task<std::vector<address>> resolve(std::string_view host, std::uint16_t port) {
        return detail::resolve_with(&impl_, std::string(host), port);
    }

    /// Forgets every cached answer.
    void clear_cache() noexcept { impl_.clear_cache(); }
    /// The number of names in the cache (always 0 without c-ares).
    [[nodiscard]] std::size_t cache_size() const noexcept { return impl_.cache_size(); }

private:
#if defined(CORIO_HAVE_CARES)
    detail::cares_resolver impl_;
#else
    detail::getaddrinfo_resolver impl_;
#endif
};

/// The addresses of `host` through the current loop's resolver (created with default options
/// on first use): `co_await corio::net::resolve("example.com", 443)`.
/// **Resumption**, **Cancellation**, **Errors**: as `resolver::resolve`; also
/// `std::logic_error` when the thread has no loop, and `std::runtime_error` when the loop's
/// resolver cannot start (c-ares failing to initialise).
[[nodiscard]] inline task<std::vector<address>> resolve(std::string_view host, std::uint16_t port) {
    return event_loop::current("corio::net::resolve").service<resolver>().resolve(host, port);
}

} // namespace resolver_cares / resolver_getaddrinfo

} // namespace corio::net

// SPDX-License-Identifier: MIT
#pragma once

#include <corio/net/address.hpp>
#include <corio/net/resolve_error.hpp>

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

namespace corio::detail {

/// What a resolver backend's lookup of one name yields: its addresses (with port 0), or why
/// there are none.
struct lookup_result {
    std::vector<net::address> addresses;
    net::resolve_errc error{}; ///< `resolve_errc{}` (0) on success
    std::string reason;        ///< replaces the category's message in the error when not empty

    [[nodiscard]] bool ok() const noexcept { return error == net::resolve_errc{}; }

    static lookup_result failure(net::resolve_errc error, std::string reason = {}) {
        lookup_result r;
        r.error = error;
        r.reason = std::move(reason);
        return r;
    }
};

/// Appends `a` unless it is already there (a name can come back twice, from the hosts file
/// and from DNS, or once per socket type).
inline void add_unique(std::vector<net::address>& list, const net::address& a) {
    if (std::find(list.begin(), list.end(), a) == list.end())
        list.push_back(a);
}

/// The name in lowercase ASCII: the cache and the table of queries in flight compare names the
/// way DNS does, without regard to case.
inline std::string name_key(std::string_view host) {
    std::string key(host);
    for (char& c : key)
        if (c >= 'A' && c <= 'Z')
            c = static_cast<char>(c - 'A' + 'a');
    return key;
}

} // namespace corio::detail

// SPDX-License-Identifier: MIT
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <system_error>
#include <type_traits>

namespace corio::net {

/// Why a name did not resolve: the error codes of `resolve_error`, in the "corio.resolve"
/// category. Compare with `e.code() == corio::net::resolve_errc::timeout`.
enum class resolve_errc {
    not_found = 1,      ///< the name does not exist (NXDOMAIN)
    no_addresses,       ///< the name exists but has no A or AAAA record
    timeout,            ///< no DNS server answered in time
    server_failure,     ///< the server could not answer (SERVFAIL, NOTIMP)
    refused,            ///< the server refused the query (REFUSED)
    bad_response,       ///< the answer was malformed, or the server found the query malformed
    server_unreachable, ///< no DNS server could be reached (connection refused)
    bad_name,           ///< not a valid host name (empty, an unclosed '[', ...)
    failed,             ///< anything else: out of memory, the resolver destroyed, a system error
};

/// The category of `resolve_errc`; its messages are the reasons `resolve_error` shows when it
/// has no more precise one.
inline const std::error_category& resolve_category() noexcept {
    class category final : public std::error_category {
    public:
        [[nodiscard]] const char* name() const noexcept override { return "corio.resolve"; }
        [[nodiscard]] std::string message(int code) const override {
            switch (static_cast<resolve_errc>(code)) {
            case resolve_errc::not_found: return "host not found (NXDOMAIN)";
            case resolve_errc::no_addresses: return "no addresses (no A or AAAA record)";
            case resolve_errc::timeout: return "DNS timeout";
            case resolve_errc::server_failure: return "the DNS server failed (SERVFAIL)";
            case resolve_errc::refused: return "the DNS server refused the query (REFUSED)";
            case resolve_errc::bad_response: return "malformed DNS response";
            case resolve_errc::server_unreachable: return "no DNS server could be reached";
            case resolve_errc::bad_name: return "not a valid host name";
            case resolve_errc::failed: return "name resolution failed";
            }
            return "unknown resolve error " + std::to_string(code);
        }
    };
    static const category instance;
    return instance;
}

inline std::error_code make_error_code(resolve_errc e) noexcept {
    return {static_cast<int>(e), resolve_category()};
}

/// A name that did not resolve. A `std::system_error`, so that one `catch` handles every way a
/// `tcp_stream::connect(host, port)` can fail; `code()` is a `resolve_errc` telling the kinds
/// apart. The message names the host, the port and the reason:
/// `corio::net::resolve example.invalid:80: host not found (NXDOMAIN)`.
class resolve_error : public std::system_error {
public:
    /// `reason` replaces the category's message when it says more ("DNS timeout after 2 tries").
    resolve_error(resolve_errc code, const std::string& host, std::uint16_t port,
                  const std::string& reason = {})
        : std::system_error(make_error_code(code)),
          details_(std::make_shared<const details>(
              details{host, port,
                      "corio::net::resolve " + host + ":" + std::to_string(port) + ": " +
                          (reason.empty() ? this->code().message() : reason)})) {}

    [[nodiscard]] const char* what() const noexcept override { return details_->message.c_str(); }
    /// The host as it was asked for.
    [[nodiscard]] const std::string& host() const noexcept { return details_->host; }
    [[nodiscard]] std::uint16_t port() const noexcept { return details_->port; }

private:
    struct details {
        std::string host;
        std::uint16_t port;
        std::string message;
    };
    std::shared_ptr<const details> details_; // shared: copying an exception must not throw
};

} // namespace corio::net

template <>
struct std::is_error_code_enum<corio::net::resolve_errc> : std::true_type {};

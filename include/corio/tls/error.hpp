// SPDX-License-Identifier: MIT
#pragma once

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <array>
#include <stdexcept>
#include <string>

namespace corio::tls {

/// A TLS failure: a handshake that failed (certificate verification, protocol version, a peer
/// that is not speaking TLS), a record the peer corrupted, a peer that closed without
/// close_notify (truncation), or a context that could not load its files.
///
/// The message names where (the operation, host and port) and OpenSSL's reason; for a rejected
/// certificate, the verification error (`certificate has expired`, `hostname mismatch`, ...).
class error : public std::runtime_error {
public:
    error(const std::string& what, long verify_result = X509_V_OK, bool truncated = false)
        : std::runtime_error(what), verify_result_(verify_result), truncated_(truncated) {}

    /// The peer certificate's verification result (`X509_V_OK` when verification was not the
    /// cause): `X509_V_ERR_CERT_HAS_EXPIRED`, `X509_V_ERR_HOSTNAME_MISMATCH`, ...
    [[nodiscard]] long verify_result() const noexcept { return verify_result_; }
    /// True when the peer closed the connection without close_notify: what was read may be
    /// cut short (a truncation attack, or a peer that crashed).
    [[nodiscard]] bool truncated() const noexcept { return truncated_; }

private:
    long verify_result_;
    bool truncated_;
};

namespace detail {

/// Empties OpenSSL's per-thread error queue and describes its entries, oldest first ("" when it
/// was empty): "certificate verify failed; ..." in OpenSSL's words.
inline std::string drain_error_queue() {
    std::string text;
    while (const unsigned long e = ERR_get_error()) {
        if (!text.empty())
            text += "; ";
        const char* reason = ERR_reason_error_string(e);
        if (reason != nullptr) {
            text += reason;
        } else {
            std::array<char, 256> buf{};
            ERR_error_string_n(e, buf.data(), buf.size());
            text += buf.data();
        }
    }
    return text;
}

} // namespace detail
} // namespace corio::tls

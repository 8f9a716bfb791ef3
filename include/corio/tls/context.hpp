// SPDX-License-Identifier: MIT
#pragma once

#include <corio/tls/error.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <initializer_list>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace corio::tls {

/// The lowest and highest protocol versions a context accepts.
enum class version : int {
    tls1_2 = TLS1_2_VERSION,
    tls1_3 = TLS1_3_VERSION,
};

/// TLS settings shared by many connections (an `SSL_CTX`): the role, the trust store or the
/// certificate, protocol versions, ALPN. Copies share one context; a stream keeps its context
/// alive.
///
/// Safe defaults: a client verifies the peer's certificate chain against the system trust store
/// and the host name (or IP address) it connects to; every context refuses TLS below 1.2,
/// renegotiation and compression, and treats a peer that closes without close_notify as a
/// truncation error. Both sides follow Mozilla's "intermediate" policy: the TLS 1.3 suites,
/// for TLS 1.2 only ECDHE with AES-GCM or ChaCha20-Poly1305 (`default_ciphers`), and the groups
/// X25519, P-256 and P-384; `set_ciphers`, `set_ciphersuites` and `set_groups` change it.
///
/// **Errors**: `tls::error` naming the setting or file and OpenSSL's reason.
/// **Thread-safety**: configure it before use; a configured context may be used by streams on
/// any thread.
class context {
public:
    /// The TLS 1.2 ciphers of every new context (OpenSSL's names, client's order of preference):
    /// Mozilla's "intermediate" list without its DHE entries. Forward secrecy and AEAD only: no
    /// CBC suite (LUCKY13 and its kin), no RSA key exchange, no SHA-1 MAC.
    ///
    /// Mozilla also lists DHE-RSA-AES128-GCM-SHA256, DHE-RSA-AES256-GCM-SHA384 and
    /// DHE-RSA-CHACHA20-POLY1305, for old clients that have AES-GCM but no ECDHE suite with it.
    /// They are left out: those clients are long out of support; TLS 1.2 gives a client no say in
    /// the finite-field group, so a server picks its size blind and some clients reject it; and
    /// DHE costs the server several times the CPU of ECDHE per handshake. To serve such clients
    /// anyway, append them:
    /// `set_ciphers(std::string(context::default_ciphers) +
    /// ":DHE-RSA-AES128-GCM-SHA256")`.
    static constexpr std::string_view default_ciphers =
        "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
        "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
        "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

    /// The TLS 1.3 cipher suites of every new context: OpenSSL's default three, all AEAD.
    static constexpr std::string_view default_ciphersuites =
        "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";

    /// The key-exchange groups of every new context, in order of preference (Mozilla's).
    static constexpr std::string_view default_groups = "X25519:P-256:P-384";

    /// A client context: `SSL_VERIFY_PEER` against the system trust store (which honours
    /// `SSL_CERT_FILE` and `SSL_CERT_DIR`), TLS 1.2 or later.
    [[nodiscard]] static context client() {
        context c{TLS_client_method(), "corio::tls::context::client"};
        SSL_CTX_set_verify(c.native_handle(), SSL_VERIFY_PEER, nullptr);
        if (SSL_CTX_set_default_verify_paths(c.native_handle()) != 1)
            c.fail("cannot load the system trust store");
        return c;
    }

    /// A server context presenting the certificate chain in `cert_file` (PEM, leaf first) with
    /// the private key in `key_file` (PEM); TLS 1.2 or later; clients are not asked for a
    /// certificate.
    [[nodiscard]] static context server(const std::string& cert_file, const std::string& key_file) {
        context c{TLS_server_method(), "corio::tls::context::server"};
        c.state_->server = true;
        SSL_CTX* ctx = c.native_handle();
        if (SSL_CTX_use_certificate_chain_file(ctx, cert_file.c_str()) != 1)
            c.fail("cannot load the certificate chain '" + cert_file + "'");
        if (SSL_CTX_use_PrivateKey_file(ctx, key_file.c_str(), SSL_FILETYPE_PEM) != 1)
            c.fail("cannot load the private key '" + key_file + "'");
        if (SSL_CTX_check_private_key(ctx) != 1)
            c.fail("the private key '" + key_file + "' does not match the certificate '" +
                   cert_file + "'");
        // DH parameters sized to the key, used only if a DHE suite is added to the list: without
        // them OpenSSL 3 would skip such a suite silently.
        SSL_CTX_set_dh_auto(ctx, 1);
        return c;
    }

    /// Trusts the CA certificates in `path` (PEM) as well as the system's.
    context& load_ca_file(const std::string& path) {
        if (SSL_CTX_load_verify_locations(native_handle(), path.c_str(), nullptr) != 1)
            fail("cannot load the CA file '" + path + "'");
        return *this;
    }

    /// Turns verification of the peer's certificate and name off (`false`) or on. Off, any
    /// certificate is accepted: only for tests and peers authenticated some other way.
    context& set_verify_peer(bool on) {
        SSL_CTX_set_verify(native_handle(), on ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nullptr);
        return *this;
    }
    [[nodiscard]] bool verifies_peer() const noexcept {
        return (SSL_CTX_get_verify_mode(native_handle()) & SSL_VERIFY_PEER) != 0;
    }

    /// Limits the protocol versions (the minimum is never below TLS 1.2).
    context& set_versions(version min, version max = version::tls1_3) {
        if (SSL_CTX_set_min_proto_version(native_handle(), static_cast<int>(min)) != 1 ||
            SSL_CTX_set_max_proto_version(native_handle(), static_cast<int>(max)) != 1)
            fail("cannot set the protocol versions");
        return *this;
    }

    /// Replaces the TLS 1.2 cipher list (`default_ciphers` until then) with `tls12_list`, an
    /// OpenSSL cipher string: names and aliases separated by ':', `!` to exclude, `@SECLEVEL=n`
    /// (see `openssl ciphers -v`). TLS 1.3 suites are set by `set_ciphersuites`.
    ///
    /// A server follows the client's order among the ciphers both have, as Mozilla advises when
    /// every cipher on the list is strong: the client knows best whether it has AES in hardware.
    /// For server order: `SSL_CTX_set_options(native_handle(), SSL_OP_CIPHER_SERVER_PREFERENCE)`.
    ///
    /// **Errors**: `tls::error` naming the list when it is empty (for TLS 1.3 only, use
    /// `set_versions(version::tls1_3)`), when an entry names no cipher OpenSSL knows (OpenSSL
    /// itself would skip it silently), or when the list selects no TLS 1.2 cipher; the context
    /// is then unchanged.
    context& set_ciphers(std::string_view tls12_list) {
        const std::string list(tls12_list);
        if (list.empty())
            throw error(std::string(where_) +
                        "::set_ciphers: the TLS 1.2 cipher list is empty (for TLS 1.3 only, use "
                        "set_versions(version::tls1_3))");
        // A list that selects nothing still replaces the context's ciphers before OpenSSL
        // reports it: try each entry, then the whole list, on a scratch context first.
        const std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> scratch{SSL_CTX_new(TLS_method()),
                                                                        &SSL_CTX_free};
        if (!scratch)
            fail("set_ciphers", "cannot create the OpenSSL context");
        ERR_clear_error();
        for (const std::string& entry : split(list, ":, ;")) {
            // Exclusions and directives select nothing on their own; an alias whose ciphers this
            // OpenSSL lacks (RC4 in OpenSSL 3) is a valid thing to exclude.
            if (entry.starts_with('!') || entry.starts_with('-') || entry.starts_with('@'))
                continue;
            const std::string name = entry.starts_with('+') ? entry.substr(1) : entry;
            if (SSL_CTX_set_cipher_list(scratch.get(), name.c_str()) != 1)
                fail("set_ciphers", quoted(name, list) + " is not a TLS 1.2 cipher");
        }
        if (SSL_CTX_set_cipher_list(scratch.get(), list.c_str()) != 1)
            fail("set_ciphers", "'" + list + "' selects no TLS 1.2 cipher");
        if (SSL_CTX_set_cipher_list(native_handle(), list.c_str()) != 1)
            fail("set_ciphers", "cannot set the TLS 1.2 ciphers '" + list + "'");
        return *this;
    }

    /// Replaces the TLS 1.3 cipher suites (`default_ciphersuites` until then) with `tls13_list`:
    /// suite names separated by ':', in order of preference, e.g. `"TLS_AES_256_GCM_SHA384"`.
    ///
    /// **Errors**: `tls::error` naming the list when it is empty (for TLS 1.2 only, use
    /// `set_versions(version::tls1_2, version::tls1_2)`) or names a suite OpenSSL does not know;
    /// the context is then unchanged.
    context& set_ciphersuites(std::string_view tls13_list) {
        const std::string list(tls13_list);
        if (list.empty())
            throw error(std::string(where_) +
                        "::set_ciphersuites: the TLS 1.3 cipher suite list is empty (for TLS 1.2 "
                        "only, use set_versions(version::tls1_2, version::tls1_2))");
        const std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> scratch{SSL_CTX_new(TLS_method()),
                                                                        &SSL_CTX_free};
        if (!scratch)
            fail("set_ciphersuites", "cannot create the OpenSSL context");
        ERR_clear_error();
        // OpenSSL 3.0 refuses an unknown name, later versions skip it: check each one.
        for (const std::string& name : split(list, ":")) {
            if (SSL_CTX_set_ciphersuites(scratch.get(), name.c_str()) != 1 ||
                !has_tls13_cipher(scratch.get(), name))
                fail("set_ciphersuites", quoted(name, list) + " is not a TLS 1.3 cipher suite");
        }
        if (SSL_CTX_set_ciphersuites(native_handle(), list.c_str()) != 1)
            fail("set_ciphersuites", "cannot set the TLS 1.3 cipher suites '" + list + "'");
        return *this;
    }

    /// Replaces the key-exchange groups (`default_groups` until then) with `list`: names
    /// separated by ':', in order of preference, e.g. `"X25519:P-256"`. A client's list must
    /// hold the curve of a TLS 1.2 server's ECDSA certificate.
    ///
    /// **Errors**: `tls::error` naming the list when it is empty or names an unknown group; the
    /// context is then unchanged.
    context& set_groups(std::string_view list) {
        const std::string groups(list);
        if (groups.empty())
            throw error(std::string(where_) + "::set_groups: the group list is empty");
        ERR_clear_error();
        if (SSL_CTX_set1_groups_list(native_handle(), groups.c_str()) != 1)
            fail("set_groups", "cannot set the groups '" + groups + "'");
        return *this;
    }

    /// The application protocols to negotiate (ALPN), in order of preference, e.g.
    /// `{"http/1.1"}`. A client offers them; a server picks the first of its list the client
    /// offers, and goes on without ALPN when there is none in common.
    context& set_alpn(std::initializer_list<std::string_view> protocols) {
        std::string wire;
        for (std::string_view p : protocols) {
            if (p.empty() || p.size() > 255)
                throw error(std::string(where_) + "::set_alpn: protocol name '" + std::string(p) +
                            "' must have 1 to 255 characters");
            wire += static_cast<char>(p.size());
            wire += p;
        }
        state_->alpn = std::move(wire);
        if (!state_->server) {
            const auto* data = reinterpret_cast<const unsigned char*>(state_->alpn.data());
            // Unusually, 0 is success here.
            if (SSL_CTX_set_alpn_protos(native_handle(), data,
                                        static_cast<unsigned>(state_->alpn.size())) != 0)
                fail("cannot set the ALPN protocols");
        } else {
            SSL_CTX_set_alpn_select_cb(native_handle(), &select_alpn, state_.get());
        }
        return *this;
    }

    /// The OpenSSL context, for settings this class does not cover.
    [[nodiscard]] SSL_CTX* native_handle() const noexcept { return state_->ctx.get(); }

private:
    struct state {
        std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx{nullptr, &SSL_CTX_free};
        std::string alpn; // wire format: length-prefixed names
        bool server = false;
    };

    context(const SSL_METHOD* method, const char* where)
        : state_(std::make_shared<state>()), where_(where) {
        state_->ctx.reset(SSL_CTX_new(method));
        if (!state_->ctx)
            fail("cannot create the OpenSSL context");
        SSL_CTX* ctx = native_handle();
        SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
        SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
        // The defaults are known to be valid: set directly, without set_ciphers' checks.
        if (SSL_CTX_set_cipher_list(ctx, std::string(default_ciphers).c_str()) != 1 ||
            SSL_CTX_set_ciphersuites(ctx, std::string(default_ciphersuites).c_str()) != 1 ||
            SSL_CTX_set1_groups_list(ctx, std::string(default_groups).c_str()) != 1)
            fail("cannot set the default ciphers and groups");
    }

    [[noreturn]] void fail(const std::string& what) const {
        std::string text = std::string(where_) + ": " + what;
        if (std::string reason = detail::drain_error_queue(); !reason.empty())
            text += ": " + reason;
        throw error(text);
    }
    /// The same from the setter `call`: "corio::tls::context::server::set_ciphers: ...".
    [[noreturn]] void fail(const char* call, const std::string& what) const {
        std::string text = std::string(where_) + "::" + call + ": " + what;
        if (std::string reason = detail::drain_error_queue(); !reason.empty())
            text += ": " + reason;
        throw error(text);
    }

    /// The non-empty pieces of `list` between any of the `separators`.
    static std::vector<std::string> split(std::string_view list, std::string_view separators) {
        std::vector<std::string> pieces;
        std::size_t begin = 0;
        while (begin <= list.size()) {
            std::size_t end = list.find_first_of(separators, begin);
            if (end == std::string_view::npos)
                end = list.size();
            if (end > begin)
                pieces.emplace_back(list.substr(begin, end - begin));
            begin = end + 1;
        }
        return pieces;
    }

    /// "'entry' in 'list'", or "'list'" when the entry is the whole list.
    static std::string quoted(const std::string& entry, const std::string& list) {
        return entry == list ? "'" + list + "'" : "'" + entry + "' in '" + list + "'";
    }

    /// True when `ctx` offers the TLS 1.3 suite `name`.
    static bool has_tls13_cipher(SSL_CTX* ctx, const std::string& name) {
        const STACK_OF(SSL_CIPHER)* ciphers = SSL_CTX_get_ciphers(ctx);
        for (int i = 0; i < sk_SSL_CIPHER_num(ciphers); ++i) {
            const SSL_CIPHER* c = sk_SSL_CIPHER_value(ciphers, i);
            if (SSL_CIPHER_get_kx_nid(c) == NID_kx_any && name == SSL_CIPHER_get_name(c))
                return true;
        }
        return false;
    }

    static int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen,
                           const unsigned char* in, unsigned inlen, void* arg) {
        const auto* s = static_cast<const state*>(arg);
        unsigned char* chosen = nullptr;
        unsigned char len = 0;
        // Server preference: the first of ours that the client offers.
        const int rc = SSL_select_next_proto(&chosen, &len,
                                             reinterpret_cast<const unsigned char*>(s->alpn.data()),
                                             static_cast<unsigned>(s->alpn.size()), in, inlen);
        if (rc != OPENSSL_NPN_NEGOTIATED)
            return SSL_TLSEXT_ERR_NOACK;
        *out = chosen;
        *outlen = len;
        return SSL_TLSEXT_ERR_OK;
    }

    std::shared_ptr<state> state_;
    const char* where_;
};

} // namespace corio::tls

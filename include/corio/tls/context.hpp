// SPDX-License-Identifier: MIT
#pragma once

#include <corio/tls/error.hpp>

#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <initializer_list>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

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
/// truncation error.
///
/// **Errors**: `tls::error` naming the setting or file and OpenSSL's reason.
/// **Thread-safety**: configure it before use; a configured context may be used by streams on
/// any thread.
class context {
public:
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
    }

    [[noreturn]] void fail(const std::string& what) const {
        std::string text = std::string(where_) + ": " + what;
        if (std::string reason = detail::drain_error_queue(); !reason.empty())
            text += ": " + reason;
        throw error(text);
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

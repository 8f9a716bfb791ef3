// SPDX-License-Identifier: MIT
#pragma once

#include <corio/io/operation.hpp>
#include <corio/mutex.hpp>
#include <corio/net/address.hpp>
#include <corio/net/detail/input_buffer.hpp>
#include <corio/net/tcp_stream.hpp>
#include <corio/task.hpp>
#include <corio/tls/context.hpp>
#include <corio/tls/error.hpp>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace corio::tls {

/// A TLS connection over a `net::tcp_stream`, with the same interface (`read_some`,
/// `write_all`, `shutdown`, `close`), so protocols run over either.
///
/// OpenSSL only encrypts and decrypts: it reads and writes the ciphertext through a BIO over
/// two buffers of the stream, and every byte moves through the loop's ring.
///
/// **Cancellation**: each operation is cancellable and composes with `corio::timeout`. A
/// cancelled read loses nothing (received ciphertext stays buffered for the next read); a
/// cancelled write may have sent part of the data, but the record stream stays intact: the
/// ciphertext not yet sent goes out with the next write, shutdown or read.
/// **Errors**: `tls::error` for TLS failures (certificate rejected, protocol alerts, a peer that
/// closes without close_notify), `std::system_error` for socket errors (reset, broken pipe);
/// both name the operation, the host and the port. After a TLS failure the stream does no more
/// I/O.
/// **Thread-safety**: one loop; one reader and one writer at a time (they may run concurrently).
class stream {
public:
    stream() noexcept = default;
    stream(stream&&) noexcept = default;
    stream& operator=(stream&&) noexcept = default;
    stream(const stream&) = delete;
    stream& operator=(const stream&) = delete;
    ~stream() = default;

    /// Runs the client handshake over `tcp`: sends `host` as SNI (not for an IP address) and
    /// checks the certificate against it (a name, or an IP address against the certificate's
    /// IP entries) when `ctx` verifies peers.
    /// **Errors**: `tls::error` naming host, port and reason: "certificate verify failed:
    /// certificate has expired", "hostname mismatch", "tlsv1 alert protocol version", "wrong
    /// version number" (not a TLS peer), "the peer closed the connection during the TLS
    /// handshake"; `std::system_error` for socket errors.
    [[nodiscard]] static task<stream> connect(net::tcp_stream tcp, context ctx, std::string host) {
        std::string where = host.find(':') != std::string::npos ? "[" + host + "]" : host;
        where += ":" + std::to_string(port_of(tcp));
        stream s{std::move(tcp), std::move(ctx), std::move(where)};
        SSL* ssl = s.native_handle();
        SSL_set_connect_state(ssl);
        const bool is_ip = net::address::from_ip(host, 0).has_value();
        if (s.s_->ctx.verifies_peer()) {
            if (host.empty())
                throw error("corio::tls::stream::connect: no host name to verify the peer's "
                            "certificate against");
            const int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host.c_str())
                                 : SSL_set1_host(ssl, host.c_str());
            if (ok != 1)
                throw s.failure("connect", "cannot check the certificate against '" + host + "'");
        }
        // RFC 6066: SNI carries DNS names only.
        if (!is_ip && !host.empty() && SSL_set_tlsext_host_name(ssl, host.c_str()) != 1)
            throw s.failure("connect", "cannot send '" + host + "' as the server name (SNI)");
        co_await s.handshake("connect");
        co_return s;
    }

    /// Runs the server handshake over an accepted `tcp`.
    /// **Errors**: as `connect`, naming the peer's address.
    [[nodiscard]] static task<stream> accept(net::tcp_stream tcp, context ctx) {
        std::string where = tcp.peer_address().to_string();
        stream s{std::move(tcp), std::move(ctx), std::move(where)};
        SSL_set_accept_state(s.native_handle());
        co_await s.handshake("accept");
        co_return s;
    }

    /// Reads what is available, at most `buf.size()` bytes; 0 at the end of the stream (the peer
    /// sent close_notify).
    /// **Errors**: `tls::error` when the peer closed the connection without close_notify (a
    /// truncation: the data may be incomplete) or sent a bad record.
    [[nodiscard]] task<std::size_t> read_some(std::span<std::byte> buf) {
        check_usable("read");
        if (buf.empty())
            co_return 0;
        for (;;) {
            ERR_clear_error();
            std::size_t n = 0;
            const int rc = SSL_read_ex(native_handle(), buf.data(), buf.size(), &n);
            const int err = rc == 1 ? SSL_ERROR_NONE : SSL_get_error(native_handle(), rc);
            if (!s_->out.empty()) // a key update or session ticket answer: send it first
                co_await flush("read");
            if (rc == 1)
                co_return n;
            if (err == SSL_ERROR_ZERO_RETURN)
                co_return 0;
            if (err != SSL_ERROR_WANT_READ)
                throw failure("read", err);
            co_await fill("read"); // at the end of the stream, SSL_read reports the truncation
        }
    }

    /// Encrypts and sends all of `buf`.
    [[nodiscard]] task<> write_all(std::span<const std::byte> buf) {
        check_usable("write");
        auto lock = co_await s_->write_lock.scoped_lock();
        while (!buf.empty()) {
            // Encrypt in slices, so that the ciphertext buffered at once stays bounded.
            const std::size_t slice = std::min(buf.size(), max_write_slice);
            ERR_clear_error();
            std::size_t n = 0;
            const int rc = SSL_write_ex(native_handle(), buf.data(), slice, &n);
            if (rc != 1)
                throw failure("write", SSL_get_error(native_handle(), rc));
            buf = buf.subspan(n);
            co_await send_pending("write");
        }
    }
    [[nodiscard]] task<> write_all(std::string_view text) {
        return write_all(std::as_bytes(std::span(text.data(), text.size()))); // no frame of its own
    }

    /// Sends close_notify: the peer reads the end of the stream; reading goes on.
    [[nodiscard]] task<> shutdown() {
        check_usable("shutdown");
        if ((SSL_get_shutdown(native_handle()) & SSL_SENT_SHUTDOWN) != 0)
            co_return;
        ERR_clear_error();
        SSL_shutdown(native_handle()); // queues close_notify; not waiting for the peer's
        co_await flush("shutdown");
    }

    /// Closes the connection: sends close_notify if it can without waiting (not after a TLS
    /// failure), then closes the socket. The destructor closes the socket too, without
    /// close_notify.
    [[nodiscard]] task<> close() {
        if (!s_ || !s_->tcp.is_open())
            co_return;
        if (!s_->failed && s_->write_lock.try_lock()) {
            mutex_guard lock{s_->write_lock}; // try_lock took it
            ERR_clear_error();
            if ((SSL_get_shutdown(native_handle()) & SSL_SENT_SHUTDOWN) == 0)
                SSL_shutdown(native_handle());
            co_await send_without_waiting();
        }
        co_await s_->tcp.close();
    }

    void set_nodelay(bool on) const { s_->tcp.set_nodelay(on); }
    [[nodiscard]] net::address local_address() const { return s_->tcp.local_address(); }
    [[nodiscard]] net::address peer_address() const { return s_->tcp.peer_address(); }
    [[nodiscard]] bool is_open() const noexcept { return s_ && s_->tcp.is_open(); }

    /// The negotiated application protocol (ALPN), or "" when none was.
    [[nodiscard]] std::string_view alpn() const noexcept {
        const unsigned char* data = nullptr;
        unsigned len = 0;
        SSL_get0_alpn_selected(native_handle(), &data, &len);
        return {reinterpret_cast<const char*>(data), len};
    }
    /// The negotiated protocol version: "TLSv1.3", "TLSv1.2".
    [[nodiscard]] std::string_view protocol() const noexcept {
        return SSL_get_version(native_handle());
    }
    /// The negotiated cipher suite, e.g. "TLS_AES_256_GCM_SHA384".
    [[nodiscard]] std::string_view cipher() const noexcept {
        return SSL_get_cipher_name(native_handle());
    }

    [[nodiscard]] SSL* native_handle() const noexcept { return s_->ssl.get(); }
    [[nodiscard]] const net::tcp_stream& tcp() const noexcept { return s_->tcp; }

private:
    // One TLS record's worth of plaintext per SSL_write, four records per send.
    static constexpr std::size_t max_write_slice = std::size_t{64} * 1024;
    // Room for at least one full TLS record (16 KiB of data plus its header and expansion).
    static constexpr std::size_t read_buffer_size = 17 * 1024 + 512;

    // Everything a connection owns, at a stable address (the BIO points at it).
    struct state {
        state(net::tcp_stream t, context c, std::string w)
            : ctx(std::move(c)), tcp(std::move(t)), where(std::move(w)) {}

        context ctx;
        net::tcp_stream tcp;
        std::string where; // "host:port" for messages
        std::unique_ptr<SSL, decltype(&SSL_free)> ssl{nullptr, &SSL_free};
        // Received ciphertext not yet decrypted.
        corio::detail::input_buffer in{read_buffer_size};
        bool in_eof = false;
        // Ciphertext OpenSSL wrote, and the batch being sent (sent bytes of it are gone): two
        // buffers, so OpenSSL can append while a send reads the other.
        std::vector<std::byte> out;
        std::vector<std::byte> sending;
        std::size_t sent = 0;
        mutex write_lock; // one sender at a time: records must not interleave
        bool failed = false;
    };

    stream(net::tcp_stream tcp, context ctx, std::string where)
        : s_(std::make_unique<state>(std::move(tcp), std::move(ctx), std::move(where))) {
        s_->ssl.reset(SSL_new(s_->ctx.native_handle()));
        if (!s_->ssl)
            throw failure("connect", "cannot create the TLS connection");
        BIO* bio = BIO_new(bio_method());
        if (bio == nullptr)
            throw failure("connect", "cannot create the TLS connection's BIO");
        BIO_set_data(bio, s_.get());
        BIO_set_init(bio, 1);
        SSL_set_bio(native_handle(), bio, bio); // one reference, both directions
    }

    static std::uint16_t port_of(const net::tcp_stream& tcp) {
        return tcp.is_open() ? tcp.peer_address().port() : 0;
    }

    void check_usable(const char* op) const {
        if (!s_)
            throw std::logic_error(std::string("corio::tls::stream::") + op +
                                   ": the stream is empty (moved from or never connected)");
        if (s_->failed)
            throw error("corio::tls::stream::" + std::string(op) + " " + s_->where +
                        ": the connection failed earlier and can no longer be used");
    }

    task<> handshake(const char* op) {
        for (;;) {
            ERR_clear_error();
            const int rc = SSL_do_handshake(native_handle());
            const int err = rc == 1 ? SSL_ERROR_NONE : SSL_get_error(native_handle(), rc);
            if (rc != 1 && err != SSL_ERROR_WANT_READ) {
                error e = failure(op, err);
                co_await send_without_waiting(); // the alert that tells the peer why
                throw e;
            }
            co_await flush(op);
            if (rc == 1)
                co_return;
            const bool more = co_await fill(op);
            if (!more)
                throw failure(op, "the peer closed the connection during the TLS handshake");
        }
    }

    // Receives more ciphertext; false at the end of the stream.
    task<bool> fill(const char* op) {
        state& s = *s_;
        // Room for a quarter of a record at least: a record never straddles a full buffer.
        const int n = co_await s.tcp.recv(s.in.space(read_buffer_size / 4)).no_throw();
        if (n < 0)
            throw socket_error(s, -n, op);
        if (n == 0) {
            s.in_eof = true;
            co_return false;
        }
        s.in.commit(static_cast<std::size_t>(n));
        co_return true;
    }

    task<> flush(const char* op) {
        auto lock = co_await s_->write_lock.scoped_lock();
        co_await send_pending(op);
    }

    // Sends the ciphertext OpenSSL has written, until there is none; the write lock is held.
    task<> send_pending(const char* op) {
        state& s = *s_;
        for (;;) {
            if (s.sent == s.sending.size()) {
                if (s.out.empty())
                    co_return;
                s.sending.clear();
                s.sent = 0;
                std::swap(s.out, s.sending);
            }
            const int n = co_await s.tcp.send(std::span(s.sending).subspan(s.sent)).no_throw();
            if (n < 0)
                throw socket_error(s, -n, op);
            s.sent += static_cast<std::size_t>(n);
        }
    }

    // Sends what fits in the socket buffer now and drops the rest (a closing alert or
    // close_notify: nothing to wait for).
    task<> send_without_waiting() {
        state& s = *s_;
        if (s.sent == s.sending.size()) {
            s.sending.clear();
            s.sent = 0;
        }
        s.sending.insert(s.sending.end(), s.out.begin(), s.out.end());
        s.out.clear();
        if (s.sent < s.sending.size())
            co_await s.tcp.send(std::span(s.sending).subspan(s.sent), MSG_DONTWAIT).no_throw();
        s.sending.clear();
        s.sent = 0;
    }

    // (From the state a suspended operation holds: the stream object itself may have been
    // moved from meanwhile.)
    [[nodiscard]] static std::system_error socket_error(const state& s, int err, const char* op) {
        return {err, std::system_category(),
                "corio::tls::stream::" + std::string(op) + " " + s.where};
    }

    // A TLS failure: describes OpenSSL's reason and marks the stream unusable.
    [[nodiscard]] error failure(const char* op, int ssl_error) const {
        s_->failed = true;
        const long verify = SSL_get_verify_result(native_handle());
        const unsigned long last = ERR_peek_last_error();
        std::string reason = detail::drain_error_queue();
        const bool rejected =
            verify != X509_V_OK && ERR_GET_REASON(last) == SSL_R_CERTIFICATE_VERIFY_FAILED;
        const bool truncated = !rejected && is_truncation(last, ssl_error);
        if (rejected)
            reason =
                std::string("certificate verify failed: ") + X509_verify_cert_error_string(verify);
        else if (truncated)
            reason = "the peer closed the connection without close_notify (truncated)";
        else if (reason.empty())
            reason = "TLS error " + std::to_string(ssl_error);
        return {"corio::tls::stream::" + std::string(op) + " " + s_->where + ": " + reason, verify,
                truncated};
    }
    [[nodiscard]] error failure(const char* op, const std::string& reason) const {
        s_->failed = true;
        std::string text =
            "corio::tls::stream::" + std::string(op) + " " + s_->where + ": " + reason;
        if (std::string more = detail::drain_error_queue(); !more.empty())
            text += ": " + more;
        return {text};
    }

    [[nodiscard]] bool is_truncation(unsigned long last, int ssl_error) const noexcept {
#ifdef SSL_R_UNEXPECTED_EOF_WHILE_READING
        if (ERR_GET_REASON(last) == SSL_R_UNEXPECTED_EOF_WHILE_READING)
            return true;
#endif
        return ssl_error == SSL_ERROR_SYSCALL && last == 0 && s_->in_eof; // OpenSSL 1.1
    }

    // The BIO between OpenSSL and the stream's buffers.
    static BIO_METHOD* bio_method() {
        static BIO_METHOD* const method = [] {
            BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "corio");
            BIO_meth_set_read(m, &bio_read);
            BIO_meth_set_write(m, &bio_write);
            BIO_meth_set_ctrl(m, &bio_ctrl);
            return m;
        }();
        return method;
    }
    static int bio_read(BIO* bio, char* to, int len) {
        auto& s = *static_cast<state*>(BIO_get_data(bio));
        BIO_clear_retry_flags(bio);
        const std::size_t available = s.in.size();
        if (available == 0) {
            if (s.in_eof)
                return 0;
            BIO_set_retry_read(bio);
            return -1;
        }
        const std::size_t n = std::min(available, static_cast<std::size_t>(len));
        std::memcpy(to, s.in.data().data(), n);
        s.in.consume(n);
        return static_cast<int>(n);
    }
    static int bio_write(BIO* bio, const char* from, int len) {
        auto& s = *static_cast<state*>(BIO_get_data(bio));
        BIO_clear_retry_flags(bio);
        const auto* bytes = reinterpret_cast<const std::byte*>(from);
        s.out.insert(s.out.end(), bytes, bytes + len);
        return len;
    }
    static long bio_ctrl(BIO* bio, int cmd, long, void*) {
        auto& s = *static_cast<state*>(BIO_get_data(bio));
        switch (cmd) {
        case BIO_CTRL_FLUSH: return 1;
        case BIO_CTRL_PENDING: return static_cast<long>(s.in.size());
        case BIO_CTRL_WPENDING: return static_cast<long>(s.out.size());
        case BIO_CTRL_EOF: return s.in_eof && s.in.empty() ? 1 : 0;
        default: return 0;
        }
    }

    std::unique_ptr<state> s_;
};

} // namespace corio::tls

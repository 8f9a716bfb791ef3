// SPDX-License-Identifier: MIT
#pragma once

#include <corio/io/operation.hpp>
#include <corio/net/address.hpp>
#include <corio/net/resolver.hpp>
#include <corio/task.hpp>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace corio::net {

/// A connected TCP socket: the move-only owner of its descriptor, which it closes exactly once.
/// Every read and write goes through the loop's ring.
///
/// **Cancellation**: each operation is cancellable (and composes with `corio::timeout`); a
/// cancelled read or write resumes only on its own completion, and its bytes are not lost (a
/// read that won the race returns them).
/// **Errors**: `std::system_error` whose message names the operation and the peer.
/// **Thread-safety**: one loop; one reader and one writer at a time.
class tcp_stream {
public:
    tcp_stream() noexcept = default;
    /// Takes ownership of a connected socket.
    explicit tcp_stream(int fd) noexcept : fd_(fd), owner_(io::new_owner_id()) {}
    tcp_stream(tcp_stream&& other) noexcept
        : fd_(std::exchange(other.fd_, -1)), owner_(std::exchange(other.owner_, 0)),
          peer_(std::exchange(other.peer_, std::nullopt)) {}
    tcp_stream& operator=(tcp_stream&& other) noexcept {
        if (this != &other) {
            reset();
            fd_ = std::exchange(other.fd_, -1);
            owner_ = std::exchange(other.owner_, 0);
            peer_ = std::exchange(other.peer_, std::nullopt);
        }
        return *this;
    }
    tcp_stream(const tcp_stream&) = delete;
    tcp_stream& operator=(const tcp_stream&) = delete;
    ~tcp_stream() { reset(); }

    /// Connects to `to`.
    /// **Errors**: `std::system_error` naming the address and the reason (refused, unreachable).
    [[nodiscard]] static task<tcp_stream> connect(address to) {
        const int fd = ::socket(to.family(), SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP);
        if (fd < 0)
            throw std::system_error(errno, std::system_category(),
                                    "corio::net::tcp_stream::connect " + to.to_string() +
                                        ": socket");
        tcp_stream s{fd}; // owns the descriptor from here on, also when connecting fails
        const int rc = co_await io::connect(fd, to.data(), to.size()).owned_by(s.owner_).no_throw();
        if (rc < 0)
            throw std::system_error(-rc, std::system_category(),
                                    "corio::net::tcp_stream::connect " + to.to_string());
        s.peer_ = to; // remembered: after a reset the socket no longer knows it
        co_return s;
    }

    /// Resolves `host` (`corio::net::resolve`: a name, or a numeric IP that skips the lookup)
    /// and connects to its addresses one after the other, in the resolver's order (IPv6 and
    /// IPv4), until one accepts.
    /// **Errors**: `resolve_error` (a `std::system_error`) when the name does not resolve;
    /// `std::system_error` naming host:port, each address tried with its reason, and carrying
    /// the last address's errno, when none accepts.
    [[nodiscard]] static task<tcp_stream> connect(std::string_view host, std::uint16_t port) {
        return connect_by_name(nullptr, std::string(host), port);
    }
    /// As `connect(host, port)`, resolving through `via` (a resolver with its own servers or
    /// timeouts) instead of the loop's resolver; `via` must outlive the connect.
    [[nodiscard]] static task<tcp_stream> connect(std::string_view host, std::uint16_t port,
                                                  resolver& via) {
        return connect_by_name(&via, std::string(host), port);
    }

    /// Reads what is available, at most `buf.size()` bytes; 0 at the end of the stream.
    [[nodiscard]] task<std::size_t> read_some(std::span<std::byte> buf) const {
        const int n = co_await recv(buf).no_throw();
        if (n < 0)
            throw error(-n, "read");
        co_return static_cast<std::size_t>(n);
    }

    /// Writes all of `buf`, across as many sends as it takes.
    [[nodiscard]] task<> write_all(std::span<const std::byte> buf) const {
        while (!buf.empty()) {
            const int n = co_await send(buf).no_throw();
            if (n < 0)
                throw error(-n, "write");
            buf = buf.subspan(static_cast<std::size_t>(n));
        }
    }
    [[nodiscard]] task<> write_all(std::string_view text) const {
        return write_all(std::as_bytes(std::span(text.data(), text.size()))); // no frame of its own
    }

    /// Half-closes: the peer reads end of stream; reading goes on.
    [[nodiscard]] task<> shutdown() const {
        if (::shutdown(fd_, SHUT_WR) != 0 && errno != ENOTCONN)
            throw error(errno, "shutdown");
        co_return;
    }

    /// Closes the descriptor through the ring (the destructor closes it too, synchronously).
    [[nodiscard]] task<> close() {
        if (fd_ < 0)
            co_return;
        const int fd = std::exchange(fd_, -1);
        co_await io::close(fd).no_throw(); // the descriptor is gone whatever close says
    }

    /// Turns Nagle's algorithm off (`true`) or on.
    void set_nodelay(bool on) const {
        const int v = on ? 1 : 0;
        if (::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &v, sizeof v) != 0)
            throw error(errno, "set_nodelay");
    }

    /// Makes the coming close reset the connection (an RST, `SO_LINGER` 0) instead of ending
    /// it in order: the peer sees ECONNRESET, not an end of stream, so a message cut short
    /// cannot pass for a complete one. Data not yet sent is dropped.
    void reset_on_close() const {
        const ::linger l{.l_onoff = 1, .l_linger = 0};
        if (::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof l) != 0)
            throw error(errno, "reset_on_close");
    }

    [[nodiscard]] address local_address() const { return name(&::getsockname, "local_address"); }
    [[nodiscard]] address peer_address() const {
        if (!peer_)
            peer_ = name(&::getpeername, "peer_address");
        return *peer_;
    }

    /// One receive and one send on the socket, as raw operations (`io::recv`, `io::send`), for
    /// layers that frame their own I/O over the stream (TLS): they carry the stream's owner id
    /// (`io::operation::owned_by`), so the epoll backend keeps the socket registered.
    [[nodiscard]] io::operation recv(std::span<std::byte> buf, int flags = 0) const {
        return io::recv(fd_, buf, flags).owned_by(owner_);
    }
    [[nodiscard]] io::operation send(std::span<const std::byte> buf, int flags = 0) const {
        return io::send(fd_, buf, flags).owned_by(owner_);
    }

    [[nodiscard]] int native_handle() const noexcept { return fd_; }
    /// The owner id its operations carry (`io::op_args::owner`).
    [[nodiscard]] std::uint64_t owner_id() const noexcept { return owner_; }
    [[nodiscard]] bool is_open() const noexcept { return fd_ >= 0; }

private:
    static task<tcp_stream> connect_by_name(resolver* via, std::string host, std::uint16_t port) {
        task<std::vector<address>> lookup =
            via != nullptr ? via->resolve(host, port) : resolve(host, port);
        const std::vector<address> addresses = co_await lookup;
        // "(tried ::1: Connection refused, then 127.0.0.1)": the last address's reason is the
        // system_error's own, which its what() appends.
        std::string tried;
        int last = EHOSTUNREACH; // unused: a resolved name has at least one address
        for (const address& a : addresses) {
            try {
                tcp_stream s = co_await connect(a);
                co_return s;
            } catch (const std::system_error& e) {
                if (!tried.empty())
                    tried += ": " + std::system_category().message(last) + ", then ";
                last = e.code().value();
                tried += a.to_string();
            }
        }
        throw std::system_error(last, std::system_category(),
                                "corio::net::tcp_stream::connect " + host + ":" +
                                    std::to_string(port) + " (tried " + tried + ")");
    }

    void reset() noexcept {
        if (fd_ >= 0)
            ::close(std::exchange(fd_, -1));
    }

    [[nodiscard]] std::system_error error(int err, const char* what) const {
        std::string where = "corio::net::tcp_stream::";
        where += what;
        if (!peer_) {
            sockaddr_storage peer{};
            socklen_t len = sizeof peer;
            if (::getpeername(fd_, reinterpret_cast<sockaddr*>(&peer), &len) == 0)
                peer_ = address::from_sockaddr(reinterpret_cast<sockaddr*>(&peer), len);
        }
        if (peer_)
            where += " (peer " + peer_->to_string() + ")";
        return {err, std::system_category(), where};
    }

    template <class Query>
    [[nodiscard]] address name(Query query, const char* what) const {
        sockaddr_storage ss{};
        socklen_t len = sizeof ss;
        if (query(fd_, reinterpret_cast<sockaddr*>(&ss), &len) != 0)
            throw error(errno, what);
        return address::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), len);
    }

    int fd_ = -1;
    std::uint64_t owner_ = 0;
    // The peer, once known: set by connect, or by the first query of an accepted stream.
    mutable std::optional<address> peer_;
};

} // namespace corio::net

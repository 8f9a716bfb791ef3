// SPDX-License-Identifier: MIT
#pragma once

#include <corio/io/event_loop.hpp>
#include <corio/io/multishot.hpp>
#include <corio/io/operation_kind.hpp>
#include <corio/net/address.hpp>
#include <corio/net/tcp_stream.hpp>
#include <corio/task.hpp>

#include <liburing.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <coroutine>
#include <cstdint>
#include <deque>
#include <string>
#include <system_error>
#include <utility>

namespace corio::net {

/// How `tcp_listener::bind` sets the socket up.
struct listen_options {
    int backlog = 1024;
    /// SO_REUSEPORT: several listeners (one per loop) share the port.
    bool reuse_port = false;
};

/// A listening TCP socket. `accept()` is served by one multishot accept in the ring: one
/// submission, one completion per connection, re-armed if the kernel ends it.
///
/// **Lifetime**: destroying the listener closes it; a multishot accept still in the kernel is
/// cancelled, and connections it still delivers are closed. The listener must outlive the
/// `accept()` calls in progress (`close()` ends them).
/// **Thread-safety**: one loop.
class tcp_listener {
public:
    /// Binds and listens on `at` (port 0: the kernel picks one, see `local_address()`).
    /// SO_REUSEADDR is always set.
    /// **Errors**: `std::system_error` naming the address (in use, permission denied).
    static tcp_listener bind(const address& at, listen_options options = {}) {
        const int fd = ::socket(at.family(), SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP);
        if (fd < 0)
            throw failure(errno, "socket", at);
        tcp_listener l{fd, at};
        const int one = 1;
        ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (options.reuse_port && ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
            throw failure(errno, "SO_REUSEPORT", at);
        if (::bind(fd, at.data(), at.size()) != 0)
            throw failure(errno, "bind", at);
        if (::listen(fd, options.backlog) != 0)
            throw failure(errno, "listen", at);
        l.local_ = l.query_local_address(); // the port the kernel chose, kept for after close()
        return l;
    }

    tcp_listener(tcp_listener&& other) noexcept
        : fd_(std::exchange(other.fd_, -1)), state_(std::exchange(other.state_, nullptr)),
          local_(other.local_) {}
    tcp_listener& operator=(tcp_listener&& other) noexcept {
        if (this != &other) {
            reset();
            fd_ = std::exchange(other.fd_, -1);
            state_ = std::exchange(other.state_, nullptr);
            local_ = other.local_;
        }
        return *this;
    }
    tcp_listener(const tcp_listener&) = delete;
    tcp_listener& operator=(const tcp_listener&) = delete;
    ~tcp_listener() { reset(); }

    /// Waits for the next connection.
    /// **Cancellation**: a cancelled accept throws `cancelled_error`; a connection that arrives
    /// meanwhile stays queued for the next `accept()`.
    /// **Errors**: `std::system_error` naming the listening address: EMFILE and the like, and
    /// `EBADF` once the listener is closed, also for an `accept()` that was waiting when
    /// `close()` was called (it ends at once: "close the listener to stop the accept loop").
    [[nodiscard]] task<tcp_stream> accept() {
        for (;;) {
            if (fd_ < 0)
                throw failure(EBADF, "accept (the listener is closed)", local_);
            if (state_ == nullptr)
                state_ =
                    new accept_state(event_loop::current("corio::net::tcp_listener::accept"), fd_);
            if (!state_->fds.empty()) {
                const int fd = state_->fds.front();
                state_->fds.pop_front();
                co_return tcp_stream{fd};
            }
            if (state_->error != 0)
                throw failure(std::exchange(state_->error, 0), "accept", local_);
            io::multishot_wait<accept_state> wait{*state_};
            co_await wait;
        }
    }

    /// The address it listens on (with the port the kernel chose when 0 was asked).
    [[nodiscard]] address local_address() const { return local_; }

    [[nodiscard]] int native_handle() const noexcept { return fd_; }
    [[nodiscard]] bool is_open() const noexcept { return fd_ >= 0; }

    /// Stops listening: new connections are refused, those accepted but not yet taken are
    /// closed (the destructor does the same), and an `accept()` waiting now ends with `EBADF`.
    void close() noexcept { reset(); }

private:
    /// The multishot accept's completion target (see `io::multishot_target`): accepted
    /// descriptors queue here until `accept()` takes them.
    struct accept_state : io::multishot_target<accept_state> {
        accept_state(event_loop& loop, int fd) noexcept
            : io::multishot_target<accept_state>(loop), listen_fd(fd) {}

        [[nodiscard]] bool ready() const noexcept { return !fds.empty() || error != 0; }
        void before_wait() {
            if (live())
                return;
            io::op_args a{};
            a.fd = listen_fd;
            a.flags = SOCK_CLOEXEC;
            a.owner = owner;             // (the epoll backend keeps the listener registered)
            arm(io::op_kind::accept, a); // re-armed when the kernel ends it (CQ overflow, ...)
        }
        void deliver(int res, std::uint32_t, bool) noexcept {
            if (res >= 0) {
                try {
                    fds.push_back(res);
                } catch (...) {
                    ::close(res); // out of memory: the connection is refused
                }
            } else if (res != -ECANCELED && res != -EINTR) {
                error = -res;
            }
            wake(); // (ended without an error: the waiting accept() arms it again)
        }
        void discard(int res, std::uint32_t) noexcept {
            if (res >= 0)
                ::close(res); // accepted after the listener went: nobody will take it
        }

        std::deque<int> fds;
        int error = 0;
        int listen_fd;
        std::uint64_t owner = io::new_owner_id();
    };

    tcp_listener(int fd, const address& at) : fd_(fd), local_(at) {}

    [[nodiscard]] address query_local_address() const {
        sockaddr_storage ss{};
        socklen_t len = sizeof ss;
        if (::getsockname(fd_, reinterpret_cast<sockaddr*>(&ss), &len) != 0)
            throw std::system_error(errno, std::system_category(),
                                    "corio::net::tcp_listener::local_address");
        return address::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), len);
    }

    void reset() noexcept {
        if (state_ != nullptr) {
            accept_state* s = std::exchange(state_, nullptr);
            for (int fd : s->fds)
                ::close(fd);
            s->fds.clear();
            s->release(); // wakes a waiting accept(), which then finds the listener closed
        }
        if (fd_ >= 0)
            ::close(std::exchange(fd_, -1));
    }

    static std::system_error failure(int err, const char* what, const address& at) {
        return {err, std::system_category(),
                std::string("corio::net::tcp_listener ") + what + " " + at.to_string()};
    }

    int fd_ = -1;
    accept_state* state_ = nullptr;
    address local_;
};

} // namespace corio::net

// SPDX-License-Identifier: MIT
#pragma once

#include <corio/detail/cancel_state.hpp>
#include <corio/detail/cancellation_point.hpp>
#include <corio/io/event_loop.hpp>
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
/// cancelled, and connections it still delivers are closed.
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
        tcp_listener l{fd};
        const int one = 1;
        ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (options.reuse_port && ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
            throw failure(errno, "SO_REUSEPORT", at);
        if (::bind(fd, at.data(), at.size()) != 0)
            throw failure(errno, "bind", at);
        if (::listen(fd, options.backlog) != 0)
            throw failure(errno, "listen", at);
        return l;
    }

    tcp_listener(tcp_listener&& other) noexcept
        : fd_(std::exchange(other.fd_, -1)), state_(std::exchange(other.state_, nullptr)) {}
    tcp_listener& operator=(tcp_listener&& other) noexcept {
        if (this != &other) {
            reset();
            fd_ = std::exchange(other.fd_, -1);
            state_ = std::exchange(other.state_, nullptr);
        }
        return *this;
    }
    tcp_listener(const tcp_listener&) = delete;
    tcp_listener& operator=(const tcp_listener&) = delete;
    ~tcp_listener() { reset(); }

    /// Waits for the next connection.
    /// **Cancellation**: a cancelled accept throws `cancelled_error`; a connection that arrives
    /// meanwhile stays queued for the next `accept()`.
    /// **Errors**: `std::system_error` naming the listening address (EMFILE, ...).
    [[nodiscard]] task<tcp_stream> accept() {
        for (;;) {
            if (!state_->fds.empty()) {
                const int fd = state_->fds.front();
                state_->fds.pop_front();
                co_return tcp_stream{fd};
            }
            if (state_->error != 0)
                throw failure(std::exchange(state_->error, 0), "accept", local_address());
            if (!state_->live)
                state_->arm(fd_);
            co_await wait_awaiter{*state_};
        }
    }

    /// The address it listens on (with the port the kernel chose when 0 was asked).
    [[nodiscard]] address local_address() const {
        sockaddr_storage ss{};
        socklen_t len = sizeof ss;
        if (::getsockname(fd_, reinterpret_cast<sockaddr*>(&ss), &len) != 0)
            throw std::system_error(errno, std::system_category(),
                                    "corio::net::tcp_listener::local_address");
        return address::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), len);
    }

    [[nodiscard]] int native_handle() const noexcept { return fd_; }
    [[nodiscard]] bool is_open() const noexcept { return fd_ >= 0; }

    /// Stops listening: new connections are refused, and those accepted but not yet taken are
    /// closed (the destructor does the same).
    void close() noexcept { reset(); }

private:
    /// The multishot accept's completion target. On the heap, so that it can outlive the
    /// listener until the kernel's last completion for it.
    struct accept_state : io::completion {
        std::deque<int> fds;
        int error = 0;
        std::coroutine_handle<> waiter;
        event_loop* loop = nullptr;
        bool live = false;
        bool orphaned = false;

        accept_state() noexcept { complete = &on_complete; }

        void arm(int listen_fd) {
            loop = &event_loop::current("corio::net::tcp_listener::accept");
            io::op_args a{};
            a.fd = listen_fd;
            a.flags = SOCK_CLOEXEC;
            a.multishot = true;
            loop->start_io(io::op_kind::accept, a, *this);
            live = true;
        }

        static void on_complete(io::completion* c, int res, std::uint32_t flags) noexcept {
            auto* self = static_cast<accept_state*>(c);
            const bool more = (flags & IORING_CQE_F_MORE) != 0;
            if (!more)
                self->live = false;
            if (self->orphaned) {
                if (res >= 0)
                    ::close(res);
                if (!more) {
                    self->loop->orphan_finished();
                    delete self;
                }
                return;
            }
            if (res >= 0)
                self->fds.push_back(res);
            else if (res != -ECANCELED)
                self->error = -res;
            if (std::coroutine_handle<> w = std::exchange(self->waiter, {}))
                w.resume();
        }
    };

    /// Waits for the accept state to change; cancellable.
    class wait_awaiter : detail::cancel_target, detail::cancellation_point {
    public:
        explicit wait_awaiter(accept_state& s) noexcept : state_(s) { on_cancel = &on_cancelled; }
        [[nodiscard]] bool await_ready() const noexcept { return false; }
        template <class Promise>
        bool await_suspend(std::coroutine_handle<Promise> h) {
            if (cancel_pending(h))
                return false;
            state_.waiter = h;
            if (cancel_ != nullptr)
                cancel_->arm(this);
            return true;
        }
        void await_resume() {
            if (cancel_ != nullptr)
                cancel_->disarm(this);
            throw_if_cancelled();
        }

    private:
        static void on_cancelled(detail::cancel_target* t) noexcept {
            auto* self = static_cast<wait_awaiter*>(t);
            if (std::coroutine_handle<> w = std::exchange(self->state_.waiter, {}))
                event_loop::current().schedule(w);
        }
        accept_state& state_;
    };

    explicit tcp_listener(int fd) : fd_(fd), state_(new accept_state) {}

    void reset() noexcept {
        if (state_ != nullptr) {
            accept_state* s = std::exchange(state_, nullptr);
            for (int fd : s->fds)
                ::close(fd);
            s->fds.clear();
            if (s->live) { // the kernel still holds it: cancel, and let the last CQE free it
                s->orphaned = true;
                s->loop->adopt_orphan();
                try {
                    s->loop->cancel_io(*s);
                } catch (...) {
                    // The ring is broken: the completion never comes; the state is leaked.
                }
            } else {
                delete s;
            }
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
};

} // namespace corio::net

// SPDX-License-Identifier: MIT
#pragma once

#include <corio/cancelled_error.hpp>
#include <corio/detail/assert.hpp>
#include <corio/event.hpp>
#include <corio/http/detail/connection_budget.hpp>
#include <corio/http/detail/server_connection.hpp>
#include <corio/http/router.hpp>
#include <corio/http/server_options.hpp>
#include <corio/io/event_loop.hpp>
#include <corio/net/address.hpp>
#include <corio/net/tcp_listener.hpp>
#include <corio/net/tcp_stream.hpp>
#include <corio/runtime.hpp>
#include <corio/sleep.hpp>
#include <corio/spawn.hpp>
#include <corio/task.hpp>
#include <corio/timeout.hpp>
#if defined(CORIO_HAVE_TLS) // corio::tls is linked: serve HTTPS too
#include <corio/tls/context.hpp>
#include <corio/tls/stream.hpp>
#endif

#include <chrono>
#include <cstddef>
#include <exception>
#include <iterator>
#include <list>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#if !defined(CORIO_HAVE_TLS)
namespace corio::tls {
class context; // (plain HTTP only: a build without corio::tls)
} // namespace corio::tls
#endif

namespace corio::http {

/// Where `server::serve` serves. Designated initializers: `srv.serve(at, {.loops = rt})`.
struct serve_options {
    /// The loops to serve on: the calling loop alone (the default), or every loop of a
    /// runtime.
    class loop_set {
    public:
        loop_set() noexcept = default;
        loop_set(corio::runtime& rt) noexcept
            : runtime_(&rt) {} // NOLINT(google-explicit-constructor)
        [[nodiscard]] corio::runtime* runtime() const noexcept { return runtime_; }

    private:
        corio::runtime* runtime_ = nullptr;
    };
    loop_set loops;
};

/// An HTTP/1.1 server (the uvicorn of corio): routes each request to a handler and writes its
/// response. Keep-alive by default (HTTP/1.0 on request), pipelined requests answered in
/// order, `Expect: 100-continue` answered, chunked request bodies decoded, HEAD answered
/// without a body, Date and Server fields added.
///
/// Hardened for the open internet: llhttp in strict mode plus the RFC 9112 checks it leaves to
/// the server (Host present exactly once and valid, no obs-fold, no empty field names, no
/// Content-Length with Transfer-Encoding); limits on the head (431, 414) and the body (413);
/// timeouts on slow heads (408), idle connections and handlers (503). A handler that throws
/// gets the client a bare 500 (the exception goes to the loop's exception handler, never to
/// the client) and the connection stays usable.
///
/// **Every core**: `serve(at, {.loops = rt})` serves on every loop of a `runtime`: one
/// SO_REUSEPORT listener per loop, so the kernel spreads the connections, each living on the
/// loop that accepted it; `max_connections` counts them across loops, and `stop` stops every
/// loop. Handlers then run on several threads at once: what they share must be thread-safe
/// (or be a `channel`), and what they make belongs to their own loop.
///
/// **Lifetime**: the server must outlive `serve`. It keeps its own copy of the router (one
/// per loop).
/// **Cancellation**: cancelling `serve` closes every connection at once; `stop` is the
/// graceful way.
/// **Thread-safety**: `serve` and `stop` on the loop that called `serve`.
class server {
public:
    explicit server(router routes, server_options options = {})
        : shared_(std::move(routes), std::move(options)),
          budget_(std::make_shared<detail::connection_budget>(shared_.options.max_connections)) {}
    server(const server&) = delete;
    server& operator=(const server&) = delete;

    /// Binds `at` and serves until `stop()`.
    /// **Errors**: `std::system_error` when the address cannot be bound.
    [[nodiscard]] task<> serve(net::address at) {
        co_await serve(net::tcp_listener::bind(at, {.backlog = 1024}));
    }
    /// Binds `at` on every loop of `where.loops` (SO_REUSEPORT) and serves on all of them
    /// until `stop()`; with no runtime given, as `serve(at)`.
    /// **Errors**: `std::system_error` when the address cannot be bound; a loop's failure
    /// stops the others and is rethrown.
    [[nodiscard]] task<> serve(net::address at, serve_options where) {
        if (where.loops.runtime() == nullptr) {
            co_await serve(at);
            co_return;
        }
        co_await serve_on_each(*where.loops.runtime(), at);
    }
    /// Serves connections from `listener` until `stop()`.
    [[nodiscard]] task<> serve(net::tcp_listener listener) { co_await run(listener, nullptr); }
#if defined(CORIO_HAVE_TLS)
    /// Serves HTTPS: each connection first completes a TLS handshake with `ctx` (within
    /// `header_timeout`). (With corio::tls only.)
    [[nodiscard]] task<> serve(net::tcp_listener listener, tls::context ctx) {
        co_await run(listener, &ctx);
    }
#endif

    /// Stops gracefully: no new connections are accepted and idle keep-alive connections are
    /// closed at once; requests in progress may finish (their responses say `Connection:
    /// close`) for up to `grace`, after which their connections are cancelled. `serve` returns
    /// when every connection has closed.
    void stop(std::chrono::milliseconds grace = {}) {
        if (!shards_.empty()) {
            for (const std::shared_ptr<shard>& sh : shards_)
                sh->stop(grace);
            return;
        }
        if (!serving_ || shared_.stopping)
            return;
        shared_.stopping = true;
        grace_ = grace;
        accepting_.cancel();
        for (connection_slot& c : connections_)
            if (c.idle)
                c.handle.cancel();
    }

    /// Connections open now (on every loop it serves on).
    [[nodiscard]] std::size_t connection_count() const noexcept { return budget_->open(); }
    [[nodiscard]] const server_options& options() const noexcept { return shared_.options; }

private:
    using connection_slot = detail::connection_slot;
    using permit = detail::connection_budget::permit;

    /// One loop's part of a server serving on several: a server of its own on that loop,
    /// sharing the budget, and what `stop` needs to reach it from the coordinating loop.
    class shard {
    public:
        shard(event_loop& loop, std::shared_ptr<server> srv) : loop_(loop), srv_(std::move(srv)) {}

        task<> serve(net::tcp_listener listener) {
            if (stop_requested_.load(std::memory_order_acquire))
                co_return; // stopped before it started
            co_await srv_->serve(std::move(listener));
        }
        /// From the coordinating loop: stops this part on its own loop.
        void stop(std::chrono::milliseconds grace) {
            stop_requested_.store(true, std::memory_order_release);
            loop_.post([srv = srv_, grace] { srv->stop(grace); });
        }

    private:
        event_loop& loop_;
        std::shared_ptr<server> srv_;
        std::atomic<bool> stop_requested_{false};
    };

    server(const server& routes_from, std::shared_ptr<detail::connection_budget> budget,
           std::size_t slot)
        : shared_(routes_from.shared_.routes, routes_from.shared_.options),
          budget_(std::move(budget)), budget_slot_(slot) {}

    task<> serve_on_each(corio::runtime& rt, net::address at) {
        if (serving_)
            throw std::logic_error("corio::http::server::serve: this server is already serving");
        serving_ = true;
        const std::size_t n = rt.size();
        budget_->set_accept_loops(n);
        std::vector<net::tcp_listener> listeners;
        listeners.reserve(n);
        for (std::size_t i = 0; i < n; ++i) {
            listeners.push_back(net::tcp_listener::bind(at, {.backlog = 1024, .reuse_port = true}));
            if (i == 0)
                at = listeners.front().local_address(); // port 0: the others take the same
        }
        for (std::size_t i = 0; i < n; ++i)
            shards_.push_back(std::make_shared<shard>(
                rt.loop(i), std::shared_ptr<server>(new server(*this, budget_, i))));
        std::vector<join_handle<>> running;
        running.reserve(n);
        for (std::size_t i = 0; i < n; ++i)
            running.push_back(spawn_on(rt.loop(i), shards_[i]->serve(std::move(listeners[i]))));
        std::exception_ptr failure;
        bool cancelled = false;
        for (join_handle<>& r : running) {
            for (;;) {
                try {
                    co_await r;
                } catch (const cancelled_error&) {
                    if (!r.done()) { // we were cancelled: so is every loop's part, at once
                        cancelled = true;
                        for (join_handle<>& other : running)
                            other.cancel();
                        continue;
                    }
                } catch (...) {
                    if (!failure) {
                        failure = std::current_exception();
                        stop();
                    }
                }
                break;
            }
        }
        shards_.clear();
        serving_ = false;
        if (failure)
            std::rethrow_exception(failure);
        if (cancelled)
            throw cancelled_error{};
    }
    using slot_iterator = std::list<connection_slot>::iterator;

    // Removes a connection from the server's list when its coroutine ends.
    class slot_guard {
    public:
        slot_guard(server& srv, slot_iterator it) noexcept : srv_(srv), it_(it) {}
        slot_guard(const slot_guard&) = delete;
        slot_guard& operator=(const slot_guard&) = delete;
        ~slot_guard() {
            srv_.connections_.erase(it_); // detaches this very coroutine: it is ending anyway
            if (srv_.connections_.empty() && srv_.shared_.stopping) {
                try {
                    srv_.drained_.set(); // on the server's own loop: only memory can fail
                } catch (...) {
                    CORIO_ASSERT(false, "http::server could not wake its drain (out of memory)");
                }
            }
        }

    private:
        server& srv_;
        slot_iterator it_;
    };

    task<> run(net::tcp_listener& listener, const tls::context* ctx) {
        if (serving_)
            throw std::logic_error("corio::http::server::serve: this server is already serving");
        serving_ = true;
        shared_.stopping = false;
        drained_.clear();
        accepting_ = spawn(accept_loop(listener, ctx));
        bool cancelled = false;
        try {
            co_await accepting_;
        } catch (const cancelled_error&) {
            cancelled = !shared_.stopping; // serve itself was cancelled, not stopped
        }
        if (cancelled) {
            accepting_.cancel();
            shared_.stopping = true;
            grace_ = {};
        }
        // The accept loop uses the listener and the server's slots: it must have ended before
        // serve returns and they can go (cancelled, it may still be unwinding; found on the
        // torturing ring, where it was backing off after a failed accept).
        if (co_await until_done(accepting_)) { // cancelled meanwhile: no grace any more
            cancelled = true;
            grace_ = {};
        }
        listener.close(); // refuse new connections while the others drain
        if (co_await drain())
            cancelled = true;
        serving_ = false;
        if (cancelled)
            throw cancelled_error{};
    }

    // Lets the connections finish within the grace, then cancels the rest; returns once every
    // one has ended (they use the server), even if serve is cancelled meanwhile (then the rest
    // are cancelled at once, and it returns true).
    task<bool> drain() {
        for (connection_slot& c : connections_)
            if (c.idle || grace_ <= std::chrono::milliseconds::zero())
                c.handle.cancel();
        bool cancelled = false;
        bool late = false;
        if (!connections_.empty()) {
            try {
                co_await timeout(grace_, wait_drained());
            } catch (const corio::timeout_error&) {
                late = true;
            } catch (const cancelled_error&) {
                late = cancelled = true;
            }
        }
        if (late)
            for (connection_slot& c : connections_)
                c.handle.cancel();
        while (!connections_.empty()) {
            try {
                co_await drained_.wait();
            } catch (const cancelled_error&) {
                cancelled = true;
                for (connection_slot& c : connections_)
                    c.handle.cancel();
            }
        }
        co_return cancelled;
    }

    // Waits until `h`'s task has ended, whatever it ended with, even if the waiting task is
    // cancelled meanwhile (then it returns true).
    static task<bool> until_done(join_handle<>& h) {
        bool cancelled = false;
        while (!h.done()) {
            try {
                co_await h;
            } catch (const cancelled_error&) {
                cancelled = cancelled || !h.done(); // our cancel, not the task's own end
            } catch (...) {
            }
        }
        co_return cancelled;
    }

    task<> wait_drained() { co_await drained_.wait(); }

    task<> accept_loop(net::tcp_listener& listener, [[maybe_unused]] const tls::context* ctx) {
        for (;;) {
            co_await budget_->room(budget_slot_);
            std::optional<net::tcp_stream> accepted;
            try {
                accepted = co_await listener.accept();
            } catch (const std::system_error&) {
                // Out of descriptors or memory: say so, back off, and keep serving the
                // connections already open.
                event_loop::current().call_exception_handler(std::current_exception());
            }
            if (!accepted) {
                co_await sleep_for(std::chrono::milliseconds(100));
                continue;
            }
            permit slot = co_await budget_->take(budget_slot_);
            connections_.emplace_back();
            const auto it = std::prev(connections_.end());
#if defined(CORIO_HAVE_TLS)
            if (ctx != nullptr) {
                it->handle = spawn(serve_tls(std::move(*accepted), *ctx, it, std::move(slot)));
                continue;
            }
#endif
            it->handle = spawn(serve_connection(std::move(*accepted), it, std::move(slot)));
        }
    }

    task<> serve_connection(net::tcp_stream s, slot_iterator it, permit) {
        slot_guard guard{*this, it};
        s.set_nodelay(true);
        {
            detail::server_connection<net::tcp_stream> c{shared_, s, *it};
            co_await c.run();
        } // its multishot receive is cancelled first: the close then releases the socket at once
        co_await s.close();
    }

#if defined(CORIO_HAVE_TLS)
    task<> serve_tls(net::tcp_stream tcp, tls::context ctx, slot_iterator it, permit) {
        slot_guard guard{*this, it};
        tcp.set_nodelay(true);
        std::optional<tls::stream> s;
        try {
            s = co_await timeout(shared_.options.header_timeout,
                                 tls::stream::accept(std::move(tcp), std::move(ctx)));
        } catch (const std::exception&) {
            co_return; // a failed or slow handshake ends only this connection
        }
        detail::server_connection<tls::stream> c{shared_, *s, *it};
        co_await c.run();
        co_await s->close();
    }
#endif

    detail::server_shared shared_;
    std::shared_ptr<detail::connection_budget> budget_; // shared by every loop's part
    std::size_t budget_slot_ = 0;                       // this part's accept loop in it
    std::vector<std::shared_ptr<shard>> shards_;        // serving on several loops
    std::list<connection_slot> connections_;
    join_handle<> accepting_;
    event drained_;
    std::chrono::milliseconds grace_{};
    bool serving_ = false;
};

} // namespace corio::http

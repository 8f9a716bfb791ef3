// SPDX-License-Identifier: MIT
#pragma once

#include <corio/event.hpp>
#include <corio/io/event_loop.hpp>
#include <corio/task.hpp>

#include <atomic>
#include <cstddef>
#include <deque>
#include <memory>
#include <utility>

namespace corio::http::detail {

/// The connections a server may hold open (`max_connections`), counted across every loop it
/// serves on: an accept loop waits for room before it accepts and takes a permit for the
/// connection it accepted, which gives it back when it closes, on whatever loop. An accept
/// loop that finds no room sleeps until a connection closes somewhere; only then does a
/// hand-off cross loops.
class connection_budget : public std::enable_shared_from_this<connection_budget> {
public:
    /// `max` connections, shared by one accept loop until `set_accept_loops`.
    explicit connection_budget(std::size_t max) : max_(max), sleepers_(1) {}

    /// Shares the budget among `n` accept loops (one per loop served); called before any of
    /// them starts.
    void set_accept_loops(std::size_t n) {
        if (n != sleepers_.size())
            sleepers_ = std::deque<sleeper>(n); // (a deque never moves its elements)
    }

    /// One open connection's share of the budget; gives it back when destroyed.
    class [[nodiscard]] permit {
    public:
        permit() noexcept = default;
        explicit permit(connection_budget& b) noexcept : budget_(&b) {}
        permit(permit&& other) noexcept : budget_(std::exchange(other.budget_, nullptr)) {}
        permit& operator=(permit&& other) noexcept {
            if (this != &other) {
                release();
                budget_ = std::exchange(other.budget_, nullptr);
            }
            return *this;
        }
        permit(const permit&) = delete;
        permit& operator=(const permit&) = delete;
        ~permit() { release(); }

    private:
        void release() noexcept {
            if (connection_budget* b = std::exchange(budget_, nullptr))
                b->give_back();
        }
        connection_budget* budget_ = nullptr;
    };

    /// Waits (on the calling loop, as accept loop `slot`) until a connection may open. It
    /// takes nothing: an accept loop must not hold a permit while its listener has nobody
    /// waiting, when another loop's listener has (it would starve that one).
    task<> room(std::size_t slot) {
        co_await sleep_until(slot, [this] { return open_.load() < max_; });
    }

    /// Takes a permit for accept loop `slot`, waiting while none is left (another loop took
    /// the last one between `room` and the accept: this connection then waits its turn).
    task<permit> take(std::size_t slot) {
        co_await sleep_until(slot, [this] { return try_take(); });
        co_return permit{*this};
    }

    /// Connections open now, on every loop.
    [[nodiscard]] std::size_t open() const noexcept {
        return open_.load(std::memory_order_relaxed);
    }

private:
    /// An accept loop, as the connections that close see it.
    struct sleeper {
        std::atomic<bool> waiting{false};
        event_loop* loop = nullptr;
        corio::event room; // set on `loop` when a permit comes back
    };

    template <class Ready>
    task<> sleep_until(std::size_t slot, Ready ready) {
        sleeper& s = sleepers_[slot];
        s.loop = &event_loop::current("corio::http::server");
        while (!ready()) {
            s.room.clear();
            s.waiting.store(true, std::memory_order_seq_cst);
            if (ready()) { // a connection closed between the two looks
                s.waiting.store(false, std::memory_order_relaxed);
                break;
            }
            co_await s.room.wait();
        }
    }

    bool try_take() noexcept {
        std::size_t n = open_.load(std::memory_order_relaxed);
        do {
            if (n >= max_)
                return false;
        } while (!open_.compare_exchange_weak(n, n + 1, std::memory_order_seq_cst));
        return true;
    }

    void give_back() noexcept {
        open_.fetch_sub(1, std::memory_order_seq_cst);
        for (sleeper& s : sleepers_) {
            if (!s.waiting.exchange(false, std::memory_order_seq_cst))
                continue;
            try {
                if (s.loop == event_loop::current_or_null())
                    s.room.set();
                else // the budget lives until the last wake-up on its way has run
                    s.loop->post([self = shared_from_this(), &s] { s.room.set(); });
            } catch (...) {
                // Out of memory: that accept loop wakes at the next connection's end instead.
                s.waiting.store(true, std::memory_order_relaxed);
            }
        }
    }

    const std::size_t max_;
    std::atomic<std::size_t> open_{0};
    std::deque<sleeper> sleepers_;
};

} // namespace corio::http::detail

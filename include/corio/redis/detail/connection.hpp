// SPDX-License-Identifier: MIT
// One connection to a Redis server: a socket, the commands in flight on it, and two tasks, one
// writing what the commands queued, one reading replies and handing each to its command. Any
// number of commands share it (automatic pipelining): they are written in order, and replies
// come back in the same order (RESP guarantees it).
#pragma once

#include <corio/bounded_queue.hpp>
#include <corio/event.hpp>
#include <corio/net/address.hpp>
#include <corio/net/tcp_stream.hpp>
#include <corio/redis/error.hpp>
#include <corio/redis/reply.hpp>
#include <corio/sleep.hpp>
#include <corio/spawn.hpp>
#include <corio/task.hpp>
#include <corio/waiter_queue.hpp>

#include <hiredis/hiredis.h>
#include <sys/socket.h>

#include <array>
#include <charconv>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace corio::redis {

/// True for what a command argument may be: text, an integer, a floating-point number, or
/// anything `std::ostream` can print.
template <class T>
concept printable = std::convertible_to<const T&, std::string_view> || std::integral<T> ||
    std::floating_point<T> || requires(std::ostream& os, const T& v) {
    os << v;
};

namespace detail {

/// Appends one RESP bulk string.
inline void append_bulk(std::string& out, std::string_view arg) {
    out.push_back('$');
    std::array<char, 24> n{};
    out.append(n.data(), std::to_chars(n.data(), n.data() + n.size(), arg.size()).ptr);
    out.append("\r\n");
    out.append(arg);
    out.append("\r\n");
}

template <class T>
void append_arg(std::string& out, const T& v) {
    if constexpr (std::convertible_to<const T&, std::string_view>) {
        append_bulk(out, std::string_view(v));
    } else if constexpr (std::integral<T> || std::floating_point<T>) {
        std::array<char, 64> text{};
        const auto r = std::to_chars(text.data(), text.data() + text.size(), v);
        append_bulk(out,
                    std::string_view(text.data(), static_cast<std::size_t>(r.ptr - text.data())));
    } else {
        std::ostringstream os;
        os << v;
        append_bulk(out, os.str());
    }
}

/// Appends a whole command in RESP: "*<n>\r\n" then each argument.
template <class... Args>
void append_command(std::string& out, std::string_view name, const Args&... args) {
    out.push_back('*');
    std::array<char, 24> n{};
    out.append(n.data(), std::to_chars(n.data(), n.data() + n.size(), 1 + sizeof...(Args)).ptr);
    out.append("\r\n");
    append_bulk(out, name);
    (append_arg(out, args), ...);
}

/// `text` with ASCII letters upper-cased (commands and their keywords are case-insensitive).
inline std::string upper(std::string_view text) {
    std::string n(text);
    for (char& c : n)
        if (c >= 'a' && c <= 'z')
            c = static_cast<char>(c - 'a' + 'A');
    return n;
}

/// A command's name for messages: its first word, upper-cased ("GET"), never its arguments.
inline std::string command_name(std::string_view name) {
    return upper(name.substr(0, name.find(' ')));
}

/// hiredis's reply tree, copied into `reply`.
inline reply to_reply(const redisReply* r) {
    switch (r->type) {
    case REDIS_REPLY_STRING: return reply::string(std::string(r->str, r->len));
    case REDIS_REPLY_STATUS: return reply::status(std::string(r->str, r->len));
    case REDIS_REPLY_ERROR: return reply::error(std::string(r->str, r->len));
    case REDIS_REPLY_INTEGER: return reply::integer(r->integer);
    case REDIS_REPLY_ARRAY: {
        std::vector<reply> elements;
        elements.reserve(r->elements);
        for (std::size_t i = 0; i < r->elements; ++i)
            elements.push_back(to_reply(r->element[i]));
        return reply::array(std::move(elements));
    }
    default: return reply::nil();
    }
}

struct connection;

/// A coroutine waiting for the replies of what it sent (one command, or a pipeline's).
class reply_awaiter : public corio::detail::waiter {
public:
    reply_awaiter(connection& c, std::uint64_t seq, std::size_t expected) noexcept
        : c_(c), seq_(seq) {
        replies_.reserve(expected);
    }
    [[nodiscard]] bool await_ready() const noexcept { return false; }
    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> h);
    std::vector<reply> await_resume() {
        if (!finish() || failure_)
            std::rethrow_exception(failure_);
        return std::move(replies_);
    }

private:
    friend struct connection;
    connection& c_;
    std::uint64_t seq_;
    std::vector<reply> replies_;
    std::exception_ptr failure_;
};

/// One connection's state, shared by the client and the connection's own two tasks (which
/// may outlive the client by a turn while they unwind).
struct connection {
    struct flight {
        std::uint64_t seq;
        std::size_t remaining; // replies still due
    };

    std::optional<net::tcp_stream> stream;
    std::string out;                     // encoded, not yet written
    std::deque<flight> in_flight;        // in the order sent
    corio::detail::waiter_queue waiting; // the same order; cancelled waiters leave it
    event has_output;
    std::uint64_t next_seq = 0;
    bool dead = false;
    /// In subscriber mode (`client::subscribe`), every reply goes here instead of to a
    /// command: the server pushes messages that nobody asked for.
    std::optional<bounded_queue<reply>> pushes;
    std::exception_ptr death; // why the connection died, for a subscriber
    redisReader* reader = redisReaderCreate();

    connection() = default;
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;
    ~connection() { redisReaderFree(reader); }

    /// Queues `encoded` (holding `count` commands) for the writer; returns the awaiter of
    /// their replies.
    reply_awaiter send(std::string_view encoded, std::size_t count) {
        out.append(encoded);
        const std::uint64_t seq = next_seq++;
        in_flight.push_back({seq, count});
        has_output.set();
        return reply_awaiter{*this, seq, count};
    }

    /// Hands `r` to the command it answers, or drops it when that command was cancelled.
    void deliver(reply r) {
        if (in_flight.empty())
            throw error(error_kind::protocol, "corio::redis: a reply nobody asked for");
        flight& f = in_flight.front();
        auto* w = static_cast<reply_awaiter*>(waiting.front());
        const bool wanted = w != nullptr && w->seq_ == f.seq;
        if (wanted)
            w->replies_.push_back(std::move(r));
        if (--f.remaining > 0)
            return;
        in_flight.pop_front();
        if (wanted)
            waiting.grant_front();
    }

    /// The connection failed: every command in flight fails with `why` (they may have run).
    void die(const std::exception_ptr& why) noexcept {
        dead = true;
        death = why;
        if (stream)
            (void)::shutdown(stream->native_handle(), SHUT_RDWR);
        in_flight.clear();
        while (corio::detail::waiter* w = waiting.front()) {
            static_cast<reply_awaiter*>(w)->failure_ = why;
            waiting.grant_front();
        }
        try {
            if (pushes)
                pushes->close(); // a subscriber's next() ends
            has_output.set();    // the writer sees `dead` and ends
        } catch (...) {
        }
    }

    static task<> write_loop(std::shared_ptr<connection> self) {
        connection& c = *self;
        std::exception_ptr failure;
        try {
            while (!c.dead) {
                if (c.out.empty()) {
                    c.has_output.clear();
                    co_await c.has_output.wait();
                    continue;
                }
                const std::string batch = std::exchange(c.out, std::string());
                co_await c.stream->write_all(batch);
            }
        } catch (const cancelled_error&) {
            throw;
        } catch (const std::exception& e) {
            failure = std::make_exception_ptr(
                connect_error(std::string("corio::redis: the connection was lost while "
                                          "writing (commands in flight may have run): ") +
                              e.what()));
        }
        if (failure)
            c.die(failure);
    }

    /// Replies handed out in a row before the reader lets their commands go on.
    static constexpr std::size_t batch = 16;

    static task<> read_loop(std::shared_ptr<connection> self) {
        connection& c = *self;
        std::exception_ptr failure;
        std::array<std::byte, 16384> buf{};
        std::size_t handed = 0;
        try {
            while (!c.dead) {
                const std::size_t n = co_await c.stream->read_some(buf);
                if (n == 0)
                    throw connect_error("corio::redis: the server closed the connection "
                                        "(commands in flight may have run)");
                if (redisReaderFeed(c.reader, reinterpret_cast<const char*>(buf.data()), n) !=
                    REDIS_OK)
                    throw error(error_kind::protocol,
                                "corio::redis: not RESP: " + std::string(c.reader->errstr));
                for (;;) {
                    void* parsed = nullptr;
                    if (redisReaderGetReply(c.reader, &parsed) != REDIS_OK)
                        throw error(error_kind::protocol,
                                    "corio::redis: not RESP: " + std::string(c.reader->errstr));
                    if (parsed == nullptr)
                        break;
                    std::unique_ptr<redisReply, void (*)(void*)> owned(
                        static_cast<redisReply*>(parsed), &freeReplyObject);
                    if (c.pushes)
                        co_await c.pushes->put(to_reply(owned.get()));
                    else
                        c.deliver(to_reply(owned.get()));
                    // Every `batch` replies, let the commands woken so far run, and the
                    // writer send what they ask next, before the rest are handed out: many
                    // tasks then keep the server busy in overlapping waves, not in lockstep.
                    if (++handed % batch == 0) {
                        co_await yield_now();
                        if (c.dead)
                            break;
                    }
                }
            }
        } catch (const cancelled_error&) {
            throw;
        } catch (const error&) {
            failure = std::current_exception();
        } catch (const std::exception& e) {
            failure = std::make_exception_ptr(
                connect_error(std::string("corio::redis: the connection was lost (commands in "
                                          "flight may have run): ") +
                              e.what()));
        }
        if (failure)
            c.die(failure);
    }

    /// Starts the two tasks of `self` (connected). They run detached, each holding `self`,
    /// until the connection dies or is stopped.
    static void start(const std::shared_ptr<connection>& self) {
        spawn(write_loop(self)).detach();
        spawn(read_loop(self)).detach();
    }

    /// Closes the connection: the socket is shut down at once (the server sees it go), the
    /// reader meets its end and fails what is still in flight, the writer ends; both release
    /// the state on the loop's next turns.
    void stop() noexcept {
        if (dead)
            return;
        dead = true;
        if (stream)
            (void)::shutdown(stream->native_handle(), SHUT_RDWR);
        try {
            if (pushes)
                pushes->close();
            has_output.set();
        } catch (...) { // only on another loop, which the client's own check refuses first
        }
    }
};

template <class Promise>
bool reply_awaiter::await_suspend(std::coroutine_handle<Promise> h) {
    return c_.waiting.suspend(*this, h);
}

} // namespace detail
} // namespace corio::redis

// SPDX-License-Identifier: MIT
#pragma once

#include <corio/bounded_queue.hpp>
#include <corio/cancelled_error.hpp>
#include <corio/io/loop_affinity.hpp>
#include <corio/net/address.hpp>
#include <corio/net/tcp_stream.hpp>
#include <corio/redis/detail/connection.hpp>
#include <corio/redis/detail/sha1.hpp>
#include <corio/redis/error.hpp>
#include <corio/redis/reply.hpp>
#include <corio/task.hpp>
#include <corio/timeout.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace corio::redis {

/// A client's settings (redis-py's `Redis(...)` arguments).
struct client_options {
    /// "host:port" with a numeric host ("127.0.0.1:6379", "[::1]:6379").
    std::string address = "127.0.0.1:6379";
    /// Sent with AUTH when not empty.
    std::string password;
    /// Selected with SELECT when not 0.
    int db = 0;
    std::chrono::milliseconds connect_timeout{2000};
    /// How long a command waits for its reply (0: as long as it takes).
    std::chrono::milliseconds command_timeout{5000};
    /// Connections opened at most; commands share them, pipelined.
    std::size_t max_connections = 4;
};

/// Commands to send at once (`client::pipeline`), answered in order.
class pipeline_batch {
public:
    template <printable... Args>
    pipeline_batch& command(std::string_view name, const Args&... args) {
        detail::append_command(encoded_, name, args...);
        names_.push_back(detail::command_name(name));
        return *this;
    }
    [[nodiscard]] std::size_t size() const noexcept { return names_.size(); }

private:
    friend class client;
    std::string encoded_;
    std::vector<std::string> names_;
};

/// A Lua script for `client::eval`, its SHA-1 computed once (redis-py's `Script`).
class script {
public:
    explicit script(std::string text) : text_(std::move(text)), sha1_(detail::sha1_hex(text_)) {}
    [[nodiscard]] const std::string& text() const noexcept { return text_; }
    /// The hex SHA-1 the server knows it by (EVALSHA).
    [[nodiscard]] const std::string& sha1() const noexcept { return sha1_; }

private:
    std::string text_;
    std::string sha1_;
};

/// A message received by a `subscription`.
struct message {
    std::string channel;
    std::string payload;
    std::string pattern; ///< the pattern that matched (`psubscribe`); empty for `subscribe`
};

/// Channels subscribed to on a connection of their own (redis-py's `PubSub`), made by
/// `client::subscribe` / `client::psubscribe`: `while (auto m = co_await sub.next()) {...}`.
/// Messages wait in a queue of `capacity` (1,024); while it is full the connection is not
/// read, and the server buffers them (up to its client-output-buffer-limit).
/// **Errors**: `next()` throws `redis::connect_error` when the connection is lost (subscribe
/// again to go on); it returns std::nullopt once the subscription was closed. Destroying it
/// closes its connection.
class subscription {
public:
    subscription(subscription&&) noexcept = default;
    subscription& operator=(subscription&& other) noexcept {
        if (this != &other) {
            close();
            c_ = std::move(other.c_);
        }
        return *this;
    }
    subscription(const subscription&) = delete;
    subscription& operator=(const subscription&) = delete;
    ~subscription() { close(); }

    /// The next message; std::nullopt after `close()`.
    task<std::optional<message>> next() {
        if (!c_)
            co_return std::nullopt;
        std::shared_ptr<detail::connection> c = c_;
        for (;;) {
            std::optional<reply> r;
            try {
                r = co_await c->pushes->get();
            } catch (const queue_closed&) {
            }
            if (!r) {
                if (c->death && c_)
                    std::rethrow_exception(c->death);
                co_return std::nullopt;
            }
            if (!r->is_array() || r->size() < 3)
                continue;
            const std::string& kind = (*r)[0].str();
            if (kind == "message")
                co_return message{(*r)[1].str(), (*r)[2].str(), {}};
            if (kind == "pmessage" && r->size() >= 4)
                co_return message{(*r)[2].str(), (*r)[3].str(), (*r)[1].str()};
            // "subscribe", "psubscribe" and the like: confirmations, skipped
        }
    }

    /// Ends the subscription: closes its connection; `next()` then returns std::nullopt.
    void close() noexcept {
        if (c_)
            std::exchange(c_, nullptr)->stop();
    }

private:
    friend class client;
    explicit subscription(std::shared_ptr<detail::connection> c) noexcept : c_(std::move(c)) {}
    std::shared_ptr<detail::connection> c_;
};

/// A Redis client (redis-py's asyncio `Redis`): any number of tasks send commands at once, and
/// they share up to `max_connections` connections, pipelined automatically (each connection
/// writes commands in the order they come and hands replies back in the same order).
///
/// **Cancellation**: a cancelled command stops waiting at once; it may have been sent, and
/// then may run: its reply is read and dropped when it comes. The connection stays usable.
/// **Errors**: `redis::error` of kind `server` for an error reply (`-ERR`, `-WRONGTYPE`),
/// naming the command (not its arguments); `connect_error` when connecting fails or the
/// connection is lost with the command in flight (never retried: it may have run; the next
/// command reconnects); `redis::timeout_error` when `command_timeout` or `connect_timeout`
/// passes; kind `protocol` for bytes that are not RESP.
/// **Thread-safety**: one loop, the first that uses it (from another, a `std::logic_error`).
class client {
public:
    /// **Errors**: `std::invalid_argument` for max_connections 0 or an address that is not
    /// "host:port" with a numeric host.
    explicit client(client_options options)
        : options_(std::move(options)), address_(net::address::parse(options_.address)) {
        if (options_.max_connections == 0)
            throw std::invalid_argument("corio::redis::client: max_connections must be at "
                                        "least 1");
    }
    client(const client&) = delete;
    client& operator=(const client&) = delete;
    ~client() {
        for (const auto& c : connections_)
            c->stop();
        for (const auto& c : idle_alone_)
            c->stop();
    }

    /// Sends a command (`"SET", key, value, "EX", 60`) and returns its reply.
    ///
    /// A blocking command (BLPOP, BRPOP, BLMOVE, BZPOPMIN, XREAD ... BLOCK, WAIT, ...) gets a
    /// connection of its own: on a shared connection it would hold up every command behind it.
    /// Once it ends the connection waits, open, for the next blocking command (so there are
    /// never more of them than blocking commands once ran at the same time). `command_timeout` does
    /// not apply to it (its own timeout argument bounds it). Cancelling it closes its connection,
    /// and the server drops it when it sees the close; if the server served it first (an item
    /// popped), what it took is lost, as with redis-py. Where that matters use a stream with
    /// acknowledgements.
    template <printable... Args>
    task<reply> command(std::string_view name, const Args&... args) {
        std::string encoded;
        detail::append_command(encoded, name, args...);
        std::string upper = detail::command_name(name);
        if (blocks(upper, encoded))
            return run_alone(std::move(encoded), std::move(upper));
        return run_one(std::move(encoded), std::move(upper));
    }

    /// GET: the value, or std::nullopt when the key does not exist.
    task<std::optional<std::string>> get(std::string_view key) {
        return get_of(command("GET", key));
    }
    /// SET key value.
    task<> set(std::string_view key, std::string_view value) {
        return ignore(command("SET", key, value));
    }

    /// Subscribes to `channel` (SUBSCRIBE) on a connection of its own, once the server has
    /// confirmed it: messages published after this returns are received.
    task<subscription> subscribe(std::string channel) {
        return open_subscription("SUBSCRIBE", std::move(channel));
    }
    /// The same for a pattern (PSUBSCRIBE "news.*").
    task<subscription> psubscribe(std::string pattern) {
        return open_subscription("PSUBSCRIBE", std::move(pattern));
    }

    /// Runs a Lua script (redis-py's `Script`): EVALSHA with its SHA-1, falling back to EVAL
    /// when the server does not know it yet (NOSCRIPT), which also makes it known.
    task<reply> eval(std::string text, std::vector<std::string> keys,
                     std::vector<std::string> args) {
        const script s{std::move(text)};
        co_return co_await eval(s, std::move(keys), std::move(args));
    }
    /// The same for a `script` whose SHA-1 was computed once (it must outlive the call: a
    /// static one does).
    task<reply> eval(const script& s, std::vector<std::string> keys,
                     std::vector<std::string> args) {
        try {
            co_return co_await run_one(encode_script("EVALSHA", s.sha1(), keys, args), "EVALSHA");
        } catch (const error& e) {
            if (e.kind() != error_kind::server ||
                std::string_view(e.what()).find("NOSCRIPT") == std::string_view::npos)
                throw;
        } // the server had not seen it: send it whole
        co_return co_await run_one(encode_script("EVAL", s.text(), keys, args), "EVAL");
    }

    /// Sends every command of the batch at once and returns their replies in order; an error
    /// reply stays in its place (`reply::is_error()`) instead of throwing.
    task<std::vector<reply>> pipeline(pipeline_batch b) { return run_many(std::move(b)); }
    template <std::invocable<pipeline_batch&> Fill>
    task<std::vector<reply>> pipeline(Fill fill) {
        pipeline_batch b;
        fill(b);
        return pipeline(std::move(b));
    }

    [[nodiscard]] const client_options& options() const noexcept { return options_; }
    /// Connections open now.
    [[nodiscard]] std::size_t connections() const noexcept {
        std::size_t n = 0;
        for (const auto& c : connections_)
            n += c->dead ? 0 : 1;
        return n;
    }

private:
    static task<std::optional<std::string>> get_of(task<reply> r) {
        const reply v = co_await std::move(r);
        co_return v.as_optional_string();
    }
    static task<> ignore(task<reply> r) { (void)co_await std::move(r); }

    task<reply> run_one(std::string encoded, std::string name) {
        std::vector<reply> replies = co_await exchange(std::move(encoded), 1, name);
        co_return checked(std::move(replies.front()), name);
    }

    /// `r`, or the `redis::error` it is, naming the command.
    static reply checked(reply r, std::string_view name) {
        if (r.is_error())
            throw error(error_kind::server, "corio::redis " + std::string(name) + ": " + r.str());
        return r;
    }

    static std::string encode_script(std::string_view verb, std::string_view body,
                                     const std::vector<std::string>& keys,
                                     const std::vector<std::string>& args) {
        std::string out = "*" + std::to_string(3 + keys.size() + args.size()) + "\r\n";
        detail::append_bulk(out, verb);
        detail::append_bulk(out, body);
        detail::append_arg(out, keys.size());
        for (const std::string& k : keys)
            detail::append_bulk(out, k);
        for (const std::string& a : args)
            detail::append_bulk(out, a);
        return out;
    }

    task<subscription> open_subscription(std::string verb, std::string target) {
        affinity_.check("corio::redis::client::subscribe");
        std::shared_ptr<detail::connection> c = co_await open(verb);
        c->pushes.emplace(1024);
        subscription sub{c};
        std::string encoded;
        detail::append_command(encoded, verb, target);
        c->out.append(encoded);
        c->has_output.set();
        // The confirmation is the first push; wait for it, so that nothing published after
        // this returns is missed.
        std::optional<reply> confirmed;
        try {
            confirmed = co_await c->pushes->get();
        } catch (const queue_closed&) {
        }
        if (!confirmed) {
            if (c->death)
                std::rethrow_exception(c->death);
            throw connect_error("corio::redis " + verb + ": the connection closed");
        }
        (void)checked(std::move(*confirmed), verb);
        co_return sub;
    }

    /// True for the commands that may block on the server until something happens.
    static bool blocks(const std::string& upper, const std::string& encoded) {
        for (std::string_view name : {"BLPOP", "BRPOP", "BLMOVE", "BRPOPLPUSH", "BZPOPMIN",
                                      "BZPOPMAX", "BLMPOP", "BZMPOP", "WAIT", "WAITAOF"})
            if (upper == name)
                return true;
        if (upper != "XREAD" && upper != "XREADGROUP")
            return false;
        return detail::upper(encoded).find("\r\nBLOCK\r\n") != std::string::npos;
    }

    /// Runs a blocking command on a connection of its own: one left idle by an earlier
    /// blocking command that ended normally, else a new one. A cancelled or failed one is
    /// closed (the server may still be blocked on it).
    task<reply> run_alone(std::string encoded, std::string name) {
        affinity_.check("corio::redis::client");
        std::erase_if(idle_alone_, [](const auto& c) { return c->dead; });
        std::shared_ptr<detail::connection> c;
        if (idle_alone_.empty()) {
            c = co_await open(name);
        } else {
            c = std::move(idle_alone_.back());
            idle_alone_.pop_back();
        }
        struct closer {
            std::shared_ptr<detail::connection>& c;
            ~closer() {
                if (c)
                    c->stop();
            }
        } close_unless_kept{c};
        std::vector<reply> replies = co_await wait_for(c, std::move(encoded), 1);
        idle_alone_.push_back(std::exchange(c, nullptr));
        co_return checked(std::move(replies.front()), name);
    }

    task<std::vector<reply>> run_many(pipeline_batch b) {
        if (b.size() == 0)
            co_return std::vector<reply>{};
        co_return co_await exchange(std::move(b.encoded_), b.size(), "pipeline");
    }

    /// Sends `encoded` (`count` commands) on a connection and waits for their replies, up to
    /// `command_timeout`.
    task<std::vector<reply>> exchange(std::string encoded, std::size_t count, std::string name) {
        affinity_.check("corio::redis::client");
        std::shared_ptr<detail::connection> c = co_await pick(name);
        if (options_.command_timeout.count() <= 0)
            co_return co_await wait_for(c, std::move(encoded), count);
        try {
            co_return co_await corio::timeout(options_.command_timeout,
                                              wait_for(c, std::move(encoded), count));
        } catch (const corio::timeout_error&) {
        } // the reply, if it comes, is read and dropped
        throw timeout_error(options_.command_timeout,
                            "corio::redis " + name + ": no reply after " +
                                std::to_string(options_.command_timeout.count()) +
                                " ms (command_timeout; it may still run)");
    }

    static task<std::vector<reply>> wait_for(std::shared_ptr<detail::connection> c,
                                             std::string encoded, std::size_t count) {
        co_return co_await c->send(encoded, count);
    }

    /// Commands in flight on every connection before another is opened: pipelined on one
    /// connection, small commands cost the server and the client least (one read and one write
    /// per wave); more connections pay off for commands that hold the line (large values).
    static constexpr std::size_t busy = 64;

    /// A live connection with the fewest commands in flight; a new one while there are fewer
    /// than `max_connections` and every live one has `busy` commands in flight. One is opened
    /// at a time: the commands that come meanwhile wait for it, and fail with its error.
    task<std::shared_ptr<detail::connection>> pick(const std::string& name) {
        for (;;) {
            std::erase_if(connections_, [](const auto& c) { return c->dead; });
            std::shared_ptr<detail::connection> best;
            for (const auto& c : connections_)
                if (!best || c->in_flight.size() < best->in_flight.size())
                    best = c;
            if (best && (best->in_flight.size() < busy ||
                         connections_.size() + connecting_ >= options_.max_connections))
                co_return best;
            if (connecting_ == 0)
                co_return co_await open_shared(name);
            const std::uint64_t seen = opens_;
            while (opens_ == seen) {
                opened_.clear();
                co_await opened_.wait();
            }
            if (open_failure_)
                std::rethrow_exception(open_failure_);
        }
    }

    /// Opens a connection for every command (`pick`), telling those that wait how it went.
    task<std::shared_ptr<detail::connection>> open_shared(const std::string& name) {
        ++connecting_;
        std::shared_ptr<detail::connection> fresh;
        std::exception_ptr failure;
        std::exception_ptr shared_failure;
        try {
            fresh = co_await open(name);
        } catch (const cancelled_error&) {
            failure = std::current_exception(); // this command's own: the others try again
        } catch (...) {
            failure = std::current_exception();
            shared_failure = failure;
        }
        --connecting_;
        ++opens_;
        open_failure_ = shared_failure;
        if (fresh)
            connections_.push_back(fresh);
        opened_.set();
        if (failure)
            std::rethrow_exception(failure);
        co_return fresh;
    }

    /// Connects, then AUTH and SELECT as configured.
    task<std::shared_ptr<detail::connection>> open(const std::string& name) {
        auto c = std::make_shared<detail::connection>();
        bool late = false;
        try {
            c->stream.emplace(co_await corio::timeout(options_.connect_timeout,
                                                      net::tcp_stream::connect(address_)));
        } catch (const corio::timeout_error&) {
            late = true;
        } catch (const std::system_error& e) {
            throw connect_error("corio::redis " + name + ": cannot connect to " + options_.address +
                                ": " + e.what());
        }
        if (late)
            throw timeout_error(options_.connect_timeout,
                                "corio::redis " + name + ": not connected to " + options_.address +
                                    " after " + std::to_string(options_.connect_timeout.count()) +
                                    " ms (connect_timeout)");
        detail::connection::start(c);
        std::string hello;
        std::size_t count = 0;
        if (!options_.password.empty()) {
            detail::append_command(hello, "AUTH", options_.password);
            ++count;
        }
        if (options_.db != 0) {
            detail::append_command(hello, "SELECT", options_.db);
            ++count;
        }
        if (count > 0) {
            std::vector<reply> answers;
            try {
                answers = co_await wait_for(c, std::move(hello), count);
            } catch (...) {
                c->stop();
                throw;
            }
            for (const reply& a : answers)
                if (a.is_error()) {
                    c->stop();
                    throw connect_error("corio::redis " + name +
                                        ": the server refused the "
                                        "connection's set-up (AUTH or SELECT): " +
                                        a.str());
                }
        }
        co_return c;
    }

    client_options options_;
    net::address address_;
    corio::detail::loop_affinity affinity_;
    std::vector<std::shared_ptr<detail::connection>> connections_;
    /// Connections of blocking commands that ended normally, kept for the next one.
    std::vector<std::shared_ptr<detail::connection>> idle_alone_;
    std::size_t connecting_ = 0;      ///< connections being opened (0 or 1)
    std::uint64_t opens_ = 0;         ///< connection attempts finished
    std::exception_ptr open_failure_; ///< why the last one failed (null when it did not)
    event opened_;
};

} // namespace corio::redis

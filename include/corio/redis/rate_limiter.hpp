// SPDX-License-Identifier: MIT
#pragma once

#include <corio/mutex.hpp>
#include <corio/rate_limiter.hpp>
#include <corio/redis/client.hpp>
#include <corio/redis/error.hpp>
#include <corio/sleep.hpp>
#include <corio/task.hpp>

#include <chrono>
#include <cstdint>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace corio::redis {

/// A `redis::rate_limiter`'s limit: at most `rate` acquisitions in any window of `period`.
struct rate_limit {
    long rate = 0;
    std::chrono::milliseconds period{0};
};

/// `corio::rate_limiter` shared by every process that uses the same key on the same server
/// (scrapy-redis's and aiolimiter-over-Redis's role): an exact sliding log kept in a sorted set
/// and decided atomically by one Lua script on the server's clock (`TIME`), so that many
/// processes on many machines never complete more than `rate` acquisitions in any window of
/// `period` (as the server's clock measures it).
///
/// **Resumption**: an acquisition the window has no room for waits on a local timer for as long
/// as the script says the oldest stamp needs to leave the window, then asks again (no polling
/// in between). While none waits, acquisitions ask at once, concurrently; once one was denied,
/// this process's acquisitions ask one at a time, in order.
/// **Cancellation**: a cancelled `acquire` has taken no slot, unless the script had already
/// granted it one (the slot then stays spent, as with `corio::rate_limiter`).
/// **Errors**: `std::invalid_argument` for a zero or negative rate or period; the client's
/// errors (`redis::connect_error`, `redis::timeout_error`, ...) from the script.
/// **Thread-safety**: the client's loop.
class rate_limiter {
public:
    /// **Errors**: `std::invalid_argument` naming the rate and period when either is not
    /// positive.
    rate_limiter(client& c, std::string key, rate_limit limit)
        : client_(c), key_(std::move(key)), limit_(limit) {
        if (limit.rate <= 0 || limit.period.count() <= 0)
            throw std::invalid_argument("corio::redis::rate_limiter: need rate >= 1 and period > "
                                        "0, got rate " +
                                        std::to_string(limit.rate) + ", period " +
                                        std::to_string(limit.period.count()) + " ms");
        std::random_device seed;
        id_prefix_ = std::to_string(seed()) + "-" + std::to_string(seed()) + "-";
    }

    [[nodiscard]] const std::string& key() const noexcept { return key_; }
    [[nodiscard]] rate_limit limit() const noexcept { return limit_; }

    /// Takes a slot if the window has room now; false otherwise.
    task<bool> try_acquire() {
        const decision d = co_await ask();
        co_return d.granted;
    }

    /// Waits until the window has room, then takes a slot.
    task<> acquire() {
        if (!in_order_.locked()) {
            // Nobody of this process waits: ask at once (concurrent asks share the client's
            // pipeline); only a denied acquisition queues behind the others.
            const decision first = co_await ask();
            if (first.granted)
                co_return;
        }
        auto turn = co_await in_order_.scoped_lock();
        for (;;) {
            const decision d = co_await ask();
            if (d.granted)
                co_return;
            co_await sleep_for(d.wait);
        }
    }

    /// As `acquire`: `auto permit = co_await lim.scoped_acquire();` (the guide's `async with`).
    task<rate_permit> scoped_acquire() {
        co_await acquire();
        co_return rate_permit{};
    }

    /// The server-clock time (microseconds since the epoch) of this process's last granted
    /// acquisition: for checking the limit from outside.
    [[nodiscard]] std::int64_t last_granted_us() const noexcept { return last_granted_us_; }

private:
    struct decision {
        bool granted = false;
        std::chrono::microseconds wait{0};
    };

    // KEYS[1]: the sorted set of stamps (microseconds on the server's clock; the members are
    // unique per acquisition). ARGV: rate, period in microseconds, this acquisition's member.
    // Returns {1, now} when granted, {0, microseconds until the oldest stamp leaves} otherwise.
    static const script& lua() {
        static const script s{R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local rate = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - period)
if redis.call('ZCARD', KEYS[1]) < rate then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.floor(period / 1000) + 1000)
  return {1, now}
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {0, tonumber(oldest[2]) + period - now}
)lua"};
        return s;
    }

    task<decision> ask() {
        const std::vector<std::string> keys{key_};
        const std::vector<std::string> args{
            std::to_string(limit_.rate),
            std::to_string(
                std::chrono::duration_cast<std::chrono::microseconds>(limit_.period).count()),
            id_prefix_ + std::to_string(++sequence_)};
        const reply r = co_await client_.eval(lua(), keys, args);
        decision d;
        d.granted = r[0].as_integer() == 1;
        if (d.granted)
            last_granted_us_ = r[1].as_integer();
        else
            d.wait = std::chrono::microseconds{std::max<long long>(1, r[1].as_integer())};
        co_return d;
    }

    client& client_;
    std::string key_;
    rate_limit limit_;
    std::string id_prefix_;
    std::uint64_t sequence_ = 0;
    std::int64_t last_granted_us_ = 0;
    mutex in_order_;
};

} // namespace corio::redis

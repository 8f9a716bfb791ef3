// SPDX-License-Identifier: MIT
#pragma once

#include <corio/redis/client.hpp>
#include <corio/redis/reply.hpp>
#include <corio/task.hpp>

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>

namespace corio::redis {

/// A set of strings shared by every process that uses the same key on the same server: a
/// crawler's seen-set (scrapy-redis's dupefilter). `add` says whether the member was new, in
/// one command (SADD), so two processes adding the same URL at once see exactly one `true`.
/// **Errors**: the client's; `redis::error` (WRONGTYPE) when the key holds something else.
/// **Thread-safety**: the client's loop.
class set {
public:
    set(client& c, std::string key) : client_(c), key_(std::move(key)) {}

    [[nodiscard]] const std::string& key() const noexcept { return key_; }

    /// Adds `member`; true when it was not in the set.
    task<bool> add(std::string_view member) {
        return is_one(client_.command("SADD", key_, member));
    }
    /// Removes `member`; true when it was in the set.
    task<bool> remove(std::string_view member) {
        return is_one(client_.command("SREM", key_, member));
    }
    /// True when `member` is in the set.
    task<bool> contains(std::string_view member) {
        return is_one(client_.command("SISMEMBER", key_, member));
    }
    /// Members in the set (SCARD).
    task<std::size_t> size() { return count_of(client_.command("SCARD", key_)); }
    /// Empties the set (deletes its key).
    task<> clear() { (void)co_await client_.command("DEL", key_); }

private:
    static task<bool> is_one(task<reply> r) { co_return (co_await std::move(r)).as_integer() == 1; }
    static task<std::size_t> count_of(task<reply> r) {
        co_return static_cast<std::size_t>((co_await std::move(r)).as_integer());
    }

    client& client_;
    std::string key_;
};

} // namespace corio::redis

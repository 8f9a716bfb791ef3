// SPDX-License-Identifier: MIT
#pragma once

#include <corio/event.hpp>
#include <corio/redis/client.hpp>
#include <corio/redis/error.hpp>
#include <corio/redis/reply.hpp>
#include <corio/redis/set.hpp>
#include <corio/task.hpp>
#include <corio/task_group.hpp>
#include <corio/timeout.hpp>

#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstring>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace corio::redis {

/// How a `work_queue<T>` turns its items into bytes and back: `encode(const T&)` gives a
/// string, `decode(std::string_view)` gives a `T` or throws when the bytes are not one.
/// corio provides it for strings and for trivially copyable types (their bytes as they are in
/// memory: every process must run on the same architecture, built with the same definition of
/// `T`); specialise it, or pass a codec type as `work_queue`'s second argument, for others.
template <class T>
struct codec;

template <>
struct codec<std::string> {
    static std::string encode(const std::string& v) { return v; }
    static std::string decode(std::string_view bytes) { return std::string(bytes); }
};

template <class T>
    requires std::is_trivially_copyable_v<T>
struct codec<T> {
    static std::string encode(const T& v) {
        std::string bytes(sizeof(T), '\0');
        std::memcpy(bytes.data(), &v, sizeof(T));
        return bytes;
    }
    static T decode(std::string_view bytes) {
        if (bytes.size() != sizeof(T))
            throw std::invalid_argument("corio::redis::codec: an item of " +
                                        std::to_string(bytes.size()) + " bytes, where " +
                                        std::to_string(sizeof(T)) + " were expected");
        T v;
        std::memcpy(&v, bytes.data(), sizeof(T));
        return v;
    }
};

/// What `work_queue<T, C>` needs of its codec `C`.
template <class C, class T>
concept codec_for = requires(const T& v, std::string_view bytes) {
    { C::encode(v) } -> std::convertible_to<std::string>;
    { C::decode(bytes) } -> std::convertible_to<T>;
};

/// A `work_queue`'s settings.
struct work_queue_options {
    /// The consumer group every worker of the queue joins.
    std::string group = "workers";
    /// This worker's name in the group; empty: "<host>-<pid>-<random>". A worker restarted
    /// under its old name takes nothing back by its name: its leased items come back to
    /// whoever asks once `visibility_timeout` has passed, as anyone's do.
    std::string consumer;
    /// How long a lease holds an item: past it, any worker's `get` may take the item again.
    std::chrono::milliseconds visibility_timeout{30000};
    /// Deliveries an item gets at most; the one after goes to the dead-letter stream instead.
    long max_deliveries = 5;
    /// Items the stream may hold at most (waiting and leased, not yet acknowledged); `put`
    /// waits while it is full. 0: no bound.
    std::size_t max_length = 0;
    /// How often a worker looks for items whose lease ran out (or that were released
    /// elsewhere): a `get` that finds nothing waits this long for a new item before it looks
    /// again, and a `get` that finds new items looks at most this often (the look walks the
    /// group's pending list on the server).
    std::chrono::milliseconds reclaim_interval{1000};
};

/// A work queue shared by every process that uses the same stream on the same server
/// (RQ's, Celery's and arq's role; asyncio.Queue with `task_done`, across machines), on a Redis
/// stream with a consumer group: `put` appends an item; `get` leases one; `lease::ack` (or
/// `ack(lease)`) says it is done and removes it. A lease that ends without an ack (the worker
/// failed, threw, or was killed) leaves the item pending: once `visibility_timeout` has passed,
/// any worker's `get` takes it again (XPENDING ... IDLE, then XCLAIM). An item delivered
/// `max_deliveries` times without an ack, or whose bytes the codec refuses, is moved to the
/// dead-letter stream (`dead_letters()`, named `<name>:dead`: fields `v`, `id`, `deliveries`,
/// `reason`).
///
/// **Delivery**: at least once. An item is never lost while Redis keeps its data, but it is
/// processed again when a lease runs out before its ack (a worker too slow, or dead after the
/// work and before the ack): make the work idempotent, or `renew()` leases of long work.
/// `ack` tells which happened: it returns false when the lease had lapsed and the item went to
/// another delivery, which then owns the ack.
/// **Order**: first in, first out for new items; a reclaimed item comes before new ones.
/// **Cancellation**: a cancelled `get` may have been delivered an item on the server: it stays
/// pending and comes back after `visibility_timeout`. A cancelled `put` may have added it.
/// **Errors**: the client's (`redis::connect_error`, `redis::timeout_error`, ...); the codec's
/// exception from `put`; `std::invalid_argument` for bad options.
/// **Thread-safety**: the client's loop. The queue must outlive its leases.
template <class T, class Codec = codec<T>>
    requires codec_for<Codec, T> && std::movable<T>
class work_queue {
public:
    /// An item taken by `get`, to be acknowledged once processed. Dropping it unacknowledged
    /// leaves the item to be delivered again after the visibility timeout.
    class lease {
    public:
        lease(lease&& other) noexcept
            : queue_(other.queue_), id_(std::move(other.id_)), value_(std::move(other.value_)),
              deliveries_(other.deliveries_), done_(std::exchange(other.done_, true)) {}
        lease& operator=(lease&& other) noexcept {
            queue_ = other.queue_;
            id_ = std::move(other.id_);
            value_ = std::move(other.value_);
            deliveries_ = other.deliveries_;
            done_ = std::exchange(other.done_, true);
            return *this;
        }
        lease(const lease&) = delete;
        lease& operator=(const lease&) = delete;
        ~lease() = default;

        [[nodiscard]] T& value() & noexcept { return value_; }
        [[nodiscard]] const T& value() const& noexcept { return value_; }
        [[nodiscard]] T& operator*() & noexcept { return value_; }
        [[nodiscard]] T* operator->() noexcept { return &value_; }
        /// The stream entry's id ("1700000000000-0").
        [[nodiscard]] const std::string& id() const noexcept { return id_; }
        /// 1 the first time the item is delivered, then 2, 3, ... each time it is reclaimed.
        [[nodiscard]] long deliveries() const noexcept { return deliveries_; }
        /// True once acknowledged or released (or moved from).
        [[nodiscard]] bool done() const noexcept { return done_; }

        /// Acknowledges the item and removes it from the stream. True when this lease still
        /// held it; false when it had lapsed and another delivery now holds it (or it was
        /// already acknowledged), which then owns the ack.
        task<bool> ack() { return queue_->settle(*this, settle_ack); }
        /// Extends the lease by another `visibility_timeout`, from now (long work calls it
        /// now and then). False when the lease had already lapsed and another took the item.
        task<bool> renew() { return queue_->settle(*this, settle_renew); }
        /// Gives the item back at once, unprocessed: this process's next `get` takes it, or
        /// another's within its `reclaim_interval` (a delivery is counted). False when the
        /// lease had already lapsed.
        task<bool> release() { return queue_->settle(*this, settle_release); }
        /// Runs `work` (a long download, a wait for a rate limit) while renewing the lease
        /// every third of the visibility timeout, and returns what it returns: the item stays
        /// this worker's for as long as the work takes, and comes back to others only if this
        /// process dies (or stalls past the timeout). A renewal that finds the lease lapsed
        /// stops renewing; `ack()` then says false.
        template <class R>
        task<R> renewing(task<R> work) {
            return queue_->renew_during(*this, std::move(work));
        }

    private:
        friend class work_queue;
        lease(work_queue& q, std::string id, T value, long deliveries)
            : queue_(&q), id_(std::move(id)), value_(std::move(value)), deliveries_(deliveries) {}

        work_queue* queue_;
        std::string id_;
        T value_;
        long deliveries_;
        bool done_ = false;
    };

    /// **Errors**: `std::invalid_argument` naming the option for an empty name or group, a
    /// visibility timeout or reclaim interval that is not positive, or max_deliveries < 1.
    work_queue(client& c, std::string name, work_queue_options options = {})
        : client_(c), name_(std::move(name)), dead_(name_ + ":dead"), options_(std::move(options)) {
        auto refuse = [&](const std::string& what) {
            throw std::invalid_argument("corio::redis::work_queue " + name_ + ": " + what);
        };
        if (name_.empty())
            refuse("the stream's name is empty");
        if (options_.group.empty())
            refuse("the group's name is empty");
        if (options_.visibility_timeout.count() <= 0)
            refuse("visibility_timeout must be positive, got " +
                   std::to_string(options_.visibility_timeout.count()) + " ms");
        if (options_.reclaim_interval.count() <= 0)
            refuse("reclaim_interval must be positive, got " +
                   std::to_string(options_.reclaim_interval.count()) + " ms");
        if (options_.max_deliveries < 1)
            refuse("max_deliveries must be at least 1, got " +
                   std::to_string(options_.max_deliveries));
        if (options_.consumer.empty())
            options_.consumer = default_consumer();
    }
    work_queue(const work_queue&) = delete;
    work_queue& operator=(const work_queue&) = delete;

    [[nodiscard]] const std::string& name() const noexcept { return name_; }
    [[nodiscard]] const work_queue_options& options() const noexcept { return options_; }
    /// The dead-letter stream's name: "<name>:dead".
    [[nodiscard]] const std::string& dead_letters() const noexcept { return dead_; }

    /// Appends `item`; while the stream holds `max_length` items, waits for room first.
    /// Returns the entry's id.
    task<std::string> put(T item) {
        const std::string bytes = Codec::encode(item);
        co_await ensure_group();
        if (options_.max_length == 0) {
            const reply id = co_await client_.command("XADD", name_, "*", "v", bytes);
            co_return id.str();
        }
        std::vector<std::string> keys{name_};
        std::vector<std::string> args{std::to_string(options_.max_length), bytes};
        const reply id = co_await put_when_room(std::move(keys), std::move(args));
        co_return id.str();
    }

    /// Appends `item` only if `member` (its identity: a URL) was not yet in `seen`, adding it
    /// there in the same step (one script): a crawler's "seen? else enqueue", with no moment
    /// where a worker that dies has marked a URL seen but not queued it. True when it was new
    /// (and put). Waits for room as `put` does, unless `member` was seen already (nothing to
    /// put). `seen` must be on the queue's server.
    task<bool> put_if_new(set& seen, std::string member, T item) {
        const std::string bytes = Codec::encode(item);
        co_await ensure_group();
        std::vector<std::string> keys{name_, seen.key()};
        std::vector<std::string> args{std::to_string(options_.max_length), bytes,
                                      std::move(member)};
        const reply id = co_await put_when_room(std::move(keys), std::move(args));
        co_return !id.str().empty();
    }
    /// `put_if_new(seen, item, item)`: the item is its own identity.
    task<bool> put_if_new(set& seen, T item) requires std::convertible_to<const T&, std::string> {
        std::string member = item;
        return put_if_new(seen, std::move(member), std::move(item));
    }

    /// Leases the next item: first one whose lease ran out, else a new one; waits while
    /// there is neither.
    task<lease> get() {
        for (;;) {
            std::optional<lease> l = co_await try_get();
            if (l)
                co_return std::move(*l);
            const reply r = co_await wait_for_new();
            if (r.is_nil() || r.size() == 0 || r[0].size() < 2 || r[0][1].size() == 0)
                continue;
            l = co_await to_lease(r[0][1][0], 1);
            if (l)
                co_return std::move(*l);
        }
    }

    /// Leases an item if one is ready now, std::nullopt otherwise.
    task<std::optional<lease>> try_get() {
        co_await ensure_group();
        for (;;) {
            // Looking for a lapsed lease walks the group's pending list on the server: done at
            // most once per reclaim_interval while none is found.
            const auto now = std::chrono::steady_clock::now();
            const bool look = now >= next_reclaim_;
            std::vector<std::string> keys{name_, dead_};
            std::vector<std::string> args{options_.group, options_.consumer,
                                          std::to_string(options_.visibility_timeout.count()),
                                          std::to_string(options_.max_deliveries),
                                          look ? "1" : "0"};
            const reply r = co_await run(take_script(), std::move(keys), std::move(args));
            const bool reclaimed = r.size() != 0 && r[1].as_integer() > 1;
            if (look && !reclaimed)
                next_reclaim_ = now + options_.reclaim_interval;
            if (r.size() == 0)
                co_return std::nullopt;
            std::optional<lease> l = co_await to_lease(r[0], r[1].as_integer());
            if (l)
                co_return l;
        }
    }

    /// `l.ack()`.
    task<bool> ack(lease& l) { return l.ack(); }

    /// Items in the stream: waiting, and leased but not yet acknowledged (XLEN).
    task<std::size_t> size() { return length_of(name_); }
    /// Items leased and not yet acknowledged, by any worker (XPENDING).
    task<std::size_t> pending() {
        co_await ensure_group();
        const reply r = co_await client_.command("XPENDING", name_, options_.group);
        co_return static_cast<std::size_t>(r[0].as_integer());
    }
    /// Items in the dead-letter stream.
    task<std::size_t> dead_count() { return length_of(dead_); }

    /// Removes from the group the consumers that hold no item and were idle for `idle` or
    /// more (workers gone: each process is a consumer of its own, and the group keeps every
    /// name it has seen). A consumer that holds items is kept, whatever its age: its items come
    /// back through their visibility timeout. Returns how many were removed.
    task<std::size_t> prune_consumers(std::chrono::milliseconds idle) {
        co_await ensure_group();
        std::vector<std::string> keys{name_};
        std::vector<std::string> args{options_.group, std::to_string(idle.count())};
        const reply r = co_await run(prune_script(), std::move(keys), std::move(args));
        co_return static_cast<std::size_t>(r.as_integer());
    }

private:
    enum settle_kind { settle_ack, settle_renew, settle_release };

    // KEYS: the stream[, a set]. ARGV: the bound (0: none), the item's bytes[, its member in the
    // set]. The entry's id; "" when the member was in the set already; nil when full.
    static const script& put_script() {
        static const script s{R"lua(
if KEYS[2] and redis.call('SISMEMBER', KEYS[2], ARGV[3]) == 1 then return '' end
if ARGV[1] ~= '0' and redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[1]) then return false end
if KEYS[2] then redis.call('SADD', KEYS[2], ARGV[3]) end
return redis.call('XADD', KEYS[1], '*', 'v', ARGV[2])
)lua"};
        return s;
    }

    /// Runs `put_script` until the stream has room for it. Room is made by acks anywhere: this
    /// process's wake the wait at once, others' are seen by looking again, after 1 ms, 2 ms,
    /// ... up to 100 ms.
    task<reply> put_when_room(std::vector<std::string> keys, std::vector<std::string> args) {
        std::chrono::milliseconds pause{1};
        for (;;) {
            reply r = co_await run(put_script(), keys, args);
            if (!r.is_nil())
                co_return r;
            room_.clear();
            try {
                co_await corio::timeout(pause, wait_for_room());
            } catch (const corio::timeout_error&) {
                pause = std::min(pause * 2, std::chrono::milliseconds{100});
            }
        }
    }

    // The Lua both scripts below start with: moves entry `id` of `stream` (its fields, or none
    // when it is gone) to the dead letters with why, then acknowledges and deletes it.
    static constexpr const char* bury_lua = R"lua(
local function bury(stream, dead, group, id, fields, deliveries, reason)
  table.insert(fields, 'id')
  table.insert(fields, id)
  table.insert(fields, 'deliveries')
  table.insert(fields, deliveries)
  table.insert(fields, 'reason')
  table.insert(fields, reason)
  redis.call('XADD', dead, '*', unpack(fields))
  redis.call('XACK', stream, group, id)
  redis.call('XDEL', stream, id)
end
)lua";

    // KEYS: the stream, the dead-letter stream. ARGV: group, consumer, visibility timeout (ms),
    // max deliveries, whether to look for lapsed leases ("1"). Claims the oldest entry whose
    // lease ran out, moving those delivered too often to the dead letters on the way; else
    // reads a new one. {entry, deliveries}, or {}.
    static const script& take_script() {
        static const script s{std::string(bury_lua) + R"lua(
local stream, dead, group, consumer = KEYS[1], KEYS[2], ARGV[1], ARGV[2]
while ARGV[5] == '1' do
  local stale = redis.call('XPENDING', stream, group, 'IDLE', ARGV[3], '-', '+', 1)[1]
  if not stale then break end
  local id = stale[1]
  local entry = redis.call('XCLAIM', stream, group, consumer, ARGV[3], id)[1]
  local deliveries = stale[4] + 1
  if not entry then
    redis.call('XACK', stream, group, id) -- deleted from the stream by hand
  elseif deliveries <= tonumber(ARGV[4]) then
    return {entry, deliveries}
  else
    bury(stream, dead, group, id, entry[2], deliveries,
         'delivered ' .. deliveries .. ' times without an ack')
  end
end
local fresh = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', 1, 'STREAMS', stream, '>')
if fresh then return {fresh[1][2][1], 1} end
return {}
)lua"};
        return s;
    }

    // KEYS: the stream, the dead-letter stream. ARGV: group, consumer, id, deliveries, what to
    // do (ack, renew, release, bury), visibility timeout (ms), the reason (bury). 1 when the
    // lease still held the entry (and it was done), 0 otherwise.
    static const script& settle_script() {
        static const script s{std::string(bury_lua) + R"lua(
local stream, dead, group, consumer, id = KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3]
local p = redis.call('XPENDING', stream, group, id, id, 1)[1]
if not p or p[2] ~= consumer or p[4] ~= tonumber(ARGV[4]) then return 0 end
local what = ARGV[5]
if what == 'renew' then
  redis.call('XCLAIM', stream, group, consumer, 0, id, 'JUSTID')
elseif what == 'release' then
  redis.call('XCLAIM', stream, group, consumer, 0, id, 'IDLE', ARGV[6], 'JUSTID')
elseif what == 'bury' then
  local entry = redis.call('XRANGE', stream, id, id)[1]
  bury(stream, dead, group, id, entry and entry[2] or {}, p[4], ARGV[7])
else
  redis.call('XACK', stream, group, id)
  redis.call('XDEL', stream, id)
end
return 1
)lua"};
        return s;
    }

    // KEYS: the stream. ARGV: group, idle (ms). Deletes the consumers idle that long that hold
    // nothing (checked and deleted in one step: none can take an item in between).
    static const script& prune_script() {
        static const script s{R"lua(
local gone = 0
for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local f = {}
  for i = 1, #c, 2 do f[c[i]] = c[i + 1] end
  if f['pending'] == 0 and f['idle'] >= tonumber(ARGV[2]) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], f['name'])
    gone = gone + 1
  end
end
return gone
)lua"};
        return s;
    }

    static std::string default_consumer() {
        std::array<char, 256> host{};
        (void)::gethostname(host.data(), host.size() - 1);
        std::random_device seed;
        return std::string(host.data()) + "-" + std::to_string(::getpid()) + "-" +
               std::to_string(seed() % 1000000);
    }

    /// Creates the group (and the stream) once; a group that exists already is fine.
    task<> ensure_group() {
        if (group_ready_)
            co_return;
        try {
            (void)co_await client_.command("XGROUP", "CREATE", name_, options_.group, "0",
                                           "MKSTREAM");
        } catch (const error& e) {
            if (e.kind() != error_kind::server ||
                std::string_view(e.what()).find("BUSYGROUP") == std::string_view::npos)
                throw;
        }
        group_ready_ = true;
    }

    /// Runs a script; when the stream or its group vanished (deleted by hand: NOGROUP),
    /// creates them again and runs it once more.
    task<reply> run(const script& lua, std::vector<std::string> keys,
                    std::vector<std::string> args) {
        bool vanished = false;
        try {
            co_return co_await client_.eval(lua, keys, args);
        } catch (const error& e) {
            if (!is_gone(e))
                throw;
            vanished = true;
        }
        group_ready_ = !vanished;
        co_await ensure_group();
        co_return co_await client_.eval(lua, std::move(keys), std::move(args));
    }

    /// Waits up to `reclaim_interval` on the server for a new item (on a connection of its
    /// own): XREADGROUP's reply, nil when none came, or when the stream or its group vanished
    /// (the next `try_get` creates them again).
    task<reply> wait_for_new() {
        bool vanished = false;
        try {
            co_return co_await client_.command(
                "XREADGROUP", "GROUP", options_.group, options_.consumer, "COUNT", 1, "BLOCK",
                options_.reclaim_interval.count(), "STREAMS", name_, ">");
        } catch (const error& e) {
            if (!is_gone(e))
                throw;
            vanished = true;
        }
        group_ready_ = !vanished;
        co_return reply::nil();
    }

    /// True for the errors of a stream or group deleted by hand: NOGROUP, and the UNBLOCKED
    /// that a waiting XREADGROUP gets when its stream goes (Redis 7).
    static bool is_gone(const error& e) {
        const std::string_view what = e.what();
        return e.kind() == error_kind::server && (what.find("NOGROUP") != std::string_view::npos ||
                                                  what.find("UNBLOCKED") != std::string_view::npos);
    }

    /// The lease of `entry` ({id, {field, value, ...}}), or std::nullopt when its bytes are
    /// not a `T` (it then goes to the dead letters, with the codec's reason).
    task<std::optional<lease>> to_lease(const reply& entry, long long deliveries) {
        std::string id = entry[0].str();
        const reply& fields = entry[1];
        std::string_view bytes;
        bool found = false;
        for (std::size_t i = 0; i + 1 < fields.size(); i += 2)
            if (fields[i].str() == "v") {
                bytes = fields[i + 1].str();
                found = true;
            }
        std::string refused = "the entry has no field v";
        if (found) {
            std::optional<T> value;
            try {
                value.emplace(Codec::decode(bytes));
            } catch (const std::exception& e) {
                refused = std::string("the codec refused it: ") + e.what();
            }
            if (value)
                co_return lease{*this, std::move(id), std::move(*value),
                                static_cast<long>(deliveries)};
        }
        std::vector<std::string> keys{name_, dead_};
        std::vector<std::string> args{
            options_.group, options_.consumer, id, std::to_string(deliveries), "bury", "0",
            refused};
        (void)co_await run(settle_script(), std::move(keys), std::move(args));
        co_return std::nullopt;
    }

    task<bool> settle(lease& l, settle_kind kind) {
        if (l.done_)
            co_return false;
        static constexpr std::array<const char*, 3> verbs{"ack", "renew", "release"};
        std::vector<std::string> keys{name_, dead_};
        std::vector<std::string> args{options_.group,
                                      options_.consumer,
                                      l.id_,
                                      std::to_string(l.deliveries_),
                                      verbs[kind],
                                      std::to_string(options_.visibility_timeout.count()),
                                      ""};
        const reply r = co_await run(settle_script(), std::move(keys), std::move(args));
        const bool held = r.as_integer() == 1;
        if (held && kind == settle_release)
            next_reclaim_ = {}; // this process's next get takes it back at once
        if (kind != settle_renew || !held)
            l.done_ = true;
        if (held && kind != settle_renew)
            room_.set();
        co_return held;
    }

    task<> wait_for_room() { co_await room_.wait(); }

    template <class R>
    task<R> renew_during(lease& l, task<R> work) {
        event finished;
        task_group both; // a failure of either cancels the other; both end before this frame
        both.spawn(keep_renewed(l, finished));
        if constexpr (std::is_void_v<R>) {
            both.spawn(run_then_set(std::move(work), finished));
            co_await both.join();
        } else {
            std::optional<R> value;
            both.spawn(run_then_set(std::move(work), value, finished));
            co_await both.join();
            co_return std::move(*value);
        }
    }

    task<> keep_renewed(lease& l, event& finished) {
        for (;;) {
            bool over = false;
            try {
                co_await corio::timeout(options_.visibility_timeout / 3, wait_on(finished));
                over = true;
            } catch (const corio::timeout_error&) {
            }
            if (over)
                co_return;
            const bool held = co_await settle(l, settle_renew);
            if (!held)
                co_return;
        }
    }

    template <class R>
    static task<> run_then_set(task<R> work, std::optional<R>& out, event& finished) {
        out.emplace(co_await std::move(work));
        finished.set();
    }
    static task<> run_then_set(task<> work, event& finished) {
        co_await std::move(work);
        finished.set();
    }
    static task<> wait_on(event& e) { co_await e.wait(); }

    task<std::size_t> length_of(std::string key) {
        const reply r = co_await client_.command("XLEN", key);
        co_return static_cast<std::size_t>(r.as_integer());
    }

    client& client_;
    std::string name_;
    std::string dead_;
    work_queue_options options_;
    bool group_ready_ = false;
    /// When `try_get` next looks for lapsed leases (now, after one was found or released).
    std::chrono::steady_clock::time_point next_reclaim_{};
    event room_; ///< set by this process's acks: a waiting `put` looks again
};

} // namespace corio::redis

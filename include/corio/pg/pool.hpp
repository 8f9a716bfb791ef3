// SPDX-License-Identifier: MIT
#pragma once

#include <corio/detail/assert.hpp>
#include <corio/event.hpp>
#include <corio/io/loop_affinity.hpp>
#include <corio/pg/connection.hpp>
#include <corio/pg/error.hpp>
#include <corio/pg/result.hpp>
#include <corio/semaphore.hpp>
#include <corio/task.hpp>
#include <corio/timeout.hpp>

#include <libpq-fe.h>
#include <poll.h>

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

namespace corio::pg {

/// A pool's settings (asyncpg's `create_pool` arguments).
struct pool_options {
    /// libpq's connection string or URI, for every connection.
    std::string conninfo;
    /// Idle connections kept open however long they idle (`open()` opens them at once).
    std::size_t min_size = 1;
    /// Connections open at most; `acquire` waits while all are leased.
    std::size_t max_size = 10;
    /// How long `acquire` waits for a connection; 0 waits as long as it takes.
    std::chrono::milliseconds acquire_timeout{5000};
    /// An idle connection beyond `min_size` is closed once it idled this long (0: never).
    std::chrono::milliseconds max_idle{60'000};
    /// A connection is closed, rather than reused, once it is this old (0: never).
    std::chrono::milliseconds max_lifetime{30 * 60'000};
};

class pool;

/// A connection leased from a pool (asyncpg's `async with pool.acquire() as conn`): use it as
/// a `connection` through `->` and `*`. It goes back to the pool when the lease is destroyed
/// or `release()`d, once: a second release does nothing. A connection that broke is closed
/// instead, and one left inside a transaction is rolled back first.
class lease {
public:
    lease(lease&& other) noexcept
        : pool_(std::exchange(other.pool_, nullptr)), conn_(std::move(other.conn_)) {}
    lease& operator=(lease&&) = delete;
    lease(const lease&) = delete;
    lease& operator=(const lease&) = delete;
    ~lease() { release(); }

    [[nodiscard]] connection& operator*() const noexcept { return *conn_; }
    [[nodiscard]] connection* operator->() const noexcept { return conn_.get(); }
    /// True until released.
    [[nodiscard]] explicit operator bool() const noexcept { return pool_ != nullptr; }

    /// Gives the connection back now (the destructor does otherwise).
    void release() noexcept;

private:
    friend class pool;
    lease(pool& p, std::unique_ptr<connection> c) noexcept : pool_(&p), conn_(std::move(c)) {}
    pool* pool_;
    std::unique_ptr<connection> conn_;
};

/// A pool of connections to one server (asyncpg's `Pool`): `acquire()` leases one, and
/// `query` / `execute` / `query_value` lease one for a single statement. Connections are
/// opened on demand up to `max_size`, reused most-recently-used first, checked before they
/// are handed out (one that the server closed meanwhile, after a restart say, is replaced by
/// a new one), and closed when broken, too old, or idle too long.
///
/// **Resumption**: waiters are served first come, first served (the toolkit's semaphore); a
/// returned connection goes to the longest waiter.
/// **Cancellation**: a cancelled `acquire` leaves the queue with nothing leased; a cancelled
/// statement is cancelled on the server and its connection comes back usable (see `session`).
/// **Errors**: `pg::timeout_error` when `acquire_timeout` passes (it names the limit and the
/// pool's size); `connection_error` / `authentication_error` when a new connection cannot be
/// made; `pg::error` of kind `usage` after `close()`; `std::invalid_argument` for options that
/// make no sense. Statements: see `session`.
/// **Thread-safety**: one loop, the first that uses it (from another, a `std::logic_error`).
/// The pool must outlive its leases.
class pool {
public:
    /// **Errors**: `std::invalid_argument` for max_size 0 or min_size > max_size.
    explicit pool(pool_options options)
        : options_(std::move(options)), permits_(checked(options_)) {}
    pool(const pool&) = delete;
    pool& operator=(const pool&) = delete;
    ~pool() = default;

    /// Opens connections up to `min_size` now (asyncpg's `create_pool` does), so that the
    /// first statements do not wait for them.
    task<> open() {
        affinity_.check("corio::pg::pool::open");
        while (open_ < options_.min_size) {
            ++open_;
            std::unique_ptr<connection> c;
            try {
                c = std::make_unique<connection>(co_await connection::connect(options_.conninfo));
            } catch (...) {
                --open_;
                throw;
            }
            c->state_->idle_since = std::chrono::steady_clock::now();
            idle_.push_back(std::move(c));
        }
    }

    /// Leases a connection, waiting (up to `acquire_timeout`) while all are in use.
    task<lease> acquire() {
        static constexpr const char* who = "corio::pg::pool::acquire";
        affinity_.check(who);
        refuse_if_closed(who);
        co_await wait_for_permit();
        permit_guard permit{*this};
        refuse_if_closed(who);
        std::unique_ptr<connection> c = take_idle();
        if (!c) {
            ++open_;
            try {
                c = std::make_unique<connection>(co_await connection::connect(options_.conninfo));
            } catch (...) {
                --open_;
                throw;
            }
        }
        permit.keep();
        ++leased_;
        co_return lease{*this, std::move(c)};
    }

    /// Runs one statement on a leased connection (asyncpg's `pool.fetch`).
    template <bindable... Args>
    task<result> query(std::string_view sql, const Args&... args) {
        return run_leased("corio::pg::pool::query", std::string(sql),
                          detail::encoded_params::of(args...));
    }
    /// Runs one statement and returns the rows it affected (asyncpg's `pool.execute`).
    template <bindable... Args>
    task<std::uint64_t> execute(std::string_view sql, const Args&... args) {
        return detail::rows_affected(run_leased("corio::pg::pool::execute", std::string(sql),
                                                detail::encoded_params::of(args...)));
    }
    /// Runs one statement and returns the first column of its first row (asyncpg's
    /// `pool.fetchval`). **Errors**: kind `usage` when it returned no row.
    template <decodable T, bindable... Args>
    task<T> query_value(std::string_view sql, const Args&... args) {
        static constexpr const char* who = "corio::pg::pool::query_value";
        return detail::first_value<T>(
            run_leased(who, std::string(sql), detail::encoded_params::of(args...)), who,
            std::string(sql));
    }

    /// Stops leasing (later `acquire`s throw), waits until every lease is back, and closes
    /// every connection.
    task<> close() {
        affinity_.check("corio::pg::pool::close");
        closed_ = true;
        while (leased_ > 0) {
            all_back_.clear();
            co_await all_back_.wait();
        }
        open_ -= idle_.size();
        idle_.clear();
    }

    /// Connections open now (leased and idle).
    [[nodiscard]] std::size_t size() const noexcept { return open_; }
    /// Connections leased now.
    [[nodiscard]] std::size_t leased() const noexcept { return leased_; }
    /// Connections idle in the pool now.
    [[nodiscard]] std::size_t idle() const noexcept { return idle_.size(); }
    [[nodiscard]] const pool_options& options() const noexcept { return options_; }

private:
    friend class lease;
    using clock = std::chrono::steady_clock;

    static std::ptrdiff_t checked(const pool_options& o) {
        if (o.max_size == 0 || o.min_size > o.max_size)
            throw std::invalid_argument(
                "corio::pg::pool: need 1 <= max_size and min_size <= max_size, got min_size " +
                std::to_string(o.min_size) + ", max_size " + std::to_string(o.max_size));
        return static_cast<std::ptrdiff_t>(o.max_size);
    }

    void refuse_if_closed(const char* who) const {
        if (closed_)
            throw error(error_kind::usage, std::string(who) + ": the pool is closed");
    }

    /// Gives the permit back unless `keep()` (the lease took it over).
    struct permit_guard {
        pool& p;
        bool kept = false;
        void keep() noexcept { kept = true; }
        ~permit_guard() {
            if (!kept)
                p.return_permit();
        }
    };

    task<> wait_for_permit() {
        if (permits_.try_acquire()) // free at once: no timer to start
            co_return;
        if (options_.acquire_timeout.count() <= 0) {
            co_await permits_.acquire();
            co_return;
        }
        bool late = false;
        try {
            co_await corio::timeout(options_.acquire_timeout, take_permit());
        } catch (const corio::timeout_error&) {
            late = true;
        }
        if (late)
            throw timeout_error(options_.acquire_timeout,
                                "corio::pg::pool::acquire: no connection free after " +
                                    std::to_string(options_.acquire_timeout.count()) + " ms (all " +
                                    std::to_string(options_.max_size) + " of max_size leased)");
    }

    task<> take_permit() { co_await permits_.acquire(); }

    /// The most recently returned idle connection that is still good; closes the others it
    /// meets (broken, closed by the server, too old).
    std::unique_ptr<connection> take_idle() {
        expire_idle();
        while (!idle_.empty()) {
            std::unique_ptr<connection> c = std::move(idle_.back());
            idle_.pop_back();
            if (healthy(*c))
                return c;
            --open_; // closed here, replaced by the caller
        }
        return nullptr;
    }

    /// A connection is good when libpq thinks so, it is not too old, and the server has not
    /// closed it meanwhile (the socket is readable only if the server said something: read
    /// it, and see whether the connection survived).
    bool healthy(connection& c) const {
        detail::connection_state& s = *c.state_;
        if (s.broken || PQstatus(s.conn) != CONNECTION_OK || too_old(s))
            return false;
        // Read what is there until the socket is drained: a server that closed the connection
        // (a restart, pg_terminate_backend) sent an error, then the end, which libpq only sees
        // on the read after the error.
        for (int reads = 0; reads < 16; ++reads) {
            pollfd p{PQsocket(s.conn), POLLIN, 0};
            if (::poll(&p, 1, 0) <= 0)
                break;
            if (PQconsumeInput(s.conn) == 0 || PQstatus(s.conn) != CONNECTION_OK)
                return false;
        }
        return true;
    }

    [[nodiscard]] bool too_old(const detail::connection_state& s) const {
        return options_.max_lifetime.count() > 0 &&
               clock::now() - s.opened >= options_.max_lifetime;
    }

    /// Closes idle connections beyond `min_size` that idled `max_idle` or longer (the oldest
    /// returns sit at the front).
    void expire_idle() {
        if (options_.max_idle.count() <= 0)
            return;
        const auto now = clock::now();
        std::size_t expired = 0;
        while (expired < idle_.size() && open_ - expired > options_.min_size &&
               now - idle_[expired]->state_->idle_since >= options_.max_idle)
            ++expired;
        idle_.erase(idle_.begin(), idle_.begin() + static_cast<std::ptrdiff_t>(expired));
        open_ -= expired;
    }

    /// A lease ends: the connection goes back, or is closed.
    void give_back(std::unique_ptr<connection> c) noexcept {
        --leased_;
        detail::connection_state& s = *c->state_;
        const bool keep =
            !closed_ && !s.broken && !s.busy && PQstatus(s.conn) == CONNECTION_OK && !too_old(s);
        if (keep) {
            const PGTransactionStatusType tx = PQtransactionStatus(s.conn);
            if (s.pending == 0 && (tx == PQTRANS_INTRANS || tx == PQTRANS_INERROR))
                s.rollback_soon(); // left inside a transaction begun by hand
        }
        if (keep && !s.broken) {
            s.idle_since = clock::now();
            try {
                idle_.push_back(std::move(c));
            } catch (...) {
                --open_; // no room to keep it: it closes
            }
        } else {
            --open_;
        }
        return_permit();
        if (leased_ == 0 && closed_)
            wake_closer();
    }

    // Neither can throw here (a permit is given back only after it was taken, on the pool's
    // loop), but they are not noexcept in general.
    void return_permit() noexcept {
        try {
            permits_.release();
        } catch (const std::exception& e) {
            CORIO_ASSERT(false, e.what());
        }
    }
    void wake_closer() noexcept {
        try {
            all_back_.set();
        } catch (const std::exception& e) {
            CORIO_ASSERT(false, e.what());
        }
    }

    task<result> run_leased(const char* who, std::string sql, detail::encoded_params params) {
        lease l = co_await acquire();
        co_return co_await detail::run_statement(*l->state_, who, std::move(sql), {},
                                                 std::move(params));
    }

    pool_options options_;
    corio::detail::loop_affinity affinity_;
    semaphore permits_;
    std::vector<std::unique_ptr<connection>> idle_;
    std::size_t open_ = 0;
    std::size_t leased_ = 0;
    bool closed_ = false;
    event all_back_;
};

inline void lease::release() noexcept {
    if (pool_ != nullptr)
        std::exchange(pool_, nullptr)->give_back(std::move(conn_));
}

/// Options of `paginate`.
struct paginate_options {
    /// The column whose value in a page's last row becomes $1 of the next page's query.
    std::string key_column = "id";
    /// $1 of the first page: a value below every key. The default, bigint's lowest value,
    /// also works for integer and smallint keys (the first page retries with their lowest);
    /// set it for other key types ("" for text).
    std::string start = "-9223372036854775808";
};

/// Pages of a keyset-paginated query (`paginate`): `next()` returns the next page, or
/// std::nullopt after the last one.
class pages {
public:
    /// The next page: at most `page_size` rows; std::nullopt once a page came back short.
    /// **Errors**: those of `pool::query`; kind `usage` when a page lacks the key column or
    /// its key is NULL.
    task<std::optional<result>> next() {
        if (done_)
            co_return std::nullopt;
        result page = co_await first_or_next_page();
        if (page.size() < page_size_)
            done_ = true;
        if (page.empty())
            co_return std::nullopt;
        const row last = page[page.size() - 1];
        const int key = last.column_index(options_.key_column);
        if (last.is_null(key))
            throw error(error_kind::usage, "corio::pg::paginate: the key column \"" +
                                               options_.key_column +
                                               "\" is NULL in a page's last row");
        last_key_ = std::string(last.text(key));
        co_return page;
    }

private:
    friend pages paginate(pool&, std::string, std::size_t, paginate_options);

    /// The default start is bigint's lowest value; a smaller integer key refuses it (22003,
    /// out of range), and then the first page starts from integer's, then smallint's lowest.
    task<result> first_or_next_page() {
        if (!first_ || options_.start != default_start)
            co_return co_await pool_->query(sql_, last_key_, page_size_);
        first_ = false;
        for (const char* start : {"-9223372036854775808", "-2147483648", "-32768"}) {
            try {
                co_return co_await pool_->query(sql_, std::string_view(start), page_size_);
            } catch (const error& e) {
                if (e.sqlstate() != "22003")
                    throw;
            } // the key's type is narrower: try the next
        }
        throw error(error_kind::usage, "corio::pg::paginate: no default start fits the key "
                                       "column's type; set paginate_options::start");
    }
    static constexpr const char* default_start = "-9223372036854775808";
    pages(pool& p, std::string sql, std::size_t page_size, paginate_options o)
        : pool_(&p), sql_(std::move(sql)), page_size_(page_size), options_(std::move(o)),
          last_key_(options_.start) {}

    pool* pool_;
    std::string sql_;
    std::size_t page_size_;
    paginate_options options_;
    std::string last_key_;
    bool first_ = true;
    bool done_ = false;
};

/// Keyset pagination (no OFFSET): runs `sql`, which takes the last key seen as $1 and the
/// page size as $2 ("SELECT id, name FROM users WHERE id > $1 ORDER BY id LIMIT $2"), page
/// after page through `p`, each page on whichever connection the pool leases. Each row is
/// visited exactly once provided the key is unique and the query orders by it. The key
/// travels as text, so any type the server can compare works.
/// **Errors**: `std::invalid_argument` for a page size of 0.
inline pages paginate(pool& p, std::string sql, std::size_t page_size,
                      paginate_options options = {}) {
    if (page_size == 0)
        throw std::invalid_argument("corio::pg::paginate: the page size must be at least 1");
    return pages{p, std::move(sql), page_size, std::move(options)};
}

} // namespace corio::pg

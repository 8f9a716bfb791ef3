// SPDX-License-Identifier: MIT
#pragma once

#include <corio/cancelled_error.hpp>
#include <corio/http/address_filter.hpp>
#include <corio/http/client_errors.hpp>
#include <corio/http/detail/inflater.hpp>
#include <corio/http/headers.hpp>
#include <corio/http/message.hpp>
#include <corio/http/parser.hpp>
#include <corio/http/url.hpp>
#include <corio/io/event_loop.hpp>
#include <corio/io/loop_affinity.hpp>
#include <corio/net/address.hpp>
#include <corio/net/detail/input_buffer.hpp>
#include <corio/net/resolve_error.hpp>
#include <corio/net/resolver.hpp>
#include <corio/net/tcp_stream.hpp>
#include <corio/rate_limiter.hpp>
#include <corio/semaphore.hpp>
#include <corio/task.hpp>
#include <corio/timeout.hpp>
#if defined(CORIO_HAVE_TLS) // corio::tls is linked: https:// too
#include <corio/tls/context.hpp>
#include <corio/tls/error.hpp>
#include <corio/tls/stream.hpp>
#endif
#include <corio/version.hpp>

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace corio::http {

/// At most `requests` per `period` (a sliding window).
struct rate_limit {
    std::ptrdiff_t requests = 0;
    std::chrono::milliseconds period{};
};

/// How a `client` behaves. Designated initializers: `client_options{.max_connections = 100}`.
struct client_options {
    /// Connections open at once, over all hosts (aiohttp's `TCPConnector(limit=100)`). Requests
    /// beyond it wait, first come first served.
    std::size_t max_connections = 100;
    /// Connections per origin at once; 0: no per-host cap.
    std::size_t max_connections_per_host = 0;
    /// Resolving, connecting and the TLS handshake.
    std::chrono::milliseconds connect_timeout = std::chrono::seconds(10);
    /// Each wait for data from the server.
    std::chrono::milliseconds read_timeout = std::chrono::seconds(30);
    /// The whole request, redirects included; 0: none.
    std::chrono::milliseconds total_timeout{};
    bool follow_redirects = true;
    int max_redirects = 10;
    /// Asks for and decodes gzip/deflate bodies (when corio was built with zlib).
    bool decompress = true;
    /// Per origin, a sliding-window rate limit (what a polite scraper needs).
    std::optional<rate_limit> per_host_rate = {};
    /// The TLS settings for https:// URLs. Empty (the default): `tls::context::client()`, which
    /// verifies certificates and host names against the system trust store, made at the first
    /// https:// connection (so plain-HTTP clients never load the store).
#if defined(CORIO_HAVE_TLS)
    std::optional<tls::context> tls = {};
#endif
    /// A response's status line and header fields together.
    std::size_t max_header_bytes = std::size_t{64} * 1024;
    /// A response's header fields (some CDNs send more than 100; a browser takes them).
    std::size_t max_header_count = 256;
    /// A response body read into memory (`stream` has no limit).
    std::size_t max_body_bytes = std::size_t{64} * 1024 * 1024;
    /// How long an unused keep-alive connection stays in the pool.
    std::chrono::milliseconds idle_timeout = std::chrono::seconds(30);
    /// The User-Agent field ("" sends none).
    std::string user_agent = "corio/" CORIO_VERSION_STRING;
    /// Called with each redirect's next URL before it is followed: false stops there, and the
    /// 3xx response is returned as it is (with its `url()`). Empty: every redirect is followed.
    /// A proxy or a crawler checks its allow-list here, on every hop, not only the first URL.
    std::function<bool(const url&)> redirect_filter = {};
    /// Called with each address a host name resolved to (or the numeric host's address), just
    /// before connecting to it: nothing allows it, a reason refuses it. The address is the one
    /// connected to, so a name that resolves (or rebinds) to a refused address cannot get
    /// around the filter. When every address is refused, the request fails with a
    /// `connect_error` naming each address and its reason, and nothing is connected.
    /// `http::deny_private_addresses` is a ready one.
    std::function<std::optional<std::string>(const net::address&)> connect_filter = {};
};

namespace detail {

#if defined(CORIO_HAVE_TLS)
inline constexpr bool have_tls = true;
/// What a TLS connection throws.
using tls_failure = tls::error;
#else
inline constexpr bool have_tls = false;
/// (Never thrown: a build without corio::tls makes no TLS connection.)
struct tls_failure : std::runtime_error {
    using std::runtime_error::runtime_error;
    [[nodiscard]] bool truncated() const noexcept { return false; }
};
#endif

/// A connection of the client's pool: plain TCP or TLS.
struct client_connection {
    std::optional<net::tcp_stream> tcp;
#if defined(CORIO_HAVE_TLS)
    std::optional<tls::stream> tls;
#endif
    std::string origin;
    event_loop::time_point idle_since{};

    task<std::size_t> read_some(std::span<std::byte> buf) {
#if defined(CORIO_HAVE_TLS)
        if (tls)
            return tls->read_some(buf);
#endif
        return tcp->read_some(buf);
    }
    task<> write_all(std::string_view data) {
#if defined(CORIO_HAVE_TLS)
        if (tls)
            return tls->write_all(data);
#endif
        return tcp->write_all(data);
    }
};

/// Thrown inside the client when a reused connection turned out to be closed before any byte
/// of the response arrived: the request may be retried on a fresh one.
struct stale_connection {
    std::string reason;
};

} // namespace detail

class client;

/// A response whose body is read chunk by chunk (`client::stream`): for bodies larger than
/// memory. The connection goes back to the pool when the body has been read to its end.
class response_stream {
public:
    response_stream(response_stream&&) noexcept = default;
    response_stream& operator=(response_stream&&) noexcept = default;
    ~response_stream() = default;

    [[nodiscard]] int status() const noexcept { return head_.status(); }
    [[nodiscard]] std::optional<std::string_view> header(std::string_view name) const noexcept {
        return head_.header(name);
    }
    [[nodiscard]] const http::headers& headers() const noexcept { return head_.headers(); }
    [[nodiscard]] const std::string& url() const noexcept { return head_.url(); }

    /// The next piece of the body (decoded when compressed), or nothing at its end.
    /// **Errors**: `timeout_error` (read_timeout), `body_truncated` (the connection closed or
    /// failed before the body ended), `protocol_error` (a malformed body), `tls_error`.
    task<std::optional<std::string>> next_chunk();

private:
    friend class client;
    struct state;
    response_stream(response head, std::unique_ptr<state> s);

    response head_;
    std::unique_ptr<state> s_;
};

/// An HTTP/1.1 client with a keep-alive connection pool (aiohttp's ClientSession, httpx's
/// AsyncClient): one per program, shared by every request.
///
/// Connections are pooled per origin (scheme, host, port) and reused only after a response
/// was read to its end; idle ones expire after `idle_timeout`. A reused connection the server
/// had already closed is retried once on a fresh one, for idempotent methods only. Waiting for
/// a connection under the limits is first come, first served, and cancellable. Redirects
/// follow RFC 9110 §15.4 (303, and 301/302 after POST, become a GET without body; 307/308 keep
/// both; Authorization and Cookie are not sent to another origin). Bodies may be framed by
/// Content-Length, chunked coding or the end of the connection; HEAD, 1xx, 204 and 304 have
/// none.
///
/// **Errors**: the `http::error` family, each naming the method and the URL; `kind()` says
/// which (see `error_kind`). Redirects pass `redirect_filter`, and every address passes
/// `connect_filter` before it is connected to.
/// **Cancellation**: every request is cancellable and composes with `corio::timeout`; a
/// connection whose request was cancelled mid-way is closed, never reused.
/// **Lifetime**: the client must outlive its requests. **Thread-safety**: one loop: the
/// first that uses it (another loop's use is a `std::logic_error`; give each loop its own).
class client {
public:
    explicit client(client_options options = {})
        : options_(std::move(options)),
          total_(static_cast<std::ptrdiff_t>(std::max<std::size_t>(options_.max_connections, 1))) {
        spare_buffers_.reserve(max_spare_buffers);
    }
    client(const client&) = delete;
    client& operator=(const client&) = delete;

    // No aggregate temporaries inside co_await expressions here: g++ 11/12 mis-manage them
    // (GCC PR 107288). Callers on those compilers build a request in a named variable too.
    [[nodiscard]] task<response> get(std::string url, http::headers headers = {}) {
        return request(make("GET", std::move(url), std::move(headers), {}));
    }
    [[nodiscard]] task<response> post(std::string url, std::string body,
                                      http::headers headers = {}) {
        return request(make("POST", std::move(url), std::move(headers), std::move(body)));
    }
    [[nodiscard]] task<response> put(std::string url, std::string body,
                                     http::headers headers = {}) {
        return request(make("PUT", std::move(url), std::move(headers), std::move(body)));
    }
    [[nodiscard]] task<response> del(std::string url, http::headers headers = {}) {
        return request(make("DELETE", std::move(url), std::move(headers), {}));
    }
    [[nodiscard]] task<response> head(std::string url, http::headers headers = {}) {
        return request(make("HEAD", std::move(url), std::move(headers), {}));
    }

    /// Sends `req` (following redirects) and reads the whole response.
    /// With g++ 11/12, build `req` as a named variable and move it in: a braced
    /// `http::request{...}` written inside the `co_await` expression is miscompiled (GCC PR
    /// 107288); clang and newer GCC are fine.
    [[nodiscard]] task<response> request(http::request req) {
        affinity_.check("corio::http::client");
        return request_with_timeout(std::move(req));
    }

    /// Sends a GET and returns once the response head has arrived; the body is read with
    /// `next_chunk()`.
    [[nodiscard]] task<response_stream> stream(std::string url, http::headers headers = {});

    /// Connections open now (in use and idle).
    [[nodiscard]] std::size_t open_connections() const noexcept { return open_; }
    /// Idle connections in the pool.
    [[nodiscard]] std::size_t idle_connections() const noexcept {
        std::size_t n = 0;
        for (const auto& [origin, pool] : pools_)
            n += pool.idle.size();
        return n;
    }
    /// Closes every idle connection.
    void close_idle() {
        for (auto& [origin, pool] : pools_)
            while (!pool.idle.empty())
                drop(pool.idle.front(), pool);
    }
    [[nodiscard]] const client_options& options() const noexcept { return options_; }

private:
    friend class response_stream;

    struct host_pool {
        std::deque<std::unique_ptr<detail::client_connection>> idle; // oldest first
        std::unique_ptr<semaphore> slots;                            // per-host cap
        std::unique_ptr<rate_limiter> rate;
    };

    // The method and URL an error message names, formatted only when one is thrown.
    struct label {
        const std::string* method = nullptr;
        const url* u = nullptr;
        [[nodiscard]] std::string str() const { return describe(*method, u->to_string()); }
    };

    // A connection lent to one request, with the permits that let it run.
    struct lease {
        std::unique_ptr<detail::client_connection> conn;
        host_pool* pool = nullptr;
        semaphore_permit total;
        semaphore_permit host;
        bool reused = false;
    };

    static http::request make(std::string method, std::string url, http::headers headers,
                              std::string body) {
        http::request r;
        r.method = std::move(method);
        r.url = std::move(url);
        r.headers = std::move(headers);
        r.body = std::move(body);
        return r;
    }

    task<response> request_with_timeout(http::request req) {
        if (options_.total_timeout <= std::chrono::milliseconds::zero())
            co_return co_await run(std::move(req), /*stream=*/nullptr);
        const std::string what = describe(req.method, req.url);
        try {
            co_return co_await timeout(options_.total_timeout, run(std::move(req), nullptr));
        } catch (const timeout_error&) {
            throw; // a connect or read timeout inside (also a corio::timeout_error)
        } catch (const corio::timeout_error&) {
        }
        throw timeout_error(timeout_kind::total, options_.total_timeout,
                            what + ": no complete response within the total timeout of " +
                                std::to_string(options_.total_timeout.count()) + " ms");
    }

    // The scheme of a URL or reference, lowercase ("ftp" for "FTP://h/x"); "" when it has none
    // (RFC 3986 §3.1: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) before the first ':', and
    // before any '/', '?' or '#').
    static std::string scheme_of(std::string_view ref) {
        std::string scheme;
        for (const char c : ref) {
            if (c == ':')
                return scheme;
            const char lower = c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
            const bool alpha = lower >= 'a' && lower <= 'z';
            const bool more = (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.';
            if (!alpha && (scheme.empty() || !more))
                return {};
            scheme += lower;
        }
        return {};
    }

    static constexpr const char* no_tls =
        "https:// needs corio::tls, and this build of corio has none (OpenSSL was not found)";

    static std::string describe(std::string_view method, std::string_view url) {
        return "corio::http::client " + std::string(method) + " " + std::string(url);
    }

    // Runs a request with its redirects. With `stream` set, the last response's body is left
    // on the connection for the stream to read.
    task<response> run(http::request req, std::unique_ptr<response_stream::state>* stream);

    // The pool of u's origin; the key is built in a reused string (no allocation per request).
    host_pool& pool_of(const url& u) {
        origin_key_.clear();
        const bool v6 = u.host.find(':') != std::string::npos;
        origin_key_.append(u.scheme).append(v6 ? "://[" : "://").append(u.host);
        origin_key_.append(v6 ? "]:" : ":");
        std::array<char, 8> digits{};
        const auto [end, ec] = std::to_chars(digits.data(), digits.data() + digits.size(), u.port);
        (void)ec;
        origin_key_.append(digits.data(), end);
        if (const auto it = pools_.find(origin_key_); it != pools_.end())
            return it->second;
        return pools_[origin_key_];
    }

    task<lease> acquire(const url& u, const label& what) {
        host_pool& pool = pool_of(u);
        lease l;
        l.pool = &pool;
        l.total = co_await total_.scoped_acquire();
        if (options_.max_connections_per_host > 0) {
            if (!pool.slots)
                pool.slots = std::make_unique<semaphore>(
                    static_cast<std::ptrdiff_t>(options_.max_connections_per_host));
            l.host = co_await pool.slots->scoped_acquire();
        }
        if (options_.per_host_rate) {
            if (!pool.rate)
                pool.rate = std::make_unique<rate_limiter>(options_.per_host_rate->requests,
                                                           options_.per_host_rate->period);
            co_await pool.rate->acquire();
        }
        const auto now = event_loop::current().now();
        while (!pool.idle.empty()) {
            std::unique_ptr<detail::client_connection> c = std::move(pool.idle.back());
            pool.idle.pop_back();
            if (now - c->idle_since < options_.idle_timeout) {
                l.conn = std::move(c);
                l.reused = true;
                co_return l;
            }
            --open_; // expired: closed by its destructor
        }
        if (open_ >= options_.max_connections)
            evict_oldest_idle();
        ++open_;
        try {
            l.conn = co_await connect(u, what);
        } catch (...) {
            --open_;
            throw;
        }
        co_return l;
    }

    task<std::unique_ptr<detail::client_connection>> connect(const url& u, const label& what) {
        auto c = std::make_unique<detail::client_connection>();
        c->origin = u.origin();
        try {
            co_await timeout(options_.connect_timeout, open(*c, u, what));
        } catch (const corio::timeout_error&) {
            c.reset();
        } catch (const error&) {
            throw; // connect_error from open()
        } catch (const detail::tls_failure& e) {
            throw tls_error(what.str() + ": " + e.what());
        } catch (const net::resolve_error& e) {
            throw connect_error(what.str() + ": " + e.what());
        } catch (const std::system_error& e) {
            throw connect_error(what.str() + ": " + e.what());
        }
        if (!c)
            throw timeout_error(timeout_kind::connect, options_.connect_timeout,
                                what.str() + ": not connected within the connect timeout of " +
                                    std::to_string(options_.connect_timeout.count()) + " ms");
        co_return c;
    }

    // Resolves u's host here rather than in tcp_stream::connect, so that `connect_filter` sees
    // each address before it is connected to, and connects to the allowed ones in order.
    task<> open(detail::client_connection& c, const url& u, const label& what) {
        const std::vector<net::address> addresses = co_await net::resolve(u.host, u.port);
        std::optional<net::tcp_stream> connected;
        std::string tried; // "<address>: <why>" for each address that failed or was refused
        for (const net::address& a : addresses) {
            std::optional<std::string> refusal;
            if (options_.connect_filter)
                refusal = options_.connect_filter(a);
            if (refusal) {
                tried += (tried.empty() ? "" : "; ") + a.to_string() +
                         ": refused by connect_filter: " + *refusal;
                continue;
            }
            try {
                connected = co_await net::tcp_stream::connect(a);
                break;
            } catch (const std::system_error& e) {
                // The errno's text alone: the system_error's own what() already ends with it.
                tried += (tried.empty() ? "" : "; ") + a.to_string() + ": " + e.code().message();
            }
        }
        if (!connected) {
            const bool v6 = u.host.find(':') != std::string::npos;
            throw connect_error(what.str() + ": cannot connect to " + (v6 ? "[" : "") + u.host +
                                (v6 ? "]:" : ":") + std::to_string(u.port) + " (" + tried + ")");
        }
        net::tcp_stream tcp = std::move(*connected);
        tcp.set_nodelay(true);
#if defined(CORIO_HAVE_TLS)
        if (u.scheme == "https") {
            if (!options_.tls)
                options_.tls = tls::context::client();
            c.tls = co_await tls::stream::connect(std::move(tcp), *options_.tls, u.host);
            co_return;
        }
#endif
        c.tcp = std::move(tcp);
    }

    void evict_oldest_idle() {
        host_pool* oldest = nullptr;
        for (auto& [origin, pool] : pools_)
            if (!pool.idle.empty() && (oldest == nullptr || pool.idle.front()->idle_since <
                                                                oldest->idle.front()->idle_since))
                oldest = &pool;
        if (oldest != nullptr)
            drop(oldest->idle.front(), *oldest);
    }
    void drop(std::unique_ptr<detail::client_connection>& c, host_pool& pool) {
        (void)c;
        pool.idle.pop_front();
        --open_;
    }

    // Returns a connection whose response was read to its end to the pool.
    void release(lease& l) {
        host_pool& pool = *l.pool;
        l.conn->idle_since = event_loop::current().now();
        pool.idle.push_back(std::move(l.conn));
    }
    // Closes a connection that cannot be reused.
    void discard(lease& l) noexcept {
        if (l.conn) {
            l.conn.reset();
            --open_;
        }
    }

    // Sends one request on a pooled connection (retrying once on a fresh one when a reused
    // connection was stale) and reads the response head, and the body unless streaming.
    task<response> send(const url& u, const http::request& req, const label& what,
                        std::unique_ptr<response_stream::state>* stream);
    task<response> exchange(response_stream::state& s, const std::string& bytes);
    static task<response> read_response_head(response_stream::state& s, bool reused,
                                             std::chrono::milliseconds read_timeout);

    // Spare receive buffers (response_stream::state takes one per request).
    static constexpr std::size_t receive_buffer_size = 16384;
    static constexpr std::size_t max_spare_buffers = 128;
    // (Zero-filled once, when first made; recycled as they are.)
    std::vector<char> take_buffer() {
        if (spare_buffers_.empty())
            return std::vector<char>(receive_buffer_size);
        std::vector<char> b = std::move(spare_buffers_.back());
        spare_buffers_.pop_back();
        return b;
    }
    void give_buffer(std::vector<char>&& b) noexcept {
        if (b.size() == receive_buffer_size && spare_buffers_.size() < max_spare_buffers)
            spare_buffers_.push_back(std::move(b)); // capacity reserved: never allocates
    }

    client_options options_;
    corio::detail::loop_affinity affinity_;
    semaphore total_;
    std::vector<std::vector<char>> spare_buffers_;
    std::map<std::string, host_pool, std::less<>> pools_;
    std::string origin_key_;
    std::size_t open_ = 0;
};

// ---------------------------------------------------------------------------------------------

struct response_stream::state {
    client* owner = nullptr;
    client::lease l;
    parser p{parser::kind::response};
    // Received bytes not yet parsed, in one of the client's spare arrays: taken at the first
    // read (never zeroed: the kernel writes it) and given back at the end.
    corio::detail::input_buffer in{0};
    client::label where; // valid while the request runs; `what_` holds it for a stream
    std::string what_;

    // "corio::http::client GET <url>", for error messages.
    const std::string& what() {
        if (what_.empty())
            what_ = where.str();
        return what_;
    }
    std::optional<detail::inflater> decode;
    bool done = false;

    explicit state(parser_limits limits) : p(parser::kind::response, limits) {}

    ~state() {
        if (owner != nullptr && l.conn) // abandoned mid-body: the connection cannot be reused
            owner->discard(l);
        if (owner != nullptr && in.capacity() > 0)
            owner->give_buffer(in.release());
    }

    [[nodiscard]] bool unparsed() const noexcept { return !in.empty(); }

    // Reads more from the connection after the unparsed bytes; false at the end of the stream.
    task<bool> receive(std::chrono::milliseconds limit) {
        if (in.capacity() == 0)
            in = corio::detail::input_buffer(owner->take_buffer());
        const std::span<std::byte> space = in.space(client::receive_buffer_size / 4);
        std::size_t n = 0;
        try {
            n = co_await timeout(limit, l.conn->read_some(space));
        } catch (const corio::timeout_error&) {
            throw timeout_error(timeout_kind::read, limit,
                                what() + ": no data within the read timeout of " +
                                    std::to_string(limit.count()) + " ms");
        }
        in.commit(n);
        co_return n > 0;
    }

    // receive() for a body: a failed connection is closed and reported as its error kind.
    task<bool> receive_body(std::chrono::milliseconds limit) {
        try {
            co_return co_await receive(limit);
        } catch (const detail::tls_failure& e) {
            owner->discard(l);
            done = true;
            if (e.truncated()) // closed without close_notify: the body may be cut short
                throw body_truncated(what() + ": the body ended early: " + e.what());
            throw tls_error(what() + ": " + e.what());
        } catch (const std::system_error& e) {
            owner->discard(l);
            done = true;
            throw body_truncated(what() +
                                 ": the connection failed before the body ended: " + e.what());
        }
    }

    // Parses what is buffered; the parser's event.
    parser::event feed() {
        const parser::result r = p.parse(in.data());
        in.consume(r.consumed);
        return r.what;
    }

    [[noreturn]] void fail_parse() {
        const client_options& o = owner->options_;
        if (p.error_status() == 431 || p.error_status() == 414) { // 414: a status line alone
            // The parser's 431 reasons: "too many header/trailer fields" for the count.
            if (p.error_reason().rfind("too many", 0) == 0)
                throw header_too_large(header_limit::fields, o.max_header_count,
                                       what() + ": " + p.error_reason() +
                                           " (more than max_header_count = " +
                                           std::to_string(o.max_header_count) + " fields)");
            throw header_too_large(
                header_limit::bytes, o.max_header_bytes,
                what() + ": " +
                    (p.error_status() == 414 ? "status line too long" : p.error_reason()) +
                    " (more than max_header_bytes = " + std::to_string(o.max_header_bytes) +
                    " bytes)");
        }
        if (p.error_status() == 413)
            throw body_too_large(o.max_body_bytes, what() + ": " + p.error_reason() +
                                                       " (max_body_bytes = " +
                                                       std::to_string(o.max_body_bytes) + ")");
        throw protocol_error(what() + ": malformed response: " + p.error_reason());
    }

    // Moves the body bytes parsed so far to `out`, decoded.
    void take_body(std::string& out) {
        std::string& raw = p.body();
        if (decode) {
            if (!decode->feed(raw, out))
                throw protocol_error(what() + ": the compressed body is corrupt");
        } else {
            out += raw;
        }
        raw.clear();
    }

    // Parses what is buffered, appending the body bytes to `out`; true once the message ended.
    bool parse_body(std::string& out) {
        const parser::event ev = feed();
        take_body(out);
        if (ev == parser::event::message) {
            finish(p.keep_alive() && !p.needs_eof());
            return true;
        }
        if (ev == parser::event::error)
            fail_parse();
        return false;
    }

    // The connection ended before the message did: the end of a close-delimited body, else
    // an error.
    void body_ended(std::string& out) {
        if (p.finish()) {
            take_body(out);
            finish(false);
            return;
        }
        owner->discard(l);
        done = true;
        throw body_truncated(
            what() + ": the connection closed before the body ended" +
            (p.has_content_length()
                 ? " (" + std::to_string(p.content_length()) + " bytes declared by Content-Length)"
                 : std::string(p.chunked() ? " (chunked)" : "")));
    }

    // The body's end: the connection goes back to the pool if the message allows it.
    void finish(bool keep_alive) {
        done = true;
        if (keep_alive && !unparsed())
            owner->release(l);
        else
            owner->discard(l);
    }
};

inline response_stream::response_stream(response head, std::unique_ptr<state> s)
    : head_(std::move(head)), s_(std::move(s)) {}

inline task<std::optional<std::string>> response_stream::next_chunk() {
    state& s = *s_;
    std::string out;
    while (out.empty() && !s.done) {
        if (s.parse_body(out) || !out.empty())
            continue;
        const bool more = co_await s.receive_body(s.owner->options_.read_timeout);
        if (!more)
            s.body_ended(out);
    }
    if (out.empty())
        co_return std::nullopt;
    co_return out;
}

// Writes the request and reads the response head (skipping interim 1xx responses).
inline task<response> client::read_response_head(response_stream::state& s, bool reused,
                                                 std::chrono::milliseconds read_timeout) {
    bool got_bytes = false;
    for (;;) {
        const parser::event ev = s.feed();
        if (ev == parser::event::error)
            s.fail_parse();
        if (ev == parser::event::head) {
            const int status = s.p.status();
            if (status >= 100 && status < 200 && status != 101) {
                // Interim: its (empty) message completes; the real response follows.
                const parser::event end = s.feed();
                if (end == parser::event::error)
                    s.fail_parse();
                continue;
            }
            response r(status);
            r.headers() = std::move(s.p.headers());
            co_return r;
        }
        bool more = false;
        try {
            more = co_await s.receive(read_timeout);
        } catch (const detail::tls_failure& e) {
            if (reused && !got_bytes && !s.unparsed())
                throw detail::stale_connection{e.what()};
            throw tls_error(s.what() + ": " + e.what());
        } catch (const std::system_error& e) {
            if (reused && !got_bytes && !s.unparsed())
                throw detail::stale_connection{e.what()};
            throw protocol_error(s.what() + ": the connection failed: " + e.what());
        }
        if (!more) {
            if (reused && !got_bytes)
                throw detail::stale_connection{"the server closed the kept-alive connection"};
            throw protocol_error(s.what() + ": the connection closed before a complete response");
        }
        got_bytes = true;
    }
}

inline task<response> client::exchange(response_stream::state& s, const std::string& bytes) {
    bool failed = false;
    std::string why;
    try {
        co_await s.l.conn->write_all(bytes);
    } catch (const detail::tls_failure& e) {
        failed = true;
        why = e.what();
    } catch (const std::system_error& e) {
        failed = true;
        why = e.what();
    }
    if (failed) {
        if (s.l.reused)
            throw detail::stale_connection{why};
        throw protocol_error(s.what() + ": cannot send the request: " + why);
    }
    co_return co_await read_response_head(s, s.l.reused, options_.read_timeout);
}

inline task<response> client::run(http::request req,
                                  std::unique_ptr<response_stream::state>* stream) {
    url u;
    try {
        u = url::parse(req.url);
    } catch (const std::invalid_argument& e) {
        const std::string scheme = scheme_of(req.url);
        if (!scheme.empty() && scheme != "http" && scheme != "https" &&
            req.url.compare(scheme.size(), 3, "://") == 0)
            throw unsupported_scheme(scheme, describe(req.method, req.url) +
                                                 ": unsupported scheme '" + scheme +
                                                 "' (the client speaks http and https)");
        throw error(error_kind::invalid_url, describe(req.method, req.url) + ": " + e.what());
    }
    if (!detail::have_tls && u.scheme == "https")
        throw unsupported_scheme("https", describe(req.method, req.url) + ": " + no_tls);
    for (int hop = 0;; ++hop) {
        const label what{&req.method, &u};
        std::unique_ptr<response_stream::state> s;
        response r = co_await send(u, req, what, stream != nullptr ? &s : nullptr);
        r.set_url(u.to_string());
        const int status = r.status();
        const bool redirect =
            status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
        const std::optional<std::string_view> location = r.header("location");
        if (!options_.follow_redirects || !redirect || !location) {
            if (stream != nullptr)
                *stream = std::move(s);
            co_return r;
        }
        // Checked before anything is connected for the next hop.
        if (const std::string scheme = scheme_of(*location);
            !scheme.empty() && scheme != "http" && scheme != "https")
            throw unsupported_scheme(scheme, what.str() + ": " + std::to_string(status) +
                                                 " redirect to '" + std::string(*location) +
                                                 "': unsupported scheme '" + scheme +
                                                 "' (the client speaks http and https)");
        url next;
        try {
            next = u.resolve(*location);
        } catch (const std::invalid_argument& e) {
            throw protocol_error(what.str() + ": cannot follow the " + std::to_string(status) +
                                 " redirect to '" + std::string(*location) + "': " + e.what());
        }
        if (!detail::have_tls && next.scheme == "https")
            throw unsupported_scheme("https", what.str() + ": " + std::to_string(status) +
                                                  " redirect to '" + std::string(*location) +
                                                  "': " + no_tls);
        if (options_.redirect_filter && !options_.redirect_filter(next)) {
            if (stream != nullptr) // the 3xx's body is the stream's
                *stream = std::move(s);
            co_return r;
        }
        if (hop >= options_.max_redirects)
            throw too_many_redirects(options_.max_redirects,
                                     what.str() + ": more than " +
                                         std::to_string(options_.max_redirects) +
                                         " redirects (max_redirects)");
        // RFC 9110 §15.4: 303 (and, by long practice, 301/302 after POST) become a GET.
        if ((status == 303 && req.method != "HEAD") ||
            ((status == 301 || status == 302) && req.method == "POST")) {
            req.method = "GET";
            req.body.clear();
            req.headers.remove("content-type");
            req.headers.remove("content-encoding");
        }
        if (next.origin() != u.origin()) { // credentials stay with their origin
            req.headers.remove("authorization");
            req.headers.remove("proxy-authorization");
            req.headers.remove("cookie");
        }
        u = std::move(next);
    }
}

inline task<response_stream> client::stream(std::string url, http::headers headers) {
    affinity_.check("corio::http::client");
    std::unique_ptr<response_stream::state> s;
    http::request req = make("GET", std::move(url), std::move(headers), {});
    response head = co_await run(std::move(req), &s);
    co_return response_stream{std::move(head), std::move(s)};
}

inline task<response> client::send(const url& u, const http::request& req, const label& what,
                                   std::unique_ptr<response_stream::state>* stream) {
    std::string head;
    head.reserve(256 + req.body.size());
    head.append(req.method).append(" ").append(u.target).append(" HTTP/1.1\r\nHost: ");
    head.append(u.host_header()).append("\r\n");
    if (!options_.user_agent.empty() && !req.headers.contains("user-agent"))
        head.append("User-Agent: ").append(options_.user_agent).append("\r\n");
    const bool decompress = options_.decompress && detail::have_zlib;
    if (decompress && !req.headers.contains("accept-encoding"))
        head += "Accept-Encoding: gzip, deflate\r\n";
    for (const auto& [name, value] : req.headers) {
        if (iequals(name, "host") || iequals(name, "content-length") ||
            iequals(name, "transfer-encoding"))
            continue; // the client frames the message itself
        head.append(name).append(": ").append(value).append("\r\n");
    }
    if (!req.body.empty() || req.method == "POST" || req.method == "PUT" || req.method == "PATCH")
        head += "Content-Length: " + std::to_string(req.body.size()) + "\r\n";
    head += "\r\n";
    head += req.body();

    const bool idempotent = req.method == "GET" || req.method == "HEAD" ||
                            req.method == "OPTIONS" || req.method == "PUT" ||
                            req.method == "DELETE" || req.method == "TRACE";
    for (int attempt = 0;; ++attempt) {
        auto s = std::make_unique<response_stream::state>(
            parser_limits{.max_header_bytes = options_.max_header_bytes,
                          .max_header_count = options_.max_header_count,
                          .max_body_bytes = stream != nullptr ? static_cast<std::size_t>(-1)
                                                              : options_.max_body_bytes});
        s->owner = this;
        s->where = what;
        s->l = co_await acquire(u, what);
        if (req.method == "HEAD")
            s->p.expect_no_body();
        std::optional<detail::stale_connection> stale;
        std::optional<response> head_only;
        try {
            head_only = co_await exchange(*s, head);
        } catch (const detail::stale_connection& e) {
            stale = e;
        }
        if (stale) {
            discard(s->l);
            s->owner = nullptr;
            if (s->l.reused && idempotent && attempt == 0)
                continue; // the server had closed the kept-alive connection: once more
            throw protocol_error(what.str() + ": " + stale->reason);
        }
        response r = std::move(*head_only);
        if (const auto enc = r.header("content-encoding"); enc && decompress) {
            if (iequals(*enc, "gzip") || iequals(*enc, "x-gzip"))
                s->decode.emplace(true);
            else if (iequals(*enc, "deflate"))
                s->decode.emplace(false);
        }
        if (stream != nullptr) {
            (void)s->what(); // the stream outlives `u` and `req`
            *stream = std::move(s);
            co_return r;
        }
        // The body, parsed straight from the state: a small one is usually in the same read as
        // the head, and then no further coroutine runs.
        std::string body;
        for (;;) {
            const bool ended = s->parse_body(body);
            if (body.size() > options_.max_body_bytes)
                throw body_too_large(
                    options_.max_body_bytes,
                    what.str() + ": the decoded body is larger than " +
                        "max_body_bytes = " + std::to_string(options_.max_body_bytes) + " bytes");
            if (ended)
                break;
            const bool more = co_await s->receive_body(options_.read_timeout);
            if (!more) {
                s->body_ended(body);
                break;
            }
        }
        r.set_body(std::move(body));
        co_return r;
    }
}

} // namespace corio::http

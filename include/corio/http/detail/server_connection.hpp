// SPDX-License-Identifier: MIT
// The HTTP server's connection: its request loop (reading heads and bodies, routing, the
// deadlines) and its response writing. `http::server` accepts and owns the connections.
#pragma once

#include <corio/cancelled_error.hpp>
#include <corio/detail/timer_heap.hpp>
#include <corio/http/headers.hpp>
#include <corio/http/message.hpp>
#include <corio/http/parser.hpp>
#include <corio/http/router.hpp>
#include <corio/http/server_options.hpp>
#include <corio/io/event_loop.hpp>
#include <corio/net/detail/input_buffer.hpp>
#include <corio/net/detail/recv_multishot.hpp>
#include <corio/net/tcp_stream.hpp>
#include <corio/spawn.hpp>
#include <corio/task.hpp>

#include <array>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cstddef>
#include <ctime>
#include <exception>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace corio::http::detail {

/// The Date field's value for now (RFC 9110 §5.6.7), formatted once per second per thread.
inline std::string_view http_date() {
    struct cache {
        std::time_t second = -1;
        std::array<char, 32> text{};
        std::size_t size = 0;
    };
    struct tag {};
    cache& c =
        corio::detail::per_thread<cache, tag>::get(); // a handler may move its coroutine elsewhere
    const std::time_t now = std::time(nullptr);
    if (now != c.second) {
        std::tm tm{};
        ::gmtime_r(&now, &tm);
        c.size = std::strftime(c.text.data(), c.text.size(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        c.second = now;
    }
    return {c.text.data(), c.size};
}

/// True for a character of a reg-name (RFC 3986 §3.2.2: unreserved, sub-delims, '%').
constexpr bool is_host_char(char c) noexcept {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    switch (c) {
    case '-':
    case '.':
    case '_':
    case '~':
    case '%':
    case '!':
    case '$':
    case '&':
    case '\'':
    case '(':
    case ')':
    case '*':
    case '+':
    case ',':
    case ';':
    case '=': return true;
    default: return false;
    }
}

/// True for a Host field value RFC 9112 §3.2 allows: uri-host [":" port], where the host is a
/// reg-name, an IPv4 address or a bracketed IPv6 literal (an empty value is allowed too).
inline bool is_valid_host(std::string_view host) noexcept {
    std::string_view name = host;
    std::string_view port;
    if (!host.empty() && host.front() == '[') {
        const std::size_t close = host.find(']');
        if (close == std::string_view::npos)
            return false;
        for (const char c : host.substr(1, close - 1))
            if (!(std::isxdigit(static_cast<unsigned char>(c)) != 0 || c == ':' || c == '.'))
                return false;
        const std::string_view rest = host.substr(close + 1);
        if (!rest.empty() && rest.front() != ':')
            return false;
        port = rest.empty() ? rest : rest.substr(1);
        name = {};
    } else if (const std::size_t colon = host.rfind(':'); colon != std::string_view::npos) {
        name = host.substr(0, colon);
        port = host.substr(colon + 1);
    }
    for (const char c : name) {
        if (!is_host_char(c))
            return false;
    }
    for (const char c : port)
        if (c < '0' || c > '9')
            return false;
    return true;
}

/// What a server's connections share with it: the routes, the options, whether it stops.
struct server_shared {
    server_shared(router r, server_options o)
        : routes(std::move(r)), allow(routes.methods()), options(std::move(o)) {}

    router routes;
    std::string allow; // every method the routes serve, for OPTIONS *
    server_options options;
    bool stopping = false;

    // The Server and Date fields every response starts with, remade when the date changes.
    std::string_view common_fields() {
        const std::string_view date = http_date();
        if (date != date_) {
            date_ = date;
            common_.clear();
            if (!options.server_name.empty())
                common_.append("Server: ").append(options.server_name).append("\r\n");
            common_.append("Date: ").append(date_).append("\r\n");
        }
        return common_;
    }

private:
    std::string date_;
    std::string common_;
};

/// A connection as the server lists it.
struct connection_slot {
    join_handle<> handle;
    bool idle = false; // waiting for its next request
};

// One connection's request loop.
//
// Its deadlines (idle keep-alive, header, request, closing) are kept by one timer, the
// watchdog, instead of a `timeout()` around every wait: a phase that moves the deadline
// later only writes it down (the timer, armed for the earlier one, re-arms itself when it
// fires), so a request costs no timer-heap operation and no clock read. When a deadline
// passes, the watchdog cancels the connection's task and marks it expired; the wait that
// sees the cancellation answers for its phase (close, 408, 503).
template <class Stream>
class server_connection {
public:
    server_connection(server_shared& srv, Stream& s, connection_slot& slot)
        : srv_(srv), s_(s), slot_(slot), loop_(event_loop::current()),
          parser_(parser::kind::request, {.max_header_bytes = srv.options.max_header_bytes,
                                          .max_header_count = srv.options.max_header_count,
                                          .max_body_bytes = srv.options.max_body_bytes}) {
        watchdog_.self = this;
        watchdog_.fire = &on_watchdog;
        if constexpr (std::is_same_v<Stream, net::tcp_stream>)
            if (io::buffer_ring* buffers = loop_.service<corio::detail::recv_buffers>().get())
                reader_.emplace(s.native_handle(), s.owner_id(), *buffers,
                                srv.options.max_read_ahead);
    }
    server_connection(const server_connection&) = delete;
    server_connection& operator=(const server_connection&) = delete;
    ~server_connection() { loop_.remove_timer(watchdog_); }

    task<> run() {
        try {
            for (;;) {
                // The idle wait happens here, not inside one_request, so that an idle
                // connection does not hold one_request's frame (the request and response).
                const int head = co_await read_head();
                const bool more = co_await one_request(head);
                if (!more)
                    break;
            }
            if (!out_.empty())
                co_await flush();
        } catch (const cancelled_error&) {
            if (!expired_)
                throw;
            // A deadline passed while writing: nothing more to say.
        } catch (const body_aborted&) {
            // Reported already; the connection resets when it closes.
        } catch (const std::exception&) {
            // The peer reset or the socket failed: nothing to answer, nobody to tell.
        }
    }

private:
    using clock = event_loop::clock;

    struct watchdog_timer : corio::detail::timer_node {
        server_connection* self = nullptr;
    };

    // Handles and answers the request whose head read_head parsed (`head`: its result);
    // false when the connection should close.
    task<bool> one_request(int head) {
        if (head < 0)
            co_return false;
        if (head > 0) {
            co_await fail(head, parser_.error_reason());
            co_return false;
        }
        request req;
        req.method = parser_.method();
        req.url = parser_.target();
        req.version = parser_.version();
        req.headers = std::move(parser_.headers());
        bool close = !parser_.keep_alive();

        // RFC 9112 §3.2: an HTTP/1.1 request has exactly one valid Host field.
        const std::size_t hosts = req.headers.count("host");
        if ((req.version >= 11 && hosts != 1) || hosts > 1 ||
            (hosts == 1 && !is_valid_host(*req.headers.get("host")))) {
            co_await fail(400, hosts == 0  ? "missing Host header field"
                               : hosts > 1 ? "more than one Host header field"
                                           : "invalid Host header field");
            co_return false;
        }
        // RFC 9112 §6.1: Transfer-Encoding in HTTP/1.0 is suspect; answer, then close.
        if (req.version < 11 && req.headers.contains("transfer-encoding"))
            close = true;
        expire_in(srv_.options.request_timeout); // reading the body and handling
        if (const auto expect = req.headers.get("expect")) {
            if (!iequals(*expect, "100-continue")) {
                co_await fail(417, "unsupported Expect value");
                co_return false;
            }
            if (req.version >= 11 && (parser_.chunked() || parser_.content_length() > 0))
                co_await send_continue();
        }

        // A body that is already here (or none) needs no read_body frame.
        const parser::event after_head = feed();
        int body = 0;
        if (after_head == parser::event::need_more)
            body = co_await read_body();
        else if (after_head == parser::event::error)
            body = parser_.error_status();
        if (body != 0) {
            // (No conditional expression with a temporary inside co_await: GCC 12
            // destroys such temporaries twice.)
            std::string_view why = parser_.error_reason();
            if (body == 408)
                why = "request body too slow";
            co_await fail(body, why);
            co_return false;
        }
        req.body = std::move(parser_.body());

        response resp;
        std::string_view refusal; // set when the target itself is refused
        const handler* h = route(req, resp, refusal);
        if (!refusal.empty()) {
            co_await fail(400, refusal);
            co_return false;
        }
        if (h != nullptr) {
            try {
                resp = co_await (*h)(req);
            } catch (const cancelled_error&) {
                if (!expired_)
                    throw;
                resp = error_response(503, "the request took too long");
                close = true;
                closing();
            } catch (const std::exception&) {
                event_loop::current().call_exception_handler(std::current_exception());
                resp = error_response(500, "Internal Server Error");
            }
        }
        if (srv_.stopping)
            close = true;
        if (const auto c = resp.header("connection"); c && iequals(*c, "close"))
            close = true;
        if (streamed(req, resp))
            co_await respond_streamed(req, resp, close);
        else
            append_response(req, resp, close);
        // Pipelined requests already here are answered together, before the next wait.
        if (close || out_.size() >= inline_body_limit)
            co_await flush();
        parser_.headers() = std::move(req.headers); // the next request reuses its capacity
        co_return !close;
    }

    // 0: a head is parsed; -1: the connection ends quietly; else the status to fail with.
    task<int> read_head() {
        parser::event ev = feed();
        bool started = !in_.empty();
        bool header_deadline = false;
        while (ev == parser::event::need_more) {
            if (!out_.empty())
                co_await flush(); // pipelined answers go out before waiting
            if (!started) {
                if (srv_.stopping)
                    co_return -1;
                expire_in(srv_.options.keep_alive_timeout);
                slot_.idle = true;
            } else if (!header_deadline) { // from the head's first byte
                expire_in(srv_.options.header_timeout);
                header_deadline = true;
            }
            std::size_t n = 0;
            try {
                // (Inline rather than receive(): the idle wait is the hot path.)
                if (reader_) {
                    n = co_await reader_->read(in_);
                } else {
                    n = co_await s_.read_some(in_.space(1));
                    in_.commit(n);
                }
            } catch (const cancelled_error&) {
                const bool idle = std::exchange(slot_.idle, false);
                if (idle && (expired_ || srv_.stopping))
                    co_return -1; // idle too long, or stopped while idle
                if (!idle && expired_)
                    co_return 408;
                throw;
            }
            slot_.idle = false;
            if (n == 0)
                co_return -1; // the peer closed (idle, or gave up mid-head)
            started = true;
            ev = feed();
        }
        if (ev == parser::event::error)
            co_return parser_.error_status();
        co_return 0;
    }

    // 0 once the whole body is read; else the status to fail with.
    // (Called when the parser wants more of the body.)
    task<int> read_body() {
        parser::event ev = parser::event::need_more;
        while (ev == parser::event::need_more) {
            std::size_t n = 0;
            try {
                n = co_await receive();
            } catch (const cancelled_error&) {
                if (!expired_)
                    throw;
                co_return 408;
            }
            if (n == 0)
                co_return 400; // the body ended early
            ev = feed();
        }
        if (ev == parser::event::error)
            co_return parser_.error_status();
        co_return 0;
    }

    // The TCP socket under the stream.
    [[nodiscard]] const net::tcp_stream& socket() const noexcept {
        if constexpr (std::is_same_v<Stream, net::tcp_stream>)
            return s_;
        else
            return s_.tcp();
    }

    parser::event feed() {
        const parser::result r = parser_.parse(in_.data());
        in_.consume(r.consumed);
        return r.what;
    }

    // Receives more into the input buffer; the bytes received, 0 at the end of the stream.
    task<std::size_t> receive() {
        if (reader_)
            co_return co_await reader_->read(in_);
        const std::size_t n = co_await s_.read_some(in_.space(1));
        in_.commit(n);
        co_return n;
    }

    // The handler for `req`; or null with `resp` set to the server's own answer (OPTIONS *,
    // 404, 405), or with `refusal` set to why the target is refused (400, then close).
    const handler* route(request& req, response& resp, std::string_view& refusal) {
        std::string_view target = req.url;
        if (target == "*") { // asterisk form (RFC 9112 §3.2.4): the server as a whole
            if (req.method != "OPTIONS")
                refusal = "the request target '*' is only for OPTIONS";
            else
                resp.set_header("Allow", srv_.allow); // a 200 with no body
            return nullptr;
        }
        if (!target.empty() && target.front() != '/') {
            // Absolute form (RFC 9112 §3.2.2) routes by its path.
            const std::size_t scheme = target.find("://");
            if (scheme == std::string_view::npos || !(iequals(target.substr(0, scheme), "http") ||
                                                      iequals(target.substr(0, scheme), "https"))) {
                refusal = "the request target is neither a path nor an http(s) URI";
                return nullptr;
            }
            const std::size_t path = target.find('/', scheme + 3);
            target = path == std::string_view::npos ? "/" : target.substr(path);
        }
        const std::size_t q = target.find('?');
        if (q != std::string_view::npos && !parse_query(target.substr(q + 1), req)) {
            refusal = "malformed percent-encoding in the query";
            return nullptr;
        }
        const router::match m = srv_.routes.find(req.method, target.substr(0, q), req.params);
        if (m.target == nullptr) {
            if (m.status == 400) {
                refusal = "malformed percent-encoding in the path";
                return nullptr;
            }
            resp = error_response(m.status, reason_phrase(m.status));
            if (m.status == 405)
                resp.set_header("Allow", m.allow);
        }
        return m.target;
    }

    static bool parse_query(std::string_view query, request& req) {
        while (!query.empty()) {
            const std::size_t amp = query.find('&');
            const std::string_view pair = query.substr(0, amp);
            query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
            if (pair.empty())
                continue;
            const std::size_t eq = pair.find('=');
            auto name = percent_decode(pair.substr(0, eq), true);
            auto value = percent_decode(
                eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1), true);
            if (!name || !value)
                return false;
            req.query_params.emplace_back(std::move(*name), std::move(*value));
        }
        return true;
    }

    static response error_response(int status, std::string_view why) {
        std::string body(why);
        body += '\n';
        return response::text(status, body);
    }

    task<> send_continue() {
        out_ += "HTTP/1.1 100 Continue\r\n\r\n";
        co_await flush();
    }

    // Answers with `status` and closes, letting the client read the answer first.
    task<> fail(int status, std::string_view why) {
        closing();
        const std::string reason(reason_phrase(status));
        const response r = error_response(
            status, status == 400 && !why.empty() ? reason + ": " + std::string(why) : reason);
        request none;
        none.version = 11;
        bool close = true;
        append_response(none, r, close);
        co_await flush();
        co_await linger();
    }

    // Half-closes, then reads and drops what the client still sends for a moment (the
    // closing deadline), so that closing with unread input does not reset the connection
    // and destroy the answer before the client reads it (what nginx calls lingering close).
    task<> linger() {
        try {
            co_await s_.shutdown();
            std::size_t dropped = 0;
            while (dropped < std::size_t{1024} * 1024) {
                in_.clear();
                const std::size_t n = co_await receive();
                if (n == 0)
                    break;
                dropped += n;
            }
        } catch (const cancelled_error&) {
            if (!expired_)
                throw;
        } catch (const std::exception&) {
        }
    }

    // True when the response's body is produced while it is sent, or too large to copy.
    static bool streamed(const request& req, const response& resp) {
        const int status = resp.status();
        if (req.method == "HEAD" || (status >= 100 && status < 200) || status == 204 ||
            status == 304)
            return false;
        return resp.producer() != nullptr || resp.body().size() > inline_body_limit;
    }

    // The head of `resp` and, unless streamed(), its body, into the output buffer.
    void append_response(const request& req, const response& resp, bool& close) {
        const int status = resp.status();
        const bool head = req.method == "HEAD";
        const bool bodiless = (status >= 100 && status < 200) || status == 204 || status == 304;
        const response::body_producer* producer = bodiless ? nullptr : resp.producer();
        const bool chunked = producer != nullptr && req.version >= 11;
        if (producer != nullptr && !chunked)
            close = true; // HTTP/1.0: the body ends with the connection

        using namespace std::string_view_literals;
        out_ += req.version >= 11 ? "HTTP/1.1 "sv : "HTTP/1.0 "sv;
        append_number(status);
        out_ += ' ';
        out_ += reason_phrase(status);
        out_ += "\r\n"sv;
        out_ += srv_.common_fields();
        for (const auto& [name, value] : resp.headers()) {
            if (iequals(name, "content-length") || iequals(name, "transfer-encoding") ||
                iequals(name, "connection") || iequals(name, "date") ||
                (iequals(name, "server") && !srv_.options.server_name.empty()))
                continue; // the server frames the message itself
            out_ += name;
            out_ += ": "sv;
            out_ += value;
            out_ += "\r\n"sv;
        }
        if (chunked) {
            out_ += "Transfer-Encoding: chunked\r\n"sv;
        } else if (!bodiless && producer == nullptr) {
            out_ += "Content-Length: "sv;
            append_number(resp.body().size());
            out_ += "\r\n"sv;
        }
        if (close)
            out_ += "Connection: close\r\n"sv;
        else if (req.version < 11)
            out_ += "Connection: keep-alive\r\n"sv;
        out_ += "\r\n"sv;
        if (!head && !bodiless && producer == nullptr && resp.body().size() <= inline_body_limit)
            out_ += resp.body();
    }

    // Sends a response whose body is produced as it goes (chunked on HTTP/1.1) or is
    // larger than the output buffer takes.
    task<> respond_streamed(const request& req, const response& resp, bool& close) {
        append_response(req, resp, close);
        co_await flush();
        if (const response::body_producer* producer = resp.producer()) {
            const bool chunked = req.version >= 11;
            chunk_writer w{*this, chunked};
            bool failed = false;
            try {
                co_await (*producer)(w);
            } catch (const cancelled_error&) {
                throw;
            } catch (const std::exception&) {
                if (w.peer_failed())
                    throw; // the peer went away: nothing to report
                event_loop::current().call_exception_handler(std::current_exception());
                failed = true;
            }
            if (failed) {
                // The body cannot be finished: reset the connection rather than end it,
                // so the client sees a truncated body, never a short one that looks whole
                // (without the last chunk, or, on HTTP/1.0, without a length at all).
                socket().reset_on_close();
                throw body_aborted{};
            }
            if (chunked)
                out_ += "0\r\n\r\n";
        } else {
            co_await s_.write_all(resp.body());
        }
    }

    class chunk_writer final : public body_writer {
    public:
        chunk_writer(server_connection& c, bool chunked) noexcept : c_(c), chunked_(chunked) {}
        task<> write(std::string_view data) override {
            if (data.empty())
                co_return;
            if (chunked_) {
                std::array<char, 20> size{};
                const auto [end, ec] =
                    std::to_chars(size.data(), size.data() + size.size(), data.size(), 16);
                c_.out_.append(size.data(), end);
                c_.out_ += "\r\n";
            }
            c_.out_ += data;
            if (chunked_)
                c_.out_ += "\r\n";
            try {
                co_await c_.flush();
            } catch (const cancelled_error&) {
                throw;
            } catch (const std::exception&) {
                peer_failed_ = true;
                throw;
            }
        }
        // True when a write failed (the producer's exception may be that one).
        [[nodiscard]] bool peer_failed() const noexcept { return peer_failed_; }

    private:
        server_connection& c_;
        bool chunked_;
        bool peer_failed_ = false;
    };

    // Ends a connection whose streamed body failed (after it was reported).
    struct body_aborted {};

    void append_number(std::size_t n) {
        std::array<char, 24> digits{};
        const auto [end, ec] = std::to_chars(digits.data(), digits.data() + digits.size(), n);
        out_.append(digits.data(), end);
    }

    task<> flush() {
        co_await s_.write_all(out_);
        out_.clear();
        if (out_.capacity() > inline_body_limit)
            out_.shrink_to_fit();
    }

    // --- the watchdog --------------------------------------------------------------------

    // The current phase must end within `limit` from now (the loop's time of this turn).
    void expire_in(std::chrono::milliseconds limit) {
        deadline_ = loop_.last_now() + limit;
        if (watchdog_.scheduled() && watchdog_.deadline <= deadline_)
            return; // it fires early and re-arms itself
        loop_.remove_timer(watchdog_);
        watchdog_.deadline = deadline_;
        loop_.add_timer(watchdog_);
    }

    // After an expiry or an error: what is left (the error's answer, the lingering close)
    // gets a deadline of its own.
    void closing() {
        expired_ = false;
        expire_in(closing_time);
    }

    static void on_watchdog(corio::detail::timer_node* t) noexcept {
        server_connection& c = *static_cast<watchdog_timer*>(t)->self;
        if (c.deadline_ > c.loop_.last_now()) {
            // The deadline moved later: wait for it. (The node just left the heap, so
            // the heap has the room: no allocation.)
            t->deadline = c.deadline_;
            c.loop_.add_timer(*t);
            return;
        }
        c.expired_ = true;
        c.slot_.handle.cancel();
    }

    static constexpr std::size_t initial_buffer = 1024; // grows for larger heads
    static constexpr std::size_t inline_body_limit = std::size_t{64} * 1024;
    static constexpr std::chrono::milliseconds closing_time = std::chrono::seconds(2);

    server_shared& srv_;
    Stream& s_;
    connection_slot& slot_;
    event_loop& loop_;
    parser parser_;
    corio::detail::input_buffer in_{initial_buffer};
    std::string out_;
    // Plain TCP where the kernel has it: one multishot receive into the loop's provided
    // buffers for the connection's life, instead of a receive per read.
    std::optional<corio::detail::recv_multishot> reader_;
    watchdog_timer watchdog_;
    clock::time_point deadline_{};
    bool expired_ = false;
};

} // namespace corio::http::detail

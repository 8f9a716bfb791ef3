// SPDX-License-Identifier: MIT
#pragma once

#include <corio/http/headers.hpp>

#include <llhttp.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace corio::http {

/// Limits a parser enforces while it reads a message.
struct parser_limits {
    /// The start line and all header fields together.
    std::size_t max_header_bytes = std::size_t{16} * 1024;
    /// Header fields in one message.
    std::size_t max_header_count = 100;
    /// The decoded body.
    std::size_t max_body_bytes = 1 << 20;
};

/// An incremental HTTP/1.1 message parser: llhttp in strict mode, plus the checks a server and
/// a client need beyond it (limits, empty field names). Feed it bytes as they arrive; it stops
/// after the head and after each complete message, so pipelined messages are taken one at a
/// time and the caller decides between them (answer `Expect: 100-continue`, enforce limits).
///
/// **Errors**: a bad message makes `parse` return `event::error`; `error_status()` is the status
/// a server answers with (400, 413, 414, 431) and `error_reason()` says why.
class parser {
public:
    enum class kind { request, response };
    enum class event {
        need_more, ///< every byte was consumed: feed more
        head,      ///< the start line and header fields are complete
        message,   ///< the message is complete (body included)
        error,     ///< the message is malformed or over a limit
    };
    struct result {
        event what;
        std::size_t consumed; ///< bytes of the input used; the rest belongs to what follows
    };

    explicit parser(kind k, parser_limits limits = {}) : limits_(limits), kind_(k) {
        llhttp_init(&parser_, k == kind::request ? HTTP_REQUEST : HTTP_RESPONSE, &settings());
        parser_.data = this;
    }
    parser(const parser&) = delete;
    parser& operator=(const parser&) = delete;

    /// Parses from `data`, stopping at the end of the head, at the end of a message, or at an
    /// error.
    result parse(std::string_view data) {
        if (failed_)
            return {event::error, 0};
        if (message_pending_) { // a bodiless message completed with its head
            message_pending_ = false;
            return {event::message, 0};
        }
        // Feed no more of a head than its limit allows, so an endless head fails at the limit.
        std::string_view feed = data;
        if (!head_done_ && feed.size() > limits_.max_header_bytes - head_bytes_ + 1)
            feed = feed.substr(0, limits_.max_header_bytes - head_bytes_ + 1);
        const bool head_was_done = head_done_ && !message_done_;
        chunk_ = feed.data(); // where a value piece can look for the line break before it
        chunk_after_lf_ = after_lf_;
        const llhttp_errno_t rc = llhttp_execute(&parser_, feed.data(), feed.size());
        std::size_t consumed = feed.size();
        if (rc == HPE_PAUSED) {
            consumed = static_cast<std::size_t>(llhttp_get_error_pos(&parser_) - feed.data());
            llhttp_resume(&parser_);
        } else if (rc != HPE_OK) {
            return fail_from_llhttp(rc);
        }
        if (!head_was_done && kind_ == kind::request) {
            // llhttp 8 accepts continuation lines (obs-fold) and joins them into the value;
            // RFC 9112 §5.2 lets a server reject them, and corio does.
            if (has_folded_line(data.substr(0, consumed)))
                return fail(400, "obsolete line folding in the header fields");
        } else if (kind_ == kind::response && consumed > 0) {
            after_lf_ = data[consumed - 1] == '\n'; // a user agent unfolds them instead
        }
        if (!head_done_) {
            head_bytes_ += consumed;
            if (head_bytes_ > limits_.max_header_bytes)
                return fail(fields_seen_ == 0 && !line_done_ ? 414 : 431,
                            fields_seen_ == 0 && !line_done_ ? "request line too long"
                                                             : "header fields too large");
        }
        if (failed_)
            return {event::error, consumed};
        if (stop_ == stop::head) {
            stop_ = stop::none;
            return {event::head, consumed};
        }
        if (stop_ == stop::message) {
            stop_ = stop::none;
            return {event::message, consumed};
        }
        return {event::need_more, consumed};
    }

    /// Tells the parser the input ended: completes a body delimited by the end of the
    /// connection. True when that completed a message.
    bool finish() {
        if (failed_)
            return false;
        const llhttp_errno_t rc = llhttp_finish(&parser_);
        if (rc != HPE_OK && rc != HPE_PAUSED) {
            fail_from_llhttp(rc);
            return false;
        }
        if (stop_ == stop::message) {
            stop_ = stop::none;
            return true;
        }
        return false;
    }

    /// Client: the response to come answers a HEAD request (or is otherwise bodiless).
    void expect_no_body() noexcept { skip_body_ = true; }

    // --- the message being parsed (valid from `event::head`) ---------------------------------
    [[nodiscard]] std::string_view method() const noexcept { return method_; }
    [[nodiscard]] const std::string& target() const noexcept { return target_; }
    [[nodiscard]] int status() const noexcept { return parser_.status_code; }
    [[nodiscard]] int version() const noexcept {
        return parser_.http_major * 10 + parser_.http_minor;
    }
    [[nodiscard]] http::headers& headers() noexcept { return headers_; }
    /// The body so far (complete at `event::message`).
    [[nodiscard]] std::string& body() noexcept { return body_; }
    /// True when the message has a body delimited by `Content-Length` or chunked coding.
    [[nodiscard]] bool chunked() const noexcept { return (parser_.flags & F_CHUNKED) != 0; }
    [[nodiscard]] bool has_content_length() const noexcept {
        return (parser_.flags & F_CONTENT_LENGTH) != 0;
    }
    [[nodiscard]] std::uint64_t content_length() const noexcept { return declared_length_; }
    /// llhttp's keep-alive verdict (version, Connection fields).
    [[nodiscard]] bool keep_alive() const noexcept {
        return llhttp_should_keep_alive(&parser_) != 0;
    }
    /// True when the body ends only with the connection (a response without length).
    [[nodiscard]] bool needs_eof() const noexcept {
        return llhttp_message_needs_eof(&parser_) != 0;
    }

    // --- errors ---------------------------------------------------------------------------
    [[nodiscard]] int error_status() const noexcept { return error_status_; }
    [[nodiscard]] const std::string& error_reason() const noexcept { return error_reason_; }

private:
    enum class stop { none, head, message };

    static const llhttp_settings_t& settings() {
        static const llhttp_settings_t s = [] {
            llhttp_settings_t t;
            llhttp_settings_init(&t);
            t.on_message_begin = &on_message_begin;
            t.on_url = &on_url;
            t.on_method = &on_method;
            t.on_header_field = &on_header_field;
            t.on_header_value = &on_header_value;
            t.on_header_value_complete = &on_header_value_complete;
            t.on_headers_complete = &on_headers_complete;
            t.on_body = &on_body;
            t.on_message_complete = &on_message_complete;
            return t;
        }();
        return s;
    }
    static parser& self(llhttp_t* p) noexcept { return *static_cast<parser*>(p->data); }

    static int on_message_begin(llhttp_t* p) {
        parser& s = self(p);
        s.method_.clear();
        s.target_.clear();
        s.headers_.clear();
        s.headers_.reserve(16); // a moved-from field list has no capacity left
        s.body_.clear();
        s.field_.clear();
        s.value_.clear();
        s.in_value_ = false;
        s.fields_seen_ = 0;
        s.line_done_ = false;
        s.head_done_ = false;
        s.head_bytes_ = 0;
        s.trailer_bytes_ = 0;
        s.declared_length_ = 0;
        s.message_done_ = false;
        s.after_lf_ = false;
        return 0;
    }
    static int on_method(llhttp_t* p, const char* at, std::size_t n) {
        self(p).method_.append(at, n);
        return 0;
    }
    static int on_url(llhttp_t* p, const char* at, std::size_t n) {
        self(p).target_.append(at, n);
        return 0;
    }
    static int on_header_field(llhttp_t* p, const char* at, std::size_t n) {
        parser& s = self(p);
        if (s.head_done_ && !s.count_trailer(n))
            return s.user_error(431, "trailer fields too large");
        s.line_done_ = true;
        if (s.in_value_) { // a new field begins
            s.field_.clear();
            s.value_.clear();
            s.in_value_ = false;
        }
        s.field_.append(at, n);
        return 0;
    }
    static int on_header_value(llhttp_t* p, const char* at, std::size_t n) {
        parser& s = self(p);
        if (s.head_done_ && !s.count_trailer(n))
            return s.user_error(431, "trailer fields too large");
        s.in_value_ = true;
        if (s.kind_ == kind::response)
            s.append_response_value(at, n);
        else
            s.value_.append(at, n);
        return 0;
    }
    static int on_header_value_complete(llhttp_t* p) {
        parser& s = self(p);
        if (s.kind_ == kind::response) {
            s.unfolding_ = false;
            while (!s.value_.empty() && (s.value_.back() == ' ' || s.value_.back() == '\t'))
                s.value_.pop_back(); // trailing OWS is not part of the value (RFC 9110 §5.5)
        }
        // llhttp 8 lets ": value" through; RFC 9110 §5.1 needs a token.
        if (s.field_.empty())
            return s.user_error(400, "empty header field name");
        if (!is_field_value(s.value_))
            return s.user_error(400, "a control character in a header value");
        if (++s.fields_seen_ > s.limits_.max_header_count)
            return s.user_error(431, s.head_done_ ? "too many trailer fields"
                                                  : "too many header fields");
        if (s.kind_ == kind::request && !s.head_done_ && iequals(s.field_, "transfer-encoding"))
            if (const int rc = s.check_codings(s.value_); rc != 0)
                return rc;
        // Trailer fields are checked and counted against the head's limits, then dropped:
        // nothing in corio reads them, and they must not grow without bound.
        if (!s.head_done_)
            s.headers_.add_unchecked(std::move(s.field_), std::move(s.value_));
        s.field_.clear();
        s.value_.clear();
        s.in_value_ = true; // the next field callback starts a new field
        return 0;
    }
    static int on_headers_complete(llhttp_t* p) {
        parser& s = self(p);
        s.line_done_ = true;
        s.head_done_ = true;
        if (s.in_value_ && !s.field_.empty()) // a field whose value callback never came
            s.headers_.add_unchecked(std::move(s.field_), std::move(s.value_));
        if (s.kind_ == kind::request) {
            s.method_ = llhttp_method_name(static_cast<llhttp_method_t>(p->method));
            // The server accepts no protocol upgrade (nor CONNECT tunnels): such a request is
            // an ordinary one, and the bytes after it are the next request, not another
            // protocol. (llhttp would otherwise pause for good after the message.)
            p->upgrade = 0;
            if (p->http_major != 1) // HTTP/2.0 or 0.9 in an HTTP/1 start line
                return s.user_error(505, "only HTTP/1.0 and HTTP/1.1 are supported");
        }
        // RFC 9112 §6.3 rule 1: 1xx (but 101, a switch to another protocol), 204 and 304 end
        // with their head, whatever Content-Length says (llhttp 8.1 reads such a body).
        const int status = p->status_code;
        if (s.kind_ == kind::response &&
            ((status >= 100 && status < 200 && status != 101) || status == 204 || status == 304))
            s.skip_body_ = true;
        if ((p->flags & F_CONTENT_LENGTH) != 0) {
            s.declared_length_ = p->content_length;
            if (p->content_length > s.limits_.max_body_bytes && !s.skip_body_)
                return s.user_error(413, "body larger than the limit");
        }
        s.stop_ = stop::head;
        if (s.skip_body_) {
            s.skip_body_ = false;
            return 1; // no body, whatever the fields say: the message completes now
        }
        const bool bodiless = (p->flags & F_CHUNKED) == 0 &&
                              ((p->flags & F_CONTENT_LENGTH) != 0 ? p->content_length == 0
                                                                  : s.kind_ == kind::request);
        // A bodiless message completes in this run (it needs no further byte); with a body,
        // stop here so the caller can look at the head before the body arrives.
        return bodiless ? 0 : HPE_PAUSED;
    }
    static int on_body(llhttp_t* p, const char* at, std::size_t n) {
        parser& s = self(p);
        if (s.body_.size() + n > s.limits_.max_body_bytes)
            return s.user_error(413, "body larger than the limit");
        s.body_.append(at, n);
        return 0;
    }
    static int on_message_complete(llhttp_t* p) {
        parser& s = self(p);
        s.message_done_ = true;
        // A head and its bodiless message can complete in one run; report the head first only
        // when the caller has not seen it.
        if (s.stop_ != stop::head)
            s.stop_ = stop::message;
        else
            s.message_pending_ = true;
        return HPE_PAUSED;
    }

    // A Transfer-Encoding value of a request: chunked is the only coding the server decodes
    // (RFC 9112 §6.1), so any other is 501, before llhttp's own checks see it.
    int check_codings(std::string_view value) {
        while (!value.empty()) {
            const std::size_t comma = value.find(',');
            std::string_view coding = value.substr(0, comma);
            value = comma == std::string_view::npos ? std::string_view() : value.substr(comma + 1);
            while (!coding.empty() && (coding.front() == ' ' || coding.front() == '\t'))
                coding.remove_prefix(1);
            while (!coding.empty() && (coding.back() == ' ' || coding.back() == '\t'))
                coding.remove_suffix(1);
            if (coding.empty() || iequals(coding, "chunked"))
                continue;
            unsupported_coding_ = "transfer coding '";
            unsupported_coding_.append(coding.substr(0, 64)).append("' is not supported");
            return user_error(501, unsupported_coding_.c_str());
        }
        return 0;
    }

    // Counts `n` bytes of a trailer section against the head's limit; false over it.
    bool count_trailer(std::size_t n) noexcept {
        trailer_bytes_ += n;
        return trailer_bytes_ <= limits_.max_header_bytes;
    }

    // Appends a piece of a response's field value. llhttp 8 joins continuation lines (obs-fold)
    // into the value, each piece starting with its line's leading whitespace and without the
    // line break; RFC 9112 §5.2 has a user agent replace each fold with a space. A piece that
    // starts a line is a continuation: the whitespace around the fold becomes one space, also
    // when the input was split inside it.
    void append_response_value(const char* at, std::size_t n) {
        const bool line_start = at > chunk_ ? at[-1] == '\n' : chunk_after_lf_;
        if (line_start) {
            while (!value_.empty() && (value_.back() == ' ' || value_.back() == '\t'))
                value_.pop_back();
            if (!value_.empty())
                value_ += ' ';
            unfolding_ = true;
        }
        if (unfolding_) {
            while (n > 0 && (*at == ' ' || *at == '\t')) {
                ++at;
                --n;
            }
            if (n > 0)
                unfolding_ = false;
        }
        value_.append(at, n);
    }

    // True when a line of `head` (continuing the previous call's) starts with a space or tab.
    bool has_folded_line(std::string_view head) noexcept {
        for (const char c : head) {
            if (after_lf_ && (c == ' ' || c == '\t'))
                return true;
            after_lf_ = c == '\n';
        }
        return false;
    }

    int user_error(int status, const char* reason) {
        error_status_ = status;
        error_reason_ = reason;
        llhttp_set_error_reason(&parser_, reason);
        failed_ = true;
        return HPE_USER;
    }
    result fail(int status, std::string reason) {
        failed_ = true;
        error_status_ = status;
        error_reason_ = std::move(reason);
        return {event::error, 0};
    }
    result fail_from_llhttp(llhttp_errno_t rc) {
        if (failed_) // one of ours
            return {event::error, 0};
        const char* reason = llhttp_get_error_reason(&parser_);
        return fail(400, reason != nullptr ? reason : llhttp_errno_name(rc));
    }

    llhttp_t parser_{};
    parser_limits limits_;
    kind kind_;
    std::string method_;
    std::string target_;
    http::headers headers_;
    std::string body_;
    std::string field_;
    std::string value_;
    std::size_t fields_seen_ = 0;
    std::size_t head_bytes_ = 0;
    std::size_t trailer_bytes_ = 0;
    std::uint64_t declared_length_ = 0;
    std::string error_reason_;
    std::string unsupported_coding_; // llhttp keeps a pointer to the reason it is given
    int error_status_ = 0;
    stop stop_ = stop::none;
    bool in_value_ = false;
    bool line_done_ = false;
    bool head_done_ = false;
    bool skip_body_ = false;
    bool message_pending_ = false;
    bool message_done_ = true; // between messages
    bool after_lf_ = false;
    // The input of the current llhttp_execute, and whether a line break preceded it.
    const char* chunk_ = nullptr;
    bool chunk_after_lf_ = false;
    bool unfolding_ = false; // in the whitespace after an obs-fold of a response field
    bool failed_ = false;
};

} // namespace corio::http

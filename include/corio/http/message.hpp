// SPDX-License-Identifier: MIT
#pragma once

#include <corio/http/headers.hpp>
#include <corio/task.hpp>

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace corio::http {

/// The bytes of a message body. Converts from any string; calling it (`req.body()`) gives a
/// view of the bytes.
class body {
public:
    body() = default;
    body(std::string bytes) noexcept : bytes_(std::move(bytes)) {}
    body(std::string_view bytes) : bytes_(bytes) {}
    body(const char* bytes) : bytes_(bytes) {}

    [[nodiscard]] std::string_view operator()() const noexcept { return bytes_; }
    [[nodiscard]] const std::string& str() const& noexcept { return bytes_; }
    [[nodiscard]] std::string str() && noexcept { return std::move(bytes_); }
    [[nodiscard]] std::size_t size() const noexcept { return bytes_.size(); }
    [[nodiscard]] bool empty() const noexcept { return bytes_.empty(); }
    void append(std::string_view more) { bytes_.append(more); }
    void clear() noexcept { bytes_.clear(); }

    friend bool operator==(const body&, const body&) = default;

private:
    std::string bytes_;
};

/// The reason phrase of a status code ("Not Found"), or "" for one it does not know.
[[nodiscard]] constexpr std::string_view reason_phrase(int status) noexcept {
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "";
    }
}

/// An HTTP request. The client builds one (`{.method = "PUT", .url = ..., .headers = ...,
/// .body = ...}`); the server hands one to each handler, with the target as received in `url`
/// and the route's parameters and the decoded query filled in.
struct request {
    std::string method = "GET";
    /// Client: the absolute URL. Server: the request target as received ("/users/7?x=1").
    std::string url{};
    http::headers headers{};
    http::body body{};
    /// Server: 10 for HTTP/1.0, 11 for HTTP/1.1.
    int version = 11;
    /// Server: the route's parameters ("{id}"), percent-decoded.
    std::vector<std::pair<std::string, std::string>> params{};
    /// Server: the query's name=value pairs, percent-decoded ('+' is a space), in order.
    std::vector<std::pair<std::string, std::string>> query_params{};

    /// The first header field named `name`.
    [[nodiscard]] std::optional<std::string_view> header(std::string_view name) const noexcept {
        return headers.get(name);
    }
    /// The route parameter `name` ("" when the route has none of that name).
    [[nodiscard]] std::string_view param(std::string_view name) const noexcept {
        for (const auto& [k, v] : params)
            if (k == name)
                return v;
        return {};
    }
    /// The first query parameter `name`, or nothing.
    [[nodiscard]] std::optional<std::string_view> query(std::string_view name) const noexcept {
        for (const auto& [k, v] : query_params)
            if (k == name)
                return std::string_view(v);
        return std::nullopt;
    }
    /// Server: the target's path, without the query (not decoded).
    [[nodiscard]] std::string_view path() const noexcept {
        const std::string_view target = url;
        return target.substr(0, target.find('?'));
    }
};

class body_writer;

/// An HTTP response: status, header fields, body. A server handler returns one
/// (`response::text(200, "hi")`); the client returns one for each request.
class response {
public:
    /// Produces a streamed body chunk by chunk (sent with chunked transfer coding).
    using body_producer = std::function<task<>(body_writer&)>;

    response() = default;
    explicit response(int status) : status_(status) {}

    /// `text/plain; charset=utf-8`.
    [[nodiscard]] static response text(int status, std::string_view body) {
        return with_body(status, "text/plain; charset=utf-8", body);
    }
    /// `application/json` (the body is sent as given).
    [[nodiscard]] static response json(int status, std::string_view body) {
        return with_body(status, "application/json", body);
    }
    /// `text/html; charset=utf-8`.
    [[nodiscard]] static response html(int status, std::string_view body) {
        return with_body(status, "text/html; charset=utf-8", body);
    }
    /// No body.
    [[nodiscard]] static response empty(int status) { return response(status); }
    /// A body produced while it is sent, for bodies larger than memory or not known up front.
    [[nodiscard]] static response stream(int status, std::string_view content_type,
                                         body_producer producer) {
        response r(status);
        r.set_header("Content-Type", content_type);
        r.producer_ = std::make_shared<body_producer>(std::move(producer));
        return r;
    }

    [[nodiscard]] int status() const noexcept { return status_; }
    void set_status(int status) noexcept { status_ = status; }
    [[nodiscard]] std::optional<std::string_view> header(std::string_view name) const noexcept {
        return headers_.get(name);
    }
    [[nodiscard]] const http::headers& headers() const noexcept { return headers_; }
    [[nodiscard]] http::headers& headers() noexcept { return headers_; }
    response& set_header(std::string_view name, std::string_view value) {
        headers_.set(name, value);
        return *this;
    }
    response& add_header(std::string_view name, std::string_view value) {
        headers_.add(name, value);
        return *this;
    }

    [[nodiscard]] const std::string& body() const& noexcept { return body_; }
    [[nodiscard]] std::string body() && noexcept { return std::move(body_); }
    /// The body as text (the bytes as they are; no charset conversion).
    [[nodiscard]] std::string_view text() const noexcept { return body_; }
    void set_body(std::string body) { body_ = std::move(body); }

    /// Client: the URL this response came from (after redirects).
    [[nodiscard]] const std::string& url() const noexcept { return url_; }
    void set_url(std::string url) { url_ = std::move(url); }

    /// The streamed body's producer, or null.
    [[nodiscard]] const body_producer* producer() const noexcept { return producer_.get(); }

private:
    static response with_body(int status, std::string_view content_type, std::string_view body) {
        response r(status);
        r.headers_.add_unchecked("Content-Type", std::string(content_type));
        r.body_ = body;
        return r;
    }

    int status_ = 200;
    http::headers headers_;
    std::string body_;
    std::string url_;
    std::shared_ptr<body_producer> producer_;
};

/// Where a streamed response body goes: each `write` sends one chunk.
class body_writer {
public:
    virtual ~body_writer() = default;
    /// Sends `data` (nothing for an empty one).
    virtual task<> write(std::string_view data) = 0;
};

} // namespace corio::http

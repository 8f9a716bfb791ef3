// SPDX-License-Identifier: MIT
// libFuzzer target: the HTTP server's connection (parser, limits, router, response writer) fed
// request bytes split at fuzzed points, on a fake stream (no sockets).
//
// Invariants, beyond the sanitizers': what the server writes parses as a sequence of valid HTTP
// responses; there are no more final responses than request heads in the input (plus one
// refusal); nothing is answered after a response that said `Connection: close`.
#include "fuzz_support.hpp"

#include <corio/http/parser.hpp>
#include <corio/http/server.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>

namespace {

namespace http = corio::http;
using corio::task;

/// A connection's stream whose reads return the input in fuzzed pieces and whose writes are
/// kept.
class fake_stream {
public:
    fake_stream(std::string_view input, std::uint32_t seed) : input_(input), rng_(seed | 1) {}

    task<std::size_t> read_some(std::span<std::byte> buf) {
        if (input_.empty() || buf.empty())
            co_return 0;
        std::size_t n = 1 + next() % 64;
        n = std::min({n, buf.size(), input_.size()});
        std::memcpy(buf.data(), input_.data(), n);
        input_.remove_prefix(n);
        co_return n;
    }
    task<> write_all(std::string_view data) {
        output_ += data;
        co_return;
    }
    task<> shutdown() { co_return; }
    /// The socket under it, for a reset: this stream has none (-1), so a reset fails loudly.
    [[nodiscard]] const corio::net::tcp_stream& tcp() const noexcept { return none_; }

    [[nodiscard]] const std::string& output() const noexcept { return output_; }

private:
    std::uint32_t next() noexcept { // xorshift32
        rng_ ^= rng_ << 13;
        rng_ ^= rng_ >> 17;
        rng_ ^= rng_ << 5;
        return rng_;
    }

    std::string_view input_;
    std::uint32_t rng_;
    std::string output_;
    corio::net::tcp_stream none_;
};

task<http::response> hello(http::request&) { co_return http::response::text(200, "hello"); }
task<http::response> sized(http::request& req) {
    co_return http::response::text(200, std::to_string(req.body().size()));
}
task<> three_chunks(http::body_writer& w) {
    for (int i = 0; i < 3; ++i)
        co_await w.write("chunk\n");
}
task<http::response> streamed(http::request&) {
    co_return http::response::stream(200, "text/plain",
                                     [](http::body_writer& w) { return three_chunks(w); });
}
task<http::response> user(http::request& req) {
    co_return http::response::text(200, std::to_string(req.param("id").size()));
}

http::router routes() {
    http::router r;
    r.get("/hello", hello);
    r.post("/echo", sized);
    r.put("/echo", sized);
    r.get("/stream", streamed);
    r.get("/users/{id}", user);
    return r;
}

task<> serve_one(corio::http::detail::server_shared& shared, fake_stream& s) {
    corio::http::detail::connection_slot slot;
    slot.handle = corio::spawn([](corio::http::detail::server_shared& sh, fake_stream& st,
                                  corio::http::detail::connection_slot& sl) -> task<> {
        corio::http::detail::server_connection<fake_stream> c{sh, st, sl};
        co_await c.run();
    }(shared, s, slot));
    co_await slot.handle;
}

std::size_t head_ends(std::string_view in) {
    std::size_t n = 0;
    for (std::size_t i = 0; i + 1 < in.size(); ++i)
        if (in[i] == '\n' &&
            (in[i + 1] == '\n' || (in[i + 1] == '\r' && i + 2 < in.size() && in[i + 2] == '\n')))
            ++n;
    return n;
}

/// Parses what the server wrote; aborts when it is not a sequence of valid responses or breaks
/// the invariants.
void check_output(std::string_view input, std::string_view out) {
    std::size_t finals = 0;
    bool closed = false;
    while (!out.empty()) {
        http::parser p{http::parser::kind::response,
                       {.max_header_bytes = 1 << 20,
                        .max_header_count = 1000,
                        .max_body_bytes = std::size_t{64} << 20}};
        bool done = false;
        while (!done) {
            const http::parser::result r = p.parse(out);
            out.remove_prefix(r.consumed);
            if (r.what == http::parser::event::error)
                corio::fuzz::fail("the server wrote an invalid response", p.error_reason());
            if (r.what == http::parser::event::message)
                done = true;
            else if (r.what == http::parser::event::need_more && out.empty()) {
                if (!p.finish()) // a close-delimited body ends here; anything else is cut
                    corio::fuzz::fail("the server wrote a truncated response", "");
                done = true;
            }
        }
        if (p.status() == 100)
            continue;
        if (closed)
            corio::fuzz::fail("a response after Connection: close", "");
        ++finals;
        const auto c = p.headers().get("connection");
        closed = c && http::iequals(*c, "close");
    }
    if (finals > head_ends(input) + 1)
        corio::fuzz::fail("more responses than requests", std::to_string(finals));
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 4 || size > 64 * 1024)
        return 0;
    const std::uint32_t seed =
        static_cast<std::uint32_t>(data[0]) | static_cast<std::uint32_t>(data[1]) << 8 |
        static_cast<std::uint32_t>(data[2]) << 16 | static_cast<std::uint32_t>(data[3]) << 24;
    std::string input(reinterpret_cast<const char*>(data + 4), size - 4);
    // HEAD answers have no body whatever Content-Length says; the output check does not know
    // which requests were HEAD, so there are none.
    for (std::size_t at = input.find("HEAD"); at != std::string::npos; at = input.find("HEAD"))
        input[at + 3] = 'X';
    static corio::event_loop loop;
    static corio::http::detail::server_shared shared{routes(),
                                                     {.max_header_bytes = 1024,
                                                      .max_body_bytes = 4096,
                                                      .max_header_count = 20,
                                                      .max_read_ahead = 4096}};
    fake_stream s{input, seed};
    loop.run(serve_one(shared, s));
    check_output(input, s.output());
    return 0;
}

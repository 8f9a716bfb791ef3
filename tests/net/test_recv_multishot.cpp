// SPDX-License-Identifier: MIT
#include "../support/corio_test.hpp"

#include <corio/io/buffer_ring.hpp>
#include <corio/net/detail/recv_multishot.hpp>
#include <corio/net/tcp_listener.hpp>
#include <corio/net/tcp_stream.hpp>
#include <corio/sleep.hpp>
#include <corio/spawn.hpp>
#include <corio/timeout.hpp>

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
using corio::task;
using corio::detail::input_buffer;
using corio::detail::recv_multishot;
using corio::net::address;
using corio::net::tcp_listener;
using corio::net::tcp_stream;

namespace {

/// A connected pair of TCP streams on 127.0.0.1.
struct stream_pair {
    tcp_stream client;
    tcp_stream server;
};

task<stream_pair> connected_pair() {
    tcp_listener l = tcp_listener::bind(address::parse("127.0.0.1:0"));
    tcp_stream client = co_await tcp_stream::connect(l.local_address());
    tcp_stream server = co_await l.accept();
    co_return stream_pair{std::move(client), std::move(server)};
}

/// A small ring of its own (group 7): 4 buffers of 16 bytes run dry after 64 bytes.
std::optional<corio::io::buffer_ring> tiny_ring() {
    try {
        return std::optional<corio::io::buffer_ring>(
            std::in_place, corio::event_loop::current().io_driver(), std::uint16_t{7}, 4U, 16U);
    } catch (const std::system_error&) {
        return std::nullopt; // no buffer rings on this kernel
    }
}

task<std::string> read_exactly(recv_multishot& r, std::size_t want) {
    input_buffer in{8};
    while (in.size() < want) {
        const std::size_t n = co_await r.read(in);
        if (n == 0)
            break;
    }
    co_return std::string(in.data());
}

} // namespace

CORIO_TEST_CASE("recv_multishot: more data than the buffers hold arrives whole and in order",
                "[net][multishot]") {
    auto ring = tiny_ring();
    if (!ring ||
        corio::event_loop::current().service<corio::detail::recv_buffers>().get() == nullptr)
        CORIO_CO_SKIP("io_uring here has no multishot recv with provided buffers");
    stream_pair p = co_await connected_pair();
    recv_multishot r{p.server.native_handle(), p.server.owner_id(), *ring};
    std::string sent;
    for (int i = 0; i < 200; ++i)
        sent += std::to_string(i) + ",";
    co_await p.client.write_all(sent); // 690 bytes through 64 bytes of buffers: dry many times
    const std::string got = co_await read_exactly(r, sent.size());
    CHECK(got == sent);
}

CORIO_TEST_CASE("recv_multishot: end of stream after the data, then a reset is an error",
                "[net][multishot][bad-input]") {
    auto ring = tiny_ring();
    if (!ring ||
        corio::event_loop::current().service<corio::detail::recv_buffers>().get() == nullptr)
        CORIO_CO_SKIP("io_uring here has no multishot recv with provided buffers");
    stream_pair p = co_await connected_pair();
    recv_multishot r{p.server.native_handle(), p.server.owner_id(), *ring};
    co_await p.client.write_all("last words");
    co_await p.client.close();
    const std::string got = co_await read_exactly(r, 1000); // stops at the end of the stream
    CHECK(got == "last words");
    input_buffer in{4};
    const std::size_t again = co_await r.read(in);
    CHECK(again == 0);

    stream_pair q = co_await connected_pair();
    recv_multishot reset{q.server.native_handle(), q.server.owner_id(), *ring};
    const linger rst{1, 0};
    ::setsockopt(q.client.native_handle(), SOL_SOCKET, SO_LINGER, &rst, sizeof rst);
    co_await q.client.close();
    bool failed = false;
    try {
        [[maybe_unused]] const std::size_t n = co_await reset.read(in);
    } catch (const std::system_error& e) {
        failed = e.code().value() == ECONNRESET;
    }
    CHECK(failed);
}

CORIO_TEST_CASE("recv_multishot: a cancelled read loses nothing, a reader dropped while live "
                "gives its buffers back",
                "[net][multishot][cancel]") {
    auto ring = tiny_ring();
    if (!ring ||
        corio::event_loop::current().service<corio::detail::recv_buffers>().get() == nullptr)
        CORIO_CO_SKIP("io_uring here has no multishot recv with provided buffers");
    stream_pair p = co_await connected_pair();
    recv_multishot r{p.server.native_handle(), p.server.owner_id(), *ring};
    input_buffer in{4};
    bool timed_out = false;
    try {
        [[maybe_unused]] const std::size_t n = co_await corio::timeout(20ms, r.read(in));
    } catch (const corio::timeout_error&) {
        timed_out = true;
    }
    CHECK(timed_out);
    co_await p.client.write_all("after the cancel");
    const std::string got = co_await read_exactly(r, 16);
    CHECK(got == "after the cancel");

    // Dropped with data queued and the receive live, 20 times: the buffers come back (else the
    // tiny ring would be dry for the reader after them).
    for (int i = 0; i < 20; ++i) {
        stream_pair q = co_await connected_pair();
        std::optional<recv_multishot> dropped;
        dropped.emplace(q.server.native_handle(), q.server.owner_id(), *ring);
        co_await q.client.write_all("0123456789abcdef0123456789abcdef");
        input_buffer one{4};
        [[maybe_unused]] const std::size_t n = co_await dropped->read(one);
        co_await q.client.write_all("more that stays queued");
        co_await corio::sleep_for(1ms);
        dropped.reset();
    }
    co_await p.client.write_all("0123456789abcdef0123456789abcdef0123456789abcdef");
    const std::string last = co_await corio::timeout(10s, read_exactly(r, 48)); // not stuck dry
    CHECK(last == "0123456789abcdef0123456789abcdef0123456789abcdef");
}

CORIO_TEST_CASE("recv_multishot: a reader that stops reading holds no provided buffer, and a "
                "dry ring costs a bounded number of completions, never a spin",
                "[net][multishot][bad-input]") {
    auto ring = tiny_ring();
    if (!ring ||
        corio::event_loop::current().service<corio::detail::recv_buffers>().get() == nullptr)
        CORIO_CO_SKIP("io_uring here has no multishot recv with provided buffers");
    // A stalled reader: it reads once (which arms its receive), then never again, while its
    // peer keeps sending. It must not keep the ring's 4 buffers.
    stream_pair stalled = co_await connected_pair();
    recv_multishot s{stalled.server.native_handle(), stalled.server.owner_id(), *ring};
    co_await stalled.client.write_all("0123456789abcdef");
    input_buffer in{4};
    [[maybe_unused]] const std::size_t first = co_await s.read(in);
    co_await stalled.client.write_all(std::string(200, 's'));

    // Another reader on the same ring gets all of its data, through a ring that runs dry every
    // 64 bytes, with a completion and a resubmission per dry ring, not a loop of them.
    stream_pair p = co_await connected_pair();
    recv_multishot r{p.server.native_handle(), p.server.owner_id(), *ring};
    std::string sent;
    for (int i = 0; i < 200; ++i)
        sent += std::to_string(i) + ",";
    co_await p.client.write_all(sent);
    const std::string got = co_await corio::timeout(10s, read_exactly(r, sent.size()));
    CHECK(got == sent);
    const std::size_t rounds = sent.size() / 64 + 1;
    CHECK(r.stats().dry <= 2 * rounds);
    CHECK(r.stats().submits <= r.stats().dry + 2);

    // Idle, with nothing to receive: no completion, no resubmission.
    const auto before = r.stats();
    bool timed_out = false;
    try {
        [[maybe_unused]] const std::size_t n = co_await corio::timeout(50ms, r.read(in));
    } catch (const corio::timeout_error&) {
        timed_out = true;
    }
    CHECK(timed_out);
    CHECK(r.stats().dry == before.dry);
    CHECK(r.stats().submits <= before.submits + 1);
    CHECK(s.read_ahead() <= 200 + 16);
}

CORIO_TEST_CASE("recv_multishot: past max_read_ahead the receive stops until the reader "
                "catches up, and nothing is lost",
                "[net][multishot][bad-input]") {
    std::optional<corio::io::buffer_ring> ring;
    try {
        ring.emplace(corio::event_loop::current().io_driver(), std::uint16_t{8}, 64U, 1024U);
    } catch (const std::system_error&) {
    }
    if (!ring ||
        corio::event_loop::current().service<corio::detail::recv_buffers>().get() == nullptr)
        CORIO_CO_SKIP("io_uring here has no multishot recv with provided buffers");
    stream_pair p = co_await connected_pair();
    constexpr std::size_t limit = 4096;
    recv_multishot r{p.server.native_handle(), p.server.owner_id(), *ring, limit};
    std::string sent;
    for (int i = 0; sent.size() < std::size_t{1} << 20; ++i)
        sent += std::to_string(i) + ",";
    auto writer = corio::spawn(p.client.write_all(sent)); // blocks once the socket is full
    input_buffer in{16};
    [[maybe_unused]] const std::size_t first = co_await r.read(in); // arms the receive
    for (int i = 0; i < 5000 && r.stats().paused == 0; ++i)
        co_await corio::sleep_for(1ms);
    CHECK(r.stats().paused >= 1);
    for (int i = 0; i < 10; ++i)
        co_await corio::sleep_for(1ms); // the cancel's last completions land
    const std::size_t held = r.read_ahead();
    CHECK(held <= limit + 64 * 1024); // the bound, plus what was in flight when it was hit
    for (int i = 0; i < 20; ++i)
        co_await corio::sleep_for(1ms); // the loop turns; the paused receive takes nothing
    CHECK(r.read_ahead() == held);

    while (in.size() < sent.size()) {
        const std::size_t n = co_await corio::timeout(10s, r.read(in));
        if (n == 0)
            break;
    }
    co_await writer;
    CHECK(in.data() == sent);
}

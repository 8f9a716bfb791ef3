// SPDX-License-Identifier: MIT
#include "../support/corio_test.hpp"

#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <vector>

using namespace std::chrono_literals;
using corio::cancelled_error;
using corio::task;

namespace {

/// A pipe whose ends close with the test.
struct pipe_pair {
    int read_end = -1;
    int write_end = -1;
    pipe_pair() {
        int fds[2];
        REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
        read_end = fds[0];
        write_end = fds[1];
    }
    pipe_pair(const pipe_pair&) = delete;
    pipe_pair& operator=(const pipe_pair&) = delete;
    ~pipe_pair() {
        ::close(read_end);
        ::close(write_end);
    }
};

struct race_counts {
    int resumed = 0;
    int completed = 0;
    int cancelled = 0;
};

task<> read_forever(int fd, bool& cancelled) {
    std::array<std::byte, 16> buf{};
    try {
        co_await corio::io::read(fd, buf);
    } catch (const cancelled_error&) {
        cancelled = true;
        throw;
    }
}

task<> one_racing_op(int fd, bool use_nop, race_counts& counts) {
    std::array<std::byte, 8> buf{};
    try {
        if (use_nop)
            co_await corio::io::nop();
        else
            co_await corio::io::read(fd, buf);
        ++counts.resumed;
        ++counts.completed;
    } catch (const cancelled_error&) {
        ++counts.resumed;
        ++counts.cancelled;
    }
}

} // namespace

CORIO_TEST_CASE("io: a NOP round-trips through the operation awaiter", "[io]") {
    int r = co_await corio::io::nop();
    CHECK(r == 0);
    for (int i = 0; i < 1000; ++i)
        r += co_await corio::io::nop();
    CHECK(r == 0);
}

CORIO_TEST_CASE("io: read and write move bytes through the ring", "[io]") {
    pipe_pair p;
    const std::string msg = "hello ring";
    int n = co_await corio::io::write(p.write_end, std::as_bytes(std::span(msg)));
    CHECK(n == static_cast<int>(msg.size()));
    std::array<char, 32> buf{};
    n = co_await corio::io::read(p.read_end, std::as_writable_bytes(std::span(buf)));
    REQUIRE(n == static_cast<int>(msg.size()));
    CHECK(std::string(buf.data(), static_cast<std::size_t>(n)) == msg);
}

CORIO_TEST_CASE("io: a failed operation throws system_error with the errno and its name", "[io]") {
    std::array<std::byte, 4> buf{};
    try {
        co_await corio::io::read(-1, buf);
        FAIL("no exception");
    } catch (const std::system_error& e) {
        CHECK(e.code().value() == EBADF);
        CHECK(std::string(e.what()).find("corio::io::read") != std::string::npos);
    }
    const int raw = co_await corio::io::read(-1, buf).no_throw();
    CHECK(raw == -EBADF);
}

CORIO_TEST_CASE("io: the kernel timeout operation completes with 0, as documented", "[io]") {
    const int r = co_await corio::io::timeout(1ms).no_throw();
    CHECK(r == 0); // the ring says -ETIME when it expires; the boundary says 0
    const int thrown = co_await corio::io::timeout(1ms); // and it is no error
    CHECK(thrown == 0);
}

CORIO_TEST_CASE("io: cancelling a blocked read resumes it once, on its own completion",
                "[io][cancel]") {
    pipe_pair p;
    bool cancelled = false;
    auto h = corio::spawn(read_forever(p.read_end, cancelled));
    co_await corio::yield_now();
    co_await corio::yield_now();
    auto& loop = corio::event_loop::current();
    CHECK(loop.in_flight() == 1);
    h.cancel();
    CHECK_THROWS_AS(co_await h, cancelled_error);
    CHECK(cancelled);
    CHECK(loop.in_flight() == 0);
}

CORIO_TEST_CASE("io: 100,000 submit-then-cancel races each resume their coroutine exactly once",
                "[io][cancel][stress]") {
    pipe_pair p;
    race_counts counts;
    constexpr int rounds = 100;
    constexpr int per_round = 1000;
    std::vector<corio::join_handle<>> handles;
    handles.reserve(per_round);
    for (int round = 0; round < rounds; ++round) {
        for (int i = 0; i < per_round; ++i)
            handles.push_back(corio::spawn(one_racing_op(p.read_end, i % 2 == 0, counts)));
        co_await corio::yield_now(); // each has prepared its operation; none is submitted yet
        for (auto& h : handles)
            h.cancel();
        for (auto& h : handles)
            co_await h;
        handles.clear();
    }
    CHECK(counts.resumed == rounds * per_round);
    CHECK(counts.completed + counts.cancelled == rounds * per_round);
    CHECK(counts.cancelled >= rounds * per_round / 2); // every read, perhaps some NOPs
    CHECK(corio::event_loop::current().in_flight() == 0);
}

CORIO_TEST_CASE("io: an operation awaited with a cancel already pending is never submitted",
                "[io][cancel]") {
    struct local {
        static task<> cancel_self_then_nop(corio::join_handle<>& self, bool& threw) {
            co_await corio::yield_now();
            self.cancel();
            try {
                co_await corio::io::nop();
            } catch (const cancelled_error&) {
                threw = true;
            }
        }
    };
    corio::join_handle<> self;
    bool threw = false;
    self = corio::spawn(local::cancel_self_then_nop(self, threw));
    co_await self;
    CHECK(threw);
}

CORIO_TEST_CASE("io: a multishot poll posts one result per readiness and ends on stop",
                "[io][multishot]") {
    pipe_pair p;
    corio::io::multishot ms = corio::io::poll_multishot(p.read_end, POLLIN);
    ms.start();
    CHECK(ms.live());
    char byte = 'x';
    for (int i = 0; i < 3; ++i) {
        REQUIRE(::write(p.write_end, &byte, 1) == 1);
        std::optional<int> revents = co_await ms.next();
        REQUIRE(revents.has_value());
        CHECK((*revents & POLLIN) != 0);
        REQUIRE(::read(p.read_end, &byte, 1) == 1); // drain, so the next write is a new event
        CHECK(ms.live());                           // one submission, many completions
    }
    ms.stop();
    std::optional<int> last = co_await ms.next();
    while (last.has_value())
        last = co_await ms.next();
    CHECK_FALSE(ms.live());
    CHECK(corio::event_loop::current().in_flight() == 0);
}

namespace {
task<> nops(int n, int& done) {
    for (int i = 0; i < n; ++i)
        co_await corio::io::nop();
    ++done;
}
task<> read_one(int fd, int& done) {
    std::array<std::byte, 1> buf{};
    const int n = co_await corio::io::read(fd, buf);
    done += n;
}
task<> tiny_ring_scenario() {
    // 1,000 tasks preparing NOPs in one turn overflow an 8-entry SQ many times over.
    int nop_tasks_done = 0;
    std::vector<corio::join_handle<>> handles;
    for (int i = 0; i < 1000; ++i)
        handles.push_back(corio::spawn(nops(3, nop_tasks_done)));
    for (auto& h : handles)
        co_await h;
    CHECK(nop_tasks_done == 1000);

    // 200 reads in flight complete at once: 200 CQEs for a 16-entry CQ (the kernel keeps the
    // overflow; the loop must flush it and lose nothing).
    pipe_pair p;
    int bytes = 0;
    handles.clear();
    for (int i = 0; i < 200; ++i)
        handles.push_back(corio::spawn(read_one(p.read_end, bytes)));
    co_await corio::yield_now();
    co_await corio::yield_now();
    CHECK(corio::event_loop::current().in_flight() == 200);
    const std::string payload(200, 'x');
    REQUIRE(::write(p.write_end, payload.data(), payload.size()) == 200);
    for (auto& h : handles)
        co_await h;
    CHECK(bytes == 200);
}
} // namespace

TEST_CASE("io: a tiny ring (8 SQ, 16 CQ entries) loses nothing when SQ and CQ overflow",
          "[io][ring]") {
    corio::test::run(tiny_ring_scenario(),
                     {.sq_entries = 8, .cq_entries = 16, .backend = corio::backend::io_uring});
}

CORIO_TEST_CASE("io: reads and writes of a regular file at offsets, on either backend (epoll "
                "runs them on the blocking pool)",
                "[io][file]") {
    char path[] = "/tmp/corio-file-XXXXXX";
    const int fd = ::mkstemp(path);
    REQUIRE(fd >= 0);
    ::unlink(path);
    const std::string first = "hello, ";
    const std::string second = "file";
    const int wrote_second = co_await corio::io::write(fd, std::as_bytes(std::span(second)), 7);
    const int wrote_first = co_await corio::io::write(fd, std::as_bytes(std::span(first)), 0);
    CHECK(wrote_second == 4);
    CHECK(wrote_first == 7);
    std::array<char, 32> buf{};
    const auto into = std::as_writable_bytes(std::span(buf));
    const int whole = co_await corio::io::read(fd, into, 0);
    CHECK(std::string(buf.data(), static_cast<std::size_t>(std::max(whole, 0))) == "hello, file");
    const int tail = co_await corio::io::read(fd, into, 7);
    CHECK(std::string(buf.data(), static_cast<std::size_t>(std::max(tail, 0))) == "file");
    const int past_end = co_await corio::io::read(fd, into, 100);
    CHECK(past_end == 0);
    CHECK(corio::event_loop::current().in_flight() == 0); // nothing left on the pool
    ::close(fd);
}

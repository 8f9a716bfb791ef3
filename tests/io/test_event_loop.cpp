// SPDX-License-Identifier: MIT
#include "../support/corio_test.hpp"
#include "../support/fork_child.hpp"

#include <corio/net/tcp_listener.hpp>
#include <corio/net/tcp_stream.hpp>

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <coroutine>
#include <csignal>
#include <cstddef>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using corio::task;

namespace {

task<> wait_until_count(std::atomic<int>& ran, int expected) {
    while (ran.load(std::memory_order_relaxed) < expected)
        co_await corio::sleep_for(1ms);
}

} // namespace

TEST_CASE("post: 4 threads x 10,000 posts all run, on the loop's thread", "[post]") {
    corio::event_loop loop;
    std::atomic<int> ran{0};
    std::atomic<int> wrong_thread{0};
    const auto loop_thread = std::this_thread::get_id();
    constexpr int threads = 4;
    constexpr int per_thread = 10'000;
    std::vector<std::thread> posters;
    for (int t = 0; t < threads; ++t)
        posters.emplace_back([&] {
            for (int i = 0; i < per_thread; ++i)
                loop.post([&] {
                    if (std::this_thread::get_id() != loop_thread)
                        wrong_thread.fetch_add(1);
                    ran.fetch_add(1, std::memory_order_relaxed);
                });
        });
    loop.run(wait_until_count(ran, threads * per_thread));
    for (auto& p : posters)
        p.join();
    CHECK(ran.load() == threads * per_thread);
    CHECK(wrong_thread.load() == 0);
}

namespace {
/// Suspends until someone resumes the handle it leaves in `slot`.
struct park {
    std::coroutine_handle<>* slot;
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) const noexcept { *slot = h; }
    void await_resume() const noexcept {}
};

/// Waits (a bounded number of polls) until thread `tid` of this process sleeps in the kernel:
/// the loop's thread blocked in its wait. True when it was seen sleeping.
bool wait_until_sleeping(pid_t tid) {
    const std::string path = "/proc/self/task/" + std::to_string(tid) + "/stat";
    for (int i = 0; i < 20'000; ++i) {
        std::ifstream stat(path);
        std::string line;
        std::getline(stat, line);
        // "tid (comm) S ...": the state follows the last ')'.
        const std::size_t close = line.rfind(')');
        if (close != std::string::npos && close + 2 < line.size() && line[close + 2] == 'S')
            return true;
        std::this_thread::sleep_for(100us);
    }
    return false;
}

task<> park_until_posted(corio::event_loop& loop, std::thread& poster, int& woken,
                         bool& was_sleeping) {
    std::coroutine_handle<> slot;
    const pid_t loop_tid = ::gettid();
    poster = std::thread([&loop, &slot, &was_sleeping, loop_tid] {
        was_sleeping = wait_until_sleeping(loop_tid); // the loop is blocked in its wait now
        loop.post([&slot] { slot.resume(); });
    });
    // No timer, nothing ready, no I/O: only the post can end the loop's wait.
    co_await park{&slot};
    ++woken;
}
} // namespace

TEST_CASE("post: wakes a loop blocked with nothing else to do", "[post]") {
    corio::event_loop loop;
    std::thread poster;
    int woken = 0;
    bool was_sleeping = false;
    loop.run(park_until_posted(loop, poster, woken, was_sleeping));
    poster.join();
    CHECK(was_sleeping); // the post really ended a blocked wait
    CHECK(woken == 1);
}

TEST_CASE("post: an exception from a posted function goes to the exception handler", "[post]") {
    corio::event_loop loop;
    int reports = 0;
    loop.set_exception_handler([&](std::exception_ptr) { ++reports; });
    std::atomic<int> ran{0};
    loop.post([&] {
        ran.store(1);
        throw std::runtime_error("posted failure");
    });
    loop.run(wait_until_count(ran, 1));
    CHECK(reports == 1);
}

TEST_CASE("event_loop: a second loop on the same thread is a logic_error", "[loop][bad-use]") {
    corio::event_loop loop;
    CHECK(&corio::event_loop::current() == &loop);
    CHECK_THROWS_AS(corio::event_loop{}, std::logic_error);
}

TEST_CASE("event_loop: current() without a loop names the problem", "[loop][bad-use]") {
    CHECK(corio::event_loop::current_or_null() == nullptr);
    try {
        (void)corio::event_loop::current();
        FAIL("no exception");
    } catch (const std::logic_error& e) {
        CHECK(std::string(e.what()).find("no event loop") != std::string::npos);
    }
}

#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CORIO_TEST_TSAN 1
#endif
#endif

namespace {
std::optional<corio::event_loop> doomed;
task<> destroy_own_loop() {
    doomed.reset();
    co_return;
}
} // namespace

TEST_CASE("event_loop: destroying a loop from inside its own run is a fatal assertion",
          "[loop][bad-use]") {
    const auto r = corio::test::run_in_child([] {
        doomed.emplace();
        doomed->run(destroy_own_loop());
        return 0;
    });
#if defined(__SANITIZE_THREAD__) || defined(CORIO_TEST_TSAN)
    CHECK((r.signal == SIGABRT || r.exit_code != 0)); // TSan turns abort() into an exit code
#else
    CHECK(r.signal == SIGABRT);
#endif
    CHECK(r.err.find("destroyed while it is running") != std::string::npos);
}

namespace {
/// A coroutine type that is not corio's: the loop cannot cancel what it awaits.
struct foreign_coroutine {
    struct promise_type {
        foreign_coroutine get_return_object() noexcept { return {}; }
        std::suspend_never initial_suspend() const noexcept { return {}; }
        std::suspend_never final_suspend() const noexcept { return {}; }
        void return_void() const noexcept {}
        void unhandled_exception() const noexcept {}
    };
};
foreign_coroutine read_forever(int fd) {
    std::array<std::byte, 1> buf{};
    co_await corio::io::read(fd, buf);
}
} // namespace

TEST_CASE("event_loop: destroying a loop with I/O in flight that no task owns is a fatal "
          "assertion",
          "[loop][bad-use]") {
    const auto r = corio::test::run_in_child([] {
        int fds[2];
        if (::pipe(fds) != 0)
            return 3;
        corio::event_loop loop;
        read_forever(fds[0]); // suspended in a read nobody can cancel
        return 0;             // ~event_loop must refuse: the kernel still holds the frame's buffer
    });
#if defined(CORIO_TEST_TSAN)
    CHECK((r.signal == SIGABRT || r.exit_code != 0));
#else
    CHECK(r.signal == SIGABRT);
#endif
    CHECK(r.err.find("still in flight that no task owns") != std::string::npos);
}

namespace {

/// Denies io_uring_setup with EPERM in this (child) process, as Docker's default profile does.
/// False when no filter can be installed here.
bool deny_io_uring() {
    sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    sock_fprog prog{static_cast<unsigned short>(sizeof filter / sizeof filter[0]), filter};
    return ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
           ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0;
}

/// One echo through a listener on loopback.
task<int> small_echo() {
    auto l = corio::net::tcp_listener::bind(corio::net::address::parse("127.0.0.1:0"));
    auto accepted = corio::spawn(l.accept());
    corio::net::tcp_stream c = co_await corio::net::tcp_stream::connect(l.local_address());
    corio::net::tcp_stream s = co_await accepted;
    co_await c.write_all("ping");
    std::array<std::byte, 16> buf{};
    const std::size_t n = co_await s.read_some(buf);
    co_return static_cast<int>(n);
}

} // namespace

TEST_CASE("event_loop: io_uring refused by seccomp (EPERM): backend::io_uring is a system_error "
          "that says why",
          "[loop][seccomp][backend]") {
    const auto r = corio::test::run_in_child([] {
        if (!deny_io_uring())
            return 77;
        try {
            corio::event_loop loop{{.backend = corio::backend::io_uring}};
        } catch (const std::system_error& e) {
            std::fprintf(stderr, "%s", e.what());
            return e.code().value() == EPERM ? 0 : 2;
        }
        return 1;
    });
    if (r.exit_code == 77)
        CORIO_SKIP("cannot install a seccomp filter here");
    CHECK(r.exit_code == 0);
    INFO(r.err);
    CHECK(r.err.find("io_uring is unavailable") != std::string::npos);
    CHECK(r.err.find("EPERM") != std::string::npos);
    CHECK(r.err.find("seccomp") != std::string::npos);
}

TEST_CASE("event_loop: io_uring refused by seccomp (EPERM): backend::automatic runs on epoll and "
          "says why",
          "[loop][seccomp][backend]") {
    const auto r = corio::test::run_in_child([] {
        if (!deny_io_uring())
            return 77;
        ::unsetenv("CORIO_BACKEND"); // automatic must decide by itself here
        corio::event_loop loop;
        std::fprintf(stderr, "%s", loop.backend_reason().c_str());
        if (loop.backend() != corio::backend::epoll)
            return 2;
        return loop.run(small_echo()) == 4 ? 0 : 3;
    });
    if (r.exit_code == 77)
        CORIO_SKIP("cannot install a seccomp filter here");
    INFO(r.err);
    CHECK(r.exit_code == 0);
    CHECK(r.err.find("io_uring_setup failed with EPERM") != std::string::npos);
    CHECK(r.err.find("seccomp") != std::string::npos);
}

TEST_CASE("event_loop: the backend asked for is the backend used, and says so", "[loop][backend]") {
    {
        corio::event_loop loop{{.backend = corio::backend::epoll}};
        CHECK(loop.backend() == corio::backend::epoll);
        CHECK(loop.backend_reason() == "loop_options::backend");
        CHECK(loop.run(small_echo()) == 4);
        CHECK_THROWS_AS(loop.io_ring(), std::logic_error);
    }
    {
        corio::event_loop loop{{.backend = corio::backend::io_uring}};
        CHECK(loop.backend() == corio::backend::io_uring);
        CHECK(loop.run(small_echo()) == 4);
    }
    CHECK(corio::to_string(corio::backend::automatic) == "automatic");
    CHECK(corio::to_string(corio::backend::epoll) == "epoll");
}

TEST_CASE("event_loop: CORIO_BACKEND overrides automatic only, and an unknown value is an error "
          "naming it",
          "[loop][backend]") {
    const auto r = corio::test::run_in_child([] {
        ::setenv("CORIO_BACKEND", "epoll", 1);
        {
            corio::event_loop loop;
            if (loop.backend() != corio::backend::epoll ||
                loop.backend_reason() != "CORIO_BACKEND=epoll")
                return 2;
        }
        {
            corio::event_loop loop{{.backend = corio::backend::io_uring}}; // explicit: kept
            if (loop.backend() != corio::backend::io_uring)
                return 3;
        }
        ::setenv("CORIO_BACKEND", "kqueue", 1);
        try {
            corio::event_loop loop;
        } catch (const std::invalid_argument& e) {
            std::fprintf(stderr, "%s", e.what());
            return 0;
        }
        return 4;
    });
    INFO(r.err);
    CHECK(r.exit_code == 0);
    CHECK(r.err.find("CORIO_BACKEND=kqueue is not one of io_uring, epoll, auto") !=
          std::string::npos);
}

TEST_CASE("event_loop: probes the kernel's operations at start-up", "[loop][io_uring]") {
    corio::event_loop loop{{.backend = corio::backend::io_uring}};
    CHECK(loop.io_ring().supports(corio::io::op_kind::nop));
    CHECK(loop.io_ring().supports(corio::io::op_kind::cancel));
    const char* missing = nullptr;
    CHECK(loop.io_ring().supports_all(missing));
}

TEST_CASE("event loop: an orphan that ends in a posted callback does not stall the drain",
          "[loop][orphan]") {
    // The drain waits for the orphan; its end arrives from another thread through post. The
    // turn that runs that callback has nothing left to wait for and must not block.
    corio::test::watchdog dog{20};
    corio::event_loop loop;
    loop.adopt_orphan();
    bool was_sleeping = false;
    const pid_t loop_tid = ::gettid();
    std::thread other([&loop, &was_sleeping, loop_tid] {
        was_sleeping = wait_until_sleeping(loop_tid); // the drain is blocked waiting
        loop.post([&loop] { loop.orphan_finished(); });
    });
    loop.cancel_and_drain();
    other.join();
    CHECK(was_sleeping);
    CHECK(loop.in_flight() == 0);
}

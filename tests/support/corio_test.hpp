// SPDX-License-Identifier: MIT
// Test helpers: a coroutine test case on a fresh loop, lifetime counters.
#pragma once

#include "catch.hpp"
#include "skip.hpp"

#include <corio/corio.hpp>

#include <unistd.h>

#include <string>
#include <utility>

namespace corio::test {

/// Kills a test that hangs (a lost wake-up must fail, not stall CI).
class watchdog {
public:
    explicit watchdog(unsigned seconds) noexcept { ::alarm(seconds); }
    watchdog(const watchdog&) = delete;
    watchdog& operator=(const watchdog&) = delete;
    ~watchdog() { ::alarm(0); }
};

/// Counts live instances, constructions and destructions (cppcoro's `counted`).
struct counted {
    static inline int alive = 0;
    static inline int destroyed = 0;
    static void reset() noexcept { alive = destroyed = 0; }

    counted() noexcept { ++alive; }
    counted(const counted&) noexcept { ++alive; }
    counted(counted&&) noexcept { ++alive; }
    counted& operator=(const counted&) = default;
    counted& operator=(counted&&) = default;
    ~counted() {
        --alive;
        ++destroyed;
    }
};

/// The `what()` of the `E` that `fn` throws; fails the test when it throws nothing.
template <class E, class Fn>
std::string message_of(Fn fn) {
    try {
        fn();
    } catch (const E& e) {
        return e.what();
    }
    FAIL("no exception thrown");
    return {};
}

/// True when `text` contains `part`.
inline bool contains(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

/// Runs `main` on a fresh loop (optionally with a manual clock) under a watchdog.
template <class T>
T run(task<T> main, loop_options options = {}) {
    watchdog dog{60};
    return corio::run(std::move(main), options);
}

} // namespace corio::test

/// A coroutine test case on a loop with a manual clock: the body gets the clock as `clock`.
#define CLOCK_TEST_CASE(name, tags) CLOCK_TEST_CASE_IMPL(name, tags, __COUNTER__)
#define CLOCK_TEST_CASE_IMPL(name, tags, n) CLOCK_TEST_CASE_IMPL2(name, tags, n)
#define CLOCK_TEST_CASE_IMPL2(name, tags, n)                                                       \
    static ::corio::task<> clock_test_body_##n(::corio::manual_clock& clock);                      \
    TEST_CASE(name, tags) {                                                                        \
        ::corio::manual_clock clock;                                                               \
        ::corio::test::run(clock_test_body_##n(clock), {.clock = &clock});                         \
    }                                                                                              \
    static ::corio::task<> clock_test_body_##n([[maybe_unused]] ::corio::manual_clock& clock)

/// A coroutine test case about the io_uring backend itself (ring flags, provided buffers, the
/// torturing ring): it runs on io_uring whatever CORIO_BACKEND says (the environment only
/// overrides `backend::automatic`).
#define URING_TEST_CASE(name, tags) URING_TEST_CASE_IMPL(name, tags, __COUNTER__)
#define URING_TEST_CASE_IMPL(name, tags, n) URING_TEST_CASE_IMPL2(name, tags, n)
#define URING_TEST_CASE_IMPL2(name, tags, n)                                                       \
    static ::corio::task<> uring_test_body_##n();                                                  \
    TEST_CASE(name, tags) {                                                                        \
        ::corio::test::run(uring_test_body_##n(), {.backend = ::corio::backend::io_uring});        \
    }                                                                                              \
    static ::corio::task<> uring_test_body_##n()

/// Skips the running test (a kernel feature or a peer program is missing), visibly: ctest
/// reports it as "Skipped" (the process exits with `skip_exit_code`, its SKIP_RETURN_CODE), and
/// CI fails on any skip. Catch2 v3 has SKIP; with v2 a skip is a warning plus that exit code
/// (support/skip.hpp, support/catch_main.cpp). The same inside a coroutine test body.
#if defined(CORIO_CATCH2_V3)
#define CORIO_SKIP(msg) SKIP(msg)
#define CORIO_CO_SKIP(msg) SKIP(msg)
#else
#define CORIO_SKIP(msg)                                                                            \
    do {                                                                                           \
        WARN("SKIPPED: " << msg);                                                                  \
        ::corio::test::skipped() = true;                                                           \
        return;                                                                                    \
    } while (false)
#define CORIO_CO_SKIP(msg)                                                                         \
    do {                                                                                           \
        WARN("SKIPPED: " << msg);                                                                  \
        ::corio::test::skipped() = true;                                                           \
        co_return;                                                                                 \
    } while (false)
#endif

/// A test case whose body is a coroutine run on a fresh loop: `CORIO_TEST_CASE("x", "[t]") {
/// co_await ...; }`.
#define CORIO_TEST_CASE(name, tags) CORIO_TEST_CASE_IMPL(name, tags, __COUNTER__)
#define CORIO_TEST_CASE_IMPL(name, tags, n) CORIO_TEST_CASE_IMPL2(name, tags, n)
#define CORIO_TEST_CASE_IMPL2(name, tags, n)                                                       \
    static ::corio::task<> corio_test_body_##n();                                                  \
    TEST_CASE(name, tags) { ::corio::test::run(corio_test_body_##n()); }                           \
    static ::corio::task<> corio_test_body_##n()

// SPDX-License-Identifier: MIT
#pragma once

namespace corio::detail {

/// A thread_local `T` reached through an out-of-line, opaque function. Every thread_local
/// that corio reads from code a coroutine may run goes through one of these.
///
/// **Why**: a coroutine may resume on another thread than the one it suspended on (switch_to,
/// spawn_on, a channel hand-off). Compilers treat the address of a thread_local as constant
/// within a function, and a coroutine body is one function: clang 16 at -O1 computes it once
/// and reads the first thread's variable after the coroutine moved (a switch_to test saw
/// `event_loop::current()` return the loop it had left). A call that is neither inlined nor
/// free of side effects (the empty asm) is made again after every suspension, on the thread
/// that runs then. `Tag` tells apart two slots of the same type.
template <class T, class Tag>
struct per_thread {
    [[gnu::noinline]] static T& get() noexcept {
        static thread_local T value{};
        asm volatile("" ::: "memory");
        return value;
    }
};

} // namespace corio::detail

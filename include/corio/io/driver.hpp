// SPDX-License-Identifier: MIT
#pragma once

#include <corio/io/operation_kind.hpp>

#include <linux/time_types.h>

#include <cstdint>
#include <string_view>
#include <vector>

struct io_uring_buf_ring; // (liburing's: the layout of a ring of provided buffers)

namespace corio {

/// How an event loop talks to the kernel (`loop_options::backend`).
enum class backend : std::uint8_t {
    /// io_uring when the ring can be set up and supports every operation corio needs, epoll
    /// otherwise (the default; `CORIO_BACKEND=epoll|io_uring|auto` in the environment
    /// overrides it for every loop of the process).
    automatic,
    /// io_uring, or a `std::system_error` saying why not.
    io_uring,
    /// epoll, even where io_uring works.
    epoll,
};

/// "automatic", "io_uring" or "epoll".
[[nodiscard]] constexpr std::string_view to_string(backend b) noexcept {
    switch (b) {
    case backend::io_uring: return "io_uring";
    case backend::epoll: return "epoll";
    case backend::automatic: break;
    }
    return "automatic";
}

} // namespace corio

namespace corio::io {

/// One completion, copied out of the kernel's queue (or produced by the epoll driver), so
/// that dispatching it cannot race with collecting more.
struct cqe_record {
    completion* target;
    int res;
    std::uint32_t flags;
};

/// What an event loop asks of the kernel, whichever way it is asked: io_uring (`io::ring`) or
/// epoll (`io::epoll_driver`). The operation kinds of `op_kind` are the contract: both
/// implement every kind with the same observable results, so nothing above `io/` knows which
/// one runs. Not thread-safe: it belongs to the loop's thread.
class driver {
public:
    driver() = default;
    driver(const driver&) = delete;
    driver& operator=(const driver&) = delete;
    virtual ~driver() = default;

    [[nodiscard]] virtual corio::backend kind() const noexcept = 0;

    /// Starts an operation of the loop's users; `c` receives its completion(s).
    virtual void start(op_kind kind, const op_args& args, completion* c) = 0;
    /// Starts an operation of the loop itself (its wake-up poll): never fault-injected.
    virtual void start_own(op_kind kind, const op_args& args, completion* c) = 0;
    /// Asks for the operation of `c` to end; it still completes through `c`, with -ECANCELED,
    /// or with its result if that came first.
    virtual void cancel(completion& c) = 0;

    /// Hands over what was started and collects what is ready, without waiting.
    virtual void submit_nowait() = 0;
    /// The same, waiting until something completes or `timeout` passes (null: no limit).
    virtual void submit_and_wait(const __kernel_timespec* timeout) = 0;
    /// Registers `br`, a ring of `entries` provided buffers (a power of two), as buffer group
    /// `group`: receives that select from the group (`op_args::buf_group`) take their buffers
    /// from it, and the completion names the buffer (`IORING_CQE_F_BUFFER`). Returns 0 or a
    /// negative errno. io_uring hands the ring to the kernel; the epoll driver takes buffers
    /// from it itself, as the kernel would.
    [[nodiscard]] virtual int register_buffer_ring(io_uring_buf_ring* br, unsigned entries,
                                                   std::uint16_t group) noexcept = 0;
    virtual void unregister_buffer_ring(std::uint16_t group) noexcept = 0;

    /// Moves the collected completions to `out`.
    virtual void reap(std::vector<cqe_record>& out) = 0;
    /// The vector the loop reaps into and dispatches from (completions that arrive while it
    /// dispatches are appended to it).
    virtual std::vector<cqe_record>& backlog() noexcept = 0;
};

} // namespace corio::io

// SPDX-License-Identifier: MIT
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include <linux/time_types.h>
#include <sys/socket.h>

namespace corio::io {

/// The loop's whole vocabulary with the kernel. Everything corio does with file descriptors is
/// one of these; a backend (io_uring or epoll: `io::driver`) implements exactly this set.
enum class op_kind : std::uint8_t {
    nop,
    timeout,
    read,
    write,
    recv,
    send,
    accept,
    connect,
    close,
    poll,
    cancel,
};

/// The arguments of one operation. Only the fields its kind reads are meaningful; pointers must
/// stay valid until the operation completes (they live in the awaiter, in the coroutine frame).
struct op_args {
    int fd = -1;
    void* buf = nullptr;           ///< read/write/recv/send buffer; connect/accept sockaddr
    std::uint32_t len = 0;         ///< buffer length; connect: sockaddr length
    std::uint64_t offset = 0;      ///< read/write file offset (-1: current position)
    int flags = 0;                 ///< recv/send/accept flags; poll: event mask
    socklen_t* addr_len = nullptr; ///< accept: in/out sockaddr length
    __kernel_timespec ts{};        ///< timeout: relative duration
    std::uint64_t target = 0;      ///< cancel: the user_data of the operation to cancel
    bool multishot = false;        ///< accept, poll, recv: keep posting completions
    /// recv: the provided-buffer group the kernel picks each completion's buffer from (-1:
    /// none, `buf` is the buffer). A multishot recv needs one.
    int buf_group = -1;
    /// The owner of `fd` (`new_owner_id()`; 0: none): an object that keeps `fd`, a stream
    /// socket or a listener, for its whole life. The epoll backend keeps such a descriptor
    /// registered between operations (edge-triggered) instead of arming a one-shot
    /// registration for every wait; io_uring ignores it.
    std::uint64_t owner = 0;
};

/// A process-unique, non-zero owner id for `op_args::owner`.
[[nodiscard]] inline std::uint64_t new_owner_id() noexcept {
    static std::atomic<std::uint64_t> next{1};
    return next.fetch_add(1, std::memory_order_relaxed);
}

/// Receives the completion(s) of an operation. Its address is the SQE's user_data. `complete`
/// runs on the loop's thread; for a multishot operation it runs once per completion, the last
/// one without `IORING_CQE_F_MORE` in `flags`.
struct completion {
    void (*complete)(completion*, int res, std::uint32_t flags) noexcept = nullptr;
    /// The driver's own record of the operation while it waits (the epoll driver's waiter),
    /// so that a cancel finds it at once; untouched by the io_uring driver.
    void* driver_data = nullptr;
};

} // namespace corio::io

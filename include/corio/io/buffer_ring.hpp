// SPDX-License-Identifier: MIT
#pragma once

#include <corio/io/driver.hpp>

#include <liburing.h>
#include <sys/mman.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <span>
#include <system_error>
#include <vector>

namespace corio::io {

/// A ring of provided buffers registered with the loop's driver (a buffer group): a receive
/// that selects from the group gets a buffer only when data arrives, so waiting readers hold no
/// memory, and one multishot receive serves a socket for its whole life. On io_uring the
/// kernel takes the buffers; on epoll the driver does, from the same ring. Each completion names
/// the buffer it filled (`IORING_CQE_BUFFER_SHIFT`); the reader copies the bytes out and gives
/// the buffer back.
///
/// **Lifetime**: no receive that selects from the group may be in flight when it is destroyed.
/// **Thread-safety**: the loop's thread.
class buffer_ring {
public:
    /// `count` buffers (a power of two, at most 32,768) of `size` bytes as group `group` of
    /// `d` (the loop's driver: `event_loop::io_driver()`).
    /// **Errors**: `std::system_error` when the driver refuses (io_uring before 5.19, or the
    /// group is taken) or memory runs out.
    buffer_ring(driver& d, std::uint16_t group, unsigned count, unsigned size)
        : driver_(d), memory_(std::size_t{count} * size), count_(count), size_(size),
          group_(group) {
        const std::size_t bytes = sizeof(io_uring_buf) * count;
        void* mem =
            ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
        if (mem == MAP_FAILED)
            throw std::system_error(errno, std::system_category(), "corio::io::buffer_ring mmap");
        br_ = static_cast<io_uring_buf_ring*>(mem);
        io_uring_buf_ring_init(br_);
        if (const int rc = driver_.register_buffer_ring(br_, count, group); rc != 0) {
            ::munmap(br_, bytes);
            throw std::system_error(-rc, std::system_category(),
                                    "corio::io::buffer_ring io_uring_register_buf_ring");
        }
        for (unsigned bid = 0; bid < count; ++bid)
            add(bid, static_cast<int>(bid));
        io_uring_buf_ring_advance(br_, static_cast<int>(count));
    }
    buffer_ring(const buffer_ring&) = delete;
    buffer_ring& operator=(const buffer_ring&) = delete;
    ~buffer_ring() {
        driver_.unregister_buffer_ring(group_);
        ::munmap(br_, sizeof(io_uring_buf) * count_);
    }

    [[nodiscard]] std::uint16_t group() const noexcept { return group_; }
    [[nodiscard]] unsigned buffer_size() const noexcept { return size_; }

    /// The first `n` bytes of buffer `bid` (from a completion's flags: `buffer_id(flags)`).
    [[nodiscard]] std::span<const std::byte> data(unsigned bid, std::size_t n) const noexcept {
        return std::span(memory_).subspan(std::size_t{bid} * size_, n);
    }
    /// Returns buffer `bid` to the kernel.
    void give_back(unsigned bid) noexcept {
        add(bid, 0);
        io_uring_buf_ring_advance(br_, 1);
    }

    /// The buffer a completion filled (valid when `flags` has `IORING_CQE_F_BUFFER`).
    [[nodiscard]] static unsigned buffer_id(std::uint32_t flags) noexcept {
        return flags >> IORING_CQE_BUFFER_SHIFT;
    }

private:
    void add(unsigned bid, int offset) noexcept {
        io_uring_buf_ring_add(br_, memory_.data() + std::size_t{bid} * size_, size_,
                              static_cast<unsigned short>(bid), io_uring_buf_ring_mask(count_),
                              offset);
    }

    driver& driver_;
    std::vector<std::byte> memory_;
    io_uring_buf_ring* br_ = nullptr;
    unsigned count_;
    unsigned size_;
    std::uint16_t group_;
};

} // namespace corio::io

// SPDX-License-Identifier: MIT
#pragma once

// The torturing ring: a test-only build switch (-DCORIO_TORTURE, CMake's CORIO_TORTURE option;
// without it this header declares nothing and costs nothing) that makes the loop's ring
// misbehave, deterministically from a seed, the ways a real kernel may: submissions refused
// (ENOMEM, EAGAIN), short reads and writes, operations ending with -EINTR or -ECANCELED
// before they did anything, io_uring_enter interrupted (EINTR), and a completion queue so
// small (16 entries) that it overflows all the time, which also makes the kernel end
// multishot operations. The library must answer every one with an exception or a retry:
// never a crash, a leak, a lost or double wake-up, or a hang. The ring also counts what each
// completion target has in the kernel and aborts on a completion for nothing in flight (a
// double completion) or on operations still in flight when it closes. `scripts/torture` runs
// the tests under it.
//
// Environment: CORIO_TORTURE_PERCENT (the chance of a fault at each decision; unset or 0: none,
// so a torture build runs the ordinary tests as they are; set, the ring is also the tiny one)
// and CORIO_TORTURE_SEED (default 1). Tests force one fault on the next operation with
// `force()`.

#if defined(CORIO_TORTURE)

#include <corio/detail/assert.hpp>
#include <corio/io/operation_kind.hpp>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <string>
#include <system_error>
#include <unordered_map>
#include <utility>
#include <vector>

namespace corio::io {

class torture {
public:
    /// What to do with an operation about to be submitted.
    enum class fault { none, refuse, interrupt, cancel };

    torture() noexcept {
        if (const char* s = std::getenv("CORIO_TORTURE_SEED"))
            state_ = std::strtoull(s, nullptr, 10) * 0x9E3779B97F4A7C15ULL + 1;
        if (const char* p = std::getenv("CORIO_TORTURE_PERCENT"))
            percent_ = static_cast<unsigned>(std::strtoul(p, nullptr, 10));
    }

    /// True when faults are on: the loop then gets the tiny ring.
    [[nodiscard]] bool active() const noexcept { return percent_ > 0; }

    /// Makes the next operation started (not a cancel or a close) meet `f`, whatever the seed
    /// says: for tests of one fault.
    void force(fault f) { forced_.push_back(f); }
    /// The faults injected so far (forced ones included).
    [[nodiscard]] std::size_t injected() const noexcept { return injected_; }

    /// Decides the fate of an operation (and may shorten a read or a write in `a`).
    fault on_start(op_kind kind, op_args& a) {
        if (kind == op_kind::cancel || kind == op_kind::close)
            return fault::none; // a lost close leaks a descriptor; a lost cancel is no fault
        if (!forced_.empty()) {
            const fault f = forced_.front();
            forced_.pop_front();
            injected_ += f != fault::none ? 1 : 0;
            return f;
        }
        if (hit()) {
            ++injected_;
            switch (next() % 3) {
            case 0: return fault::refuse;
            case 1: return fault::interrupt;
            default: return fault::cancel;
            }
        }
        const bool plain_io = kind == op_kind::read || kind == op_kind::write ||
                              kind == op_kind::recv || kind == op_kind::send;
        if (plain_io && !a.multishot && a.buf_group < 0 && a.len > 1 && hit())
            a.len = 1 + static_cast<std::uint32_t>(next() % (a.len - 1)); // a short one
        return fault::none;
    }

    /// The error a refused submission throws.
    [[nodiscard]] std::system_error refusal() {
        return {next() % 2 == 0 ? ENOMEM : EAGAIN, std::system_category(),
                "corio: io_uring submission (refused by CORIO_TORTURE)"};
    }

    /// Remembers that the completion of `target` (a NOP standing in for its operation) ends
    /// with `res`.
    void fake(const void* target, int res) { faked_.emplace_back(target, res); }
    /// The result a faked completion ends with, if `target`'s is one.
    bool take_fake(const void* target, int& res) noexcept {
        for (std::size_t i = 0; i < faked_.size(); ++i)
            if (faked_[i].first == target) {
                res = faked_[i].second;
                faked_[i] = faked_.back();
                faked_.pop_back();
                return true;
            }
        return false;
    }

    /// True when an io_uring_enter that may wait is "interrupted" instead (nothing submitted).
    bool interrupt_enter() noexcept { return hit(); }

    /// Accounting of what the kernel holds for each completion target: an SQE was prepared
    /// for `target`...
    void submitted(const void* target) { ++in_kernel_[target]; }
    /// ...and its last completion arrived (a multishot's without IORING_CQE_F_MORE).
    void finished(const void* target) noexcept {
        auto it = in_kernel_.find(target);
        CORIO_ASSERT(it != in_kernel_.end(), "CORIO_TORTURE: a completion arrived for a target "
                                             "with no operation in flight (completed twice)");
        if (--it->second == 0)
            in_kernel_.erase(it);
    }
    /// At the ring's end: nothing may still be in the kernel.
    void check_drained() const noexcept {
        CORIO_ASSERT(in_kernel_.empty(), "CORIO_TORTURE: the ring closes with operations still "
                                         "in flight (their completions were never dispatched)");
    }

private:
    bool hit() noexcept { return percent_ > 0 && next() % 100 < percent_; }
    std::uint64_t next() noexcept { // xorshift64*
        state_ ^= state_ >> 12;
        state_ ^= state_ << 25;
        state_ ^= state_ >> 27;
        return state_ * 0x2545F4914F6CDD1DULL;
    }

    std::vector<std::pair<const void*, int>> faked_;
    std::deque<fault> forced_;
    std::unordered_map<const void*, std::size_t> in_kernel_;
    std::size_t injected_ = 0;
    std::uint64_t state_ = 0x9E3779B97F4A7C16ULL;
    unsigned percent_ = 0;
};

} // namespace corio::io

#endif

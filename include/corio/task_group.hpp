// SPDX-License-Identifier: MIT
#pragma once

#include <corio/child_scope.hpp>
#include <corio/io/loop_affinity.hpp>
#include <corio/task.hpp>

#include <memory>
#include <stdexcept>
#include <utility>

namespace corio {

/// A scope of concurrent tasks (Python 3.11's asyncio.TaskGroup): `spawn` starts children,
/// `co_await join()` waits for all of them. The first child to fail cancels the others, and
/// `join` rethrows that first error once every child has unwound.
///
/// **Lifetime**: always `co_await join()` before the group goes out of scope. If it is
/// destroyed with children still running (an exception skipped the join), they are cancelled
/// and left to unwind on their own (they must not use anything of the frame that is gone), and
/// their failures go to the loop's exception handler.
/// **Cancellation**: cancelling the coroutine in `join` cancels every child, waits for them,
/// then throws `cancelled_error`.
/// **Thread-safety**: one loop, the first that uses it (from another, a `std::logic_error`).
class task_group {
public:
    task_group()
        : scope_(std::make_shared<detail::child_scope>(
              detail::child_scope::policy{.cancel_on_error = true})) {}
    task_group(const task_group&) = delete;
    task_group& operator=(const task_group&) = delete;
    ~task_group() {
        if (scope_->running() > 0) {
            scope_->orphan();
            scope_->cancel_all();
        }
    }

    /// Starts `t` as a child of the group (it first runs on the next loop turn).
    /// **Errors**: `std::logic_error` once a child has failed (the group is shutting down).
    void spawn(task<> t) {
        affinity_.check("corio::task_group");
        if (scope_->failed())
            throw std::logic_error("corio::task_group::spawn: the group is shutting down (a "
                                   "child failed)");
        scope_->start([&](std::size_t slot) {
            return detail::run_child<void>(std::move(t), scope_, slot, nullptr);
        });
    }

    /// Children still running.
    [[nodiscard]] std::size_t running() const noexcept { return scope_->running(); }

    /// Waits for every child (also those spawned meanwhile), then rethrows the first failure.
    [[nodiscard]] task<> join() {
        affinity_.check("corio::task_group");
        while (scope_->running() > 0)
            co_await scope_->next_completion();
        scope_->rethrow();
    }

private:
    std::shared_ptr<detail::child_scope> scope_;
    detail::loop_affinity affinity_;
};

} // namespace corio

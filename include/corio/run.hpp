// SPDX-License-Identifier: MIT
#pragma once

#include <corio/io/event_loop.hpp>
#include <corio/task.hpp>

#include <stdexcept>
#include <utility>

namespace corio {

/// Runs `main` on a new event loop on this thread and returns its result (asyncio.run): when
/// `main` finishes (or throws), every task it left running is cancelled and the loop runs until
/// they have unwound, then the loop is closed.
/// **Errors**: rethrows `main`'s exception; `std::logic_error` when called from inside a
/// running loop (await the task instead) or on a thread that already has a loop.
template <class T>
T run(task<T> main, loop_options options = {}) {
    if (event_loop* current = event_loop::current_or_null()) {
        if (current->running())
            throw std::logic_error("corio::run: called from inside a running event loop (run "
                                   "cannot nest; co_await the task instead)");
        throw std::logic_error("corio::run: this thread already has an event loop; use its "
                               "run() instead");
    }
    event_loop loop{options};
    return detail::event_loop_access::run_and_drain(loop, std::move(main));
}

} // namespace corio

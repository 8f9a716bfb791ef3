// SPDX-License-Identifier: MIT
#pragma once

#include <exception>

namespace corio {

/// Thrown by the `co_await` that was cancelled (asyncio's `CancelledError`).
///
/// Catching it consumes the cancellation request: the task may go on (and await again), as in
/// asyncio. Letting it escape ends the task as cancelled.
class cancelled_error : public std::exception {
public:
    [[nodiscard]] const char* what() const noexcept override {
        return "corio: operation cancelled";
    }
};

} // namespace corio

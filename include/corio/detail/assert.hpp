// SPDX-License-Identifier: MIT
#pragma once

#include <cstdio>
#include <cstdlib>

/// Checks a precondition whose violation cannot be reported by an exception (a destructor, a
/// noexcept path). Prints what was violated and where, then aborts. Always on: the conditions
/// it guards would otherwise be undefined behaviour.
#define CORIO_ASSERT(cond, msg)                                                                    \
    do {                                                                                           \
        if (!(cond)) [[unlikely]]                                                                  \
            ::corio::detail::assert_failed(#cond, msg, __FILE__, __LINE__);                        \
    } while (false)

namespace corio::detail {

[[noreturn]] inline void assert_failed(const char* cond, const char* msg, const char* file,
                                       int line) noexcept {
    std::fprintf(stderr, "corio: %s\n  (assertion `%s` failed at %s:%d)\n", msg, cond, file, line);
    std::fflush(stderr);
    std::abort();
}

} // namespace corio::detail

// SPDX-License-Identifier: MIT
// Visible skips with Catch2 v2, which has none: a skipped case sets the flag, and main() turns it
// into the exit code ctest knows as "Skipped" (SKIP_RETURN_CODE, 4 as Catch2 v3's).
#pragma once

namespace corio::test {

inline constexpr int skip_exit_code = 4;

/// True once a case of this process skipped.
inline bool& skipped() noexcept {
    static bool flag = false;
    return flag;
}

} // namespace corio::test

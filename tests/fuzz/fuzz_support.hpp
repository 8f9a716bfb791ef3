// SPDX-License-Identifier: MIT
// What corio's libFuzzer targets share.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace corio::fuzz {

/// A broken invariant: says which and stops the run (libFuzzer keeps the input as a crash).
[[noreturn]] inline void fail(std::string_view what, std::string_view detail) {
    std::fprintf(stderr, "corio fuzz: %.*s: %.*s\n", static_cast<int>(what.size()), what.data(),
                 static_cast<int>(detail.size()), detail.data());
    std::abort();
}

} // namespace corio::fuzz

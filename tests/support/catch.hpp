// SPDX-License-Identifier: MIT
#pragma once

// Catch2 v3 where it is installed, else v2 (Debian 12 ships 2.13); tests/CMakeLists.txt decides.
#if defined(CORIO_CATCH2_V3)
#include <catch2/catch_all.hpp>
#else
#include <catch2/catch.hpp>
#endif

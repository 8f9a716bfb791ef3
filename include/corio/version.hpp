// corio: a header-only C++20 coroutine runtime for Linux on io_uring.
// SPDX-License-Identifier: MIT
#pragma once

/// corio's version, the single source CMake reads it from.
#define CORIO_VERSION_MAJOR 0
#define CORIO_VERSION_MINOR 1
#define CORIO_VERSION_PATCH 0
#define CORIO_VERSION_STRING "0.1.0"

// SPDX-License-Identifier: MIT
#pragma once

#include <corio/detail/cancelled_error.hpp>

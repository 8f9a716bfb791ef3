// SPDX-License-Identifier: MIT
#pragma once

/// Everything corio's core offers: the loop, tasks, spawning, sleeping, thread offload.

#include <corio/cancelled_error.hpp>
#include <corio/io/event_loop.hpp>
#include <corio/io/manual_clock.hpp>
#include <corio/io/multishot.hpp>
#include <corio/io/operation.hpp>
#include <corio/run.hpp>
#include <corio/sleep.hpp>
#include <corio/spawn.hpp>
#include <corio/task.hpp>
#include <corio/to_thread.hpp>
#include <corio/version.hpp>

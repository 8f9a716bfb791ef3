// SPDX-License-Identifier: MIT
// corio::redis: a Redis client on the loop (redis-py's asyncio client), RESP parsed by
// hiredis's reader, and on it what many processes share: a rate limiter, a work queue and a set.
// Link the corio::redis target (it brings hiredis).
#pragma once

#include <corio/redis/client.hpp>
#include <corio/redis/error.hpp>
#include <corio/redis/rate_limiter.hpp>
#include <corio/redis/reply.hpp>
#include <corio/redis/set.hpp>
#include <corio/redis/work_queue.hpp>

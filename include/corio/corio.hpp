// SPDX-License-Identifier: MIT
#pragma once

/// Everything corio's core offers: the loop, tasks, spawning, sleeping, thread offload, and the
/// concurrency toolkit (gather, timeout, task groups, semaphore, mutex, event, bounded queue,
/// rate limiter).

#include <corio/bounded_queue.hpp>
#include <corio/cancelled_error.hpp>
#include <corio/channel.hpp>
#include <corio/event.hpp>
#include <corio/gather.hpp>
#include <corio/io/event_loop.hpp>
#include <corio/io/manual_clock.hpp>
#include <corio/io/multishot.hpp>
#include <corio/io/operation.hpp>
#include <corio/mutex.hpp>
#include <corio/net/address.hpp>
#include <corio/net/buffered_stream.hpp>
#include <corio/net/resolver.hpp>
#include <corio/net/tcp_listener.hpp>
#include <corio/net/tcp_stream.hpp>
#include <corio/rate_limiter.hpp>
#include <corio/run.hpp>
#include <corio/runtime.hpp>
#include <corio/semaphore.hpp>
#include <corio/sleep.hpp>
#include <corio/spawn.hpp>
#include <corio/task.hpp>
#include <corio/task_group.hpp>
#include <corio/timeout.hpp>
#include <corio/to_thread.hpp>
#include <corio/version.hpp>

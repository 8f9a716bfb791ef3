// SPDX-License-Identifier: MIT
#pragma once

#include <corio/detail/promise_base.hpp>
#include <corio/io/event_loop.hpp>
#include <corio/spawn.hpp>
#include <corio/task.hpp>

#include <pthread.h>
#include <sched.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <exception>
#include <future>
#include <latch>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace corio {

/// How a `runtime` is built. Designated initializers:
/// `corio::runtime rt{{.threads = 4, .pin = true}}`.
struct runtime_options {
    /// Loops, each on a thread of its own; 0 means one per CPU the process may use (its
    /// affinity mask, so a container's CPU set is respected).
    std::size_t threads = 0;
    /// Pins loop i to the i-th CPU of the process's affinity mask (wrapping around).
    bool pin = false;
    /// How each loop is built.
    loop_options loop = {};
};

/// Thread-per-core: one event loop per thread, nothing shared on the hot path (Seastar's and
/// monoio's model). Work crosses loops only when asked to, through `spawn_on`, `switch_to`
/// and `channel`; everything else (sockets, semaphores, clients, task groups) belongs to the
/// loop that made it.
///
/// The loops run from construction to destruction. `run` and `run_on_each` are called from a
/// thread outside the runtime (typically `main`) and block it until their work is done.
///
/// **Lifetime**: destroying the runtime cancels every task on every loop, waits until all have
/// unwound (tasks moving between loops included), then stops and joins the threads.
/// **Errors**: the constructor rethrows the first loop's setup failure (`std::system_error`
/// for a backend that cannot be set up).
class runtime {
public:
    explicit runtime(runtime_options options = {}) : options_(options) {
        const std::vector<int> cpus = allowed_cpus();
        std::size_t n = options_.threads != 0 ? options_.threads : cpus.size();
        if (n == 0)
            n = 1;
        slots_ = std::vector<slot>(n);
        std::latch ready{static_cast<std::ptrdiff_t>(n)};
        for (std::size_t i = 0; i < n; ++i) {
            const int cpu = options_.pin && !cpus.empty() ? cpus[i % cpus.size()] : -1;
            slots_[i].thread = std::thread([this, i, cpu, &ready] { thread_main(i, cpu, ready); });
        }
        ready.wait();
        for (slot& s : slots_)
            if (s.error) {
                std::exception_ptr e = s.error;
                shut_down();
                std::rethrow_exception(e);
            }
    }

    runtime(const runtime&) = delete;
    runtime& operator=(const runtime&) = delete;

    ~runtime() {
        drain();
        shut_down();
    }

    /// The number of loops.
    [[nodiscard]] std::size_t size() const noexcept { return slots_.size(); }

    /// Loop `i` (0 <= i < size()).
    /// **Errors**: `std::out_of_range` naming `i` and the size.
    [[nodiscard]] event_loop& loop(std::size_t i) const {
        if (i >= slots_.size())
            throw std::out_of_range("corio::runtime::loop: no loop " + std::to_string(i) +
                                    " in a runtime of " + std::to_string(slots_.size()));
        return *slots_[i].loop;
    }

    /// Runs `main` on loop 0 and returns its value (`corio::run` for the runtime): when it
    /// finishes, every task it left running on any loop is cancelled and awaited. Blocks the
    /// calling thread meanwhile.
    /// **Errors**: rethrows `main`'s exception; `std::logic_error` when called on a thread
    /// that runs an event loop (it would block that loop: `co_await spawn_on(...)` instead).
    template <class T>
    T run(task<T> main) {
        refuse_loop_thread("corio::runtime::run");
        std::promise<T> result;
        std::future<T> done = result.get_future();
        spawn_on(loop(0), report_to(std::move(main), result)).detach();
        done.wait();
        drain();
        return done.get();
    }

    /// Runs `fn(i)`, a function returning a `task<>`, as one task on each loop i and waits for
    /// all of them (a task group across loops): the first to fail cancels the others, and its
    /// exception is rethrown once all have finished.
    /// **Errors**: as `run`.
    template <class Fn>
    void run_on_each(Fn fn) {
        run(on_each(*this, fn));
    }

private:
    struct slot {
        std::thread thread;
        event_loop* loop = nullptr;
        std::exception_ptr error;
    };

    void thread_main(std::size_t i, int cpu, std::latch& ready) {
        std::optional<event_loop> loop;
        try {
            if (cpu >= 0)
                pin_to(cpu);
            loop.emplace(options_.loop);
            loop->tasks().transit = &transit_;
            slots_[i].loop = &*loop;
        } catch (...) {
            slots_[i].error = std::current_exception();
        }
        ready.count_down();
        if (!loop) {
            release_.wait();
            return;
        }
        loop->run_forever();
        // Other threads may still be posting to this loop (the stop of the next one races with
        // nothing, but `post` touches the loop after queueing): it lives until all are done.
        release_.wait();
        // The runtime drained every loop before stopping them: what is left here is local (a
        // cancellation message for a finished task), and the destructor's drain handles it.
        loop.reset();
    }

    /// Cancels every task of every loop until none is left anywhere, tasks on their way from
    /// one loop to another included.
    void drain() {
        auto pause = std::chrono::microseconds(20);
        for (;;) {
            // Each round waits for its own requests to have run, so none is left behind to
            // cancel the tasks of a later `run`.
            std::atomic<std::size_t> pending{0};
            for (slot& s : slots_)
                if (s.loop != nullptr) {
                    pending.fetch_add(1, std::memory_order_relaxed);
                    s.loop->post([l = s.loop, &pending] {
                        l->cancel_all_tasks();
                        pending.fetch_sub(1, std::memory_order_release);
                        pending.notify_one();
                    });
                }
            for (std::size_t p = 0; (p = pending.load(std::memory_order_acquire)) != 0;)
                pending.wait(p, std::memory_order_acquire);
            if (idle())
                return;
            std::this_thread::sleep_for(pause);
            pause = std::min(pause * 2, std::chrono::microseconds(2000));
        }
    }

    /// True when no loop has a task and none is travelling. A task counts on its old loop
    /// until after it counts as moving, and as moving until after it counts on its new loop
    /// and as an arrival; so a snapshot that sees no task, nothing moving before and after,
    /// and no arrival meanwhile, missed none.
    [[nodiscard]] bool idle() const {
        const std::size_t arrived = transit_.arrived.load(std::memory_order_seq_cst);
        if (transit_.moving.load(std::memory_order_seq_cst) != 0)
            return false;
        for (const slot& s : slots_)
            if (s.loop != nullptr &&
                s.loop->tasks().live_count.load(std::memory_order_seq_cst) != 0)
                return false;
        return transit_.moving.load(std::memory_order_seq_cst) == 0 &&
               transit_.arrived.load(std::memory_order_seq_cst) == arrived;
    }

    void shut_down() {
        for (slot& s : slots_)
            if (s.loop != nullptr)
                s.loop->stop();
        release_.count_down();
        for (slot& s : slots_)
            if (s.thread.joinable())
                s.thread.join();
    }

    void refuse_loop_thread(const char* who) const {
        if (event_loop* here = event_loop::current_or_null(); here != nullptr && here->running())
            throw std::logic_error(std::string(who) +
                                   ": called on a thread that runs an event loop; it would "
                                   "block that loop (co_await spawn_on(...) instead)");
    }

    template <class T>
    static task<> report_to(task<T> main, std::promise<T>& result) {
        try {
            if constexpr (std::is_void_v<T>) {
                co_await std::move(main);
                result.set_value();
            } else {
                result.set_value(co_await std::move(main));
            }
        } catch (...) {
            result.set_exception(std::current_exception());
        }
    }

    template <class Fn>
    static task<> on_each(runtime& rt, Fn& fn) {
        std::vector<join_handle<>> tasks;
        tasks.reserve(rt.size());
        for (std::size_t i = 0; i < rt.size(); ++i)
            tasks.push_back(spawn_on(rt.loop(i), task<>(fn(i))));
        std::exception_ptr first;
        for (join_handle<>& t : tasks) {
            try {
                co_await t;
            } catch (...) {
                if (!first) {
                    first = std::current_exception();
                    for (join_handle<>& other : tasks)
                        other.cancel();
                }
            }
        }
        if (first)
            std::rethrow_exception(first);
    }

    static std::vector<int> allowed_cpus() {
        std::vector<int> cpus;
        cpu_set_t set;
        CPU_ZERO(&set);
        if (::sched_getaffinity(0, sizeof set, &set) == 0) {
            for (int c = 0; c < CPU_SETSIZE; ++c)
                if (CPU_ISSET(c, &set))
                    cpus.push_back(c);
        }
        if (cpus.empty())
            for (unsigned c = 0; c < std::max(1u, std::thread::hardware_concurrency()); ++c)
                cpus.push_back(static_cast<int>(c));
        return cpus;
    }

    static void pin_to(int cpu) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        if (const int e = ::pthread_setaffinity_np(::pthread_self(), sizeof set, &set); e != 0)
            throw std::system_error(e, std::system_category(),
                                    "corio::runtime: pinning a loop to CPU " + std::to_string(cpu));
    }

    runtime_options options_;
    std::vector<slot> slots_;
    detail::transit_counts transit_;
    std::latch release_{1}; // the loops may be destroyed: nobody posts to them any more
};

} // namespace corio

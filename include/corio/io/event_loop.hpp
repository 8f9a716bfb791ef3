// SPDX-License-Identifier: MIT
#pragma once

#include <corio/detail/assert.hpp>
#include <corio/detail/blocking_pool.hpp>
#include <corio/detail/per_thread.hpp>
#include <corio/detail/promise_base.hpp>
#include <corio/detail/ready_queue.hpp>
#include <corio/detail/timer_heap.hpp>
#include <corio/io/driver.hpp>
#include <corio/io/epoll.hpp>
#include <corio/io/manual_clock.hpp>
#include <corio/io/ring.hpp>

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <coroutine>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace corio {

/// How an `event_loop` is built. Designated initializers: `event_loop loop{{.clock = &c}}`.
struct loop_options {
    /// Submission queue entries (a full queue is flushed, so this bounds a batch, not the
    /// operations in flight).
    unsigned sq_entries = 1024;
    /// Completion queue entries; 0 means 16 x `sq_entries`. Sized far above the SQ so that many
    /// operations in flight do not overflow it.
    unsigned cq_entries = 0;
    /// A manual clock for deterministic tests; null means `std::chrono::steady_clock`.
    manual_clock* clock = nullptr;
    /// Upper bound of `to_thread` worker threads; 0 means min(32, cores + 4) (asyncio's).
    unsigned blocking_threads = 0;
    /// io_uring, epoll, or the first of them that works here (see `corio::backend`);
    /// `CORIO_BACKEND` in the environment overrides `automatic`.
    corio::backend backend = corio::backend::automatic;
};

class event_loop;

namespace detail {
/// What `corio::run` needs of the loop beyond its public interface.
struct event_loop_access {
    template <class Task>
    static typename Task::value_type run_and_drain(event_loop& loop, Task main);
};
} // namespace detail

/// One event loop per thread (asyncio's event loop, uvloop's role): a FIFO ready queue of
/// coroutines, user-space timers whose nearest deadline bounds each wait, and a driver that
/// talks to the kernel: io_uring, with batched submission (one `io_uring_enter` per turn
/// submits everything prepared and waits), or epoll where io_uring is refused (`backend()`).
///
/// **Thread-safety**: everything but `post` must be called on the thread that created the
/// loop; a thread has at most one loop (`current()`).
/// **Lifetime**: destroying a loop that still has tasks cancels them and runs the loop until
/// they have unwound; destroying it from inside its own `run` is a fatal error (assertion).
class event_loop {
public:
    using clock = std::chrono::steady_clock;
    using time_point = clock::time_point;
    using duration = clock::duration;

    /// Sets up the driver (the ring, see `io::ring`, or epoll: `options.backend`) and makes
    /// this the thread's current loop.
    /// **Errors**: `std::logic_error` if the thread already has a loop; `std::system_error`
    /// when the backend asked for cannot be set up (for io_uring its message says why:
    /// seccomp, sysctl, ...); `std::invalid_argument` for a `CORIO_BACKEND` it does not know.
    explicit event_loop(loop_options options = {})
        : options_(options),
          pool_(options.blocking_threads != 0
                    ? options.blocking_threads
                    : std::min(32u, std::max(1u, std::thread::hardware_concurrency()) + 4)),
          owner_(std::this_thread::get_id()) {
        if (current_slot() != nullptr)
            throw std::logic_error("corio::event_loop: this thread already has an event loop "
                                   "(one loop per thread)");
        choose_driver();
        wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (wake_fd_ < 0)
            throw std::system_error(errno, std::system_category(), "corio: eventfd");
        tasks_.exception_handler = default_exception_handler;
        tasks_.remote = {this, &arrive_from_afar, &cancel_from_afar};
        wake_.complete = &on_wake;
        arm_wake();
        current_slot() = this;
        detail::current_task_registry() = &tasks_;
    }

    event_loop(const event_loop&) = delete;
    event_loop& operator=(const event_loop&) = delete;

    ~event_loop() {
        CORIO_ASSERT(!running_, "event_loop destroyed while it is running (from inside one of "
                                "its own tasks)");
        CORIO_ASSERT(owner_ == std::this_thread::get_id(),
                     "event_loop destroyed on a thread other than the one that created it");
        try {
            cancel_and_drain();
            while (!services_.empty())
                services_.pop_back();
            CORIO_ASSERT(in_flight_ == 0, "event_loop destroyed with I/O operations still in "
                                          "flight that no task owns; await or cancel them first");
            pool_.stop();
            // The wake-up poll is the loop's own operation: cancel it and wait for its CQE.
            closing_ = true;
            cancel_io(wake_);
            while (wake_armed_) {
                io_->submit_and_wait(nullptr);
                dispatch_completions();
            }
        } catch (const std::exception& e) {
            // The ring failed under us: frames may still be in the kernel's hands, so going on
            // to free them would be worse than stopping here.
            std::fprintf(stderr, "corio: %s\n", e.what());
            CORIO_ASSERT(false, "event_loop could not drain its work at destruction");
        }
        remote_.clear(); // posted but never run: dropped
        ::close(wake_fd_);
        current_slot() = nullptr;
        detail::current_task_registry() = nullptr;
    }

    /// The loop of the calling thread.
    /// **Errors**: `std::logic_error` naming `who` when the thread has no loop.
    static event_loop& current(const char* who = "corio::event_loop::current") {
        event_loop* loop = current_slot();
        if (loop == nullptr)
            throw std::logic_error(std::string(who) +
                                   ": no event loop on this thread (start one with corio::run "
                                   "or corio::event_loop)");
        return *loop;
    }
    /// The loop of the calling thread, or null.
    static event_loop* current_or_null() noexcept { return current_slot(); }

    /// Runs the loop until `main` finishes and returns its result (asyncio's
    /// `run_until_complete`); tasks it spawned and left running stay on the loop. Call it again
    /// with another task, or let `corio::run` / the destructor cancel and drain them.
    /// **Errors**: rethrows `main`'s exception; `std::logic_error` when called while the loop
    /// runs or from another thread.
    template <class Task>
    typename Task::value_type run(Task main) {
        return run_main(std::move(main), /*drain=*/false);
    }

    /// Runs one turn of the loop: what is ready, then completions and due timers (waiting only
    /// when nothing is ready). For embedding the loop in another one, and for tests that stop a
    /// scenario after k steps.
    /// **Errors**: `std::logic_error` when the loop is already running.
    void run_once() {
        running_scope running{*this, "corio::event_loop::run_once"};
        turn();
    }

    /// Cancels every task still alive and runs the loop until all have finished and no
    /// operation is in flight (the epilogue of asyncio.run). Tasks spawned meanwhile are
    /// cancelled too.
    void cancel_and_drain() {
        running_scope running{*this, "corio::event_loop::cancel_and_drain"};
        drain();
    }

    /// Runs the loop until `stop()` is called (asyncio's `run_forever`): the way a thread that
    /// only serves its loop spends its life (`corio::runtime`'s threads).
    /// **Errors**: `std::logic_error` when called while the loop runs or from another thread.
    void run_forever() {
        running_scope running{*this, "corio::event_loop::run_forever"};
        while (!std::exchange(stop_requested_, false))
            turn();
    }
    /// Makes `run_forever` return after its current turn (or at once, if it is called later).
    /// **Thread-safety**: any thread, while the loop exists.
    void stop() {
        post([this] { stop_requested_ = true; });
    }

    /// Requests the cancellation of every task of this loop, without waiting for them.
    void cancel_all_tasks() noexcept {
        tasks_.live.for_each([](detail::promise_base& p) {
            if (!p.cancel_requested())
                p.request_cancel();
        });
    }

    /// Runs `fn` on the loop's thread, soon (asyncio's `call_soon_threadsafe`). Exceptions it
    /// throws go to the exception handler. Callbacks still queued when the loop is destroyed
    /// are dropped without running.
    /// **Thread-safety**: callable from any thread while the loop exists.
    void post(std::function<void()> fn) {
        bool was_empty = false;
        {
            std::lock_guard lock(remote_mutex_);
            was_empty = remote_empty();
            remote_.push_back(std::move(fn));
            if (was_empty)
                remote_pending_.store(true, std::memory_order_release);
        }
        if (was_empty) // one wake-up per batch, not per call
            wake_up();
    }

    /// Replaces where exceptions of detached tasks that nobody joined go (stderr by default).
    void set_exception_handler(std::function<void(std::exception_ptr)> handler) {
        tasks_.exception_handler = handler ? std::move(handler) : default_exception_handler;
    }

    /// Hands an exception nobody else will see to the exception handler (asyncio's
    /// `loop.call_exception_handler`); a `cancelled_error` is not reported.
    void call_exception_handler(const std::exception_ptr& e) const noexcept { tasks_.report(e); }

    /// The loop's time: the manual clock's when one was given, else `steady_clock`'s.
    [[nodiscard]] time_point now() noexcept {
        last_now_ = options_.clock != nullptr ? options_.clock->now() : clock::now();
        return last_now_;
    }
    /// The loop's time as it last read it: never later than `now()`, and free. The loop reads
    /// the clock after every wait and at every turn with timers, so it lags `now()` by at most
    /// the work of one turn: good enough for deadlines measured in seconds. A deadline at or
    /// before it is due (a zero sleep uses it, and costs no clock read at all).
    [[nodiscard]] time_point last_now() const noexcept { return last_now_; }

    /// True while `run` (or the drain) executes.
    [[nodiscard]] bool running() const noexcept { return running_; }
    /// The number of spawned tasks that have not finished.
    [[nodiscard]] std::size_t task_count() const noexcept { return tasks_.live.size(); }
    /// Kernel operations and blocking jobs in flight (not counting the loop's own wake-up read).
    [[nodiscard]] std::size_t in_flight() const noexcept { return in_flight_; }

    /// The backend this loop runs on: `backend::io_uring` or `backend::epoll`.
    [[nodiscard]] corio::backend backend() const noexcept { return io_->kind(); }
    /// Why it runs on it: the option or `CORIO_BACKEND` that chose it, or, for `automatic`,
    /// what the io_uring probe found (for instance the seccomp filter that refused
    /// io_uring_setup).
    [[nodiscard]] const std::string& backend_reason() const noexcept { return backend_reason_; }

    /// The ring, for feature queries (`supports`, `setup_flags`).
    /// **Errors**: `std::logic_error` when the loop runs on epoll.
    [[nodiscard]] const io::ring& io_ring() const { return checked_ring(); }
    [[nodiscard]] io::ring& io_ring() { return checked_ring(); }
    /// The driver of either backend, for what both implement (`io::buffer_ring`).
    [[nodiscard]] io::driver& io_driver() noexcept { return *io_; }

    // --- for corio's awaiters --------------------------------------------------------------

    /// Queues `h` to be resumed by this loop, after what is already ready (FIFO).
    void schedule(std::coroutine_handle<> h) { ready_.push(h); }

    /// Makes `p` a spawned task of this loop and queues its first step.
    void start_task(detail::promise_base& p, std::coroutine_handle<> h) {
        p.prepare_root(tasks_, h);
        tasks_.add(p);
        schedule(h);
    }

    /// Resumes `h` on this loop, from any thread (allocation-free once warmed up): a joiner
    /// whose task finished elsewhere, or a coroutine arriving through `switch_to`. When
    /// `arriving` is given, that spawned task (already `move_to`d this loop, or prepared for
    /// it by `spawn_on`, and announced with `expect_arrival`) is adopted first: it becomes one
    /// of this loop's tasks.
    /// **Thread-safety**: any thread, while the loop exists.
    void resume_from_afar(std::coroutine_handle<> h, detail::promise_base* arriving = nullptr) {
        enqueue_remote({h, arriving, false});
    }
    /// Sends `h` (and `task`, see `resume_from_afar`) to `target` once the coroutine that is
    /// running now has returned to this loop: a coroutine resumed inline by an awaiter (a
    /// `task` awaiting its child) is still on this thread's stack until then, and must not
    /// run on another thread before that stack has unwound.
    void depart(event_loop& target, std::coroutine_handle<> h, detail::promise_base* task) {
        departures_.push_back({&target, h, task});
    }

    /// Announces a spawned task setting off for this loop, before it leaves its old loop's
    /// registry, so that a runtime's drain, which counts every loop's tasks, never misses it.
    /// **Thread-safety**: any thread.
    void expect_arrival() noexcept {
        if (tasks_.transit != nullptr)
            tasks_.transit->moving.fetch_add(1, std::memory_order_seq_cst);
    }

    /// The spawned tasks of this loop: for corio's cross-loop machinery.
    [[nodiscard]] detail::task_registry& tasks() noexcept { return tasks_; }

    void add_timer(detail::timer_node& t) { timers_.push(t); }
    void remove_timer(detail::timer_node& t) noexcept {
        if (t.scheduled())
            timers_.erase(t);
    }

    /// Prepares an operation (submitted with the turn's batch); `c` is called on completion.
    void start_io(io::op_kind kind, const io::op_args& args, io::completion& c) {
        io_->start(kind, args, &c);
        ++in_flight_;
    }
    /// Asks the kernel to cancel the operation of `c`; it still completes through `c` (with
    /// -ECANCELED, or its result if it won the race). Submitted at once: the request must reach
    /// the kernel before the address of `c` can belong to a later operation.
    void cancel_io(io::completion& c) { io_->cancel(c); }

    /// Marks an operation whose owner is gone and which was cancelled (a listener destroyed with
    /// its multishot accept live): draining waits for its last completion, which then calls
    /// `orphan_finished()`.
    void adopt_orphan() noexcept { ++orphans_; }
    void orphan_finished() noexcept { --orphans_; }

    /// Runs `job` on the blocking pool; the job posts its own completion back.
    void start_blocking(detail::blocking_job& job) {
        pool_.submit(job);
        ++in_flight_;
    }
    /// Hands a blocking job that has run back to the loop, which calls its `done` on its own
    /// thread. Allocates nothing and cannot fail. **Thread-safety**: any thread.
    void finish_blocking(detail::blocking_job& job) noexcept {
        bool was_empty = false;
        {
            std::lock_guard lock(remote_mutex_);
            job.next = nullptr;
            was_empty = remote_empty();
            (finished_tail_ != nullptr ? finished_tail_->next : finished_jobs_) = &job;
            finished_tail_ = &job;
            if (was_empty)
                remote_pending_.store(true, std::memory_order_release);
        }
        if (was_empty)
            wake_up();
    }

    /// The loop's instance of `Service` (default-constructed on first use): per-loop state of a
    /// higher layer, such as the resolver's c-ares channel and cache. Services are destroyed
    /// in reverse order of creation when the loop is destroyed, after its tasks have drained
    /// and before the ring closes; a service must have no operation in flight by then.
    template <class Service>
    Service& service() {
        static constexpr char key = 0; // one address per Service type
        for (const auto& s : services_)
            if (s.key == &key)
                return *static_cast<Service*>(s.object.get());
        auto object = std::make_unique<Service>();
        Service& ref = *object;
        services_.push_back(
            {&key, {object.release(), [](void* p) { delete static_cast<Service*>(p); }}});
        return ref;
    }

private:
    /// Marks the loop as running for a scope; refuses to nest or to run on a foreign thread.
    class running_scope {
    public:
        running_scope(event_loop& loop, const char* who) : loop_(loop) {
            if (loop.running_)
                throw std::logic_error(std::string(who) +
                                       ": the loop is already running (runs cannot nest; "
                                       "co_await the task instead)");
            if (loop.owner_ != std::this_thread::get_id())
                throw std::logic_error(std::string(who) + ": called on a thread other than the "
                                                          "one that created the loop");
            loop.running_ = true;
        }
        running_scope(const running_scope&) = delete;
        running_scope& operator=(const running_scope&) = delete;
        ~running_scope() { loop_.running_ = false; }

    private:
        event_loop& loop_;
    };

    template <class Task>
    typename Task::value_type run_main(Task main, bool drain_leftovers) {
        running_scope running{*this, "corio::event_loop::run"};
        auto h = main.release();
        if (!h)
            throw std::logic_error("corio::event_loop::run: empty task");
        start_task(h.promise(), h);
        // Joined by a coroutine that does nothing: if main finishes on another loop (it may
        // `switch_to` one), the resumption that follows wakes this loop to notice.
        (void)h.promise().join(std::noop_coroutine(), tasks_);
        struct release_main {
            decltype(h) handle;
            ~release_main() {
                handle.promise().mark_retrieved();
                handle.promise().release_root(handle);
            }
        } guard{h};
        while (!h.promise().finished())
            turn();
        // Leftovers may refer to main's locals: drain them while main's frame is still alive.
        if (drain_leftovers)
            drain();
        return h.promise().take();
    }

    void drain() {
        while (!tasks_.live.empty() || !ready_.empty() || orphans_ > 0 || has_remote_entries()) {
            cancel_all_tasks();
            turn();
        }
    }

    /// One turn: run what is ready, submit the batch and wait (only when nothing is ready)
    /// for a completion or the nearest deadline, dispatch completions, fire due timers.
    void turn() {
        const std::size_t finished_before = tasks_.finished;
        const std::size_t orphans_before = orphans_;
        run_remote();
        run_ready();
        send_departures();
        // Waiting needs something left to wait for: not when a task or an orphaned operation
        // finished in this turn (a drain may be done), nor with work ready.
        if (ready_.empty() && !remote_pending_.load(std::memory_order_acquire) &&
            tasks_.finished == finished_before && orphans_ == orphans_before && !stop_requested_)
            wait();
        else
            io_->submit_nowait();
        dispatch_completions();
        fire_timers();
        send_departures();
    }

    void send_departures() {
        if (departures_.empty())
            return;
        for (const departure& d : departures_)
            d.to->resume_from_afar(d.h, d.task);
        departures_.clear();
    }

    void run_ready() {
        // Only what is ready now: coroutines scheduled meanwhile wait for the next turn, so a
        // task that keeps yielding cannot starve I/O.
        for (std::size_t n = ready_.size(); n > 0; --n)
            ready_.pop().resume();
    }

    // Waits; the clock is read after any wait that blocked, so `last_now()` never carries the
    // wait's length into the completions dispatched next.
    void wait() {
        detail::timer_node* next = timers_.top();
        if (next == nullptr) {
            io_->submit_and_wait(nullptr);
            (void)now();
            return;
        }
        // Already due by the last reading (a zero sleep), or by a fresh one: do not block.
        if (next->deadline <= last_now_ || next->deadline <= now()) {
            io_->submit_nowait();
            return;
        }
        if (options_.clock != nullptr) {
            // Paused time: jump to the next deadline once nothing else can happen first.
            if (in_flight_ == 0) {
                options_.clock->advance_to(next->deadline);
                io_->submit_nowait();
            } else {
                io_->submit_and_wait(nullptr);
                (void)now();
            }
            return;
        }
        const auto ns =
            std::chrono::duration_cast<std::chrono::nanoseconds>(next->deadline - last_now_);
        __kernel_timespec ts{};
        ts.tv_sec = ns.count() / 1'000'000'000;
        ts.tv_nsec = ns.count() % 1'000'000'000;
        io_->submit_and_wait(&ts);
        (void)now();
    }

    void dispatch_completions() {
        std::vector<io::cqe_record>& batch = io_->backlog();
        io_->reap(batch);
        // Index, not iterator: a completion handler may submit, and a submit that meets EBUSY
        // appends reaped completions to this very vector.
        for (std::size_t i = 0; i < batch.size(); ++i) { // NOLINT(modernize-loop-convert)
            const io::cqe_record c = batch[i];
            if ((c.flags & IORING_CQE_F_MORE) == 0 && c.target != &wake_)
                --in_flight_;
            c.target->complete(c.target, c.res, c.flags);
        }
        batch.clear();
    }

    void fire_timers() {
        if (timers_.empty())
            return;
        if (timers_.top()->deadline > last_now_)
            (void)now(); // read the clock only when the last reading shows nothing due
        while (detail::timer_node* t = timers_.top()) {
            if (t->deadline > last_now_)
                break;
            timers_.pop();
            t->fire(t);
        }
    }

    /// A coroutine or a task sent here by another thread (`resume_from_afar`), or a
    /// cancellation request for a task that runs here (`cancel_from_afar`).
    struct remote_entry {
        std::coroutine_handle<> resume;
        detail::promise_base* task;
        bool cancel;
    };

    void enqueue_remote(const remote_entry& e) {
        bool was_empty = false;
        {
            std::lock_guard lock(remote_mutex_);
            was_empty = remote_empty();
            remote_entries_.push_back(e);
            if (was_empty)
                remote_pending_.store(true, std::memory_order_release);
        }
        if (was_empty)
            wake_up();
    }

    static void arrive_from_afar(void* loop, std::coroutine_handle<> h, detail::promise_base* t) {
        static_cast<event_loop*>(loop)->resume_from_afar(h, t);
    }
    static void cancel_from_afar(void* loop, detail::promise_base& t) {
        static_cast<event_loop*>(loop)->enqueue_remote({{}, &t, true});
    }

    /// Tasks arriving or cancellations on their way (they hold references to frames).
    [[nodiscard]] bool has_remote_entries() {
        if (!remote_pending_.load(std::memory_order_acquire))
            return false;
        std::lock_guard lock(remote_mutex_);
        return !remote_entries_.empty();
    }
    [[nodiscard]] bool remote_empty() const noexcept {
        return remote_.empty() && finished_jobs_ == nullptr && remote_entries_.empty();
    }
    void wake_up() const noexcept {
        const std::uint64_t one = 1;
        [[maybe_unused]] ssize_t r = ::write(wake_fd_, &one, sizeof one);
    }

    /// Runs what other threads posted, in the order they posted it.
    void run_remote() {
        if (!remote_pending_.load(std::memory_order_acquire))
            return;
        detail::blocking_job* finished = nullptr;
        {
            std::lock_guard lock(remote_mutex_);
            remote_.swap(remote_running_); // both keep their capacity: no allocation per batch
            remote_entries_.swap(remote_entries_running_);
            finished = std::exchange(finished_jobs_, nullptr);
            finished_tail_ = nullptr;
            remote_pending_.store(false, std::memory_order_relaxed);
        }
        while (finished != nullptr) {
            detail::blocking_job* job = std::exchange(finished, finished->next);
            --in_flight_;
            job->done(job);
        }
        for (const remote_entry& e : remote_entries_running_) {
            if (e.cancel) {
                e.task->deliver_cancel();
                continue;
            }
            if (e.task != nullptr) {
                tasks_.add(*e.task);
                if (tasks_.transit != nullptr) {
                    tasks_.transit->arrived.fetch_add(1, std::memory_order_seq_cst);
                    tasks_.transit->moving.fetch_sub(1, std::memory_order_seq_cst);
                }
            }
            schedule(e.resume);
        }
        remote_entries_running_.clear();
        for (std::function<void()>& fn : remote_running_) {
            try {
                fn();
            } catch (...) {
                tasks_.report(std::current_exception());
            }
        }
        remote_running_.clear();
    }

    /// The loop always polls its eventfd, so that `post` from another thread ends a wait.
    void arm_wake() {
        io::op_args a{};
        a.fd = wake_fd_;
        a.flags = POLLIN;
        io_->start_own(io::op_kind::poll, a, &wake_);
        wake_armed_ = true;
    }

    static void on_wake(io::completion*, int, std::uint32_t) noexcept {
        event_loop* self = current_slot();
        self->wake_armed_ = false;
        std::uint64_t count = 0;
        [[maybe_unused]] ssize_t r = ::read(self->wake_fd_, &count, sizeof count);
        if (self->closing_)
            return;
        try {
            self->arm_wake(); // the posted nodes themselves run at the start of the next turn
        } catch (const std::exception& e) {
            std::fprintf(stderr, "corio: %s\n", e.what());
            CORIO_ASSERT(false, "event_loop could not re-arm its wake-up poll; post() would be "
                                "lost");
        }
    }

    static void default_exception_handler(std::exception_ptr e) {
        try {
            std::rethrow_exception(std::move(e));
        } catch (const std::exception& ex) {
            std::fprintf(stderr, "corio: exception in a task nobody joined: %s\n", ex.what());
        } catch (...) {
            std::fprintf(stderr, "corio: non-standard exception in a task nobody joined\n");
        }
    }

    /// Sets up the driver `options_.backend` (or `CORIO_BACKEND`) asks for.
    void choose_driver() {
        corio::backend want = options_.backend;
        std::string why = "loop_options::backend";
        if (want == corio::backend::automatic) {
            if (const char* env = std::getenv("CORIO_BACKEND"); env != nullptr && *env != 0) {
                const std::string_view e = env;
                why = "CORIO_BACKEND=" + std::string(e);
                if (e == "epoll")
                    want = corio::backend::epoll;
                else if (e == "io_uring")
                    want = corio::backend::io_uring;
                else if (e != "auto" && e != "automatic")
                    throw std::invalid_argument("corio::event_loop: " + why +
                                                " is not one of io_uring, epoll, auto");
            }
        }
        const unsigned sq = options_.sq_entries;
        const unsigned cq = options_.cq_entries != 0 ? options_.cq_entries : 16 * sq;
        switch (want) {
        case corio::backend::io_uring: io_ = std::make_unique<io::ring>(sq, cq); break;
        case corio::backend::epoll: io_ = make_epoll(); break;
        case corio::backend::automatic:
            try {
                auto r = std::make_unique<io::ring>(sq, cq);
                const char* missing = nullptr;
                if (r->supports_all(missing)) {
                    why = "automatic: io_uring_setup succeeded and the kernel supports every "
                          "operation corio uses";
                    io_ = std::move(r);
                } else {
                    why = std::string("automatic: the kernel's io_uring lacks ") + missing;
                }
            } catch (const std::system_error& e) {
                why = std::string("automatic: ") + e.what();
            }
            if (!io_)
                io_ = make_epoll();
            break;
        }
        ring_ = dynamic_cast<io::ring*>(io_.get());
        backend_reason_ = std::move(why);
    }

    std::unique_ptr<io::driver> make_epoll() {
        io::file_offload offload;
        offload.loop = this;
        offload.submit = [](void* loop, detail::blocking_job& job) {
            static_cast<event_loop*>(loop)->start_blocking(job);
        };
        offload.finish = [](void* loop, detail::blocking_job& job) noexcept {
            static_cast<event_loop*>(loop)->finish_blocking(job);
        };
        return std::make_unique<io::epoll_driver>(offload);
    }

    [[nodiscard]] io::ring& checked_ring() const {
        if (ring_ == nullptr)
            throw std::logic_error("corio::event_loop::io_ring: this loop runs on epoll, not "
                                   "io_uring (" +
                                   backend_reason_ + ")");
        return *ring_;
    }

    friend struct detail::event_loop_access;

    loop_options options_;
    std::unique_ptr<io::driver> io_;
    io::ring* ring_ = nullptr; // io_ when it is the ring
    std::string backend_reason_;
    detail::ready_queue ready_;
    detail::timer_heap timers_;
    detail::task_registry tasks_;
    detail::blocking_pool pool_;
    std::mutex remote_mutex_;
    std::vector<std::function<void()>> remote_;         // posted, guarded by remote_mutex_
    std::vector<std::function<void()>> remote_running_; // the batch the loop is running
    std::vector<remote_entry> remote_entries_;          // guarded by remote_mutex_
    std::vector<remote_entry> remote_entries_running_;
    struct departure {
        event_loop* to;
        std::coroutine_handle<> h;
        detail::promise_base* task;
    };
    std::vector<departure> departures_; // switch_to's, sent at the end of the turn's phase
    detail::blocking_job* finished_jobs_ = nullptr; // back from the pool, FIFO, guarded too
    detail::blocking_job* finished_tail_ = nullptr;
    std::atomic<bool> remote_pending_{false};
    bool stop_requested_ = false; // by stop()'s posted callback, on the loop's thread
    struct service_slot {
        const void* key;
        std::unique_ptr<void, void (*)(void*)> object;
    };
    std::vector<service_slot> services_;
    io::completion wake_;
    int wake_fd_ = -1;
    std::size_t in_flight_ = 0;
    std::size_t orphans_ = 0;
    time_point last_now_{};
    std::thread::id owner_;
    bool running_ = false;
    bool closing_ = false;
    bool wake_armed_ = false;

    struct current_tag {};
    /// The calling thread's loop (see detail::per_thread: a coroutine may change threads).
    static event_loop*& current_slot() noexcept {
        return detail::per_thread<event_loop*, current_tag>::get();
    }
};

template <class Task>
typename Task::value_type detail::event_loop_access::run_and_drain(event_loop& loop, Task main) {
    return loop.run_main(std::move(main), /*drain=*/true);
}

} // namespace corio

// SPDX-License-Identifier: MIT
#pragma once

#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <thread>
#include <vector>

namespace corio::detail {

/// A unit of blocking work, embedded in the awaiter that waits for it (no allocation): `run`
/// on a worker thread, then `done` back on the loop's thread. The same link queues it on both
/// sides, so handing the result back allocates nothing either.
struct blocking_job {
    blocking_job* next = nullptr;
    void (*run)(blocking_job*) noexcept = nullptr;
    void (*done)(blocking_job*) noexcept = nullptr;
};

/// The worker threads behind `to_thread` (asyncio's default executor). Threads start lazily,
/// one more whenever queued jobs outnumber idle threads, up to `max_threads`; jobs run FIFO.
class blocking_pool {
public:
    explicit blocking_pool(std::size_t max_threads) : max_threads_(max_threads) {}
    blocking_pool(const blocking_pool&) = delete;
    blocking_pool& operator=(const blocking_pool&) = delete;
    ~blocking_pool() { stop(); }

    /// Queues `job`, starting a thread for it when every thread is busy (and the cap allows).
    /// **Errors**: `std::system_error` (or `bad_alloc`) when no thread can be started for it
    /// and none exists yet; the job is then not queued.
    void submit(blocking_job& job) {
        {
            std::lock_guard lock(mutex_);
            if (queued_ + 1 > idle_ && threads_.size() < max_threads_) {
                // Started before the job is queued: if the system refuses a thread, nothing is
                // left behind. (It waits for the lock we hold, then finds the job.)
                try {
                    threads_.reserve(threads_.size() + 1);
                    threads_.emplace_back([this] { work(); });
                } catch (...) {
                    if (threads_.empty())
                        throw; // nobody could ever run it
                    // The threads there are will run it, later.
                }
            }
            job.next = nullptr;
            (tail_ != nullptr ? tail_->next : head_) = &job;
            tail_ = &job;
            ++queued_;
        }
        wake_.notify_one();
    }

    /// Finishes the queued jobs and joins the threads.
    void stop() {
        {
            std::lock_guard lock(mutex_);
            stopping_ = true;
        }
        wake_.notify_all();
        for (std::thread& t : threads_)
            t.join();
        threads_.clear();
    }

    [[nodiscard]] std::size_t thread_count() const {
        std::lock_guard lock(mutex_);
        return threads_.size();
    }

private:
    void work() {
        std::unique_lock lock(mutex_);
        for (;;) {
            if (head_ != nullptr) {
                blocking_job* job = head_;
                head_ = job->next;
                if (head_ == nullptr)
                    tail_ = nullptr;
                --queued_;
                lock.unlock();
                job->run(job);
                lock.lock();
                continue;
            }
            if (stopping_)
                return;
            ++idle_;
            wake_.wait(lock);
            --idle_;
        }
    }

    mutable std::mutex mutex_;
    std::condition_variable wake_;
    blocking_job* head_ = nullptr;
    blocking_job* tail_ = nullptr;
    std::vector<std::thread> threads_;
    std::size_t idle_ = 0;   // threads waiting for work
    std::size_t queued_ = 0; // jobs not yet taken
    std::size_t max_threads_;
    bool stopping_ = false;
};

} // namespace corio::detail

// SPDX-License-Identifier: MIT
#pragma once

#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <thread>
#include <vector>

namespace corio::detail {

/// A unit of blocking work, embedded in the awaiter that waits for it (no allocation).
struct blocking_job {
    blocking_job* next = nullptr;
    void (*run)(blocking_job*) noexcept = nullptr;
};

/// The worker threads behind `to_thread` (asyncio's default executor). Threads start lazily,
/// one more whenever queued jobs outnumber idle threads, up to `max_threads`; jobs run FIFO.
class blocking_pool {
public:
    explicit blocking_pool(std::size_t max_threads) : max_threads_(max_threads) {}
    blocking_pool(const blocking_pool&) = delete;
    blocking_pool& operator=(const blocking_pool&) = delete;
    ~blocking_pool() { stop(); }

    void submit(blocking_job& job) {
        {
            std::lock_guard lock(mutex_);
            job.next = nullptr;
            (tail_ != nullptr ? tail_->next : head_) = &job;
            tail_ = &job;
            ++queued_;
            if (queued_ > idle_ && threads_.size() < max_threads_) {
                threads_.emplace_back([this] { work(); });
                return;
            }
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

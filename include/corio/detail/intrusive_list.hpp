// SPDX-License-Identifier: MIT
#pragma once

#include <cstddef>

namespace corio::detail {

/// Links embedded in an element of an `intrusive_list`. Unlinked when both are null.
struct list_hook {
    list_hook* prev = nullptr;
    list_hook* next = nullptr;
};

/// A doubly linked list of elements that embed a `list_hook` (as a base). O(1) push, erase;
/// never allocates; the list does not own its elements.
template <class T>
class intrusive_list {
public:
    intrusive_list() = default;
    intrusive_list(const intrusive_list&) = delete;
    intrusive_list& operator=(const intrusive_list&) = delete;

    [[nodiscard]] bool empty() const noexcept { return head_ == nullptr; }
    [[nodiscard]] std::size_t size() const noexcept { return size_; }
    [[nodiscard]] T* front() const noexcept { return static_cast<T*>(head_); }

    void push_back(T& item) noexcept {
        list_hook* h = &item;
        h->prev = tail_;
        h->next = nullptr;
        if (tail_ != nullptr)
            tail_->next = h;
        else
            head_ = h;
        tail_ = h;
        ++size_;
    }

    T* pop_front() noexcept {
        T* first = front();
        if (first != nullptr)
            erase(*first);
        return first;
    }

    void erase(T& item) noexcept {
        list_hook* h = &item;
        (h->prev != nullptr ? h->prev->next : head_) = h->next;
        (h->next != nullptr ? h->next->prev : tail_) = h->prev;
        h->prev = h->next = nullptr;
        --size_;
    }

    /// Calls `fn(T&)` on every element; `fn` may erase the element it is given.
    template <class Fn>
    void for_each(Fn fn) {
        for (list_hook* h = head_; h != nullptr;) {
            list_hook* next = h->next;
            fn(*static_cast<T*>(h));
            h = next;
        }
    }

private:
    list_hook* head_ = nullptr;
    list_hook* tail_ = nullptr;
    std::size_t size_ = 0;
};

} // namespace corio::detail

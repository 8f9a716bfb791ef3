// SPDX-License-Identifier: MIT
#include "../support/catch.hpp"

#include <corio/detail/timer_heap.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <random>
#include <vector>

using corio::detail::timer_heap;
using corio::detail::timer_node;

TEST_CASE("timer_heap: pops in deadline order, FIFO among equal deadlines, under random erases",
          "[detail][timers]") {
    std::mt19937 rng(12345);
    constexpr std::size_t n = 20'000;
    std::vector<timer_node> nodes(n);
    std::vector<std::size_t> inserted_at(n);
    timer_heap heap;
    const auto base = std::chrono::steady_clock::time_point{};
    for (std::size_t i = 0; i < n; ++i) {
        nodes[i].deadline = base + std::chrono::milliseconds(rng() % 500); // many equal ones
        inserted_at[i] = i;
        heap.push(nodes[i]);
    }
    // Erase a random third, from anywhere in the heap.
    std::vector<bool> erased(n, false);
    for (std::size_t k = 0; k < n / 3; ++k) {
        const std::size_t i = rng() % n;
        if (!erased[i]) {
            heap.erase(nodes[i]);
            erased[i] = true;
            CHECK_FALSE(nodes[i].scheduled());
        }
    }
    std::vector<std::size_t> expected;
    for (std::size_t i = 0; i < n; ++i)
        if (!erased[i])
            expected.push_back(i);
    std::stable_sort(expected.begin(), expected.end(), [&](std::size_t a, std::size_t b) {
        return nodes[a].deadline < nodes[b].deadline;
    });
    REQUIRE(heap.size() == expected.size());
    std::vector<std::size_t> popped;
    while (timer_node* t = heap.pop())
        popped.push_back(static_cast<std::size_t>(t - nodes.data()));
    CHECK(popped == expected);
    CHECK(heap.empty());
}

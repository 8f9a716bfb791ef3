// SPDX-License-Identifier: MIT
#include <corio/corio.hpp>

#include <chrono>

namespace {

corio::task<int> answer() {
    co_await corio::sleep_for(std::chrono::milliseconds(1));
    co_return 42;
}

} // namespace

int main() { return corio::run(answer()) == 42 ? 0 : 1; }

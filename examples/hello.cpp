#include <corio/corio.hpp>

#include <chrono>
#include <cstdio>

using namespace std::chrono_literals;

corio::task<int> slow_square(int x) {
    co_await corio::sleep_for(100ms); // asyncio.sleep: other tasks run meanwhile
    const int square = x * x;
    co_return square;
}

corio::task<int> amain() {
    corio::join_handle<int> a = corio::spawn(slow_square(3)); // asyncio.create_task
    corio::join_handle<int> b = corio::spawn(slow_square(4));
    int blocking = co_await corio::to_thread([] { return 5 * 5; }); // asyncio.to_thread
    int total = co_await a + co_await b + blocking;                 // both slept at the same time
    std::printf("3² + 4² + 5² = %d\n", total);
    co_return total;
}

int main() { return corio::run(amain()) == 50 ? 0 : 1; } // asyncio.run

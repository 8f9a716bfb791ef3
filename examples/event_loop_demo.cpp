// The asyncio guide's first event-loop demo in corio: two tasks each print "start", sleep one
// second concurrently, and print "end". The whole run takes about one second, not two.
#include <corio/corio.hpp>

#include <chrono>
#include <cstdio>

using namespace std::chrono_literals;

corio::task<> worker(const char* name) {
    std::printf("%s: start\n", name);
    co_await corio::sleep_for(1s);
    std::printf("%s: end\n", name);
}

corio::task<> amain() {
    corio::join_handle<> a = corio::spawn(worker("A"));
    corio::join_handle<> b = corio::spawn(worker("B"));
    co_await a;
    co_await b;
}

int main() {
    const auto start = std::chrono::steady_clock::now();
    corio::run(amain());
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
    std::printf("elapsed: %.2f s (two 1 s sleeps, run concurrently)\n", took.count());
}

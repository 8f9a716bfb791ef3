// The asyncio guide's sliding-window RateLimiter in corio: 250 calls to an external API go through
// one shared corio::rate_limiter. The guide's limit (100 calls per 60 s) is scaled down to 25 per
// 500 ms so the run takes seconds. The program prints how many calls started in each 500 ms
// window, then checks every window of 500 ms, not just the printed ones, against the limit.
//
// The guide's snippet builds a limiter per call:
//
//     async def limited_api_call():
//         async with RateLimiter(100, 60):  # a fresh limiter on every call
//             return await call_external_api()
//
// A fresh limiter has seen no calls yet, so it admits every caller at once: it limits nothing.
// The limiter has to be shared by all the calls it limits (here it lives in `amain` and every
// call gets a reference). The last part of the program runs the per-call version to show it.
#include <corio/corio.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
using time_point = corio::event_loop::time_point;

constexpr int call_count = 250;
constexpr std::ptrdiff_t rate = 25;
constexpr std::chrono::milliseconds period = 500ms;

/// Stands in for the real request.
corio::task<int> call_external_api(int i) {
    co_await corio::sleep_for(20ms);
    co_return i;
}

/// The guide's `limited_api_call`, sharing `limiter` with every other call. `limiter` and
/// `started` live in `amain`, which outlives every call (gather waits for all of them).
corio::task<int> limited_api_call(corio::rate_limiter& limiter, int i,
                                  std::vector<time_point>& started) {
    co_await limiter.acquire(); // `async with limiter:` (a rate permit is spent, not returned)
    started.push_back(corio::event_loop::current().now());
    const int result = co_await call_external_api(i);
    co_return result;
}

/// The guide's version as written: a fresh limiter per call.
corio::task<int> call_with_own_limiter(int i, std::vector<time_point>& started) {
    corio::rate_limiter limiter{rate, period}; // new, empty: never makes anyone wait
    co_await limiter.acquire();
    started.push_back(corio::event_loop::current().now());
    const int result = co_await call_external_api(i);
    co_return result;
}

/// The most times in any half-open window [t, t + period). The busiest window can always be
/// slid right until it starts at a recorded time, so checking those windows checks all of them.
std::size_t busiest_window(std::vector<time_point> times, time_point& busiest_start) {
    std::sort(times.begin(), times.end());
    std::size_t most = 0;
    std::size_t end = 0;
    for (std::size_t begin = 0; begin < times.size(); ++begin) {
        while (end < times.size() && times[end] < times[begin] + period)
            ++end;
        if (end - begin > most) {
            most = end - begin;
            busiest_start = times[begin];
        }
    }
    return most;
}

/// The shortest time between a start and the start `rate` places later: at least `period` when
/// no window holds more than `rate` starts.
double tightest_gap_ms(std::vector<time_point> times) {
    std::sort(times.begin(), times.end());
    auto gap = std::chrono::duration<double, std::milli>::max();
    for (std::size_t i = 0; i + rate < times.size(); ++i)
        gap = std::min<std::chrono::duration<double, std::milli>>(gap, times[i + rate] - times[i]);
    return gap.count();
}

double ms_since(time_point start, time_point t) {
    return std::chrono::duration<double, std::milli>(t - start).count();
}

corio::task<int> amain() {
    corio::rate_limiter limiter{rate, period}; // one limiter, shared by every call
    std::vector<time_point> started;
    started.reserve(call_count);

    const time_point start = corio::event_loop::current().now();
    std::vector<corio::task<int>> calls;
    for (int i = 0; i < call_count; ++i)
        calls.push_back(limited_api_call(limiter, i, started));
    std::vector<int> results = co_await corio::gather(std::move(calls));
    const double took_ms = ms_since(start, corio::event_loop::current().now());

    std::printf("%zu calls through one limiter of %td per %lld ms took %.0f ms\n", results.size(),
                rate, static_cast<long long>(period.count()), took_ms);
    std::vector<int> per_window(static_cast<std::size_t>(took_ms / period.count()) + 1);
    for (time_point t : started)
        ++per_window[static_cast<std::size_t>(ms_since(start, t) / period.count())];
    for (std::size_t w = 0; w < per_window.size(); ++w)
        std::printf("  %5zu-%5zu ms: %3d %s\n", w * period.count(), (w + 1) * period.count(),
                    per_window[w],
                    std::string(static_cast<std::size_t>(per_window[w]), '#').c_str());

    time_point busiest{};
    const std::size_t most = busiest_window(started, busiest);
    const bool ok = most <= static_cast<std::size_t>(rate) && started.size() == call_count;
    std::printf("busiest 500 ms window (checked at every start time): %zu calls from %.1f ms: "
                "%s (limit %td)\n",
                most, ms_since(start, busiest), ok ? "within the limit" : "OVER THE LIMIT", rate);
    std::printf("closest approach: call k+%td started %.3f ms after call k (%lld ms or more "
                "keeps every window within the limit)\n",
                rate, tightest_gap_ms(started), static_cast<long long>(period.count()));

    // The snippet's mistake, for contrast: each call builds its own limiter.
    std::vector<time_point> unlimited;
    unlimited.reserve(call_count);
    std::vector<corio::task<int>> unlimited_calls;
    for (int i = 0; i < call_count; ++i)
        unlimited_calls.push_back(call_with_own_limiter(i, unlimited));
    std::vector<int> unlimited_results = co_await corio::gather(std::move(unlimited_calls));
    time_point unlimited_busiest{};
    const std::size_t unlimited_most = busiest_window(unlimited, unlimited_busiest);
    std::printf("with a fresh limiter per call, %zu calls: %zu of them in one 500 ms window "
                "(the per-call limiter limited nothing)\n",
                unlimited_results.size(), unlimited_most);

    co_return ok ? 0 : 1;
}

int main() { return corio::run(amain()); }

// SPDX-License-Identifier: MIT
//
// The Boost.Asio reference for corio's cross-loop hand-offs (issue 14; handoff_corio.cpp has
// the same flags and prints the same JSON line; bench/handoff.sh runs both):
//
//   handoff_asio --case channel --producers P --consumers C [--messages 2000000]
//                [--capacity 1024]
//       two io_contexts (concurrency hint 1), each run by one thread; an
//       experimental::concurrent_channel<void(error_code, int)> of `capacity`; P producer
//       coroutines on the first (co_await async_send), C consumers on the second (co_await
//       async_receive), all with use_awaitable. Figure: messages/s.
//   handoff_asio --case spawn [--round-trips 100000]
//       a coroutine on io_context A doing `co_await co_spawn(ctx_b, trivial(i), use_awaitable)`
//       in a loop (B is run by a second thread): Asio's spawn_on + join. Figure: round trips/s.
//
// With `--pin 1` the thread of A runs on CPU 0 only, that of B on CPU 1 (as corio's loops with
// runtime_options::pin). Each case first runs an untimed warm-up of a tenth of its size. The
// channel's threads start per pass, inside the timed part (tens of microseconds in a second).

#include "handoff_util.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cstdio>
#include <exception>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace asio = boost::asio;
using handoff::options;
using int_channel = asio::experimental::concurrent_channel<void(boost::system::error_code, int)>;

/// A co_spawn completion handler that keeps the first exception.
struct keep_error {
    std::exception_ptr* error;
    void operator()(const std::exception_ptr& e) const {
        if (e && !*error)
            *error = e;
    }
};

// --- channel: P producers on io_context A, C consumers on io_context B -----------------------

asio::awaitable<void> produce(int_channel& ch, long count) {
    for (long i = 0; i < count; ++i)
        co_await ch.async_send(boost::system::error_code{}, static_cast<int>(i),
                               asio::use_awaitable);
}

asio::awaitable<void> consume(int_channel& ch, long count, long long& sum) {
    long long local = 0;
    for (long i = 0; i < count; ++i) {
        const int v = co_await ch.async_receive(asio::use_awaitable);
        local += v;
    }
    sum = local;
}

/// Sends `messages` from A's producers to B's consumers; returns the consumers' sum.
long long pass(const options& o, long messages) {
    asio::io_context a{1};
    asio::io_context b{1};
    int_channel ch{a, static_cast<std::size_t>(o.capacity)};
    std::vector<long long> sums(static_cast<std::size_t>(o.consumers), 0);
    std::exception_ptr error_a;
    std::exception_ptr error_b;
    for (long c = 0; c < o.consumers; ++c)
        asio::co_spawn(b, consume(ch, messages / o.consumers, sums[static_cast<std::size_t>(c)]),
                       keep_error{&error_b});
    for (long p = 0; p < o.producers; ++p)
        asio::co_spawn(a, produce(ch, messages / o.producers), keep_error{&error_a});
    std::thread thread_b([&b, &o] {
        if (o.pin != 0)
            handoff::pin_this_thread(1);
        b.run();
    });
    a.run();
    thread_b.join();
    if (error_a)
        std::rethrow_exception(error_a);
    if (error_b)
        std::rethrow_exception(error_b);
    long long sum = 0;
    for (const long long s : sums)
        sum += s;
    return sum;
}

int channel_case(const options& o) {
    (void)pass(o, o.messages / 10 / (o.producers * o.consumers) * (o.producers * o.consumers));
    const handoff::usage_snapshot begin = handoff::snapshot();
    const long long sum = pass(o, o.messages);
    const handoff::usage_snapshot end = handoff::snapshot();
    const long per = o.messages / o.producers;
    const long long expected = static_cast<long long>(o.producers) * per * (per - 1) / 2;
    if (sum != expected) {
        std::fprintf(stderr, "handoff_asio: channel sum %lld, expected %lld\n", sum, expected);
        return 1;
    }
    handoff::report("asio", o, "channel", 2, o.messages, begin, end);
    return 0;
}

// --- co_spawn round trip: A -> B -> A ---------------------------------------------------------

asio::awaitable<int> trivial(int v) { co_return v + 1; }

asio::awaitable<long long> round_trips(asio::io_context& b, long count) {
    long long sum = 0;
    for (long i = 0; i < count; ++i) {
        const int v = co_await asio::co_spawn(b, trivial(static_cast<int>(i)), asio::use_awaitable);
        sum += v;
    }
    co_return sum;
}

asio::awaitable<void> spawn_main(asio::io_context& b, const options& o, int& status) {
    (void)co_await round_trips(b, o.round_trips / 10 + 1); // warm-up
    const handoff::usage_snapshot begin = handoff::snapshot();
    const long long sum = co_await round_trips(b, o.round_trips);
    const handoff::usage_snapshot end = handoff::snapshot();
    const long long expected = static_cast<long long>(o.round_trips) * (o.round_trips + 1) / 2;
    if (sum != expected) {
        std::fprintf(stderr, "handoff_asio: spawn sum %lld, expected %lld\n", sum, expected);
        status = 1;
        co_return;
    }
    handoff::report("asio", o, "spawn", 2, o.round_trips, begin, end);
    status = 0;
}

int spawn_case(const options& o) {
    asio::io_context a{1};
    asio::io_context b{1};
    auto guard = asio::make_work_guard(b); // B waits for work until A is done
    std::thread thread_b([&b, &o] {
        if (o.pin != 0)
            handoff::pin_this_thread(1);
        b.run();
    });
    std::exception_ptr error;
    int status = 1;
    asio::co_spawn(a, spawn_main(b, o, status), keep_error{&error});
    a.run();
    guard.reset();
    thread_b.join();
    if (error)
        std::rethrow_exception(error);
    return status;
}

} // namespace

int main(int argc, char** argv) {
    const options o = handoff::parse(argc, argv);
    if (o.pin != 0)
        handoff::pin_this_thread(0); // the thread that runs io_context A
    try {
        if (o.which == "channel")
            return channel_case(o);
        if (o.which == "spawn")
            return spawn_case(o);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "handoff_asio: %s\n", e.what());
        return 1;
    }
    handoff::usage(argv[0], "unknown case " + o.which + " (Asio has channel and spawn)");
}

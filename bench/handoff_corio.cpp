// SPDX-License-Identifier: MIT
//
// corio's cross-loop hand-offs (issue 14), one case per process, one JSON line per run
// (bench/handoff.sh runs them; handoff_go.go and handoff_asio.cpp are the references):
//
//   handoff_corio --case channel --producers P --consumers C [--messages 2000000]
//                 [--capacity 1024]
//       a 2-loop runtime; a corio::channel<int> of `capacity`; P producers on loop 0, C
//       consumers on loop 1 (spawn_on); `messages` ints in all. Figure: messages/s.
//   handoff_corio --case spawn [--round-trips 100000]
//       a 2-loop runtime; from loop 0, `co_await spawn_on(rt.loop(1), trivial(i))` in a loop.
//       Figure: round trips/s and ns per round trip.
//   handoff_corio --case pool --threads T [--items 50000] [--work-iters K | --work-us 20]
//                 [--pool-capacity 256]
//       a T-loop runtime; one worker per loop receives items from a channel and burns K
//       iterations of a busy loop (~20 us of CPU) on each; the producer runs on loop 0, then
//       closes the channel. Figure: items/s.
//   handoff_corio --case calibrate [--work-us 20]
//       prints the iterations of the busy loop that take that long here.
//
// `--pin 1` pins loop i to CPU i (runtime_options::pin). Each case first runs a short untimed
// warm-up (frames, vectors and the channel's slots allocated, threads awake); the JSON line has
// the timed part's wall and CPU time (every thread of the process) and context switches.

#include "handoff_util.hpp"

#include <corio/corio.hpp>

#include <cstdint>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

namespace {

using handoff::options;

// --- channel: P producers on loop 0, C consumers on loop 1 -----------------------------------

corio::task<> produce(corio::channel<int>& ch, long count) {
    for (long i = 0; i < count; ++i)
        co_await ch.send(static_cast<int>(i));
}

corio::task<long long> consume(corio::channel<int>& ch, long count) {
    long long sum = 0;
    for (long i = 0; i < count; ++i) {
        const int v = co_await ch.receive();
        sum += v;
    }
    co_return sum;
}

/// Sends `messages` through `ch` and returns the consumers' sum (checked by the caller).
corio::task<long long> pass(corio::runtime& rt, corio::channel<int>& ch, const options& o,
                            long messages) {
    std::vector<corio::join_handle<long long>> consumers;
    for (long c = 0; c < o.consumers; ++c)
        consumers.push_back(corio::spawn_on(rt.loop(1), consume(ch, messages / o.consumers)));
    std::vector<corio::join_handle<>> producers;
    for (long p = 0; p < o.producers; ++p)
        producers.push_back(corio::spawn(produce(ch, messages / o.producers)));
    for (corio::join_handle<>& p : producers)
        co_await p;
    long long sum = 0;
    for (corio::join_handle<long long>& c : consumers) {
        const long long s = co_await c;
        sum += s;
    }
    co_return sum;
}

corio::task<int> channel_main(corio::runtime& rt, const options& o) {
    corio::channel<int> ch{o.capacity};
    (void)co_await pass(rt, ch, o,
                        o.messages / 10 / (o.producers * o.consumers) *
                            (o.producers * o.consumers)); // warm-up
    const handoff::usage_snapshot begin = handoff::snapshot();
    const long long sum = co_await pass(rt, ch, o, o.messages);
    const handoff::usage_snapshot end = handoff::snapshot();
    const long per = o.messages / o.producers;
    const long long expected = static_cast<long long>(o.producers) * per * (per - 1) / 2;
    if (sum != expected) {
        std::fprintf(stderr, "handoff_corio: channel sum %lld, expected %lld\n", sum, expected);
        co_return 1;
    }
    handoff::report("corio", o, "channel", 2, o.messages, begin, end);
    co_return 0;
}

// --- spawn_on round trip: loop 0 -> loop 1 -> loop 0 ----------------------------------------

corio::task<int> trivial(int v) { co_return v + 1; }

corio::task<long long> round_trips(corio::runtime& rt, long count) {
    long long sum = 0;
    for (long i = 0; i < count; ++i) {
        corio::join_handle<int> h = corio::spawn_on(rt.loop(1), trivial(static_cast<int>(i)));
        const int v = co_await h;
        sum += v;
    }
    co_return sum;
}

corio::task<int> spawn_main(corio::runtime& rt, const options& o) {
    (void)co_await round_trips(rt, o.round_trips / 10 + 1); // warm-up
    const handoff::usage_snapshot begin = handoff::snapshot();
    const long long sum = co_await round_trips(rt, o.round_trips);
    const handoff::usage_snapshot end = handoff::snapshot();
    const long long expected = static_cast<long long>(o.round_trips) * (o.round_trips + 1) / 2;
    if (sum != expected) {
        std::fprintf(stderr, "handoff_corio: spawn sum %lld, expected %lld\n", sum, expected);
        co_return 1;
    }
    handoff::report("corio", o, "spawn", 2, o.round_trips, begin, end);
    co_return 0;
}

// --- worker pool: one worker per loop, CPU-bound items through a channel ---------------------

struct worker_result {
    long items = 0;
    std::uint64_t checksum = 0;
};

corio::task<worker_result> worker(corio::channel<int>& ch, long iters) {
    worker_result r;
    for (;;) {
        int item = 0;
        try {
            item = co_await ch.receive();
        } catch (const corio::queue_closed&) {
            break;
        }
        r.checksum +=
            handoff::burn(static_cast<std::uint64_t>(iters), static_cast<std::uint64_t>(item));
        ++r.items;
    }
    co_return r;
}

/// Runs `items` items through a fresh channel; returns the items each worker (loop) handled.
corio::task<std::vector<long>> pool_pass(corio::runtime& rt, const options& o, long items,
                                         long iters) {
    corio::channel<int> ch{o.pool_capacity};
    std::vector<corio::join_handle<worker_result>> workers;
    for (std::size_t i = 0; i < rt.size(); ++i)
        workers.push_back(corio::spawn_on(rt.loop(i), worker(ch, iters)));
    for (long i = 0; i < items; ++i)
        co_await ch.send(static_cast<int>(i));
    ch.close();
    std::vector<long> per_worker;
    for (corio::join_handle<worker_result>& w : workers) {
        const worker_result r = co_await w;
        per_worker.push_back(r.items);
    }
    co_return per_worker;
}

corio::task<int> pool_main(corio::runtime& rt, const options& o, long iters) {
    (void)co_await pool_pass(rt, o, o.items / 20 + 1, iters); // warm-up
    const handoff::usage_snapshot begin = handoff::snapshot();
    const std::vector<long> per_worker = co_await pool_pass(rt, o, o.items, iters);
    const handoff::usage_snapshot end = handoff::snapshot();
    long total = 0;
    std::string extra = ",\"work_iters\":" + std::to_string(iters) + ",\"per_worker\":[";
    for (std::size_t i = 0; i < per_worker.size(); ++i) {
        total += per_worker[i];
        extra += (i == 0 ? "" : ",") + std::to_string(per_worker[i]);
    }
    extra += "]";
    if (total != o.items) {
        std::fprintf(stderr, "handoff_corio: the workers handled %ld items of %ld\n", total,
                     o.items);
        co_return 1;
    }
    handoff::report("corio", o, "pool", static_cast<long>(rt.size()), o.items, begin, end, extra);
    co_return 0;
}

} // namespace

int main(int argc, char** argv) {
    const options o = handoff::parse(argc, argv);
    try {
        if (o.which == "calibrate") {
            std::printf("%ld\n", handoff::calibrate(o.work_us));
            return 0;
        }
        if (o.which == "channel") {
            corio::runtime rt{corio::runtime_options{.threads = 2, .pin = o.pin != 0}};
            return rt.run(channel_main(rt, o));
        }
        if (o.which == "spawn") {
            corio::runtime rt{corio::runtime_options{.threads = 2, .pin = o.pin != 0}};
            return rt.run(spawn_main(rt, o));
        }
        if (o.which == "pool") {
            const long iters = o.work_iters != 0 ? o.work_iters : handoff::calibrate(o.work_us);
            corio::runtime rt{corio::runtime_options{.threads = static_cast<std::size_t>(o.threads),
                                                     .pin = o.pin != 0}};
            return rt.run(pool_main(rt, o, iters));
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "handoff_corio: %s\n", e.what());
        return 1;
    }
    handoff::usage(argv[0], "unknown case " + o.which);
}

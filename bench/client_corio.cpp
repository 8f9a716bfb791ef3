// SPDX-License-Identifier: MIT
//
// corio's HTTP client for the client benchmarks of issue 6 (bench/client.sh): what an
// application writes with the public API. One `corio::http::client` with max_connections =
// concurrency, `concurrency` worker coroutines that take request numbers from a shared counter
// and `co_await cli.get(url)` one after the other, every status checked.
//
//     client_corio [--url http://127.0.0.1:8080/hello] [--requests 20000] [--concurrency 100]
//     client_corio --idle 1000 [--url ...]
//
// Prints one JSON line on stdout: the requests, how many answered 200 with the expected body,
// the wall time and the process's CPU time (getrusage, utime + stime) of the request phase
// (from the first request to the last response; the client is constructed before), and the
// peak RSS. Exit status 1 when any request failed or did not answer 200.
//
// --idle N: the memory per idle pooled connection. A client with max_connections = N sends N
// concurrent GETs (so it opens N connections) and lets them go idle in the pool; it closes them
// (close_idle), trims the heap (malloc_trim) and does it again. Reported per connection: the
// heap bytes in use (mallinfo2's uordblks) and VmRSS, after minus before, in the second round
// (the first one filled the frame caches, so what changes is what the idle connections hold);
// the VmRSS growth of the first round ("cold", from a fresh process, the heap that N requests
// in flight used included, which glibc keeps); and the kernel's TCP socket memory
// (/proc/net/sockstat) and slab of TCP sockets (/proc/slabinfo, root only), both counting both
// ends of each loopback connection.

#include <corio/corio.hpp>
#include <corio/http/client.hpp>

#include <malloc.h>
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <exception>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace http = corio::http;
using namespace std::chrono_literals;

namespace {

struct counters {
    long total = 0;
    long started = 0;
    long ok = 0;
    long bad = 0;
};

double cpu_seconds() {
    rusage u{};
    ::getrusage(RUSAGE_SELF, &u);
    const auto tv = [](const timeval& t) {
        return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
    };
    return tv(u.ru_utime) + tv(u.ru_stime);
}

/// A "Name:   123 kB" line of /proc/self/status, in KiB; -1 when absent.
long status_kib(std::string_view name) {
    std::ifstream in("/proc/self/status");
    std::string line;
    while (std::getline(in, line))
        if (line.starts_with(name) && line.size() > name.size() && line[name.size()] == ':')
            return std::stol(line.substr(name.size() + 1));
    return -1;
}

/// The process's peak RSS in KiB: VmHWM (ru_maxrss would not do: Linux carries it over an
/// exec, so a client started by a large parent would report the parent's).
long peak_rss_kib() { return status_kib("VmHWM"); }

/// The kernel's memory for TCP sockets: /proc/net/sockstat's "TCP: ... mem <pages>" in bytes.
long tcp_socket_mem_bytes() {
    std::ifstream in("/proc/net/sockstat");
    std::string line;
    while (std::getline(in, line)) {
        if (!line.starts_with("TCP:"))
            continue;
        std::istringstream words(line.substr(4));
        std::string key;
        long value = 0;
        while (words >> key >> value)
            if (key == "mem")
                return value * 4096;
    }
    return -1;
}

/// Bytes of the "TCP" slab cache in use (active objects x object size); -1 when unreadable.
long tcp_slab_bytes() {
    std::ifstream in("/proc/slabinfo");
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream words(line);
        std::string name;
        long active = 0;
        long total = 0;
        long size = 0;
        if (words >> name >> active >> total >> size && name == "TCP")
            return active * size;
    }
    return -1;
}

bool expected(const http::response& r) { return r.status() == 200 && r.body() == "Hello, World!"; }

corio::task<> worker(http::client& cli, const std::string& url, counters& c) {
    while (c.started < c.total) {
        ++c.started;
        const http::response r = co_await cli.get(url);
        if (expected(r))
            ++c.ok;
        else
            ++c.bad;
    }
}

corio::task<int> load(std::string url, long requests, long concurrency) {
    http::client_options options;
    options.max_connections = static_cast<std::size_t>(concurrency);
    http::client cli{std::move(options)};
    counters c;
    c.total = requests;
    std::vector<corio::task<>> workers;
    workers.reserve(static_cast<std::size_t>(concurrency));
    for (long i = 0; i < concurrency; ++i)
        workers.push_back(worker(cli, url, c));

    const double cpu0 = cpu_seconds();
    const auto t0 = std::chrono::steady_clock::now();
    co_await corio::gather(std::move(workers));
    const double wall =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double cpu = cpu_seconds() - cpu0;

    std::printf("{\"client\": \"corio\", \"requests\": %ld, \"ok\": %ld, \"bad\": %ld, "
                "\"concurrency\": %ld, \"connections\": %zu, \"wall_s\": %.6f, \"cpu_s\": %.6f, "
                "\"peak_rss_kib\": %ld}\n",
                requests, c.ok, c.bad, concurrency, cli.open_connections(), wall, cpu,
                peak_rss_kib());
    co_return c.ok == requests ? 0 : 1;
}

// N concurrent GETs on a client with room for N connections; true when all answered.
corio::task<bool> burst(http::client& cli, const std::string& url, long n) {
    std::vector<corio::task<http::response>> requests;
    requests.reserve(static_cast<std::size_t>(n));
    for (long i = 0; i < n; ++i)
        requests.push_back(cli.get(url));
    const std::vector<http::response> all = co_await corio::gather(std::move(requests));
    bool good = true;
    for (const http::response& r : all)
        good = good && expected(r);
    co_return good;
}

struct snapshot {
    long rss_kib = 0;
    long heap_bytes = 0; // in use by malloc's callers (mallinfo2's uordblks)
    long sock_bytes = 0;
    long slab_bytes = 0;
};

snapshot take() {
    return snapshot{status_kib("VmRSS"), static_cast<long>(::mallinfo2().uordblks),
                    tcp_socket_mem_bytes(), tcp_slab_bytes()};
}

corio::task<int> idle(std::string url, long n) {
    http::client_options options;
    options.max_connections = static_cast<std::size_t>(n);
    options.idle_timeout = 10min;
    http::client cli{std::move(options)};

    // Cold: from a fresh process to N idle connections, the heap growth of N requests in
    // flight included (glibc keeps what they freed).
    const snapshot cold = take();
    const bool first = co_await burst(cli, url, n);
    co_await corio::sleep_for(200ms); // idle: nothing in flight, the kernel's queues drained
    const std::size_t first_idle = cli.idle_connections();
    const snapshot cold_after = take();

    // Warm: the connections closed, the heap trimmed, then N idle connections again; the
    // frame caches and the client's own state are as full before as after.
    cli.close_idle();
    co_await corio::sleep_for(200ms);
    ::malloc_trim(0);
    const snapshot warm = take();
    const bool second = co_await burst(cli, url, n);
    co_await corio::sleep_for(200ms);
    ::malloc_trim(0);
    const std::size_t idle_now = cli.idle_connections();
    const snapshot warm_after = take();
    const bool good = first && second && idle_now == static_cast<std::size_t>(n);

    const auto per = [n](long before, long after, long scale) {
        if (before < 0 || after < 0)
            return -1.0;
        return static_cast<double>(after - before) * static_cast<double>(scale) /
               static_cast<double>(n);
    };
    std::printf(
        "{\"client\": \"corio-idle\", \"conns\": %ld, \"idle_first\": %zu, "
        "\"idle\": %zu, \"ok\": %s, "
        "\"heap_bytes_per_conn\": %.1f, \"rss_bytes_per_conn\": %.1f, "
        "\"cold_rss_bytes_per_conn\": %.1f, \"kernel_sockstat_bytes_per_conn\": %.1f, "
        "\"kernel_tcp_slab_bytes_per_conn\": %.1f, \"rss_before_kib\": %ld, "
        "\"rss_after_kib\": %ld, \"cold_rss_before_kib\": %ld, "
        "\"cold_rss_after_kib\": %ld, "
        "\"sizeof_client_connection\": %zu, \"sizeof_tcp_stream\": %zu}\n",
        n, first_idle, idle_now, good ? "true" : "false",
        per(warm.heap_bytes, warm_after.heap_bytes, 1), per(warm.rss_kib, warm_after.rss_kib, 1024),
        per(cold.rss_kib, cold_after.rss_kib, 1024), per(warm.sock_bytes, warm_after.sock_bytes, 1),
        per(warm.slab_bytes, warm_after.slab_bytes, 1), warm.rss_kib, warm_after.rss_kib,
        cold.rss_kib, cold_after.rss_kib, sizeof(http::detail::client_connection),
        sizeof(corio::net::tcp_stream));
    co_return good ? 0 : 1;
}

} // namespace

int main(int argc, char** argv) {
    std::string url = "http://127.0.0.1:8080/hello";
    long requests = 20000;
    long concurrency = 100;
    long idle_conns = 0;
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        if (a == "--url" && i + 1 < argc) {
            url = argv[++i];
        } else if (a == "--requests" && i + 1 < argc) {
            requests = std::stol(argv[++i]);
        } else if (a == "--concurrency" && i + 1 < argc) {
            concurrency = std::stol(argv[++i]);
        } else if (a == "--idle" && i + 1 < argc) {
            idle_conns = std::stol(argv[++i]);
        } else {
            std::fprintf(stderr, "usage: client_corio [--url URL] [--requests N] "
                                 "[--concurrency C] | --idle N [--url URL]\n");
            return 2;
        }
    }
    try {
        if (idle_conns > 0)
            return corio::run(idle(url, idle_conns));
        return corio::run(load(url, requests, concurrency));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "client_corio: %s\n", e.what());
        return 1;
    }
}

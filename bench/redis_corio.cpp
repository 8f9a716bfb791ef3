// SPDX-License-Identifier: MIT
//
// corio::redis's side of the Redis benchmarks of issue 16, one case per process, one JSON line
// per run (bench/redis.sh runs them; redis-benchmark and redis_py.py are the references):
//
//   redis_corio --case get|set [--address 127.0.0.1:6379] [--tasks 100] [--connections 4]
//               [--requests N | --seconds S] [--warmup N] [--value-size 3] [--server-pid PID]
//       --tasks tasks share ONE corio::redis::client (max_connections = --connections), each
//       sending single commands one after the other: `co_await r.get(key)` (checked: the value
//       SET before) or `co_await r.set(key, value)`, on redis-benchmark's key
//       ("key:__rand_int__", its literal name without -r) and its value (--value-size bytes of
//       'x'). The client pipelines what the tasks send at once (automatic pipelining). The timed
//       part runs --requests requests in all or, with --seconds, until S seconds have passed
//       (the requests in flight then finish). Figures: requests/s, client CPU per request
//       (getrusage, user + system, every thread), and, with --server-pid, the server's CPU time
//       over the timed part (/proc/PID/stat).
//   redis_corio --case limiter [--address ...] [--processes 4] [--tasks 100]
//               [--method acquire|try] [--acquisitions N | --seconds S] [--rate 1000000000]
//               [--period-ms 60000] [--connections 4] [--server-pid PID]
//       --processes forked processes, each with its own loop, client and
//       corio::redis::rate_limiter on one shared key (a rate high enough never to deny), each
//       running --tasks tasks that call `lim.acquire()` (--method acquire; the limiter lets one
//       of a process's acquisitions ask at a time) or `lim.try_acquire()` (--method try: no
//       ordering, so the tasks' scripts pipeline) until N acquisitions per process or S
//       seconds. The processes warm up (connect, load the script), then start together.
//       Figures: acquisitions/s over all processes (all acquisitions / first start to last
//       end), client CPU per acquisition (the processes' timed parts), and the script calls one
//       acquisition costs: the server's `INFO commandstats` (calls of evalsha + eval) read
//       before and after the timed part, over the acquisitions.
//
// Every run first does an untimed warm-up (--warmup requests, 20,000 by default, which also
// opens the client's connections).

#include "handoff_util.hpp"

#include <corio/corio.hpp>
#include <corio/redis/client.hpp>
#include <corio/redis/rate_limiter.hpp>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

using namespace std::chrono_literals;

struct options {
    std::string which;                      // --case: get, set or limiter
    std::string address = "127.0.0.1:6379"; // --address
    std::string method = "acquire";         // limiter: acquire or try
    long tasks = 100;
    long connections = 4;
    long requests = 1'000'000; // get/set: requests in all (unless --seconds)
    long acquisitions = 0;     // limiter: per process (unless --seconds)
    double seconds = 0;        // > 0: run for this long instead of a count
    long warmup = 20'000;
    long value_size = 3;
    long processes = 4;
    long rate = 1'000'000'000;
    long period_ms = 60'000;
    long server_pid = 0;
    long command_timeout_ms = 5'000; // the client's default; 0: none (no timer per command)
};

[[noreturn]] void usage(const char* program, const std::string& why) {
    std::fprintf(stderr,
                 "%s: %s\n"
                 "usage: %s --case get|set [--tasks N] [--connections N] [--requests N | "
                 "--seconds S] [--warmup N] [--value-size N]\n"
                 "       %s --case limiter [--processes N] [--tasks N] [--method acquire|try] "
                 "[--acquisitions N | --seconds S] [--rate N] [--period-ms N] "
                 "[--connections N]\n"
                 "       (every case: [--address host:port] [--server-pid PID] "
                 "[--command-timeout-ms 5000])\n",
                 program, why.c_str(), program, program);
    std::exit(2);
}

options parse(int argc, char** argv) {
    options o;
    for (int i = 1; i < argc; ++i) {
        const std::string_view flag = argv[i];
        if (i + 1 >= argc)
            usage(argv[0], "missing the value of " + std::string(flag));
        const char* value = argv[++i];
        if (flag == "--case") {
            o.which = value;
        } else if (flag == "--address") {
            o.address = value;
        } else if (flag == "--method") {
            o.method = value;
        } else if (flag == "--seconds") {
            char* end = nullptr;
            o.seconds = std::strtod(value, &end);
            if (end == value || *end != 0 || o.seconds <= 0)
                usage(argv[0], "bad value for --seconds: " + std::string(value));
        } else {
            char* end = nullptr;
            const long v = std::strtol(value, &end, 10);
            if (end == value || *end != 0 || v < 0)
                usage(argv[0], "bad value for " + std::string(flag) + ": " + value);
            if (flag == "--tasks")
                o.tasks = v;
            else if (flag == "--connections")
                o.connections = v;
            else if (flag == "--requests")
                o.requests = v;
            else if (flag == "--acquisitions")
                o.acquisitions = v;
            else if (flag == "--warmup")
                o.warmup = v;
            else if (flag == "--value-size")
                o.value_size = v;
            else if (flag == "--processes")
                o.processes = v;
            else if (flag == "--rate")
                o.rate = v;
            else if (flag == "--period-ms")
                o.period_ms = v;
            else if (flag == "--server-pid")
                o.server_pid = v;
            else if (flag == "--command-timeout-ms")
                o.command_timeout_ms = v;
            else
                usage(argv[0], "unknown flag " + std::string(flag));
        }
    }
    if (o.tasks < 1 || o.connections < 1 || o.processes < 1)
        usage(argv[0], "--tasks, --connections and --processes must be at least 1");
    return o;
}

/// The CPU time (user + system, seconds) of process `pid` so far, from /proc/PID/stat; 0 when
/// `pid` is 0 or gone.
double process_cpu_s(long pid) {
    if (pid <= 0)
        return 0;
    std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
    std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    const std::size_t paren = text.rfind(')');
    if (paren == std::string::npos)
        return 0;
    std::istringstream rest(text.substr(paren + 2));
    std::string field;
    double ticks = 0;
    for (int i = 3; i <= 15 && rest >> field; ++i) // fields 14 and 15: utime, stime
        if (i >= 14)
            ticks += std::stod(field);
    return ticks / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

corio::redis::client_options client_options_for(const options& o) {
    corio::redis::client_options c;
    c.address = o.address;
    c.max_connections = static_cast<std::size_t>(o.connections);
    c.command_timeout = std::chrono::milliseconds{o.command_timeout_ms};
    return c;
}

// --- get / set: single commands from many tasks through one client ----------------------------

constexpr std::string_view bench_key = "key:__rand_int__"; // redis-benchmark's, without -r

/// What the tasks of one pass share: how many requests to send, how many were sent, a stop
/// flag for --seconds, and the replies that were not what they should have been.
struct pass_state {
    long limit = 0; // 0: until `stop`
    long sent = 0;
    bool stop = false;
    long wrong = 0;
};

corio::task<> get_worker(corio::redis::client& r, pass_state& p, std::size_t value_size) {
    while (!p.stop && (p.limit == 0 || p.sent < p.limit)) {
        ++p.sent;
        const std::optional<std::string> v = co_await r.get(bench_key);
        if (!v || v->size() != value_size)
            ++p.wrong;
    }
}

corio::task<> set_worker(corio::redis::client& r, pass_state& p, const std::string& value) {
    while (!p.stop && (p.limit == 0 || p.sent < p.limit)) {
        ++p.sent;
        co_await r.set(bench_key, value);
    }
}

corio::task<> stop_after(double seconds, bool& stop) {
    co_await corio::sleep_for(std::chrono::duration_cast<std::chrono::nanoseconds>(
        std::chrono::duration<double>(seconds)));
    stop = true;
}

/// One pass of `limit` requests (0: until `seconds` have passed); returns the requests sent.
corio::task<long> run_pass(const options& o, corio::redis::client& r, const std::string& value,
                           long limit, double seconds) {
    pass_state p;
    p.limit = limit;
    std::optional<corio::join_handle<void>> timer;
    if (limit == 0)
        timer.emplace(corio::spawn(stop_after(seconds, p.stop)));
    std::vector<corio::task<>> workers;
    workers.reserve(static_cast<std::size_t>(o.tasks));
    for (long i = 0; i < o.tasks; ++i) {
        if (o.which == "get")
            workers.push_back(get_worker(r, p, value.size()));
        else
            workers.push_back(set_worker(r, p, value));
    }
    co_await corio::gather(std::move(workers));
    if (timer)
        timer->cancel();
    if (p.wrong > 0)
        throw std::runtime_error("redis_corio: " + std::to_string(p.wrong) +
                                 " GETs did not return the value SET");
    co_return p.sent;
}

corio::task<int> command_main(const options& o) {
    corio::redis::client r{client_options_for(o)};
    const std::string value(static_cast<std::size_t>(o.value_size), 'x');
    co_await r.set(bench_key, value);
    (void)co_await run_pass(o, r, value, std::max(o.warmup, o.tasks), 0);
    const double server0 = process_cpu_s(o.server_pid);
    const handoff::usage_snapshot begin = handoff::snapshot();
    const long ops = co_await run_pass(o, r, value, o.seconds > 0 ? 0 : o.requests, o.seconds);
    const handoff::usage_snapshot end = handoff::snapshot();
    const double server1 = process_cpu_s(o.server_pid);
    const double wall = std::chrono::duration<double>(end.wall - begin.wall).count();
    const double cpu = end.cpu_s - begin.cpu_s;
    std::string variant = "conns-" + std::to_string(o.connections);
    if (o.command_timeout_ms != 5'000)
        variant += "-t" + std::to_string(o.command_timeout_ms);
    std::printf("{\"impl\":\"corio\",\"case\":\"%s\",\"variant\":\"%s\",\"tasks\":%ld,"
                "\"connections\":%ld,\"connections_open\":%zu,\"ops\":%ld,\"wall_s\":%.6f,"
                "\"cpu_s\":%.6f,\"per_s\":%.1f,\"cpu_us_per_op\":%.3f,\"vcsw\":%ld,"
                "\"ivcsw\":%ld,\"server_cpu_timed_s\":%.3f,\"proc_cpu_s\":%.3f}\n",
                o.which.c_str(), variant.c_str(), o.tasks, o.connections, r.connections(), ops,
                wall, cpu, static_cast<double>(ops) / wall, cpu * 1e6 / static_cast<double>(ops),
                end.voluntary - begin.voluntary, end.involuntary - begin.involuntary,
                server1 - server0, end.cpu_s);
    std::fflush(stdout);
    co_return 0;
}

// --- limiter: corio::redis::rate_limiter across processes -------------------------------------

/// What one process's timed part did, as it reports it to the parent (one text line).
struct child_result {
    long granted = 0;
    long denied = 0;
    std::int64_t start_ns = 0; // steady_clock (CLOCK_MONOTONIC: the same in every process)
    std::int64_t end_ns = 0;
    double cpu_s = 0;
    long vcsw = 0;
};

struct limiter_state {
    long limit = 0; // per process; 0: until `stop`
    long started = 0;
    long granted = 0;
    long denied = 0;
    bool stop = false;
};

corio::task<> acquire_worker(corio::redis::rate_limiter& lim, limiter_state& s) {
    while (!s.stop && (s.limit == 0 || s.started < s.limit)) {
        ++s.started;
        co_await lim.acquire();
        ++s.granted;
    }
}

corio::task<> try_worker(corio::redis::rate_limiter& lim, limiter_state& s) {
    while (!s.stop && (s.limit == 0 || s.started < s.limit)) {
        ++s.started;
        // Not `if (co_await lim.try_acquire())`: in this loop g++ 12.2 compiles that into a
        // coroutine whose body never runs (and whose caller never resumes); clang is fine.
        const bool granted = co_await lim.try_acquire();
        ++(granted ? s.granted : s.denied);
    }
}

corio::task<> limiter_pass(const options& o, corio::redis::rate_limiter& lim, limiter_state& s,
                           double seconds) {
    std::optional<corio::join_handle<void>> timer;
    if (s.limit == 0)
        timer.emplace(corio::spawn(stop_after(seconds, s.stop)));
    std::vector<corio::task<>> workers;
    for (long i = 0; i < o.tasks; ++i)
        workers.push_back(o.method == "try" ? try_worker(lim, s) : acquire_worker(lim, s));
    co_await corio::gather(std::move(workers));
    if (timer)
        timer->cancel();
}

void write_all_fd(int fd, const std::string& text) {
    for (std::size_t done = 0; done < text.size();) {
        const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
        if (n <= 0)
            throw std::runtime_error("redis_corio: cannot write to the parent");
        done += static_cast<std::size_t>(n);
    }
}

std::int64_t ns_of(handoff::clock_type::time_point t) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

/// A child's part: warms up, says it is ready, waits for the go (a blocking read: the loop has
/// nothing else to do then), runs its timed part and writes its result to `out_fd`.
corio::task<int> limiter_child(const options& o, const std::string& key, int ready_fd, int go_fd,
                               int out_fd) {
    corio::redis::client r{client_options_for(o)};
    corio::redis::rate_limiter lim{
        r, key, corio::redis::rate_limit{o.rate, std::chrono::milliseconds{o.period_ms}}};
    limiter_state warm;
    warm.limit = std::max(o.tasks, o.warmup / o.processes / 10);
    co_await limiter_pass(o, lim, warm, 0);
    write_all_fd(ready_fd, "r");
    char go = 0;
    if (::read(go_fd, &go, 1) != 0) // the parent closes its end: end of file is the go
        co_return 1;
    limiter_state s;
    s.limit = o.seconds > 0 ? 0 : o.acquisitions;
    const handoff::usage_snapshot begin = handoff::snapshot();
    co_await limiter_pass(o, lim, s, o.seconds);
    const handoff::usage_snapshot end = handoff::snapshot();
    char line[256];
    std::snprintf(line, sizeof line, "%ld %ld %lld %lld %.6f %ld\n", s.granted, s.denied,
                  static_cast<long long>(ns_of(begin.wall)),
                  static_cast<long long>(ns_of(end.wall)), end.cpu_s - begin.cpu_s,
                  end.voluntary - begin.voluntary);
    write_all_fd(out_fd, line);
    co_return 0;
}

/// `INFO commandstats`: command -> {calls, usec}.
corio::task<std::map<std::string, std::pair<long long, long long>>>
command_stats(std::string address) {
    corio::redis::client_options co;
    co.address = std::move(address);
    co.max_connections = 1;
    corio::redis::client r{co};
    const corio::redis::reply info = co_await r.command("INFO", "commandstats");
    std::map<std::string, std::pair<long long, long long>> out;
    std::istringstream lines(info.str());
    for (std::string line; std::getline(lines, line);) {
        // cmdstat_evalsha:calls=10,usec=123,usec_per_call=12.30,rejected_calls=0,...
        if (!line.starts_with("cmdstat_"))
            continue;
        const std::size_t colon = line.find(':');
        const std::size_t calls = line.find("calls=", colon);
        const std::size_t usec = line.find("usec=", colon);
        if (colon == std::string::npos || calls == std::string::npos || usec == std::string::npos)
            continue;
        out[line.substr(8, colon - 8)] = {std::atoll(line.c_str() + calls + 6),
                                          std::atoll(line.c_str() + usec + 5)};
    }
    co_return out;
}

corio::task<int> delete_key(std::string address, std::string key) {
    corio::redis::client_options co;
    co.address = std::move(address);
    corio::redis::client r{co};
    (void)co_await r.command("DEL", key);
    co_return 0;
}

int limiter_main(const options& o) {
    if (o.method != "acquire" && o.method != "try")
        usage("redis_corio", "--method is acquire or try, got " + o.method);
    if (o.seconds <= 0 && o.acquisitions == 0)
        usage("redis_corio", "the limiter needs --acquisitions N or --seconds S");
    const std::string key = "bench:limiter:" + std::to_string(::getpid());
    int ready[2];
    int go[2];
    int results[2];
    if (::pipe(ready) != 0 || ::pipe(go) != 0 || ::pipe(results) != 0)
        throw std::runtime_error("redis_corio: pipe failed");
    std::vector<pid_t> children;
    for (long p = 0; p < o.processes; ++p) {
        const pid_t pid = ::fork();
        if (pid < 0)
            throw std::runtime_error("redis_corio: fork failed");
        if (pid == 0) { // the child: its own loop and client, as a worker process would have
            ::close(ready[0]);
            ::close(go[1]);
            ::close(results[0]);
            int status = 1;
            try {
                status = corio::run(limiter_child(o, key, ready[1], go[0], results[1]));
            } catch (const std::exception& e) {
                std::fprintf(stderr, "redis_corio: a limiter process: %s\n", e.what());
            }
            ::_exit(status);
        }
        children.push_back(pid);
    }
    ::close(ready[1]);
    ::close(go[0]);
    ::close(results[1]);
    for (long p = 0; p < o.processes; ++p) { // every child warmed up
        char c = 0;
        if (::read(ready[0], &c, 1) != 1)
            throw std::runtime_error("redis_corio: a limiter process ended before it was ready");
    }
    const auto before = corio::run(command_stats(o.address));
    const double server0 = process_cpu_s(o.server_pid);
    ::close(go[1]); // the go: every child's read returns at once
    std::string text;
    char buf[4096];
    for (ssize_t n; (n = ::read(results[0], buf, sizeof buf)) > 0;)
        text.append(buf, static_cast<std::size_t>(n));
    int failed = 0;
    for (const pid_t pid : children) {
        int status = 0;
        ::waitpid(pid, &status, 0);
        failed += WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
    }
    const double server1 = process_cpu_s(o.server_pid);
    const auto after = corio::run(command_stats(o.address));
    (void)corio::run(delete_key(o.address, key));
    std::vector<child_result> all;
    std::istringstream lines(text);
    for (child_result c;
         lines >> c.granted >> c.denied >> c.start_ns >> c.end_ns >> c.cpu_s >> c.vcsw;)
        all.push_back(c);
    if (failed > 0 || all.size() != static_cast<std::size_t>(o.processes)) {
        std::fprintf(stderr, "redis_corio: %d of %ld limiter processes failed\n", failed,
                     o.processes);
        return 1;
    }
    long granted = 0;
    long denied = 0;
    double cpu = 0;
    long vcsw = 0;
    std::int64_t first = all.front().start_ns;
    std::int64_t last = all.front().end_ns;
    for (const child_result& c : all) {
        granted += c.granted;
        denied += c.denied;
        cpu += c.cpu_s;
        vcsw += c.vcsw;
        first = std::min(first, c.start_ns);
        last = std::max(last, c.end_ns);
    }
    auto delta = [&](const std::string& name) {
        const auto a = after.find(name);
        const auto b = before.find(name);
        std::pair<long long, long long> d{0, 0};
        if (a != after.end()) {
            d.first = a->second.first - (b != before.end() ? b->second.first : 0);
            d.second = a->second.second - (b != before.end() ? b->second.second : 0);
        }
        return d;
    };
    const auto evalsha = delta("evalsha");
    const auto eval = delta("eval");
    const long ops = granted + denied;
    const double wall = static_cast<double>(last - first) * 1e-9;
    const double n = static_cast<double>(ops);
    std::printf("{\"impl\":\"corio\",\"case\":\"limiter\",\"variant\":\"%s\",\"processes\":%ld,"
                "\"tasks\":%ld,\"connections\":%ld,\"ops\":%ld,\"granted\":%ld,\"denied\":%ld,"
                "\"wall_s\":%.6f,\"cpu_s\":%.6f,\"per_s\":%.1f,\"cpu_us_per_op\":%.3f,"
                "\"vcsw\":%ld,\"evalsha_calls\":%lld,\"eval_calls\":%lld,"
                "\"script_calls_per_op\":%.4f,\"script_server_us_per_op\":%.3f,"
                "\"server_cpu_timed_s\":%.3f}\n",
                o.method.c_str(), o.processes, o.tasks, o.connections, ops, granted, denied, wall,
                cpu, n / wall, cpu * 1e6 / n, vcsw, evalsha.first, eval.first,
                static_cast<double>(evalsha.first + eval.first) / n,
                static_cast<double>(evalsha.second + eval.second) / n, server1 - server0);
    std::fflush(stdout);
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    const options o = parse(argc, argv);
    try {
        if (o.which == "get" || o.which == "set")
            return corio::run(command_main(o));
        if (o.which == "limiter")
            return limiter_main(o);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "redis_corio: %s\n", e.what());
        return 1;
    }
    usage(argv[0], "unknown case '" + o.which + "'");
}

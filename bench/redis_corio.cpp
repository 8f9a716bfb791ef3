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
//   redis_corio --case queue [--address ...] [--processes 4] [--tasks 100] [--items 100000]
//               [--connections 4] [--server-pid PID]
//       corio::redis::work_queue<std::string> across processes, in two timed parts. First a
//       forked producer (its own loop, client and work_queue) puts --items items ("item:N")
//       into a fresh stream, from --tasks tasks at once (`co_await q.put(item)`, which is one
//       XADD). Then --processes forked consumers, each with its own loop, client and
//       work_queue (consumer "consumer-I" of the group "workers"), drain it: each takes its
//       share of the items (items / processes, the first ones one more), from --tasks tasks
//       that loop `auto lease = co_await q.get(); co_await lease.ack();` until their process
//       has taken its share. The shares add up to the items put, so every get finds one and
//       every process ends (and one still running 300 s after its fork is killed by SIGALRM
//       and counted failed); the stream is then checked empty (XLEN and XPENDING 0). Figures:
//       items/s consumed over all processes, client CPU per item (get + ack), script calls
//       (evalsha + eval) and commands (every cmdstat but INFO's) per item, their server time
//       (commandstats usec), the server's CPU per item; and the same for the puts.
//
// The processes of limiter and queue warm up (connect, load the scripts), say they are ready,
// then start together when the parent says go, and report their timed part on a pipe.
//
// Every run first does an untimed warm-up (--warmup requests, 20,000 by default, which also
// opens the client's connections).

#include "handoff_util.hpp"

#include <corio/corio.hpp>
#include <corio/redis/client.hpp>
#include <corio/redis/rate_limiter.hpp>
#include <corio/redis/work_queue.hpp>

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
#include <functional>
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
    std::string which;                      // --case: get, set, limiter or queue
    std::string address = "127.0.0.1:6379"; // --address
    std::string method = "acquire";         // limiter: acquire or try
    long tasks = 100;
    long connections = 4;
    long requests = 1'000'000; // get/set: requests in all (unless --seconds)
    long acquisitions = 0;     // limiter: per process (unless --seconds)
    long items = 100'000;      // queue: items put, then taken
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
                 "       %s --case queue [--processes N] [--tasks N] [--items N] "
                 "[--connections N]\n"
                 "       (every case: [--address host:port] [--server-pid PID] "
                 "[--command-timeout-ms 5000])\n",
                 program, why.c_str(), program, program, program);
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
            else if (flag == "--items")
                o.items = v;
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

// --- processes: forked, warmed up, started together (limiter, queue) ---------------------------

/// What one process's timed part did, as it reports it to the parent (one text line).
struct child_result {
    long done = 0;             // limiter: acquisitions granted; queue: items put, or acked
    long other = 0;            // limiter: denied; queue: acks whose lease had lapsed
    std::int64_t start_ns = 0; // steady_clock (CLOCK_MONOTONIC: the same in every process)
    std::int64_t end_ns = 0;
    double cpu_s = 0;
    long vcsw = 0;
};

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

/// A child's start line: `wait()` says the process warmed up, waits for the parent's go (a
/// blocking read: the loop has nothing else to do then) and starts the timed part's clock;
/// `finish()` stops it.
class start_gate {
public:
    start_gate(int ready_fd, int go_fd) : ready_fd_(ready_fd), go_fd_(go_fd) {}

    void wait() {
        write_all_fd(ready_fd_, "r");
        char go = 0;
        if (::read(go_fd_, &go, 1) != 0) // the parent closes its end: end of file is the go
            throw std::runtime_error("redis_corio: no go from the parent");
        begin_ = handoff::snapshot();
    }

    [[nodiscard]] child_result finish(long done, long other) const {
        const handoff::usage_snapshot end = handoff::snapshot();
        child_result c;
        c.done = done;
        c.other = other;
        c.start_ns = ns_of(begin_.wall);
        c.end_ns = ns_of(end.wall);
        c.cpu_s = end.cpu_s - begin_.cpu_s;
        c.vcsw = end.voluntary - begin_.voluntary;
        return c;
    }

private:
    int ready_fd_;
    int go_fd_;
    handoff::usage_snapshot begin_{};
};

using command_counts = std::map<std::string, std::pair<long long, long long>>;

/// `INFO commandstats`: command -> {calls, usec}.
corio::task<command_counts> command_stats(std::string address) {
    corio::redis::client_options co;
    co.address = std::move(address);
    co.max_connections = 1;
    corio::redis::client r{co};
    const corio::redis::reply info = co_await r.command("INFO", "commandstats");
    command_counts out;
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

/// What the processes of one timed part did, and the server meanwhile.
struct processes_outcome {
    std::vector<child_result> results; // one per process that succeeded
    int failed = 0;
    command_counts before; // the server's commandstats when every process was ready
    command_counts after;  // and once every process ended
    double server_cpu_s = 0;
    // Over every process:
    long done = 0;
    long other = 0;
    double cpu_s = 0;
    long vcsw = 0;
    double wall_s = 0; // the first start to the last end

    /// {calls, usec} of `name` over the timed part.
    [[nodiscard]] std::pair<long long, long long> delta(const std::string& name) const {
        const auto a = after.find(name);
        const auto b = before.find(name);
        std::pair<long long, long long> d{0, 0};
        if (a != after.end()) {
            d.first = a->second.first - (b != before.end() ? b->second.first : 0);
            d.second = a->second.second - (b != before.end() ? b->second.second : 0);
        }
        return d;
    }
    /// {calls, usec} of EVALSHA and EVAL.
    [[nodiscard]] std::pair<long long, long long> scripts() const {
        const auto sha = delta("evalsha");
        const auto text = delta("eval");
        return {sha.first + text.first, sha.second + text.second};
    }
    /// Calls of every command but INFO (the parent's own reading of the statistics); the
    /// commands a script runs (redis.call) count as the server counts them, one each.
    [[nodiscard]] long long commands() const {
        long long n = 0;
        for (const auto& [name, counts] : after)
            if (name != "info")
                n += delta(name).first;
        return n;
    }
    /// {"xadd":[calls,usec],...}: every command but INFO that ran, as a JSON object.
    [[nodiscard]] std::string commands_json() const {
        std::string out = "{";
        for (const auto& [name, counts] : after) {
            const auto d = delta(name);
            if (name == "info" || d.first == 0)
                continue;
            out += (out.size() > 1 ? ",\"" : "\"") + name + "\":[" + std::to_string(d.first) + "," +
                   std::to_string(d.second) + "]";
        }
        return out + "}";
    }
};

/// The body of a child: its warm-up, `gate.wait()`, its timed part, and `gate.finish(...)`.
/// Arguments: the process's index (0, 1, ...) and its gate.
using child_body = std::function<child_result(long, start_gate&)>;

/// Forks `processes` children that each run `body` (their own loop and client, as worker
/// processes would have), waits until every one is ready, reads the server's commandstats and
/// CPU time, gives the go, collects their results and reads the server's figures again.
/// `what` names the processes in messages.
processes_outcome run_processes(const options& o, long processes, const char* what,
                                const child_body& body) {
    int ready[2];
    int go[2];
    int results[2];
    if (::pipe(ready) != 0 || ::pipe(go) != 0 || ::pipe(results) != 0)
        throw std::runtime_error("redis_corio: pipe failed");
    std::fflush(stdout);
    std::vector<pid_t> children;
    for (long p = 0; p < processes; ++p) {
        const pid_t pid = ::fork();
        if (pid < 0)
            throw std::runtime_error("redis_corio: fork failed");
        if (pid == 0) {
            ::close(ready[0]);
            ::close(go[1]);
            ::close(results[0]);
            int status = 1;
            try {
                start_gate gate{ready[1], go[0]};
                const child_result c = body(p, gate);
                char line[256];
                std::snprintf(line, sizeof line, "%ld %ld %lld %lld %.6f %ld\n", c.done, c.other,
                              static_cast<long long>(c.start_ns), static_cast<long long>(c.end_ns),
                              c.cpu_s, c.vcsw);
                write_all_fd(results[1], line);
                status = 0;
            } catch (const std::exception& e) {
                std::fprintf(stderr, "redis_corio: a %s process: %s\n", what, e.what());
            }
            ::_exit(status);
        }
        children.push_back(pid);
    }
    ::close(ready[1]);
    ::close(go[0]);
    ::close(results[1]);
    processes_outcome out;
    bool all_ready = true;
    for (long p = 0; p < processes && all_ready; ++p) { // every child warmed up
        char c = 0;
        all_ready = ::read(ready[0], &c, 1) == 1;
    }
    if (all_ready) {
        out.before = corio::run(command_stats(o.address));
        out.server_cpu_s = -process_cpu_s(o.server_pid);
    }
    ::close(go[1]); // the go: every child's read returns at once
    std::string text;
    char buf[4096];
    for (ssize_t n; (n = ::read(results[0], buf, sizeof buf)) > 0;)
        text.append(buf, static_cast<std::size_t>(n));
    ::close(ready[0]);
    ::close(results[0]);
    for (const pid_t pid : children) {
        int status = 0;
        ::waitpid(pid, &status, 0);
        out.failed += WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
    }
    if (!all_ready)
        throw std::runtime_error(std::string("redis_corio: a ") + what +
                                 " process ended before it was ready");
    out.server_cpu_s += process_cpu_s(o.server_pid);
    out.after = corio::run(command_stats(o.address));
    std::istringstream lines(text);
    for (child_result c; lines >> c.done >> c.other >> c.start_ns >> c.end_ns >> c.cpu_s >> c.vcsw;)
        out.results.push_back(c);
    if (out.results.size() + static_cast<std::size_t>(out.failed) !=
        static_cast<std::size_t>(processes))
        out.failed = static_cast<int>(processes - static_cast<long>(out.results.size()));
    if (out.results.empty())
        return out;
    std::int64_t first = out.results.front().start_ns;
    std::int64_t last = out.results.front().end_ns;
    for (const child_result& c : out.results) {
        out.done += c.done;
        out.other += c.other;
        out.cpu_s += c.cpu_s;
        out.vcsw += c.vcsw;
        first = std::min(first, c.start_ns);
        last = std::max(last, c.end_ns);
    }
    out.wall_s = static_cast<double>(last - first) * 1e-9;
    return out;
}

corio::task<int> delete_key(std::string address, std::string key) {
    corio::redis::client_options co;
    co.address = std::move(address);
    corio::redis::client r{co};
    (void)co_await r.command("DEL", key);
    co_return 0;
}

// --- limiter: corio::redis::rate_limiter across processes -------------------------------------

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

/// A limiter process: warms up, then acquires until its count or the seconds are done.
corio::task<child_result> limiter_child(const options& o, const std::string& key,
                                        start_gate& gate) {
    corio::redis::client r{client_options_for(o)};
    corio::redis::rate_limiter lim{
        r, key, corio::redis::rate_limit{o.rate, std::chrono::milliseconds{o.period_ms}}};
    limiter_state warm;
    warm.limit = std::max(o.tasks, o.warmup / o.processes / 10);
    co_await limiter_pass(o, lim, warm, 0);
    gate.wait();
    limiter_state s;
    s.limit = o.seconds > 0 ? 0 : o.acquisitions;
    co_await limiter_pass(o, lim, s, o.seconds);
    co_return gate.finish(s.granted, s.denied);
}

int limiter_main(const options& o) {
    if (o.method != "acquire" && o.method != "try")
        usage("redis_corio", "--method is acquire or try, got " + o.method);
    if (o.seconds <= 0 && o.acquisitions == 0)
        usage("redis_corio", "the limiter needs --acquisitions N or --seconds S");
    const std::string key = "bench:limiter:" + std::to_string(::getpid());
    const processes_outcome run =
        run_processes(o, o.processes, "limiter", [&](long, start_gate& gate) {
            return corio::run(limiter_child(o, key, gate));
        });
    (void)corio::run(delete_key(o.address, key));
    if (run.failed > 0) {
        std::fprintf(stderr, "redis_corio: %d of %ld limiter processes failed\n", run.failed,
                     o.processes);
        return 1;
    }
    const auto evalsha = run.delta("evalsha");
    const auto eval = run.delta("eval");
    const long ops = run.done + run.other;
    const double n = static_cast<double>(ops);
    std::printf("{\"impl\":\"corio\",\"case\":\"limiter\",\"variant\":\"%s\",\"processes\":%ld,"
                "\"tasks\":%ld,\"connections\":%ld,\"ops\":%ld,\"granted\":%ld,\"denied\":%ld,"
                "\"wall_s\":%.6f,\"cpu_s\":%.6f,\"per_s\":%.1f,\"cpu_us_per_op\":%.3f,"
                "\"vcsw\":%ld,\"evalsha_calls\":%lld,\"eval_calls\":%lld,"
                "\"script_calls_per_op\":%.4f,\"script_server_us_per_op\":%.3f,"
                "\"server_cpu_timed_s\":%.3f}\n",
                o.method.c_str(), o.processes, o.tasks, o.connections, ops, run.done, run.other,
                run.wall_s, run.cpu_s, n / run.wall_s, run.cpu_s * 1e6 / n, run.vcsw, evalsha.first,
                eval.first, static_cast<double>(evalsha.first + eval.first) / n,
                static_cast<double>(evalsha.second + eval.second) / n, run.server_cpu_s);
    std::fflush(stdout);
    return 0;
}

// --- queue: corio::redis::work_queue across processes -----------------------------------------

using string_queue = corio::redis::work_queue<std::string>;

/// What the tasks of one process share: how many items to put or take, how many were started,
/// how many done.
struct queue_state {
    long quota = 0;
    long started = 0;
    long done = 0;   // put, or taken and acknowledged
    long lapsed = 0; // acks that found their lease lapsed (none in this benchmark)
};

corio::task<> put_worker(string_queue& q, queue_state& s) {
    while (s.started < s.quota) {
        const long n = s.started++;
        (void)co_await q.put("item:" + std::to_string(n));
        ++s.done;
    }
}

corio::task<> take_worker(string_queue& q, queue_state& s) {
    while (s.started < s.quota) {
        ++s.started;
        string_queue::lease lease = co_await q.get();
        const bool held = co_await lease.ack();
        ++(held ? s.done : s.lapsed);
    }
}

/// --tasks tasks putting (or taking) `s.quota` items.
corio::task<> queue_pass(const options& o, string_queue& q, queue_state& s, bool put) {
    std::vector<corio::task<>> workers;
    for (long i = 0; i < o.tasks; ++i)
        workers.push_back(put ? put_worker(q, s) : take_worker(q, s));
    co_await corio::gather(std::move(workers));
}

corio::redis::work_queue_options queue_options(std::string consumer) {
    corio::redis::work_queue_options wo;
    wo.consumer = std::move(consumer);
    return wo;
}

/// The warm-up of a process: `items` put then taken on a stream of its own, from --tasks tasks
/// (the client's connections opened as the timed part will use them, the scripts loaded), the
/// stream deleted after.
corio::task<> queue_warmup(const options& o, corio::redis::client& r, const std::string& name,
                           const std::string& consumer) {
    string_queue warm{r, name, queue_options(consumer)};
    queue_state fill;
    fill.quota = std::max(2 * o.tasks, o.warmup / o.processes / 10);
    co_await queue_pass(o, warm, fill, true);
    queue_state drain;
    drain.quota = fill.quota;
    co_await queue_pass(o, warm, drain, false);
    (void)co_await r.command("DEL", warm.name(), warm.dead_letters());
}

/// The producer: puts --items items into `name`.
corio::task<child_result> queue_producer(const options& o, const std::string& name,
                                         start_gate& gate) {
    corio::redis::client r{client_options_for(o)};
    co_await queue_warmup(o, r, name + ":warm:producer", "producer");
    string_queue q{r, name, queue_options("producer")};
    (void)co_await q.pending(); // the group created: the timed part only puts
    gate.wait();
    queue_state s;
    s.quota = o.items;
    co_await queue_pass(o, q, s, true);
    co_return gate.finish(s.done, 0);
}

/// Consumer `index`: takes and acknowledges its share of `name`'s items.
corio::task<child_result> queue_consumer(const options& o, const std::string& name, long index,
                                         start_gate& gate) {
    corio::redis::client r{client_options_for(o)};
    const std::string consumer = "consumer-" + std::to_string(index);
    co_await queue_warmup(o, r, name + ":warm:" + consumer, consumer);
    string_queue q{r, name, queue_options(consumer)};
    (void)co_await q.pending(); // the group known: the timed part only gets and acks
    gate.wait();
    queue_state s;
    s.quota = o.items / o.processes + (index < o.items % o.processes ? 1 : 0);
    co_await queue_pass(o, q, s, false);
    co_return gate.finish(s.done, s.lapsed);
}

/// The stream's length (XLEN) and the items its group has leased and not acknowledged.
corio::task<std::pair<long long, long long>> queue_left(std::string address, std::string name) {
    corio::redis::client_options co;
    co.address = std::move(address);
    corio::redis::client r{co};
    const corio::redis::reply length = co_await r.command("XLEN", name);
    const corio::redis::reply pending = co_await r.command("XPENDING", name, "workers");
    co_return std::pair<long long, long long>{length.as_integer(), pending[0].as_integer()};
}

/// A child's hang guard: a process still running this long after its fork is killed
/// (SIGALRM), which the parent reports as a failed process.
constexpr unsigned queue_deadline_s = 300;

int queue_main(const options& o) {
    if (o.items < o.processes)
        usage("redis_corio", "--items must be at least --processes");
    const std::string name = "bench:queue:" + std::to_string(::getpid());
    const processes_outcome put = run_processes(o, 1, "producer", [&](long, start_gate& gate) {
        ::alarm(queue_deadline_s);
        return corio::run(queue_producer(o, name, gate));
    });
    const auto [filled, leased] = corio::run(queue_left(o.address, name));
    if (put.failed > 0 || put.done != o.items || filled != o.items || leased != 0) {
        (void)corio::run(delete_key(o.address, name));
        std::fprintf(stderr,
                     "redis_corio: the producer put %ld of %ld items (the stream holds "
                     "%lld)\n",
                     put.done, o.items, filled);
        return 1;
    }
    const processes_outcome take =
        run_processes(o, o.processes, "consumer", [&](long index, start_gate& gate) {
            ::alarm(queue_deadline_s);
            return corio::run(queue_consumer(o, name, index, gate));
        });
    const auto [left, pending] = corio::run(queue_left(o.address, name));
    (void)corio::run(delete_key(o.address, name));
    (void)corio::run(delete_key(o.address, name + ":dead"));
    if (take.failed > 0 || take.done + take.other != o.items || left != 0 || pending != 0) {
        std::fprintf(stderr,
                     "redis_corio: %d of %ld consumer processes failed; %ld items "
                     "acknowledged of %ld, %lld left in the stream, %lld leased\n",
                     take.failed, o.processes, take.done + take.other, o.items, left, pending);
        return 1;
    }
    const auto scripts = take.scripts();
    const double n = static_cast<double>(o.items);
    const auto xadd = put.delta("xadd");
    std::printf(
        "{\"impl\":\"corio\",\"case\":\"queue\",\"variant\":\"drain\",\"processes\":%ld,"
        "\"tasks\":%ld,\"connections\":%ld,\"items\":%ld,\"ops\":%ld,\"lapsed\":%ld,"
        "\"wall_s\":%.6f,\"cpu_s\":%.6f,\"per_s\":%.1f,\"cpu_us_per_op\":%.3f,"
        "\"vcsw\":%ld,\"evalsha_calls\":%lld,\"eval_calls\":%lld,"
        "\"script_calls_per_op\":%.4f,\"script_server_us_per_op\":%.3f,"
        "\"script_us_per_call\":%.3f,\"commands_per_op\":%.4f,"
        "\"server_cpu_timed_s\":%.3f,\"put_wall_s\":%.6f,\"put_cpu_s\":%.6f,"
        "\"put_per_s\":%.1f,\"put_cpu_us_per_op\":%.3f,\"put_commands_per_op\":%.4f,"
        "\"put_xadd_us_per_call\":%.3f,\"put_server_cpu_timed_s\":%.3f,"
        "\"server_commands\":%s,\"put_server_commands\":%s}\n",
        o.processes, o.tasks, o.connections, o.items, take.done, take.other, take.wall_s,
        take.cpu_s, n / take.wall_s, take.cpu_s * 1e6 / n, take.vcsw, take.delta("evalsha").first,
        take.delta("eval").first, static_cast<double>(scripts.first) / n,
        static_cast<double>(scripts.second) / n,
        scripts.first > 0 ? static_cast<double>(scripts.second) / static_cast<double>(scripts.first)
                          : 0.0,
        static_cast<double>(take.commands()) / n, take.server_cpu_s, put.wall_s, put.cpu_s,
        n / put.wall_s, put.cpu_s * 1e6 / n, static_cast<double>(put.commands()) / n,
        xadd.first > 0 ? static_cast<double>(xadd.second) / static_cast<double>(xadd.first) : 0.0,
        put.server_cpu_s, take.commands_json().c_str(), put.commands_json().c_str());
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
        if (o.which == "queue")
            return queue_main(o);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "redis_corio: %s\n", e.what());
        return 1;
    }
    usage(argv[0], "unknown case '" + o.which + "'");
}

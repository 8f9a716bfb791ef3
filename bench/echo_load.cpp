// SPDX-License-Identifier: MIT
//
// The load generator of the echo benchmarks (issue 4): one program that measures every echo
// server of bench/ (echo_uring, echo_corio, echo_asio) the same way, written with plain epoll
// so that it shares no code with any of them.
//
//     echo_load [--host 127.0.0.1] [--port 7000] [--conns 1] [--size 64] [--duration 5]
//               [--warmup 1] [--tag key=value]...
//
// Opens `conns` TCP connections (TCP_NODELAY), then runs a closed loop on each: send a
// `size`-byte message, wait until all `size` bytes have come back, check them, send the next.
// One message is in flight per connection, so the figures are round trips, not pipelined
// throughput. After `warmup` seconds it measures for `duration` seconds and prints one JSON line:
//
//     {"conns":100,"size":64,"seconds":5.000,"messages":...,"msgs_per_s":...,"mib_per_s":...,
//      "p50_us":...,"p90_us":...,"p99_us":...,"max_us":...,"cpu_busy":[0.99,0.71],
//      "cpu_steal":[0.00,0.00],"load_cpu_s":...,"load_preempted":...,<tags>}
//
// A round trip's latency runs from just before the send() of its first byte to just after the
// recv() that brought its last byte back; the percentiles come from a log-linear histogram
// (128 sub-buckets per power of two: under 1 % error). mib_per_s counts one direction.
// cpu_busy is each CPU's busy fraction over the measured window, from /proc/stat (what is not
// idle, iowait or steal, over all of it: softirq work done on that CPU counts, which the
// server's own rusage would miss); cpu_steal is the fraction stolen by the hypervisor.
// load_cpu_s is this process's CPU time (user + system) in the window, load_preempted its
// involuntary context switches there: another task took its core (other work on the machine).
//
// The generator is one thread: pin it to a core of its own (taskset -c 1) and the server to
// another. Each message costs it one send() and one or more recv(), plus its share of an
// epoll_wait that returns every connection that is ready. The message carries a sequence number
// in its first 8 bytes, so a server that returns wrong or stale bytes is caught.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace {

[[noreturn]] void die(const char* what) {
    std::fprintf(stderr, "echo_load: %s: %s\n", what, std::strerror(errno));
    std::exit(1);
}

[[noreturn]] void fail(const std::string& what) {
    std::fprintf(stderr, "echo_load: %s\n", what.c_str());
    std::exit(1);
}

std::int64_t now_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

/// Latencies in nanoseconds, log-linear: exact below 128 ns, then 64 buckets per power of two
/// (each bucket spans under 1/64 of its value).
class histogram {
public:
    void add(std::uint64_t v) {
        ++counts_[index(v)];
        ++total_;
        max_ = std::max(max_, v);
    }
    [[nodiscard]] std::uint64_t total() const { return total_; }
    [[nodiscard]] std::uint64_t max() const { return max_; }

    /// The value below which a fraction `q` of the samples lie (the bucket's midpoint).
    [[nodiscard]] double quantile(double q) const {
        if (total_ == 0)
            return 0;
        const auto rank = static_cast<std::uint64_t>(q * static_cast<double>(total_ - 1)) + 1;
        std::uint64_t seen = 0;
        for (std::size_t i = 0; i < counts_.size(); ++i) {
            seen += counts_[i];
            if (seen >= rank)
                return midpoint(i);
        }
        return static_cast<double>(max_);
    }

private:
    static constexpr std::size_t linear = 128;
    static constexpr std::size_t sub = 64;

    static std::size_t index(std::uint64_t v) {
        if (v < linear)
            return v;
        const int msb = 63 - std::countl_zero(v); // >= 7
        const int shift = msb - 6;                // keeps the top 7 bits: [64, 128)
        return linear + static_cast<std::size_t>(msb - 7) * sub + ((v >> shift) - sub);
    }
    static double midpoint(std::size_t i) {
        if (i < linear)
            return static_cast<double>(i);
        const std::size_t msb = 7 + (i - linear) / sub;
        const std::size_t shift = msb - 6;
        const std::uint64_t low = (sub + (i - linear) % sub) << shift;
        return static_cast<double>(low) + static_cast<double>(1ULL << shift) / 2;
    }

    std::array<std::uint64_t, linear + 57 * sub> counts_{};
    std::uint64_t total_ = 0;
    std::uint64_t max_ = 0;
};

/// Per-CPU jiffies from /proc/stat: {busy, total, steal} for cpu0, cpu1, ...
struct cpu_sample {
    std::uint64_t busy = 0, total = 0, steal = 0;
};
std::vector<cpu_sample> read_cpu_stats() {
    std::vector<cpu_sample> out;
    std::ifstream stat("/proc/stat");
    for (std::string line; std::getline(stat, line);) {
        if (line.size() < 4 || line.compare(0, 3, "cpu") != 0 || line[3] == ' ')
            continue; // only the per-CPU lines
        std::istringstream in(line);
        std::string name;
        // user nice system idle iowait irq softirq steal (guest time is already in user)
        std::array<std::uint64_t, 8> f{};
        in >> name;
        for (auto& x : f)
            in >> x;
        cpu_sample s;
        s.total = f[0] + f[1] + f[2] + f[3] + f[4] + f[5] + f[6] + f[7];
        s.steal = f[7];
        s.busy = s.total - f[3] - f[4] - f[7];
        out.push_back(s);
    }
    return out;
}

/// This process's CPU time (user + system) and involuntary context switches (preemptions:
/// another task wanted this core).
struct self_usage {
    double cpu_s = 0;
    long preempted = 0;
};
self_usage usage() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return {static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6,
            ru.ru_nivcsw};
}

struct options {
    std::string host = "127.0.0.1";
    std::uint16_t port = 7000;
    int conns = 1;
    std::size_t size = 64;
    double duration = 5;
    double warmup = 1;
    std::vector<std::pair<std::string, std::string>> tags;
};

options parse(int argc, char** argv) {
    options o;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (i + 1 >= argc)
            fail("missing value after " + arg);
        const std::string value = argv[++i];
        if (arg == "--host")
            o.host = value;
        else if (arg == "--port")
            o.port = static_cast<std::uint16_t>(std::stoi(value));
        else if (arg == "--conns")
            o.conns = std::stoi(value);
        else if (arg == "--size")
            o.size = std::stoul(value);
        else if (arg == "--duration")
            o.duration = std::stod(value);
        else if (arg == "--warmup")
            o.warmup = std::stod(value);

        else if (arg == "--tag") {
            const auto eq = value.find('=');
            if (eq == std::string::npos)
                fail("--tag wants key=value");
            o.tags.emplace_back(value.substr(0, eq), value.substr(eq + 1));
        } else
            fail("unknown option " + arg);
    }
    if (o.conns < 1 || o.size < 8 || o.duration <= 0 || o.warmup < 0)
        fail("need --conns >= 1, --size >= 8, --duration > 0, --warmup >= 0");
    return o;
}

/// Connects, retrying for a couple of seconds while the server starts up.
int connect_to(const options& o) {
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(o.port);
    if (inet_pton(AF_INET, o.host.c_str(), &to.sin_addr) != 1)
        fail("not an IPv4 address: " + o.host);
    for (int attempt = 0;; ++attempt) {
        const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            die("socket");
        if (::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) == 0) {
            const int one = 1;
            ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
            return fd;
        }
        const int err = errno;
        ::close(fd);
        if (err != ECONNREFUSED || attempt >= 200) {
            errno = err;
            die("connect");
        }
        usleep(10'000);
    }
}

/// One connection's closed loop.
struct connection {
    int fd = -1;
    std::vector<unsigned char> out; // the message being sent (sequence number in front)
    std::vector<unsigned char> in;  // where its echo is collected
    std::size_t sent = 0;
    std::size_t received = 0;
    std::uint64_t seq = 0;
    std::int64_t started = 0; // when the current message's first send began
    bool want_out = false;    // registered for EPOLLOUT (a send was short)
};

class load {
public:
    explicit load(const options& o) : o_(o), ep_(epoll_create1(EPOLL_CLOEXEC)) {
        if (ep_ < 0)
            die("epoll_create1");
        conns_.resize(static_cast<std::size_t>(o.conns));
        for (std::size_t i = 0; i < conns_.size(); ++i) {
            connection& c = conns_[i];
            c.fd = connect_to(o);
            c.out.resize(o.size);
            c.in.resize(o.size);
            for (std::size_t b = 8; b < o.size; ++b)
                c.out[b] = static_cast<unsigned char>(b * 31 + i);
            epoll_event ev{};
            ev.events = EPOLLIN;
            ev.data.u64 = i;
            if (epoll_ctl(ep_, EPOLL_CTL_ADD, c.fd, &ev) != 0)
                die("epoll_ctl");
        }
    }

    void run() {
        const std::int64_t start = now_ns();
        measure_from_ = start + static_cast<std::int64_t>(o_.warmup * 1e9);
        measure_to_ = measure_from_ + static_cast<std::int64_t>(o_.duration * 1e9);
        for (connection& c : conns_)
            begin(c);
        std::vector<epoll_event> events(conns_.size());
        for (;;) {
            const int n = epoll_wait(ep_, events.data(), static_cast<int>(events.size()), 100);
            if (n < 0 && errno != EINTR)
                die("epoll_wait");
            for (int k = 0; k < n; ++k) {
                connection& c = conns_[events[static_cast<std::size_t>(k)].data.u64];
                const std::uint32_t what = events[static_cast<std::size_t>(k)].events;
                if ((what & EPOLLOUT) != 0)
                    send_more(c);
                if ((what & (EPOLLIN | EPOLLERR | EPOLLHUP)) != 0)
                    receive(c);
            }
            const std::int64_t t = now_ns();
            if (!measuring_ && t >= measure_from_) {
                measuring_ = true; // the window starts here: completions from now on count
                cpu_before_ = read_cpu_stats();
                self_before_ = usage();
                window_start_ = t;
            }
            if (t >= measure_to_)
                break;
        }
        cpu_after_ = read_cpu_stats();
        self_after_ = usage();
    }

    void report() const {
        const double seconds = static_cast<double>(measure_to_ - window_start_) / 1e9;
        const double msgs = static_cast<double>(completed_);
        std::printf("{\"conns\":%d,\"size\":%zu,\"seconds\":%.3f,\"messages\":%llu,"
                    "\"msgs_per_s\":%.1f,\"mib_per_s\":%.2f,\"p50_us\":%.2f,\"p90_us\":%.2f,"
                    "\"p99_us\":%.2f,\"max_us\":%.2f",
                    o_.conns, o_.size, seconds, static_cast<unsigned long long>(completed_),
                    msgs / seconds,
                    msgs * static_cast<double>(o_.size) / seconds / (1024.0 * 1024.0),
                    hist_.quantile(0.50) / 1e3, hist_.quantile(0.90) / 1e3,
                    hist_.quantile(0.99) / 1e3, static_cast<double>(hist_.max()) / 1e3);
        std::string busy, steal;
        for (std::size_t i = 0; i < cpu_after_.size() && i < cpu_before_.size(); ++i) {
            const double total = static_cast<double>(cpu_after_[i].total - cpu_before_[i].total);
            const double b =
                total > 0 ? static_cast<double>(cpu_after_[i].busy - cpu_before_[i].busy) / total
                          : 0;
            const double s =
                total > 0 ? static_cast<double>(cpu_after_[i].steal - cpu_before_[i].steal) / total
                          : 0;
            char buf[32];
            std::snprintf(buf, sizeof buf, "%s%.3f", i == 0 ? "" : ",", b);
            busy += buf;
            std::snprintf(buf, sizeof buf, "%s%.3f", i == 0 ? "" : ",", s);
            steal += buf;
        }
        std::printf(",\"cpu_busy\":[%s],\"cpu_steal\":[%s],\"load_cpu_s\":%.3f,"
                    "\"load_preempted\":%ld",
                    busy.c_str(), steal.c_str(), self_after_.cpu_s - self_before_.cpu_s,
                    self_after_.preempted - self_before_.preempted);
        for (const auto& [k, v] : o_.tags)
            std::printf(",\"%s\":\"%s\"", k.c_str(), v.c_str());
        std::printf("}\n");
    }

private:
    /// Starts the next message of `c`.
    void begin(connection& c) {
        ++c.seq;
        std::memcpy(c.out.data(), &c.seq, sizeof c.seq);
        c.sent = 0;
        c.received = 0;
        c.started = now_ns();
        send_more(c);
    }

    void send_more(connection& c) {
        while (c.sent < c.out.size()) {
            const ssize_t n =
                ::send(c.fd, c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL);
            if (n > 0) {
                c.sent += static_cast<std::size_t>(n);
                continue;
            }
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                watch_out(c, true); // the rest goes when the socket has room
                return;
            }
            die("send");
        }
        if (c.want_out)
            watch_out(c, false);
    }

    void receive(connection& c) {
        for (;;) {
            if (c.received == c.in.size())
                fail("the server sent more than it was sent");
            const ssize_t n = ::recv(c.fd, c.in.data() + c.received, c.in.size() - c.received, 0);
            if (n == 0)
                fail("the server closed a connection");
            if (n < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK)
                    return;
                die("recv");
            }
            c.received += static_cast<std::size_t>(n);
            if (c.received < c.in.size())
                continue; // more of it may already be there
            const std::int64_t t = now_ns();
            if (c.sent != c.out.size() || std::memcmp(c.in.data(), c.out.data(), 8) != 0 ||
                c.in.back() != c.out.back())
                fail("the echo does not match the message");
            if (measuring_ && t < measure_to_) {
                ++completed_;
                if (c.started >= window_start_) // round trips wholly inside the window
                    hist_.add(static_cast<std::uint64_t>(t - c.started));
            }
            begin(c);
            return; // the echo of the new message cannot be there yet
        }
    }

    void watch_out(connection& c, bool on) {
        epoll_event ev{};
        ev.events = EPOLLIN | (on ? EPOLLOUT : 0u);
        ev.data.u64 = static_cast<std::size_t>(&c - conns_.data());
        if (epoll_ctl(ep_, EPOLL_CTL_MOD, c.fd, &ev) != 0)
            die("epoll_ctl");
        c.want_out = on;
    }

    options o_;
    int ep_;
    std::vector<connection> conns_;
    histogram hist_;
    std::int64_t measure_from_ = 0, measure_to_ = 0;
    std::int64_t window_start_ = 0;
    bool measuring_ = false;
    std::uint64_t completed_ = 0; // round trips completed in the window
    std::vector<cpu_sample> cpu_before_, cpu_after_;
    self_usage self_before_, self_after_;
};

} // namespace

int main(int argc, char** argv) {
    const options o = parse(argc, argv);
    load l{o};
    l.run();
    l.report();
    return 0;
}

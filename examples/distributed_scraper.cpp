// SPDX-License-Identifier: MIT
//
// The scraper as a fleet: N processes crawl the local site of examples/crawl.hpp together,
// sharing through one redis-server the frontier (corio::redis::work_queue of URLs), the
// seen-set (corio::redis::set) and the site's rate limit (corio::redis::rate_limiter), as
// scrapy-redis does for Scrapy. Kill -9 a worker halfway (--kill-one) and nothing is lost: its
// leased pages come back once the visibility timeout has passed, every page is still fetched,
// and the limit still holds.
//
//   distributed_scraper [--workers N] [--redis HOST:PORT] [--rate N/PERIOD] [--site-pages N]
//                       [--latency MS] [--visibility-timeout MS] [--kill-one] ...
//   distributed_scraper --worker --redis HOST:PORT [--name NAME] [--id NAME] [--concurrency N]
//
// The parent process serves the site on 127.0.0.1 (a free port), starts a redis-server of its
// own (/usr/bin/redis-server, on a free port of 127.0.0.1, in a temporary directory, persistence
// off; stopped at the end) unless given --redis, clears the run's keys, puts the start page,
// writes the run's settings (NAME:config) and starts N workers: this program again, with
// --worker, each with its own loop, Redis client, queue, limiter and HTTP client. A worker:
//
//   lease = frontier.get()                      a URL, leased for the visibility timeout
//   lease.renewing(limiter.acquire())           the host's rate limit, the lease renewed meanwhile
//   fetch and parse the page                    crawl::detail::fetch_page
//   for each link to the same host:
//       frontier.put_if_new(seen, link)         marked seen and queued in one step (a script)
//   lease.ack()
//
// The end: the frontier's stream holds every item put and not yet acknowledged (waiting or
// leased), and an item is acknowledged only after its page's links were put. So when the stream
// is empty (XLEN 0), no page is in flight anywhere and none can be put again: every worker
// stops when it sees that, and a worker killed holding leases only delays it (its items are
// still in the stream until another worker takes and acknowledges them).
// `put_if_new` marks a link seen and queues it in one script: a worker killed between the two
// steps of a plain `seen.add` then `put` would leave the link seen and never queued.
//
// Workers print a progress line to stderr each second; at the end the parent prints a summary:
// pages fetched (every page of the site must be), pages fetched more than once, items
// redelivered, dead letters, and the busiest window of the limiter's period: each fetch's
// grant time on the server's clock (`last_granted_us()`, pushed to NAME:stamps), sorted, with a
// window of the period slid over them, against the limit. Exit status 0 only when every page
// was fetched and the limit held; 1 otherwise; 2 for a usage error; 3 when no redis-server
// could be started (and none was given).
//
// Workers on other machines: run the parent with --listen on an address they reach and
// --redis on a server they reach (its keys NAME:* are cleared), maybe with --workers 0, then
// `distributed_scraper --worker --redis HOST:PORT` on each machine: a worker reads the start
// URL and the settings from NAME:config, waiting for them, and stops when the crawl is done.

#include "crawl.hpp"

#include <corio/corio.hpp>
#include <corio/http/client.hpp>
#include <corio/http/server.hpp>
#include <corio/redis.hpp>

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace http = corio::http;
namespace redis = corio::redis;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

// ---------------------------------------------------------------------------------------------
// Settings and the run's keys.

struct settings {
    bool worker = false;
    std::string redis; // HOST:PORT; empty: start a redis-server of our own
    std::string name = "fleet";
    int workers = 4;
    std::size_t concurrency = 8; // pages in flight per worker
    std::string id;              // a worker's consumer name
    redis::rate_limit rate{200, 1000ms};
    crawl::site_options site;
    std::string listen = "127.0.0.1:0";
    std::chrono::milliseconds visibility{3000};
    long max_deliveries = 5;
    bool kill_one = false;
    std::chrono::seconds max_time{300};
};

// Every key of a run, under its name ("fleet:frontier", ...).
struct keys {
    explicit keys(const std::string& name)
        : frontier(name + ":frontier"), dead(frontier + ":dead"), seen(name + ":seen"),
          config(name + ":config"), fetched(name + ":fetched"), by_worker(name + ":by-worker"),
          stamps(name + ":stamps"), redelivered(name + ":redelivered"), counts(name + ":counts"),
          limit(name + ":limit:") {}

    std::string frontier;    // the work queue's stream of URLs
    std::string dead;        // its dead letters
    std::string seen;        // URLs found
    std::string config;      // the run's settings, written by the parent once the start is put
    std::string fetched;     // URL -> fetches
    std::string by_worker;   // consumer -> fetches
    std::string stamps;      // each fetch's grant time, microseconds on the server's clock
    std::string redelivered; // entry ids delivered more than once
    std::string counts;      // lapsed, failed
    std::string limit;       // + "host:port": the host's rate limiter

    [[nodiscard]] std::vector<std::string> all(const std::string& host) const {
        // The settings first: a worker that still sees them sees the frontier too.
        return {config,    frontier, dead,        seen,   fetched,
                by_worker, stamps,   redelivered, counts, limit + host};
    }
};

using url_queue = redis::work_queue<std::string>;

// "200/1s", "10/500ms", "100/1m": N per period (as the scraper's --rate).
redis::rate_limit parse_rate(std::string_view text) {
    const auto [n, period] = crawl::parse_rate(text);
    return redis::rate_limit{n, period};
}

std::string period_text(std::chrono::milliseconds p) {
    return p.count() % 1000 == 0 ? std::to_string(p.count() / 1000) + "s"
                                 : std::to_string(p.count()) + "ms";
}

redis::client_options redis_options(const std::string& address) {
    redis::client_options o;
    o.address = address;
    o.max_connections = 2;
    return o;
}

// The most stamps (sorted) that fall in one window (t - period, t].
std::size_t busiest_window(const std::vector<std::int64_t>& sorted, std::int64_t period) {
    std::size_t best = 0;
    std::size_t first = 0;
    for (std::size_t last = 0; last < sorted.size(); ++last) {
        while (sorted[last] - sorted[first] >= period)
            ++first;
        best = std::max(best, last - first + 1);
    }
    return best;
}

// HGETALL's reply as a map.
std::map<std::string, std::string> as_map(const redis::reply& r) {
    std::map<std::string, std::string> out;
    for (std::size_t i = 0; i + 1 < r.size(); i += 2)
        out[r[i].str()] = r[i + 1].str();
    return out;
}

long long number_or_zero(const std::map<std::string, std::string>& m, const std::string& key) {
    const auto it = m.find(key);
    return it == m.end() ? 0 : std::stoll(it->second);
}

// ---------------------------------------------------------------------------------------------
// A worker.

struct worker {
    std::string id;
    keys k;
    http::url start;
    redis::client& r;
    url_queue& q;
    redis::set& seen;
    redis::rate_limiter& limiter;
    http::client& cli;
    std::size_t fetched = 0;
    std::size_t in_flight = 0;
    std::size_t redelivered = 0;
    std::size_t lapsed = 0;
    std::size_t failed = 0;
    std::size_t frontier = 0; // the stream's length, as last seen
    steady::time_point began = steady::now();
};

corio::task<> count(worker& w, std::string what) {
    (void)co_await w.r.command("HINCRBY", w.k.counts, what, 1);
}

struct in_flight_guard {
    explicit in_flight_guard(worker& w) : w_(w) { ++w_.in_flight; }
    in_flight_guard(const in_flight_guard&) = delete;
    in_flight_guard& operator=(const in_flight_guard&) = delete;
    ~in_flight_guard() { --w_.in_flight; }
    worker& w_;
};

// One leased page: rate slot, fetch, parse, put the new links, ack.
corio::task<> visit(worker& w, url_queue::lease l) {
    const in_flight_guard busy{w};
    const bool again = l.deliveries() > 1;
    if (again) {
        ++w.redelivered;
        (void)co_await w.r.command("SADD", w.k.redelivered, l.id());
    }
    // The wait for a slot of the host's rate limit, and the fetch (up to 10 s), can outlast
    // the visibility timeout: the lease is renewed meanwhile, so that no other worker takes
    // the page.
    co_await l.renewing(w.limiter.acquire());
    (void)co_await w.r.command("RPUSH", w.k.stamps, w.limiter.last_granted_us());
    crawl::detail::job j;
    j.url = l.value();
    corio::task<crawl::detail::fetch_result> get =
        crawl::detail::fetch_page(w.cli, std::chrono::seconds(10), std::move(j));
    crawl::detail::fetch_result page = co_await l.renewing(std::move(get));
    if (!page.failure.empty() && !page.failure.starts_with("HTTP ")) {
        // No answer (refused, timed out): give the page back, to be tried again (a delivery
        // is counted; past max_deliveries it goes to the dead letters).
        ++w.failed;
        std::fprintf(stderr, "%s: %s: %s (given back)\n", w.id.c_str(), page.url.c_str(),
                     page.failure_example.c_str());
        co_await count(w, "failed");
        co_await corio::sleep_for(200ms);
        (void)co_await l.release();
        co_return;
    }
    redis::pipeline_batch record;
    record.command("HINCRBY", w.k.fetched, page.url, 1);
    record.command("HINCRBY", w.k.by_worker, w.id, 1);
    (void)co_await w.r.pipeline(std::move(record));
    ++w.fetched;
    for (const http::url& link : page.links) {
        if (link.scheme != w.start.scheme || link.host != w.start.host || link.port != w.start.port)
            continue;
        const std::string url = link.to_string();
        (void)co_await w.q.put_if_new(w.seen, url);
    }
    const bool acked = co_await l.ack();
    if (!acked) { // it lapsed meanwhile: the delivery that holds it now acks it
        ++w.lapsed;
        co_await count(w, "lapsed");
    }
}

corio::task<> fetch_pages(worker& w) {
    for (;;) {
        url_queue::lease l = co_await w.q.get();
        co_await visit(w, std::move(l));
    }
}

corio::task<> crawl_all(worker& w, std::size_t concurrency) {
    corio::task_group g;
    for (std::size_t i = 0; i < concurrency; ++i)
        g.spawn(fetch_pages(w));
    co_await g.join();
}

void print_progress(const worker& w) {
    const double s = std::chrono::duration<double>(steady::now() - w.began).count();
    std::fprintf(stderr,
                 "%s: %zu fetched (%.0f/s), %zu in flight, %zu redelivered, %zu lapsed, %zu "
                 "failed, frontier %zu\n",
                 w.id.c_str(), w.fetched, s > 0 ? static_cast<double>(w.fetched) / s : 0.0,
                 w.in_flight, w.redelivered, w.lapsed, w.failed, w.frontier);
}

corio::task<> show_progress(const worker& w) {
    for (;;) {
        co_await corio::sleep_for(1s);
        print_progress(w);
    }
}

std::string default_id() {
    char host[256] = {};
    (void)::gethostname(host, sizeof host - 1);
    return std::string(host) + "-" + std::to_string(::getpid());
}

corio::task<int> run_worker(settings s) {
    redis::client r{redis_options(s.redis)};
    const keys k{s.name};
    // The parent writes the settings once the start page is in the frontier, and deletes them
    // when the run is over.
    std::map<std::string, std::string> config;
    for (bool told = false;; told = true) {
        const redis::reply h = co_await r.command("HGETALL", k.config);
        config = as_map(h);
        if (!config.empty())
            break;
        if (!told)
            std::fprintf(stderr, "waiting for a run (%s on %s)\n", k.config.c_str(),
                         s.redis.c_str());
        co_await corio::sleep_for(100ms);
    }
    const http::url start = http::url::parse(config.at("start"));
    const redis::rate_limit limit{std::stol(config.at("rate")),
                                  std::chrono::milliseconds(std::stol(config.at("period_ms")))};
    redis::work_queue_options qo;
    qo.consumer = s.id.empty() ? default_id() : s.id;
    qo.visibility_timeout = std::chrono::milliseconds(std::stol(config.at("visibility_ms")));
    qo.max_deliveries = std::stol(config.at("max_deliveries"));
    qo.reclaim_interval = std::min<std::chrono::milliseconds>(500ms, qo.visibility_timeout / 4);
    url_queue q{r, k.frontier, qo};
    redis::set seen{r, k.seen};
    redis::rate_limiter limiter{r, k.limit + start.host + ":" + std::to_string(start.port), limit};
    http::client cli{http::client_options{.max_connections = s.concurrency}};
    worker w{.id = qo.consumer,
             .k = k,
             .start = start,
             .r = r,
             .q = q,
             .seen = seen,
             .limiter = limiter,
             .cli = cli};
    std::fprintf(stderr, "%s (pid %d): crawling %s, %zu pages at once, %ld per %s\n", w.id.c_str(),
                 static_cast<int>(::getpid()), start.to_string().c_str(), s.concurrency, limit.rate,
                 period_text(limit.period).c_str());
    corio::join_handle<> crawling = corio::spawn(crawl_all(w, s.concurrency));
    corio::join_handle<> progress = corio::spawn(show_progress(w));
    // Done when the stream is empty: nothing waiting, nothing leased anywhere (see the top).
    for (;;) {
        co_await corio::sleep_for(100ms);
        if (crawling.done())
            break; // it failed
        w.frontier = co_await q.size();
        if (w.frontier == 0)
            break;
    }
    crawling.cancel(); // every fetcher waits in get(): the stream is empty
    std::exception_ptr failure;
    try {
        co_await crawling;
    } catch (const corio::cancelled_error&) {
    } catch (...) {
        failure = std::current_exception();
    }
    progress.cancel();
    try {
        co_await progress;
    } catch (const corio::cancelled_error&) {
    }
    print_progress(w);
    if (failure)
        std::rethrow_exception(failure);
    co_return 0;
}

// ---------------------------------------------------------------------------------------------
// A redis-server of our own: blocking code, run before and after the loop.

// A free TCP port of 127.0.0.1 (bound, read, closed: another process may take it meanwhile,
// in which case redis-server exits and we try another).
std::uint16_t free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
        const int e = errno;
        ::close(fd);
        throw std::runtime_error(std::string("bind 127.0.0.1:0: ") + std::strerror(e));
    }
    ::close(fd);
    return ntohs(a.sin_port);
}

// "+PONG" (or the first line of another reply) from a PING over the Unix socket `path`, "" when
// nothing answers within 500 ms.
std::string ping(const std::string& path) {
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    if (path.size() >= sizeof a.sun_path)
        return "";
    std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return "";
    std::string got;
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0 &&
        ::send(fd, "PING\r\n", 6, MSG_NOSIGNAL) == 6) {
        pollfd p{fd, POLLIN, 0};
        char buf[128];
        while (got.find("\r\n") == std::string::npos && ::poll(&p, 1, 500) == 1) {
            const ssize_t n = ::read(fd, buf, sizeof buf);
            if (n <= 0)
                break;
            got.append(buf, static_cast<std::size_t>(n));
        }
    }
    ::close(fd);
    const std::size_t end = got.find("\r\n");
    return end == std::string::npos ? "" : got.substr(0, end);
}

std::string redis_server_program() {
    if (::access("/usr/bin/redis-server", X_OK) == 0)
        return "/usr/bin/redis-server";
    const char* path = std::getenv("PATH");
    std::string_view dirs = path != nullptr ? path : "";
    while (!dirs.empty()) {
        const std::size_t colon = dirs.find(':');
        const std::string candidate = std::string(dirs.substr(0, colon)) + "/redis-server";
        if (::access(candidate.c_str(), X_OK) == 0)
            return candidate;
        dirs = colon == std::string_view::npos ? std::string_view() : dirs.substr(colon + 1);
    }
    return "";
}

// The last lines of a file, for an error message.
std::string tail_of(const std::string& path) {
    std::FILE* f = std::fopen(path.c_str(), "r");
    if (f == nullptr)
        return "";
    std::string text;
    char buf[4096];
    for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;)
        text.append(buf, n);
    std::fclose(f);
    if (text.size() > 1500)
        text = "..." + text.substr(text.size() - 1500);
    return text;
}

// redis-server as this process's child, on 127.0.0.1 at a free port, in a temporary directory
// (its Unix socket and log there), persistence off; stopped, and the directory removed, by the
// destructor. The child is killed should this process die first (PR_SET_PDEATHSIG).
class local_redis {
public:
    local_redis() {
        program_ = redis_server_program();
        if (program_.empty())
            throw std::runtime_error("redis-server is not installed (not in /usr/bin nor on "
                                     "PATH; Debian: apt-get install redis-server)");
        char dir[] = "/tmp/corio-fleet-XXXXXX";
        if (::mkdtemp(dir) == nullptr)
            throw std::runtime_error(std::string("mkdtemp: ") + std::strerror(errno));
        dir_ = dir;
        std::string why;
        for (int attempt = 0; attempt < 3; ++attempt) {
            why = launch();
            if (why.empty())
                return;
        }
        remove();
        throw std::runtime_error("redis-server did not start: " + why);
    }
    local_redis(const local_redis&) = delete;
    local_redis& operator=(const local_redis&) = delete;
    ~local_redis() {
        stop();
        remove();
    }

    [[nodiscard]] std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
    [[nodiscard]] const std::string& dir() const noexcept { return dir_; }

private:
    // Starts it and waits (10 s at most) until it answers PING: "" then, else what went wrong.
    std::string launch() {
        port_ = free_port();
        const std::string sock = dir_ + "/redis.sock";
        const std::string log = dir_ + "/redis.log";
        const std::vector<std::string> args = {program_,
                                               "--bind",
                                               "127.0.0.1",
                                               "--port",
                                               std::to_string(port_),
                                               "--unixsocket",
                                               sock,
                                               "--save",
                                               "",
                                               "--appendonly",
                                               "no",
                                               "--dir",
                                               dir_,
                                               "--logfile",
                                               log,
                                               "--daemonize",
                                               "no",
                                               "--protected-mode",
                                               "no"};
        std::vector<char*> argv;
        for (const std::string& a : args)
            argv.push_back(const_cast<char*>(a.c_str()));
        argv.push_back(nullptr);
        const pid_t parent = ::getpid();
        pid_ = ::fork();
        if (pid_ < 0)
            return std::string("fork: ") + std::strerror(errno);
        if (pid_ == 0) {
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (::getppid() != parent)
                ::_exit(1);
            const int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
            if (out >= 0) {
                ::dup2(out, STDOUT_FILENO);
                ::dup2(out, STDERR_FILENO);
            }
            ::execv(argv[0], argv.data());
            ::_exit(127);
        }
        const auto deadline = steady::now() + 10s;
        while (steady::now() < deadline) {
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                return "it exited while starting; its log:\n" + tail_of(log);
            }
            if (ping(sock) == "+PONG")
                return "";
            std::this_thread::sleep_for(5ms);
        }
        stop();
        return "it did not answer PING within 10 s (killed); its log:\n" + tail_of(log);
    }

    void stop() noexcept {
        if (pid_ <= 0)
            return;
        ::kill(pid_, SIGTERM);
        const auto deadline = steady::now() + 5s;
        int status = 0;
        while (::waitpid(pid_, &status, WNOHANG) == 0) {
            if (steady::now() > deadline) {
                ::kill(pid_, SIGKILL);
                ::waitpid(pid_, &status, 0);
                break;
            }
            std::this_thread::sleep_for(5ms);
        }
        pid_ = -1;
    }

    void remove() noexcept {
        std::error_code ignored;
        std::filesystem::remove_all(dir_, ignored);
    }

    std::string program_;
    std::string dir_;
    std::uint16_t port_ = 0;
    pid_t pid_ = -1;
};

// ---------------------------------------------------------------------------------------------
// The parent: serves the site, seeds the crawl, starts the workers, kills one if asked, sums
// up.

struct child {
    std::string id;
    pid_t pid = -1;
    bool running = true;
    bool killed = false;  // by --kill-one
    bool stopped = false; // killed by --max-seconds
    int status = 0;       // the exit status, or 128 + the signal
};

// Starts this program again as worker `id`. Called on the loop: the child only execs.
pid_t start_worker(const settings& s, const std::string& id) {
    const std::vector<std::string> args = {"distributed_scraper",
                                           "--worker",
                                           "--redis",
                                           s.redis,
                                           "--name",
                                           s.name,
                                           "--id",
                                           id,
                                           "--concurrency",
                                           std::to_string(s.concurrency)};
    std::vector<char*> argv;
    for (const std::string& a : args)
        argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0)
        throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
    if (pid == 0) {
        ::prctl(PR_SET_PDEATHSIG, SIGTERM); // no worker outlives the parent
        if (::getppid() != parent)
            ::_exit(1);
        ::close_range(3, ~0U, 0); // the parent's ring, sockets, ...
        ::execv("/proc/self/exe", argv.data());
        ::_exit(127);
    }
    return pid;
}

// Reaps the children that ended; true while any runs.
bool reap(std::vector<child>& children) {
    bool any = false;
    for (child& c : children) {
        if (!c.running)
            continue;
        int status = 0;
        if (::waitpid(c.pid, &status, WNOHANG) == c.pid) {
            c.running = false;
            c.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        } else {
            any = true;
        }
    }
    return any;
}

// Kills (SIGKILL) and reaps the children still running: on the way out after a failure.
struct kill_on_exit {
    explicit kill_on_exit(std::vector<child>& c) : children(c) {}
    kill_on_exit(const kill_on_exit&) = delete;
    kill_on_exit& operator=(const kill_on_exit&) = delete;
    ~kill_on_exit() {
        for (child& c : children)
            if (c.running) {
                ::kill(c.pid, SIGKILL);
                ::waitpid(c.pid, nullptr, 0);
                c.running = false;
            }
    }
    std::vector<child>& children;
};

// Leases each consumer holds now (XPENDING's summary).
corio::task<std::map<std::string, long long>> leases_by_consumer(redis::client& r, const keys& k) {
    const redis::reply p = co_await r.command("XPENDING", k.frontier, "workers");
    std::map<std::string, long long> out;
    if (p.size() >= 4 && p[3].is_array())
        for (const redis::reply& e : p[3].elements())
            out[e[0].str()] = std::stoll(e[1].str());
    co_return out;
}

// What the site received: when each request arrived (this process's clock), and how many
// requests each page had.
struct site_log {
    std::vector<std::int64_t> arrivals;
    std::map<std::string, long long> by_page;

    void note(const std::string& page) {
        arrivals.push_back(
            std::chrono::duration_cast<std::chrono::microseconds>(steady::now().time_since_epoch())
                .count());
        ++by_page[page];
    }
};

// The site, as crawl::site_routes serves it, logging each request.
http::router site_routes(crawl::site_options site, site_log& log) {
    http::router routes;
    routes.get("/", [site, &log](http::request&) {
        log.note("/");
        return crawl::detail::serve_page(site, "");
    });
    routes.get("/page/{n}", [site, &log](http::request& req) {
        std::string n(req.param("n"));
        log.note("/page/" + n);
        return crawl::detail::serve_page(site, std::move(n));
    });
    return routes;
}

// Everything after the workers are gone: read the run back from Redis and print the summary.
corio::task<int> summarize(redis::client& r, const settings& s, const keys& k,
                           const std::string& start, const std::vector<child>& children,
                           site_log log, double seconds, std::string killed_note) {
    const redis::reply fetched_reply = co_await r.command("HGETALL", k.fetched);
    const std::map<std::string, std::string> fetched = as_map(fetched_reply);
    const redis::reply stamps_reply = co_await r.command("LRANGE", k.stamps, 0, -1);
    const redis::reply counts_reply = co_await r.command("HGETALL", k.counts);
    const std::map<std::string, std::string> counts = as_map(counts_reply);
    const redis::reply by_worker_reply = co_await r.command("HGETALL", k.by_worker);
    const std::map<std::string, std::string> by_worker = as_map(by_worker_reply);
    const redis::reply redelivered_reply = co_await r.command("SCARD", k.redelivered);
    const redis::reply dead_reply = co_await r.command("XLEN", k.dead);
    const redis::reply left_reply = co_await r.command("XLEN", k.frontier);

    const http::url base = http::url::parse(start);
    std::size_t site_fetched = 0;
    std::vector<std::string> missing;
    for (int n = 0; n < s.site.pages; ++n) {
        http::url u = base;
        u.target = crawl::page_path(n);
        if (fetched.contains(u.to_string()))
            ++site_fetched;
        else
            missing.push_back(u.target);
    }
    std::size_t duplicates = 0; // pages the site served more than once
    for (const auto& [page, times] : log.by_page)
        duplicates += times > 1 ? 1 : 0;
    std::vector<std::int64_t> stamps;
    for (const redis::reply& e : stamps_reply.elements())
        stamps.push_back(std::stoll(e.str()));
    std::sort(stamps.begin(), stamps.end());
    std::sort(log.arrivals.begin(), log.arrivals.end());
    const std::int64_t period_us =
        std::chrono::duration_cast<std::chrono::microseconds>(s.rate.period).count();
    const std::size_t busiest = busiest_window(stamps, period_us);
    const std::size_t busiest_at_site = busiest_window(log.arrivals, period_us);
    const bool limit_held = busiest <= static_cast<std::size_t>(s.rate.rate);
    const long long dead = dead_reply.as_integer();
    const bool complete = missing.empty();
    bool workers_ok = true;
    for (const child& c : children)
        workers_ok = workers_ok && (c.killed || c.status == 0);

    const std::string window = period_text(s.rate.period);
    std::size_t by_hand = 0;
    for (const auto& [id, n] : by_worker)
        by_hand += std::any_of(children.begin(), children.end(),
                               [&](const child& c) { return c.id == id; })
                       ? 0
                       : 1;
    std::printf("\ndistributed crawl of %s by %zu worker processes (%zu started here),\nthrough "
                "redis-server %s\n\n",
                start.c_str(), children.size() + by_hand, children.size(), s.redis.c_str());
    std::printf("  %-30s %8d\n", "pages on the site", s.site.pages);
    std::printf("  %-30s %8zu   %s\n", "pages fetched", site_fetched,
                complete ? "(every page)" : "(NOT every page)");
    std::printf("  %-30s %8zu\n", "requests the site served", log.arrivals.size());
    std::printf("  %-30s %8zu   (fetched again after a redelivery)\n",
                "pages fetched more than once", duplicates);
    std::printf("  %-30s %8lld   (lease.deliveries() > 1)\n", "items redelivered",
                redelivered_reply.as_integer());
    std::printf("  %-30s %8lld\n", "leases lapsed", number_or_zero(counts, "lapsed"));
    std::printf("  %-30s %8lld\n", "fetches failed (given back)", number_or_zero(counts, "failed"));
    std::printf("  %-30s %8lld\n", "dead letters", dead);
    std::printf("  %-30s %8lld\n", "left in the frontier", left_reply.as_integer());
    std::printf("  %-30s %8s   %ld per %s, per host\n", "rate limit", "", s.rate.rate,
                window.c_str());
    std::printf("  %-30s %8zu   %s (%zu grant stamps, server clock)\n",
                ("busiest " + window + " window").c_str(), busiest,
                limit_held ? "<= the limit: held" : "> the limit: BROKEN", stamps.size());
    std::printf("  %-30s %8zu   (on arrival: a varying few ms after each grant)\n",
                "  ... at the site", busiest_at_site);
    std::printf("  %-30s %8.2f\n", "seconds", seconds);
    for (const child& c : children) {
        const std::string label = "fetched by " + c.id;
        std::string note;
        if (c.killed)
            note = "(killed with SIGKILL)";
        else if (c.stopped)
            note = "(stopped: --max-seconds)";
        else if (c.status != 0)
            note = "(exit status " + std::to_string(c.status) + ")";
        std::printf("  %-30s %8lld%s%s\n", label.c_str(), number_or_zero(by_worker, c.id),
                    note.empty() ? "" : "   ", note.c_str());
    }
    for (const auto& [id, n] : by_worker)
        if (std::none_of(children.begin(), children.end(),
                         [&](const child& c) { return c.id == id; }))
            std::printf("  %-30s %8s   (a worker started by hand)\n", ("fetched by " + id).c_str(),
                        n.c_str());
    if (!killed_note.empty())
        std::printf("\n  %s\n", killed_note.c_str());
    if (!missing.empty()) {
        std::printf("\n  not fetched:");
        for (std::size_t i = 0; i < missing.size() && i < 10; ++i)
            std::printf(" %s", missing[i].c_str());
        std::printf(missing.size() > 10 ? " ...\n" : "\n");
    }
    if (!workers_ok)
        std::printf("\n  a worker failed (see its messages above)\n");
    std::fflush(stdout);
    co_return complete&& limit_held&& workers_ok ? 0 : 1;
}

corio::task<int> run_parent(settings s) {
    site_log log;
    http::server srv{site_routes(s.site, log)};
    corio::net::tcp_listener listener =
        corio::net::tcp_listener::bind(corio::net::address::parse(s.listen));
    const std::string start = "http://" + listener.local_address().to_string() + "/";
    corio::join_handle<> serving = corio::spawn(srv.serve(std::move(listener)));
    std::vector<child> children;
    std::optional<int> result;
    std::exception_ptr failure;
    try {
        const kill_on_exit reaper{children};
        redis::client r{redis_options(s.redis)};
        const keys k{s.name};
        const http::url start_url = http::url::parse(start);
        const std::string host = start_url.host + ":" + std::to_string(start_url.port);
        // A fresh run: this name's keys cleared, the start page put, then the settings, which
        // the workers wait for.
        const std::vector<std::string> old = k.all(host);
        for (const std::string& key : old)
            (void)co_await r.command("DEL", key);
        url_queue q{r, k.frontier};
        redis::set seen{r, k.seen};
        const std::string first = start_url.to_string();
        (void)co_await q.put_if_new(seen, first);
        redis::pipeline_batch config;
        config.command("HSET", k.config, "start", first, "rate", s.rate.rate, "period_ms",
                       s.rate.period.count(), "visibility_ms", s.visibility.count(),
                       "max_deliveries", s.max_deliveries);
        (void)co_await r.pipeline(std::move(config));
        std::fprintf(stderr,
                     "serving a site of %d pages (%lld ms each) on %s; %d workers, %zu pages at "
                     "once each, at most %ld per %s, leases of %lld ms\n",
                     s.site.pages, static_cast<long long>(s.site.latency.count()), start.c_str(),
                     s.workers, s.concurrency, s.rate.rate, period_text(s.rate.period).c_str(),
                     static_cast<long long>(s.visibility.count()));
        const steady::time_point began = steady::now();
        for (int i = 1; i <= s.workers; ++i) {
            child c;
            c.id = "worker-" + std::to_string(i);
            c.pid = start_worker(s, c.id);
            children.push_back(std::move(c));
        }
        std::string killed_note;
        bool kill_pending = s.kill_one;
        bool gave_up = false;
        for (;;) {
            co_await corio::sleep_for(20ms);
            const bool any = reap(children);
            if (s.workers > 0 && !any)
                break;
            if (s.workers == 0) { // workers started by hand: done when the stream is empty
                const std::size_t left = co_await q.size();
                if (left == 0)
                    break;
            }
            if (steady::now() - began > s.max_time) {
                std::fprintf(stderr,
                             "distributed_scraper: the crawl took more than %lld s; "
                             "stopping it\n",
                             static_cast<long long>(s.max_time.count()));
                gave_up = true;
                for (child& c : children)
                    if (c.running) {
                        ::kill(c.pid, SIGKILL);
                        c.stopped = true;
                    }
                while (reap(children))
                    co_await corio::sleep_for(10ms);
                break;
            }
            if (!kill_pending)
                continue;
            const redis::reply n = co_await r.command("HLEN", k.fetched);
            if (n.as_integer() < s.site.pages / 2)
                continue;
            // Halfway: kill -9 the worker that holds the most leases.
            kill_pending = false;
            std::map<std::string, long long> held = co_await leases_by_consumer(r, k);
            child* victim = nullptr;
            for (child& c : children)
                if (c.running && (victim == nullptr || held[c.id] > held[victim->id]))
                    victim = &c;
            if (victim == nullptr)
                continue;
            ::kill(victim->pid, SIGKILL);
            victim->killed = true;
            co_await corio::sleep_for(50ms); // what it had sent is done by now
            held = co_await leases_by_consumer(r, k);
            killed_note = "killed " + victim->id + " (pid " + std::to_string(victim->pid) +
                          ") with SIGKILL at " + std::to_string(n.as_integer()) + " of " +
                          std::to_string(s.site.pages) + " pages, holding " +
                          std::to_string(held[victim->id]) +
                          " leases:\n  their items waited out the visibility timeout (" +
                          std::to_string(s.visibility.count()) + " ms), then went to the others";
            std::fprintf(stderr, "parent: killed %s (pid %d) with SIGKILL, holding %lld leases\n",
                         victim->id.c_str(), static_cast<int>(victim->pid), held[victim->id]);
        }
        if (s.kill_one && kill_pending)
            killed_note = "--kill-one: the crawl ended before half the pages were fetched; no "
                          "worker was killed";
        const double seconds = std::chrono::duration<double>(steady::now() - began).count();
        (void)co_await r.command("DEL", k.config); // the run is over: new workers wait
        result = co_await summarize(r, s, k, start, children, log, seconds, killed_note);
        if (gave_up)
            result = 1;
    } catch (...) {
        failure = std::current_exception();
    }
    srv.stop(2s); // the server must not outlive this frame
    co_await serving;
    if (failure)
        std::rethrow_exception(failure);
    co_return *result;
}

int usage() {
    std::fprintf(
        stderr,
        "usage: distributed_scraper [--workers N] [--redis HOST:PORT] [--rate N/PERIOD]\n"
        "                           [--site-pages N] [--latency MS] [--visibility-timeout MS]\n"
        "                           [--concurrency N] [--kill-one] [--name NAME]\n"
        "                           [--listen HOST:PORT] [--max-seconds N]\n"
        "       distributed_scraper --worker --redis HOST:PORT [--name NAME] [--id NAME]\n"
        "                           [--concurrency N]\n"
        "  --workers      worker processes to start (4; 0: only workers started by hand)\n"
        "  --redis        a running redis-server, numeric HOST:PORT (its keys NAME:* are\n"
        "                 cleared); none: start /usr/bin/redis-server on a free port\n"
        "  --rate         at most N fetches per PERIOD from the site, e.g. 200/1s (200/1s)\n"
        "  --site-pages   pages of the local site (500)\n"
        "  --latency      milliseconds each page of the site takes (50)\n"
        "  --visibility-timeout\n"
        "                 milliseconds a lease holds a page (3000)\n"
        "  --concurrency  pages each worker has in flight at once (8)\n"
        "  --kill-one     kill -9 the worker holding the most leases once half the pages are\n"
        "                 fetched\n"
        "  --name         the prefix of the run's Redis keys (fleet)\n"
        "  --listen       where the site is served (127.0.0.1:0: a free port)\n"
        "  --max-seconds  give up after this long (300)\n"
        "  --worker       be a worker: the start URL and the settings come from NAME:config\n"
        "  --id           the worker's consumer name (<host>-<pid>)\n"
        "exit status: 0 every page fetched and the limit held, 1 not, 2 usage, 3 no "
        "redis-server\n");
    return 2;
}

} // namespace

int main(int argc, char** argv) {
    settings s;
    try {
        for (int i = 1; i < argc; ++i) {
            const std::string_view arg = argv[i];
            const bool has_value = i + 1 < argc;
            if (arg == "--worker") {
                s.worker = true;
            } else if (arg == "--kill-one") {
                s.kill_one = true;
            } else if (arg == "--workers" && has_value) {
                s.workers = std::stoi(argv[++i]);
            } else if (arg == "--redis" && has_value) {
                s.redis = argv[++i];
            } else if (arg == "--rate" && has_value) {
                s.rate = parse_rate(argv[++i]);
            } else if (arg == "--site-pages" && has_value) {
                s.site.pages = std::stoi(argv[++i]);
            } else if (arg == "--latency" && has_value) {
                s.site.latency = std::chrono::milliseconds(std::stol(argv[++i]));
            } else if (arg == "--visibility-timeout" && has_value) {
                s.visibility = std::chrono::milliseconds(std::stol(argv[++i]));
            } else if (arg == "--concurrency" && has_value) {
                s.concurrency = std::stoul(argv[++i]);
            } else if (arg == "--name" && has_value) {
                s.name = argv[++i];
            } else if (arg == "--id" && has_value) {
                s.id = argv[++i];
            } else if (arg == "--listen" && has_value) {
                s.listen = argv[++i];
            } else if (arg == "--max-seconds" && has_value) {
                s.max_time = std::chrono::seconds(std::stol(argv[++i]));
            } else {
                return usage();
            }
        }
        if (s.workers < 0 || s.site.pages < 1 || s.site.latency < 0ms || s.concurrency < 1 ||
            s.visibility < 30ms || s.name.empty() || (s.kill_one && s.workers < 2) ||
            (s.worker && s.redis.empty()))
            return usage();
        (void)corio::net::address::parse(s.listen);
        if (!s.redis.empty())
            (void)corio::net::address::parse(s.redis);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "distributed_scraper: %s\n", e.what());
        return usage();
    }
    try {
        if (s.worker)
            return corio::run(run_worker(std::move(s)));
        std::optional<local_redis> own;
        if (s.redis.empty()) {
            try {
                own.emplace();
            } catch (const std::exception& e) {
                std::fprintf(stderr,
                             "distributed_scraper: cannot start a redis-server of its own: %s\n"
                             "  give one with --redis HOST:PORT\n",
                             e.what());
                return 3;
            }
            s.redis = own->address();
            std::fprintf(stderr, "started redis-server on %s (in %s; stopped at the end)\n",
                         s.redis.c_str(), own->dir().c_str());
        }
        return corio::run(run_parent(std::move(s)));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "distributed_scraper%s: %s\n", s.worker ? " (worker)" : "", e.what());
        return 1;
    }
}

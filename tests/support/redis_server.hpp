// SPDX-License-Identifier: MIT
// A throw-away Redis server for the tests of corio's Redis client: redis-server started as this
// process's child on a free TCP port of 127.0.0.1 and on a Unix socket in a fresh directory under
// /tmp, persistence off, and stopped, with the directory removed, by the destructor. Plain
// blocking code: it runs on the test's thread, not on a corio loop.
#pragma once

#include "process.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <concepts>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

namespace corio::test {

namespace redis_detail {

/// redis_server in error messages; the REDIS* variables (a developer's REDISCLI_AUTH or
/// REDISCLI_RCFILE) left out of its programs' environment.
inline constexpr process_detail::harness harness{"corio::test::redis_server", "REDIS"};

/// `name` in /usr/bin (Debian's redis-server and redis-tools), else on PATH; "" when nowhere.
inline std::string program(const std::string& name) {
    if (process_detail::executable("/usr/bin/" + name))
        return "/usr/bin/" + name;
    return process_detail::on_path(name);
}

inline const std::string& server_path() {
    static const std::string path = program("redis-server");
    return path;
}

inline const std::string& cli_path() {
    static const std::string path = program("redis-cli");
    return path;
}

/// A word of a command given to `redis_server::cli`: a string, string_view or literal.
template <class T>
concept word = std::convertible_to<const T&, std::string_view>;

/// The major version of redis-cli ("redis-cli 7.0.15" gives 7), 0 when it is missing or says
/// something else.
inline int cli_major_version() {
    static const int major = [] {
        if (cli_path().empty())
            return 0;
        try {
            const process_detail::run_result r = process_detail::run(
                harness, {cli_path(), "--version"}, std::nullopt, "/", std::chrono::seconds(10));
            const std::string_view prefix = "redis-cli ";
            if (r.status != 0 || !r.out.starts_with(prefix))
                return 0;
            return std::atoi(r.out.c_str() + prefix.size());
        } catch (const std::exception&) {
            return 0;
        }
    }();
    return major;
}

/// Sends an inline PING over the Unix socket `path` and returns the reply's first line without
/// its CRLF: "+PONG", or "-NOAUTH Authentication required." under requirepass; "" when there is
/// no connection or no whole line within `timeout`.
inline std::string ping(const std::string& path, std::chrono::milliseconds timeout) {
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    if (path.size() >= sizeof a.sun_path)
        return "";
    std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return "";
    std::string reply;
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0 &&
        ::send(fd, "PING\r\n", 6, MSG_NOSIGNAL) == 6) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (reply.find("\r\n") == std::string::npos) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0)
                break;
            pollfd p{fd, POLLIN, 0};
            const int ready = ::poll(&p, 1, static_cast<int>(left.count()));
            if (ready < 0 && errno == EINTR)
                continue;
            if (ready <= 0)
                break;
            char buf[256];
            const ssize_t got = ::read(fd, buf, sizeof buf);
            if (got > 0)
                reply.append(buf, static_cast<std::size_t>(got));
            else if (got == 0 || errno != EINTR)
                break;
        }
    }
    ::close(fd);
    const std::size_t end = reply.find("\r\n");
    return end == std::string::npos ? "" : reply.substr(0, end);
}

} // namespace redis_detail

/// A throw-away Redis server for a test (what pytest-redis's `redis_proc` gives a Python test):
/// redis-server on 127.0.0.1 at a free port and on a Unix socket (mode 700) in a fresh directory
/// under /tmp, persistence off (no RDB snapshots, no AOF: nothing survives a restart), its log in
/// that directory, and `requirepass` when a password is given. `cli()` checks the server's state
/// with redis-cli, independently of the client under test.
///
/// The server is this process's child and runs as this process's user (root too). Every call
/// blocks the calling thread until done; a call from a coroutine blocks its loop meanwhile, so a
/// `cli()` command must not wait for the client under test on that loop (a BLPOP it would feed,
/// say): redis-cli is killed after 10 s.
/// **Errors**: `std::runtime_error` naming what failed, with the server's log tail for a server
/// that does not start; `redis_server::available()` tells beforehand whether one can start.
/// **Thread-safety**: none; create, use and destroy it on one thread, the test's: the server is
/// killed (SIGKILL) when the thread that started it ends, so that a test killed by its watchdog
/// leaves no server behind.
class redis_server {
public:
    /// What to change from the defaults.
    struct options {
        /// The `requirepass` password clients must AUTH with; "" for none.
        std::string password;
        /// More redis-server command-line arguments, after the harness's own (a later one wins),
        /// one argument an element: {"--maxmemory", "10mb", "--maxmemory-policy", "noeviction"}
        /// (redis-server also splits "--maxmemory 10mb" given as one).
        std::vector<std::string> args;
    };

    /// Why no server can be started here, "" when one can: redis-server or redis-cli is missing,
    /// or redis-cli is older than 7.0 (`cli()` needs its -e). For a visible skip:
    /// `CORIO_SKIP(redis_server::unavailable_reason())` (CI forbids skips).
    static std::string unavailable_reason() {
        if (redis_detail::server_path().empty())
            return "redis-server is not installed: not in /usr/bin nor on PATH (Debian: apt-get "
                   "install redis-server)";
        if (redis_detail::cli_path().empty())
            return "redis-cli is not installed: not in /usr/bin nor on PATH (Debian: apt-get "
                   "install redis-tools)";
        if (redis_detail::cli_major_version() < 7)
            return redis_detail::cli_path() +
                   " is older than 7.0 (or does not say its version): the harness needs its -e "
                   "(Debian 12: apt-get install redis-tools)";
        return "";
    }
    /// True when a server can be started here (`unavailable_reason()` is "").
    static bool available() { return unavailable_reason().empty(); }

    /// Starts a server without a password.
    /// **Errors**: those of `redis_server(options)`.
    redis_server() : redis_server(options{}) {}
    /// Starts a server with `opts`, and waits (10 s at most) until it answers PING.
    /// **Errors**: `std::runtime_error` when it is unavailable (the reason) or the server does
    /// not start (its log's tail); `std::system_error` when the directory cannot be made. Nothing
    /// is left behind then.
    explicit redis_server(options opts) : opts_(std::move(opts)) {
        const std::string reason = unavailable_reason();
        if (!reason.empty())
            throw std::runtime_error("corio::test::redis_server: " + reason);
        char dir[] = "/tmp/corio-redis-XXXXXX";
        if (::mkdtemp(dir) == nullptr)
            throw std::system_error(errno, std::generic_category(),
                                    "corio::test::redis_server: mkdtemp under /tmp");
        dir_ = dir;
        try {
            start();
        } catch (...) {
            shut_down_and_remove();
            throw;
        }
    }
    redis_server(const redis_server&) = delete;
    redis_server& operator=(const redis_server&) = delete;
    /// Stops the server (SIGKILL when it lingers: see `stop()`) and removes its directory.
    ~redis_server() { shut_down_and_remove(); }

    /// The TCP port, the same across `restart()` and `start()` after a stop or a kill.
    [[nodiscard]] std::uint16_t port() const noexcept { return port_; }
    /// "127.0.0.1:<port>".
    [[nodiscard]] std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
    /// The path of the Unix socket, "<dir>/redis.sock" (mode 700: this process's user only).
    [[nodiscard]] std::string unix_socket() const { return dir_ + "/redis.sock"; }
    /// The `requirepass` password, "" when there is none.
    [[nodiscard]] const std::string& password() const noexcept { return opts_.password; }
    /// The server's pid, -1 while it is stopped.
    [[nodiscard]] pid_t pid() const noexcept { return pid_; }

    /// True while the server runs, paused or not (one that died on its own is reaped here).
    [[nodiscard]] bool running() {
        // Under the lock: a `pause(duration)` timer signals pid_ only while it is not reaped.
        const std::lock_guard lock(mutex_);
        if (pid_ > 0 && process_detail::wait_exit(pid_, std::chrono::milliseconds(0)))
            pid_ = -1;
        return pid_ > 0;
    }

    /// Runs redis-cli (-e --raw) over TCP with the password, when there is one, and `args` as the
    /// command, e.g. `cli({"SET", "a", "1"})` (redis-cli's own options may come first: {"-n", "3",
    /// "GET", "k"} for database 3); returns what it printed less the last newline: a
    /// string, integer or status as is ("OK", "1"), an array one element a line, nil and the
    /// empty string both "".
    /// **Errors**: `std::runtime_error` with redis-cli's stderr when the command fails (an error
    /// reply such as NOAUTH or WRONGTYPE, no connection), or runs for 10 s (a paused server).
    std::string cli(const std::vector<std::string>& args) const {
        return cli_with(opts_.password, args);
    }
    /// The same with the words of the command as arguments: `cli("GET", "a")`.
    template <redis_detail::word First, redis_detail::word... Rest>
    std::string cli(const First& first, const Rest&... rest) const {
        return cli(std::vector<std::string>{std::string(std::string_view(first)),
                                            std::string(std::string_view(rest))...});
    }
    /// The same with `password` ("" for none) instead of the server's: a test of a wrong one.
    std::string cli_with(const std::string& password, const std::vector<std::string>& args) const {
        std::vector<std::string> argv = {
            redis_detail::cli_path(), "-e", "--raw", "-h", "127.0.0.1", "-p",
            std::to_string(port_)};
        if (!password.empty())
            argv.insert(argv.end(), {"-a", password, "--no-auth-warning"});
        argv.insert(argv.end(), args.begin(), args.end());
        const process_detail::run_result r = process_detail::run(
            redis_detail::harness, std::move(argv), std::nullopt, dir_, std::chrono::seconds(10));
        if (r.status != 0) {
            std::string command;
            for (const std::string& arg : args)
                command += (command.empty() ? "" : " ") + arg;
            std::string err = r.err;
            while (!err.empty() && err.back() == '\n')
                err.pop_back();
            throw std::runtime_error("corio::test::redis_server: redis-cli failed (exit " +
                                     std::to_string(r.status) + ") running `" + command + "` on " +
                                     address() + ": " + err);
        }
        std::string out = r.out;
        if (!out.empty() && out.back() == '\n')
            out.pop_back();
        return out;
    }

    /// Starts the server if it is not running and waits (10 s at most) until it answers PING.
    /// The first start picks a free port (and picks again when another test binds it first);
    /// later ones reuse it, so addresses stay valid.
    /// **Errors**: `std::runtime_error` with the log's tail when the server exits (its port was
    /// taken meanwhile, say) or does not answer in time (it is killed then).
    void start() {
        if (running())
            return;
        cancel_resume(); // a timer left by a server that died paused
        process_detail::start_server(
            redis_detail::harness, port_, dir_, log_path(), [this] { launch(); },
            [this] { return wait_ready(); });
    }

    /// Stops the server (SIGTERM, continuing it when paused: it closes every connection and
    /// exits, saving nothing) and waits until it is gone; one still there after 10 s is killed.
    /// Nothing when it is not running.
    void stop() {
        cancel_resume();
        if (!running())
            return;
        ::kill(pid_, SIGTERM);
        ::kill(pid_, SIGCONT);
        if (process_detail::wait_exit(pid_, std::chrono::seconds(10)))
            pid_ = -1;
        else
            kill();
    }

    /// The server crashes: SIGKILL, with no word to the clients (their connections just close);
    /// until `start()`, connecting is refused. Returns when it is gone; nothing when it is not
    /// running.
    void kill() {
        cancel_resume();
        if (!running())
            return;
        ::kill(pid_, SIGKILL);
        while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
        }
        pid_ = -1;
    }

    /// `stop()`, then `start()` on the same port and socket: every key is lost (persistence is
    /// off) and every client connection closed.
    /// **Errors**: those of `start()`.
    void restart() {
        stop();
        start();
    }

    /// Freezes the server (SIGSTOP) until `resume()`, and returns once it is stopped: the kernel
    /// still accepts TCP and Unix connections and takes what clients send, but no reply comes,
    /// as from a hung server (for command and connect timeouts).
    /// **Errors**: `std::runtime_error` when it is not running.
    void pause() {
        cancel_resume();
        if (!running())
            throw std::runtime_error("corio::test::redis_server: pause of a stopped server");
        ::kill(pid_, SIGSTOP);
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        while (process_detail::state_of(pid_) != 'T' && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    /// The same, and the server continues on its own after `duration` (a thread of this process
    /// sends SIGCONT), so a test can wait on a loop meanwhile; `resume()`, `stop()`, `kill()` or
    /// another `pause` first cancels that.
    /// **Errors**: those of `pause()`.
    void pause(std::chrono::milliseconds duration) {
        pause();
        resumer_ = std::jthread([this, duration](const std::stop_token& cancelled) {
            std::unique_lock lock(mutex_);
            // Wakes early only when cancelled: the predicate is never true.
            wake_.wait_for(lock, cancelled, duration, [] { return false; });
            if (!cancelled.stop_requested() && pid_ > 0)
                ::kill(pid_, SIGCONT);
        });
    }
    /// Continues a paused server (SIGCONT): it answers what came meanwhile. Nothing when it is
    /// not paused or not running.
    void resume() {
        cancel_resume();
        if (running())
            ::kill(pid_, SIGCONT);
    }

    /// Everything the server has logged (all its starts).
    [[nodiscard]] std::string log() const { return process_detail::read_file(log_path()); }

private:
    [[nodiscard]] std::string log_path() const { return dir_ + "/redis.log"; }

    /// Stops a `pause(duration)` timer, if any, and waits until its thread is gone.
    void cancel_resume() {
        if (resumer_.joinable()) {
            resumer_.request_stop();
            resumer_.join();
        }
    }

    /// Starts redis-server on `port_`, its stdout and stderr appended to the log (where a
    /// command-line error goes, before the server opens its logfile, the same file).
    void launch() {
        std::vector<std::string> argv = {redis_detail::server_path()};
        argv.insert(argv.end(), {"--bind", "127.0.0.1", "--port", std::to_string(port_)});
        argv.insert(argv.end(), {"--unixsocket", unix_socket(), "--unixsocketperm", "700"});
        argv.insert(argv.end(), {"--save", "", "--appendonly", "no", "--dir", dir_});
        argv.insert(argv.end(), {"--daemonize", "no", "--logfile", log_path()});
        if (!opts_.password.empty())
            argv.insert(argv.end(), {"--requirepass", opts_.password});
        argv.insert(argv.end(), opts_.args.begin(), opts_.args.end());
        pid_ = process_detail::spawn_logged(redis_detail::harness, std::move(argv), std::nullopt,
                                            log_path(), dir_, SIGKILL);
    }

    /// Waits until the server answers PING on its Unix socket; "" then, else what went wrong
    /// (the server is gone then). The socket, in this server's own directory, is made after the
    /// TCP port is bound: an answer there is this server's, never another's on the port.
    std::string wait_ready() {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        std::string reply;
        for (;;) {
            if (const std::optional<int> code =
                    process_detail::wait_exit(pid_, std::chrono::milliseconds(0))) {
                pid_ = -1;
                return "exited while starting (exit " + std::to_string(*code) + ")";
            }
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) {
                kill();
                return "did not answer PING within 10 s (killed; the last reply: \"" + reply +
                       "\")";
            }
            reply =
                redis_detail::ping(unix_socket(), std::min(left, std::chrono::milliseconds(500)));
            if (reply == "+PONG" || reply.starts_with("-NOAUTH"))
                return "";
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
    }

    void shut_down_and_remove() noexcept {
        try {
            stop();
        } catch (...) {
        }
        std::error_code ignored;
        std::filesystem::remove_all(dir_, ignored);
    }

    options opts_;
    std::string dir_;
    std::uint16_t port_ = 0;
    pid_t pid_ = -1;
    std::mutex mutex_;
    std::condition_variable_any wake_;
    /// After the mutex and the condition it waits on, so that it is destroyed (joined) first.
    std::jthread resumer_;
};

} // namespace corio::test

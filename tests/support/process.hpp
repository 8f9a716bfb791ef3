// SPDX-License-Identifier: MIT
// Child processes for the test harnesses of real servers (pg_server.hpp, redis_server.hpp): a
// program started with fork and exec (no shell) with a scrubbed environment and a death signal,
// a program run to completion with its output collected, a free port, and the /proc lookups that
// tell when a process has stopped or gone. Plain blocking code: it runs on the test's thread, not
// on a corio loop.
#pragma once

#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

namespace corio::test::process_detail {

using namespace std::chrono_literals;

/// The harness that starts the programs: its name opens every error message, and the variables
/// whose names start with `env_prefix` are left out of its programs' environment (a developer's
/// PGHOST or REDISCLI_AUTH must not change what the tests talk to).
struct harness {
    std::string_view name;       ///< e.g. "corio::test::pg_server"
    std::string_view env_prefix; ///< e.g. "PG"
};

/// A user to run a program as (PostgreSQL's server as `postgres` when this process is root).
struct account {
    uid_t uid = 0;
    gid_t gid = 0;
};

/// What a program run to completion left.
struct run_result {
    int status = 0; ///< its exit code, 128 + the signal when one killed it
    std::string out;
    std::string err;
};

inline bool executable(const std::string& path) { return ::access(path.c_str(), X_OK) == 0; }

/// `name` looked up on PATH; "" when it is nowhere.
inline std::string on_path(const std::string& name) {
    const char* path = std::getenv("PATH");
    std::stringstream dirs(path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin");
    for (std::string dir; std::getline(dirs, dir, ':');) {
        if (!dir.empty() && executable(dir + "/" + name))
            return dir + "/" + name;
    }
    return "";
}

/// The environment for the programs `h` starts: this process's, less the variables whose names
/// start with `h.env_prefix` (none left out when it is empty).
inline std::vector<std::string> clean_environment(const harness& h) {
    std::vector<std::string> env;
    for (char** e = environ; *e != nullptr; ++e) {
        if (h.env_prefix.empty() || !std::string_view(*e).starts_with(h.env_prefix))
            env.emplace_back(*e);
    }
    return env;
}

inline std::vector<char*> c_strings(std::vector<std::string>& strings) {
    std::vector<char*> out;
    out.reserve(strings.size() + 1);
    for (std::string& s : strings)
        out.push_back(s.data());
    out.push_back(nullptr);
    return out;
}

/// Makes `from` the descriptor `to` of the child, open across exec.
inline void place_fd(int from, int to) noexcept {
    if (from == to)
        ::fcntl(to, F_SETFD, 0);
    else
        ::dup2(from, to);
}

/// The child's half of `spawn`, between fork and exec: only async-signal-safe calls (the test
/// process may have other threads). Default signal dispositions and an empty mask (a loop's
/// blocked signals must not reach a server), no inherited descriptor beyond 0, 1 and 2, the
/// user `as` when set, and `death_signal` when the thread that forked it dies (a test killed by
/// its watchdog leaves no server behind).
[[noreturn]] inline void exec_child(char* const* argv, char* const* envp, const account* as, int in,
                                    int out, int err, const char* cwd, int death_signal,
                                    pid_t parent, int max_fd) noexcept {
    place_fd(in, STDIN_FILENO);
    place_fd(out, STDOUT_FILENO);
    place_fd(err, STDERR_FILENO);
    if (::close_range(3, ~0U, 0) != 0) {
        for (int fd = 3; fd < max_fd; ++fd)
            ::close(fd);
    }
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; ++sig)
        ::sigaction(sig, &dfl, nullptr);
    sigset_t none;
    ::sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    if (as != nullptr &&
        (::setgroups(0, nullptr) != 0 || ::setgid(as->gid) != 0 || ::setuid(as->uid) != 0))
        ::_exit(126);
    // After setuid, which clears it.
    ::prctl(PR_SET_PDEATHSIG, death_signal);
    if (::getppid() != parent)
        ::_exit(1);
    if (::chdir(cwd) != 0)
        ::_exit(126);
    ::execve(argv[0], argv, envp);
    ::_exit(127);
}

/// Starts `argv` (argv[0] an absolute path) for `h` with the given stdin, stdout and stderr, in
/// `cwd`, as `as` when set, with `h`'s environment; returns its pid.
/// **Errors**: `std::system_error` when fork fails; a failed exec is the child's exit code 127.
inline pid_t spawn(const harness& h, std::vector<std::string> argv,
                   const std::optional<account>& as, int in, int out, int err,
                   const std::string& cwd, int death_signal) {
    std::vector<std::string> env = clean_environment(h);
    const std::vector<char*> args = c_strings(argv);
    const std::vector<char*> envp = c_strings(env);
    rlimit files{};
    ::getrlimit(RLIMIT_NOFILE, &files);
    const int max_fd = files.rlim_cur == RLIM_INFINITY || files.rlim_cur > 65536
                           ? 65536
                           : static_cast<int>(files.rlim_cur);
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid == 0)
        exec_child(args.data(), envp.data(), as ? &*as : nullptr, in, out, err, cwd.c_str(),
                   death_signal, parent, max_fd);
    if (pid < 0)
        throw std::system_error(errno, std::generic_category(),
                                std::string(h.name) + ": fork for " + argv[0]);
    return pid;
}

/// Starts a server's `argv` for `h` as `spawn` does, with stdin from /dev/null and stdout and
/// stderr appended to `log_path` (created when missing); returns its pid.
/// **Errors**: `std::system_error` when the log or /dev/null cannot be opened, or fork fails.
inline pid_t spawn_logged(const harness& h, std::vector<std::string> argv,
                          const std::optional<account>& as, const std::string& log_path,
                          const std::string& cwd, int death_signal) {
    const int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    const int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (log_fd < 0 || null < 0) {
        const int e = errno;
        ::close(log_fd);
        ::close(null);
        throw std::system_error(e, std::generic_category(),
                                std::string(h.name) + ": opening " + log_path);
    }
    pid_t pid = -1;
    try {
        pid = spawn(h, std::move(argv), as, null, log_fd, log_fd, cwd, death_signal);
    } catch (...) {
        ::close(log_fd);
        ::close(null);
        throw;
    }
    ::close(log_fd);
    ::close(null);
    return pid;
}

/// The exit code of a status from waitpid, 128 + the signal when one killed it.
inline int exit_code(int status) {
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/// Reaps `pid` if it exits within `timeout`; its exit code then, nothing otherwise.
inline std::optional<int> wait_exit(pid_t pid, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        int status = 0;
        const pid_t r = ::waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return exit_code(status);
        if (r < 0 && errno != EINTR)
            return -1; // not our child (any more): nothing to wait for
        if (std::chrono::steady_clock::now() >= deadline)
            return std::nullopt;
        std::this_thread::sleep_for(5ms);
    }
}

/// Runs `argv` for `h` to completion with stdin from /dev/null, collecting stdout and stderr.
/// **Errors**: `std::runtime_error` when it runs longer than `timeout` (it is killed then);
/// `std::system_error` when a pipe or fork fails.
inline run_result run(const harness& h, std::vector<std::string> argv,
                      const std::optional<account>& as, const std::string& cwd,
                      std::chrono::milliseconds timeout) {
    int out[2];
    int err[2];
    if (::pipe2(out, O_CLOEXEC) != 0)
        throw std::system_error(errno, std::generic_category(), std::string(h.name) + ": pipe");
    if (::pipe2(err, O_CLOEXEC) != 0) {
        ::close(out[0]);
        ::close(out[1]);
        throw std::system_error(errno, std::generic_category(), std::string(h.name) + ": pipe");
    }
    const int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    const std::string name = argv[0];
    pid_t pid = -1;
    try {
        pid = spawn(h, std::move(argv), as, null, out[1], err[1], cwd, SIGKILL);
    } catch (...) {
        for (const int fd : {out[0], out[1], err[0], err[1], null})
            ::close(fd);
        throw;
    }
    ::close(out[1]);
    ::close(err[1]);
    ::close(null);
    run_result r;
    pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
    std::string* sinks[2] = {&r.out, &r.err};
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    int open = 2;
    while (open > 0) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
            ::close(out[0]);
            ::close(err[0]);
            throw std::runtime_error(std::string(h.name) + ": " + name + " still ran after " +
                                     std::to_string(timeout.count()) + " ms (killed); stderr:\n" +
                                     r.err);
        }
        const int n = ::poll(fds, 2, static_cast<int>(left.count()));
        if (n < 0 && errno != EINTR)
            break;
        for (int i = 0; i < 2 && n > 0; ++i) {
            if (fds[i].fd < 0 || fds[i].revents == 0)
                continue;
            char buf[4096];
            const ssize_t got = ::read(fds[i].fd, buf, sizeof buf);
            if (got > 0) {
                sinks[i]->append(buf, static_cast<std::size_t>(got));
            } else if (got == 0 || errno != EINTR) {
                ::close(fds[i].fd);
                fds[i].fd = -1;
                --open;
            }
        }
    }
    for (const pollfd& p : fds) {
        if (p.fd >= 0)
            ::close(p.fd);
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    r.status = exit_code(status);
    return r;
}

inline std::string read_file(const std::string& path) {
    std::ifstream f(path);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
}

/// The last `lines` lines of `text`.
inline std::string tail(const std::string& text, std::size_t lines) {
    std::size_t at = text.size();
    if (at > 0 && text[at - 1] == '\n')
        --at;
    for (std::size_t n = 0; n < lines && at != std::string::npos && at > 0; ++n)
        at = text.rfind('\n', at - 1);
    return at == std::string::npos || at == 0 ? text : text.substr(at + 1);
}

/// A TCP port of 127.0.0.1 free at the moment of asking (the kernel's pick for port 0).
/// **Errors**: `std::system_error` when no socket can be bound.
inline std::uint16_t free_port(const harness& h) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
        const int e = errno;
        if (fd >= 0)
            ::close(fd);
        throw std::system_error(e, std::generic_category(),
                                std::string(h.name) + ": probing for a free port");
    }
    ::close(fd);
    return ntohs(a.sin_port);
}

/// Starts a server of `h` that listens on `port` and logs to `log_path`: `launch()` starts it,
/// `wait_ready()` waits until it serves and returns "", else what went wrong (it is gone then).
/// A `port` of 0 becomes a free one, picked again (5 tries in all) when the log says another
/// process bound it between the probe and the server's bind; a port already set is kept.
/// **Errors**: `std::runtime_error` naming the port, `dir` and the failure, with the last 20
/// lines the server logged; those of `launch()` and `free_port`.
template <class Launch, class WaitReady>
void start_server(const harness& h, std::uint16_t& port, const std::string& dir,
                  const std::string& log_path, Launch&& launch, WaitReady&& wait_ready) {
    const bool fixed_port = port != 0;
    constexpr int attempts = 5;
    for (int attempt = 1;; ++attempt) {
        if (!fixed_port)
            port = free_port(h);
        const std::size_t log_from = read_file(log_path).size();
        launch();
        const std::string failure = wait_ready();
        if (failure.empty())
            return;
        const std::string log_now = read_file(log_path).substr(log_from);
        if (!fixed_port && attempt < attempts &&
            log_now.find("Address already in use") != std::string::npos)
            continue; // another test took the port between the probe and the bind
        throw std::runtime_error(std::string(h.name) + ": the server on port " +
                                 std::to_string(port) + " in " + dir + " " + failure +
                                 "; its log ends:\n" + tail(log_now, 20));
    }
}

/// The processes whose parent is `pid` (from /proc).
inline std::vector<pid_t> children_of(pid_t pid) {
    std::vector<pid_t> children;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
        const std::string name = entry.path().filename();
        if (name.find_first_not_of("0123456789") != std::string::npos)
            continue;
        const std::string stat = read_file("/proc/" + name + "/stat");
        // "pid (comm) state ppid ...": comm may hold anything, so parse after its last ')'.
        const std::size_t close = stat.rfind(')');
        if (close == std::string::npos)
            continue;
        std::istringstream rest(stat.substr(close + 1));
        char state = 0;
        long ppid = 0;
        if (rest >> state >> ppid && ppid == pid)
            children.push_back(static_cast<pid_t>(std::stol(name)));
    }
    return children;
}

/// The state letter of `pid` in /proc ('R', 'S', 'T', 'Z', ...), 0 when there is no such process.
inline char state_of(pid_t pid) {
    const std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
    const std::size_t close = stat.rfind(')');
    return close == std::string::npos || close + 2 >= stat.size() ? 0 : stat[close + 2];
}

} // namespace corio::test::process_detail

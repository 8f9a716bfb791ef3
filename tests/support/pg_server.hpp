// SPDX-License-Identifier: MIT
// A throw-away PostgreSQL server for the tests of corio::pg: initdb into a fresh directory under
// /tmp, the postmaster started as this process's child on a free TCP port of 127.0.0.1 and on a
// Unix socket in that directory, and stopped, with the directory removed, by the destructor.
// Plain blocking code: it runs on the test's thread, not on a corio loop.
#pragma once

#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/ipc.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
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
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

namespace corio::test {

/// How `pg_server::stop` shuts the server down (pg_ctl's `-m fast` and `-m immediate`).
enum class pg_shutdown {
    /// Every session is told FATAL 57P01 ("terminating connection due to administrator command")
    /// and closed, then a checkpoint.
    fast,
    /// Backends quit at once (a client may get a warning first), no checkpoint: the next start
    /// runs crash recovery.
    immediate,
};

namespace pg_detail {

using namespace std::chrono_literals;

/// The user the server runs as when this process is root (PostgreSQL refuses to run as root).
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

/// The environment for the programs started here: this process's, less the PG* variables (a
/// developer's PGHOST, PGOPTIONS or PGPASSWORD must not change what the tests talk to).
inline std::vector<std::string> clean_environment() {
    std::vector<std::string> env;
    for (char** e = environ; *e != nullptr; ++e) {
        if (std::strncmp(*e, "PG", 2) != 0)
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
/// blocked signals must not reach the server), no inherited descriptor beyond 0, 1 and 2, the
/// server's user when `as` is set, and `death_signal` when the thread that forked it dies (a test
/// killed by its watchdog leaves no server behind).
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

/// Starts `argv` (argv[0] an absolute path) with the given stdin, stdout and stderr, in `cwd`,
/// as `as` when set; returns its pid.
inline pid_t spawn(std::vector<std::string> argv, const std::optional<account>& as, int in, int out,
                   int err, const std::string& cwd, int death_signal) {
    std::vector<std::string> env = clean_environment();
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
                                "corio::test::pg_server: fork for " + argv[0]);
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

/// Runs `argv` to completion with stdin from /dev/null, collecting stdout and stderr.
/// **Errors**: `std::runtime_error` when it runs longer than `timeout` (it is killed then).
inline run_result run(std::vector<std::string> argv, const std::optional<account>& as,
                      const std::string& cwd, std::chrono::milliseconds timeout) {
    int out[2];
    int err[2];
    if (::pipe2(out, O_CLOEXEC) != 0)
        throw std::system_error(errno, std::generic_category(), "corio::test::pg_server: pipe");
    if (::pipe2(err, O_CLOEXEC) != 0) {
        ::close(out[0]);
        ::close(out[1]);
        throw std::system_error(errno, std::generic_category(), "corio::test::pg_server: pipe");
    }
    const int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    const std::string name = argv[0];
    pid_t pid = -1;
    try {
        pid = spawn(std::move(argv), as, null, out[1], err[1], cwd, SIGKILL);
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
            throw std::runtime_error("corio::test::pg_server: " + name + " still ran after " +
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
inline std::uint16_t free_port() {
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
                                "corio::test::pg_server: probing for a free port");
    }
    ::close(fd);
    return ntohs(a.sin_port);
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

/// Where PostgreSQL's programs are: 15's from Debian's package, else `pg_config --bindir`'s; ""
/// when neither has initdb, pg_ctl and postgres.
inline const std::string& bindir() {
    static const std::string dir = [] {
        const auto complete = [](const std::string& d) {
            return executable(d + "/initdb") && executable(d + "/pg_ctl") &&
                   executable(d + "/postgres");
        };
        if (complete("/usr/lib/postgresql/15/bin"))
            return std::string("/usr/lib/postgresql/15/bin");
        const std::string pg_config = on_path("pg_config");
        if (pg_config.empty())
            return std::string();
        try {
            run_result r = run({pg_config, "--bindir"}, std::nullopt, "/", 10s);
            while (!r.out.empty() && (r.out.back() == '\n' || r.out.back() == ' '))
                r.out.pop_back();
            return r.status == 0 && complete(r.out) ? r.out : std::string();
        } catch (const std::exception&) {
            return std::string();
        }
    }();
    return dir;
}

/// psql: the server's own, else the one on PATH; "" when there is none.
inline const std::string& psql_path() {
    static const std::string path = [] {
        if (!bindir().empty() && executable(bindir() + "/psql"))
            return bindir() + "/psql";
        return on_path("psql");
    }();
    return path;
}

/// The `postgres` user, looked up when this process is root; nothing when it is not root or
/// there is no such user.
inline std::optional<account> server_account() {
    if (::geteuid() != 0)
        return std::nullopt;
    passwd pw{};
    passwd* found = nullptr;
    std::vector<char> buf(16384);
    if (::getpwnam_r("postgres", &pw, buf.data(), buf.size(), &found) != 0 || found == nullptr)
        return std::nullopt;
    return account{pw.pw_uid, pw.pw_gid};
}

} // namespace pg_detail

/// A throw-away PostgreSQL server for a test (what pytest-postgresql's `postgresql_proc` gives
/// a Python test): a fresh cluster in a temp dir under /tmp with a superuser `corio` (password
/// `secret`) and a database `app` it owns, password authentication (SCRAM-SHA-256) on the Unix
/// socket and on 127.0.0.1, durability off (fsync, synchronous_commit, full_page_writes) and
/// room for 200 connections.
///
/// The postmaster is this process's child and runs as this process's user, or as `postgres`
/// when this process is root (PostgreSQL refuses to run as root). Every call blocks the calling
/// thread until done; a call from a coroutine blocks its loop meanwhile, so a statement run with
/// `psql` must not wait for the client under test on that loop (a lock it holds, say): psql is
/// killed after 30 s.
/// **Errors**: `std::runtime_error` naming what failed, with the server's log tail for a server
/// that does not start; `pg_server::available()` tells beforehand whether one can start at all.
/// **Thread-safety**: none; create, use and destroy it on one thread, the test's: the server is
/// shut down (SIGQUIT) when the thread that started it ends, so that a test killed by its
/// watchdog leaves no server behind.
class pg_server {
public:
    /// What to change from the defaults.
    struct options {
        /// Extra server settings as "name=value" (the value unquoted), written to
        /// postgresql.conf after the harness's own, so they win: e.g. "log_connections=on".
        std::vector<std::string> settings;
    };

    /// Why no server can be started here, "" when one can: PostgreSQL's programs are missing,
    /// or this process is root and there is no `postgres` user to run the server as. For a
    /// visible skip: `CORIO_SKIP(pg_server::unavailable_reason())` (CI forbids skips).
    static std::string unavailable_reason() {
        if (pg_detail::bindir().empty())
            return "PostgreSQL is not installed: no initdb, pg_ctl and postgres in "
                   "/usr/lib/postgresql/15/bin nor in `pg_config --bindir` (Debian: apt-get "
                   "install postgresql)";
        if (pg_detail::psql_path().empty())
            return "psql is not installed (Debian: apt-get install postgresql-client)";
        if (::geteuid() == 0 && !pg_detail::server_account())
            return "running as root, which PostgreSQL refuses, and there is no `postgres` user "
                   "to run the server as (Debian's postgresql package creates it)";
        return "";
    }
    /// True when a server can be started here (`unavailable_reason()` is "").
    static bool available() { return unavailable_reason().empty(); }

    /// Creates the cluster (initdb), starts the server and creates the database `app`.
    /// **Errors**: `std::runtime_error` when it is unavailable (the reason), or initdb, the
    /// server or createdb fails (their output); `std::invalid_argument` for a setting without
    /// '='. Nothing is left behind then.
    pg_server() : pg_server(options{}) {}
    /// The same with `opts`.
    explicit pg_server(const options& opts) {
        const std::string reason = unavailable_reason();
        if (!reason.empty())
            throw std::runtime_error("corio::test::pg_server: " + reason);
        as_ = pg_detail::server_account();
        char dir[] = "/tmp/corio-pg-XXXXXX";
        if (::mkdtemp(dir) == nullptr)
            throw std::system_error(errno, std::generic_category(),
                                    "corio::test::pg_server: mkdtemp under /tmp");
        dir_ = dir;
        try {
            create_cluster(opts.settings);
            start();
            psql_with(conninfo_for("postgres"), "CREATE DATABASE app OWNER corio");
        } catch (...) {
            shut_down_and_remove();
            throw;
        }
    }
    pg_server(const pg_server&) = delete;
    pg_server& operator=(const pg_server&) = delete;
    /// Shuts the server down at once (immediate) and removes its directory.
    ~pg_server() { shut_down_and_remove(); }

    /// libpq connection string over the Unix socket: "host=<socket_dir> port=<port> dbname=app
    /// user=corio password=secret".
    [[nodiscard]] std::string conninfo() const { return conninfo_for("app"); }
    /// The same over TCP: "host=127.0.0.1 port=<port> dbname=app user=corio password=secret".
    [[nodiscard]] std::string tcp_conninfo() const {
        return "host=127.0.0.1 port=" + std::to_string(port_) +
               " dbname=app user=corio password=secret";
    }
    /// The directory holding the Unix socket (`.s.PGSQL.<port>`), the data directory and the log.
    [[nodiscard]] const std::string& socket_dir() const noexcept { return dir_; }
    /// The data directory (PGDATA): edit its pg_hba.conf, then `reload()`.
    [[nodiscard]] std::string data_dir() const { return dir_ + "/data"; }
    /// The TCP port, the same across `restart()` and `start()` after a stop or a kill.
    [[nodiscard]] std::uint16_t port() const noexcept { return port_; }
    /// The postmaster's pid, -1 while the server is stopped.
    [[nodiscard]] pid_t pid() const noexcept { return pid_; }

    /// True while the postmaster runs (one that died on its own is reaped here).
    [[nodiscard]] bool running() {
        if (pid_ > 0 && pg_detail::wait_exit(pid_, std::chrono::milliseconds(0)))
            pid_ = -1;
        return pid_ > 0;
    }

    /// Runs `sql` with psql (-X -At -q, ON_ERROR_STOP) on the database `app` over the socket and
    /// returns what it printed, without the last newline: rows one per line, columns separated
    /// by '|'. Several statements in `sql` run as one implicit transaction; the last's rows show.
    /// **Errors**: `std::runtime_error` with psql's stderr when it fails (a connection refused,
    /// an SQL error), or runs for 30 s.
    std::string psql(const std::string& sql) const { return psql_with(conninfo(), sql); }
    /// The same over the connection string `conninfo` (a wrong password, another database).
    std::string psql_with(const std::string& conninfo, const std::string& sql) const {
        const pg_detail::run_result r =
            pg_detail::run({pg_detail::psql_path(), "-X", "-A", "-t", "-q", "-w", "-v",
                            "ON_ERROR_STOP=1", "-d", conninfo, "-c", sql},
                           std::nullopt, dir_, std::chrono::seconds(30));
        if (r.status != 0)
            throw std::runtime_error("corio::test::pg_server: psql failed (exit " +
                                     std::to_string(r.status) + ") running `" + sql +
                                     "`: " + r.err);
        std::string out = r.out;
        if (!out.empty() && out.back() == '\n')
            out.pop_back();
        return out;
    }

    /// The number of client connections the server has (psql's own left out).
    /// **Errors**: those of `psql`.
    int connections() const {
        return std::stoi(psql("SELECT count(*) FROM pg_stat_activity WHERE backend_type = "
                              "'client backend' AND pid <> pg_backend_pid()"));
    }

    /// Ends every client connection but psql's own with pg_terminate_backend and waits (5 s at
    /// most each) until they are gone: each client is told FATAL 57P01 ("terminating connection
    /// due to administrator command") and its connection closes; the server stays up. Returns
    /// how many it ended.
    /// **Errors**: those of `psql`.
    int terminate_backends() const {
        return std::stoi(
            psql("SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000)) FROM (SELECT pid "
                 "FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> "
                 "pg_backend_pid() OFFSET 0) AS others"));
    }

    /// Starts the server if it is not running and waits (30 s at most) until it accepts
    /// connections; after `kill_postmaster()` or an immediate stop, that includes crash recovery.
    /// The first start picks a free port (and picks again when another test binds it first);
    /// later ones reuse it, so connection strings stay valid.
    /// **Errors**: `std::runtime_error` with the log's tail when the server exits (its port was
    /// taken meanwhile, say) or is not ready in time (it is killed then).
    void start() {
        if (running())
            return;
        const bool fixed_port = port_ != 0;
        constexpr int attempts = 5;
        for (int attempt = 1;; ++attempt) {
            if (!fixed_port)
                port_ = pg_detail::free_port();
            const std::size_t log_from = log().size();
            launch();
            const std::string failure = wait_ready();
            if (failure.empty())
                return;
            const std::string log_now = log().substr(log_from);
            if (!fixed_port && attempt < attempts &&
                log_now.find("Address already in use") != std::string::npos)
                continue; // another test took the port between the probe and the bind
            throw std::runtime_error("corio::test::pg_server: the server on port " +
                                     std::to_string(port_) + " in " + dir_ + " " + failure +
                                     "; its log ends:\n" + pg_detail::tail(log_now, 20));
        }
    }

    /// Stops the server (`mode`, fast by default) and waits until every server process is gone;
    /// nothing when it is not running. A server that takes more than 30 s is killed.
    void stop(pg_shutdown mode = pg_shutdown::fast) {
        if (!running())
            return;
        ::kill(pid_, mode == pg_shutdown::fast ? SIGINT : SIGQUIT);
        // The postmaster exits only after all its children have.
        if (pg_detail::wait_exit(pid_, std::chrono::seconds(30)))
            pid_ = -1;
        else
            kill_postmaster();
    }

    /// A fast stop, then `start()` on the same port and directory.
    /// **Errors**: those of `start()`.
    void restart() {
        stop(pg_shutdown::fast);
        start();
    }

    /// The server crashes: SIGKILL to the postmaster and to every server process at once, with
    /// no word to the clients (their connections just close); until `start()`, connecting is
    /// refused. Returns when every server process is gone; nothing when it is not running.
    void kill_postmaster() {
        if (!running())
            return;
        // Frozen, the postmaster can neither start new children nor reap the killed ones, which
        // stay its zombies until it dies; this process is a child subreaper meanwhile, so that
        // they then become its own and it can wait until each is gone.
        ::kill(pid_, SIGSTOP);
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        const auto stopped = [this] {
            const char state = pg_detail::state_of(pid_);
            return state == 'T' || state == 'Z' || state == 0;
        };
        while (!stopped() && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        const std::vector<pid_t> children = pg_detail::children_of(pid_);
        int was_reaper = 0;
        ::prctl(PR_GET_CHILD_SUBREAPER, &was_reaper);
        ::prctl(PR_SET_CHILD_SUBREAPER, 1);
        for (const pid_t child : children)
            ::kill(child, SIGKILL);
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
        pid_ = -1;
        for (const pid_t child : children) {
            // -1 when it was not reparented here (another reaper claimed it): wait until that
            // has reaped it.
            if (pg_detail::wait_exit(child, std::chrono::seconds(5)) == -1) {
                for (int i = 0; i < 1000 && pg_detail::state_of(child) != 0; ++i)
                    std::this_thread::sleep_for(std::chrono::milliseconds(5));
            }
        }
        ::prctl(PR_SET_CHILD_SUBREAPER, was_reaper);
        remove_shared_memory();
    }

    /// Makes the server reread its configuration (postgresql.conf, postgresql.auto.conf after
    /// `ALTER SYSTEM`, pg_hba.conf) and waits until it has: new connections see it.
    /// **Errors**: those of `psql`; `std::runtime_error` when it is not running or not reloaded
    /// within 10 s.
    void reload() {
        if (!running())
            throw std::runtime_error("corio::test::pg_server: reload of a stopped server");
        const std::string before = psql("SELECT pg_conf_load_time()");
        ::kill(pid_, SIGHUP);
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (psql("SELECT pg_conf_load_time()") == before) {
            if (std::chrono::steady_clock::now() >= deadline)
                throw std::runtime_error("corio::test::pg_server: not reloaded within 10 s");
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
    }

    /// Everything the server has logged (all its starts).
    [[nodiscard]] std::string log() const { return pg_detail::read_file(log_path()); }

private:
    [[nodiscard]] std::string conninfo_for(const std::string& database) const {
        return "host=" + dir_ + " port=" + std::to_string(port_) + " dbname=" + database +
               " user=corio password=secret";
    }
    [[nodiscard]] std::string log_path() const { return dir_ + "/postgres.log"; }

    void give_to_server(const std::string& path) const {
        if (as_ && ::chown(path.c_str(), as_->uid, as_->gid) != 0)
            throw std::system_error(errno, std::generic_category(),
                                    "corio::test::pg_server: chown " + path + " to postgres");
    }

    /// initdb, then the harness's settings and `extra` appended to postgresql.conf (where a
    /// later line wins, and a reload finds the values the server runs with).
    void create_cluster(const std::vector<std::string>& extra) {
        give_to_server(dir_);
        const std::string pwfile = dir_ + "/pwfile";
        {
            std::ofstream f(pwfile);
            f << "secret\n";
        }
        give_to_server(pwfile);
        const pg_detail::run_result r = pg_detail::run(
            {pg_detail::bindir() + "/initdb", "-D", data_dir(), "-U", "corio", "--pwfile=" + pwfile,
             "--auth=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync"},
            as_, dir_, std::chrono::seconds(120));
        std::filesystem::remove(pwfile);
        if (r.status != 0)
            throw std::runtime_error("corio::test::pg_server: initdb failed (exit " +
                                     std::to_string(r.status) + "):\n" + r.out + r.err);
        std::vector<std::string> settings = {
            "listen_addresses=127.0.0.1", "unix_socket_directories=" + dir_, "fsync=off",
            "synchronous_commit=off", "full_page_writes=off", "max_connections=200",
            "shared_buffers=32MB", "huge_pages=off", "logging_collector=off",
            // In the data directory, not in /dev/shm: removed with it even after a kill, and
            // no small /dev/shm (a container's) to fill.
            "dynamic_shared_memory_type=mmap"};
        settings.insert(settings.end(), extra.begin(), extra.end());
        std::ofstream conf(data_dir() + "/postgresql.conf", std::ios::app);
        conf << "\n# corio::test::pg_server\n";
        for (const std::string& setting : settings) {
            const std::size_t eq = setting.find('=');
            if (eq == std::string::npos || eq == 0)
                throw std::invalid_argument(
                    "corio::test::pg_server: a setting must be name=value, got \"" + setting +
                    "\"");
            std::string value;
            for (const char c : setting.substr(eq + 1))
                value += c == '\'' ? std::string("''") : std::string(1, c);
            conf << setting.substr(0, eq) << " = '" << value << "'\n";
        }
        if (!conf.flush())
            throw std::runtime_error("corio::test::pg_server: cannot write " + data_dir() +
                                     "/postgresql.conf");
    }

    /// Starts the postmaster on `port_`, its stdout and stderr appended to the log.
    void launch() {
        std::vector<std::string> argv = {pg_detail::bindir() + "/postgres", "-D", data_dir(), "-p",
                                         std::to_string(port_)};
        const int log_fd =
            ::open(log_path().c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        const int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (log_fd < 0 || null < 0) {
            const int e = errno;
            ::close(log_fd);
            ::close(null);
            throw std::system_error(e, std::generic_category(),
                                    "corio::test::pg_server: opening " + log_path());
        }
        try {
            pid_ = pg_detail::spawn(std::move(argv), as_, null, log_fd, log_fd, dir_, SIGQUIT);
        } catch (...) {
            ::close(log_fd);
            ::close(null);
            throw;
        }
        ::close(log_fd);
        ::close(null);
    }

    /// Waits until the postmaster says "ready" in postmaster.pid (as pg_ctl -w does); "" then,
    /// else what went wrong (the postmaster is gone then).
    std::string wait_ready() {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
        for (;;) {
            if (const std::optional<int> code =
                    pg_detail::wait_exit(pid_, std::chrono::milliseconds(0))) {
                pid_ = -1;
                return "exited while starting (exit " + std::to_string(*code) + ")";
            }
            std::istringstream pidfile(pg_detail::read_file(data_dir() + "/postmaster.pid"));
            std::vector<std::string> lines;
            for (std::string line; std::getline(pidfile, line);)
                lines.push_back(line);
            if (lines.size() >= 8 && lines[0] == std::to_string(pid_) &&
                lines[7].starts_with("ready"))
                return "";
            if (std::chrono::steady_clock::now() >= deadline) {
                kill_postmaster();
                return "was not ready after 30 s (killed)";
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
    }

    /// Removes the System V segment a killed server leaves (PostgreSQL's interlock, named in
    /// postmaster.pid), so that a destructor after a kill leaves none behind.
    void remove_shared_memory() const {
        std::istringstream pidfile(pg_detail::read_file(data_dir() + "/postmaster.pid"));
        std::string line;
        for (int i = 0; i < 7 && std::getline(pidfile, line); ++i) {
        }
        std::istringstream ids(line);
        long key = 0;
        int id = -1;
        shmid_ds ds{};
        if (ids >> key >> id && ::shmctl(id, IPC_STAT, &ds) == 0 && ds.shm_perm.__key == key &&
            ds.shm_nattch == 0)
            ::shmctl(id, IPC_RMID, nullptr);
    }

    void shut_down_and_remove() noexcept {
        try {
            stop(pg_shutdown::immediate);
        } catch (...) {
        }
        std::error_code ignored;
        std::filesystem::remove_all(dir_, ignored);
    }

    std::optional<pg_detail::account> as_;
    std::string dir_;
    std::uint16_t port_ = 0;
    pid_t pid_ = -1;
};

} // namespace corio::test

// SPDX-License-Identifier: MIT
// A throw-away PostgreSQL server for the tests of corio::pg: initdb into a fresh directory under
// /tmp, the postmaster started as this process's child on a free TCP port of 127.0.0.1 and on a
// Unix socket in that directory, and stopped, with the directory removed, by the destructor.
// Plain blocking code: it runs on the test's thread, not on a corio loop.
#pragma once

#include "process.hpp"

#include <pwd.h>
#include <signal.h>
#include <sys/ipc.h>
#include <sys/prctl.h>
#include <sys/shm.h>
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

/// pg_server in error messages; the PG* variables (a developer's PGHOST, PGOPTIONS or PGPASSWORD)
/// left out of its programs' environment.
inline constexpr process_detail::harness harness{"corio::test::pg_server", "PG"};

/// A TCP port of 127.0.0.1 free at the moment of asking.
/// **Errors**: `std::system_error` when no socket can be bound.
inline std::uint16_t free_port() { return process_detail::free_port(harness); }

/// Where PostgreSQL's programs are: 15's from Debian's package, else `pg_config --bindir`'s; ""
/// when neither has initdb, pg_ctl and postgres.
inline const std::string& bindir() {
    static const std::string dir = [] {
        const auto complete = [](const std::string& d) {
            return process_detail::executable(d + "/initdb") &&
                   process_detail::executable(d + "/pg_ctl") &&
                   process_detail::executable(d + "/postgres");
        };
        if (complete("/usr/lib/postgresql/15/bin"))
            return std::string("/usr/lib/postgresql/15/bin");
        const std::string pg_config = process_detail::on_path("pg_config");
        if (pg_config.empty())
            return std::string();
        try {
            process_detail::run_result r =
                process_detail::run(harness, {pg_config, "--bindir"}, std::nullopt, "/", 10s);
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
        if (!bindir().empty() && process_detail::executable(bindir() + "/psql"))
            return bindir() + "/psql";
        return process_detail::on_path("psql");
    }();
    return path;
}

/// The `postgres` user, looked up when this process is root; nothing when it is not root or
/// there is no such user.
inline std::optional<process_detail::account> server_account() {
    if (::geteuid() != 0)
        return std::nullopt;
    passwd pw{};
    passwd* found = nullptr;
    std::vector<char> buf(16384);
    if (::getpwnam_r("postgres", &pw, buf.data(), buf.size(), &found) != 0 || found == nullptr)
        return std::nullopt;
    return process_detail::account{pw.pw_uid, pw.pw_gid};
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
        if (pid_ > 0 && process_detail::wait_exit(pid_, std::chrono::milliseconds(0)))
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
        const process_detail::run_result r =
            process_detail::run(pg_detail::harness,
                                {pg_detail::psql_path(), "-X", "-A", "-t", "-q", "-w", "-v",
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
        process_detail::start_server(
            pg_detail::harness, port_, dir_, log_path(), [this] { launch(); },
            [this] { return wait_ready(); });
    }

    /// Stops the server (`mode`, fast by default) and waits until every server process is gone;
    /// nothing when it is not running. A server that takes more than 30 s is killed.
    void stop(pg_shutdown mode = pg_shutdown::fast) {
        if (!running())
            return;
        ::kill(pid_, mode == pg_shutdown::fast ? SIGINT : SIGQUIT);
        // The postmaster exits only after all its children have.
        if (process_detail::wait_exit(pid_, std::chrono::seconds(30)))
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
            const char state = process_detail::state_of(pid_);
            return state == 'T' || state == 'Z' || state == 0;
        };
        while (!stopped() && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        const std::vector<pid_t> children = process_detail::children_of(pid_);
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
            if (process_detail::wait_exit(child, std::chrono::seconds(5)) == -1) {
                for (int i = 0; i < 1000 && process_detail::state_of(child) != 0; ++i)
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
    [[nodiscard]] std::string log() const { return process_detail::read_file(log_path()); }

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
        const process_detail::run_result r = process_detail::run(
            pg_detail::harness,
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
        pid_ = process_detail::spawn_logged(pg_detail::harness, std::move(argv), as_, log_path(),
                                            dir_, SIGQUIT);
    }

    /// Waits until the postmaster says "ready" in postmaster.pid (as pg_ctl -w does); "" then,
    /// else what went wrong (the postmaster is gone then).
    std::string wait_ready() {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
        for (;;) {
            if (const std::optional<int> code =
                    process_detail::wait_exit(pid_, std::chrono::milliseconds(0))) {
                pid_ = -1;
                return "exited while starting (exit " + std::to_string(*code) + ")";
            }
            std::istringstream pidfile(process_detail::read_file(data_dir() + "/postmaster.pid"));
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
        std::istringstream pidfile(process_detail::read_file(data_dir() + "/postmaster.pid"));
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

    std::optional<process_detail::account> as_;
    std::string dir_;
    std::uint16_t port_ = 0;
    pid_t pid_ = -1;
};

} // namespace corio::test

// SPDX-License-Identifier: MIT
// A real peer program (openssl s_server, curl, ...) started by a test: its stdin and stdout are
// pipes the test drives through the loop, its stderr goes to a file shown when the test fails.
// The destructor kills it and reaps it, so no test leaves a process behind.
#pragma once

#include <corio/io/operation.hpp>
#include <corio/task.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstddef>
#include <fstream>
#include <initializer_list>
#include <span>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace corio::test {

class subprocess {
public:
    explicit subprocess(std::initializer_list<std::string> argv)
        : subprocess(std::vector<std::string>(argv)) {}
    explicit subprocess(std::vector<std::string> argv) : argv_(std::move(argv)) {
        int in[2];
        int out[2];
        if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0)
            throw std::runtime_error("subprocess: pipe failed");
        char err_template[] = "/tmp/corio-subprocess-XXXXXX";
        const int err = ::mkstemp(err_template);
        err_path_ = err_template;
        std::vector<char*> args;
        for (std::string& a : argv_)
            args.push_back(a.data());
        args.push_back(nullptr);
        pid_ = ::fork();
        if (pid_ == 0) {
            ::dup2(in[0], STDIN_FILENO);
            ::dup2(out[1], STDOUT_FILENO);
            ::dup2(err, STDERR_FILENO);
            ::execvp(args[0], args.data());
            ::_exit(127);
        }
        ::close(in[0]);
        ::close(out[1]);
        ::close(err);
        stdin_ = in[1];
        stdout_ = out[0];
        if (pid_ < 0)
            throw std::runtime_error("subprocess: fork failed");
    }
    subprocess(const subprocess&) = delete;
    subprocess& operator=(const subprocess&) = delete;
    ~subprocess() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
        close_stdin();
        ::close(stdout_);
        ::unlink(err_path_.c_str());
    }

    /// Writes `text` to the program's stdin (through the ring).
    task<> write(std::string text) {
        std::span<const std::byte> left = std::as_bytes(std::span(text.data(), text.size()));
        while (!left.empty()) {
            const int n = co_await io::write(stdin_, left);
            left = left.subspan(static_cast<std::size_t>(n));
        }
    }
    void close_stdin() {
        if (stdin_ >= 0)
            ::close(std::exchange(stdin_, -1));
    }

    /// Reads the program's stdout until it contains `until` (or ends); returns all read so far.
    task<std::string> read_until(std::string until) {
        while (output_.find(until) == std::string::npos) {
            const bool more = co_await read_more();
            if (!more)
                break;
        }
        co_return output_;
    }

    /// The line of stdout that starts with `prefix` (without its newline), reading until one
    /// arrives; "" if the output ends first.
    task<std::string> read_line_starting(std::string prefix) {
        for (;;) {
            const std::size_t at = output_.starts_with(prefix) ? 0 : output_.find("\n" + prefix);
            if (at != std::string::npos) {
                const std::size_t begin = at == 0 ? 0 : at + 1;
                const std::size_t end = output_.find('\n', begin);
                if (end != std::string::npos)
                    co_return output_.substr(begin, end - begin);
            }
            const bool more = co_await read_more();
            if (!more)
                co_return std::string();
        }
    }

    /// What the program wrote to stderr so far.
    [[nodiscard]] std::string errors() const {
        std::ifstream f(err_path_);
        std::stringstream s;
        s << f.rdbuf();
        return s.str();
    }

    /// True once the program has exited (it is reaped then; `wait()` must not follow).
    bool exited() {
        if (pid_ <= 0)
            return true;
        if (::waitpid(pid_, nullptr, WNOHANG) == 0)
            return false;
        pid_ = -1;
        return true;
    }

    /// Waits for the program to exit (blocking) and returns its exit status.
    int wait() {
        int status = 0;
        ::waitpid(std::exchange(pid_, -1), &status, 0);
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }

private:
    task<bool> read_more() {
        char buf[4096];
        const int n = co_await io::read(stdout_, std::as_writable_bytes(std::span(buf)));
        output_.append(buf, static_cast<std::size_t>(n));
        co_return n > 0;
    }

    std::vector<std::string> argv_;
    std::string err_path_;
    std::string output_;
    pid_t pid_ = -1;
    int stdin_ = -1;
    int stdout_ = -1;
};

} // namespace corio::test

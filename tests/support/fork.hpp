// SPDX-License-Identifier: MIT
// Child processes for the tests that play several workers (corio::redis's shared primitives):
// `fork_child` runs a body in a forked child, which reports to the parent through a pipe.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace corio::test {

/// A forked child: its pid and the read end of the pipe it writes its report to.
struct child_process {
    pid_t pid = -1;
    int report = -1;
};

/// Forks; the child runs `body(fd)` (an int: its exit status; an exception: status 2) and
/// exits with `_exit`, never returning into the test. Call it where the parent runs no loop.
template <class Body>
child_process fork_child(Body body) {
    int fds[2];
    if (::pipe(fds) != 0)
        throw std::runtime_error("corio::test::fork_child: pipe failed");
    const pid_t pid = ::fork();
    if (pid < 0)
        throw std::runtime_error("corio::test::fork_child: fork failed");
    if (pid == 0) {
        ::close(fds[0]);
        int status = 2;
        try {
            status = body(fds[1]);
        } catch (...) {
        }
        ::_exit(status);
    }
    ::close(fds[1]);
    return {pid, fds[0]};
}

/// Writes all of `text` to `fd`; false when the pipe refused it.
inline bool write_all(int fd, std::string_view text) {
    for (std::size_t done = 0; done < text.size();) {
        const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
        if (n <= 0)
            return false;
        done += static_cast<std::size_t>(n);
    }
    return true;
}

/// Reads `fd` until `stop` has been seen (or to its end when `stop` is empty) and returns
/// what came; closes it only when the end was reached.
inline std::string read_report(int fd, std::string_view stop = {}) {
    std::string text;
    std::array<char, 4096> buf{};
    for (ssize_t n; (stop.empty() || text.find(stop) == std::string::npos) &&
                    (n = ::read(fd, buf.data(), buf.size())) > 0;)
        text.append(buf.data(), static_cast<std::size_t>(n));
    return text;
}

/// Waits for the child; its exit status, or -1 when it did not exit normally.
inline int wait_child(const child_process& c) {
    int status = 0;
    ::waitpid(c.pid, &status, 0);
    ::close(c.report);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/// The lines of `text`.
inline std::vector<std::string> lines_of(std::string_view text) {
    std::vector<std::string> out;
    std::size_t start = 0;
    for (std::size_t end; (end = text.find('\n', start)) != std::string_view::npos; start = end + 1)
        out.emplace_back(text.substr(start, end - start));
    return out;
}

} // namespace corio::test

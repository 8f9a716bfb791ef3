// SPDX-License-Identifier: MIT
// Runs a function in a forked child and reports how it ended and what it wrote to stderr, for
// tests of fatal errors (assertions) and of process-wide state (seccomp filters).
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

namespace corio::test {

struct child_result {
    int exit_code = -1; ///< when it exited
    int signal = 0;     ///< when a signal killed it
    std::string err;    ///< what it wrote to stderr
};

template <class Fn>
child_result run_in_child(Fn fn) {
    int pipefd[2];
    if (::pipe(pipefd) != 0)
        std::abort();
    const pid_t pid = ::fork();
    if (pid == 0) {
        ::close(pipefd[0]);
        ::dup2(pipefd[1], STDERR_FILENO);
        ::alarm(30);
        ::_exit(fn());
    }
    ::close(pipefd[1]);
    child_result r;
    char buf[512];
    for (ssize_t n; (n = ::read(pipefd[0], buf, sizeof buf)) > 0;)
        r.err.append(buf, static_cast<std::size_t>(n));
    ::close(pipefd[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (WIFEXITED(status))
        r.exit_code = WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        r.signal = WTERMSIG(status);
    return r;
}

} // namespace corio::test

// SPDX-License-Identifier: MIT
//
// The idle keep-alive client of the HTTP benchmarks (issue 5): opens N connections to an HTTP
// server, sends one `GET /hello` on each and reads its response, then holds them all open and
// idle, so that the server's memory per idle keep-alive connection can be read off its VmRSS.
//
//     http_idle [--port 8080] [--conns 10000] [--path /hello]
//
// Plain blocking sockets, one connection after the other (loopback connects complete at once).
// Prints "ready <open> <failed>" on stdout once every connection has had its response, then
// waits until its standard input closes (or a signal ends it); on end of input it checks which
// connections the server still holds open and prints "still_open <n>" before closing them all.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace {

/// Reads one response with a Content-Length body; false on an error, a close or a bad answer.
bool read_response(int fd) {
    std::string in;
    char buf[4096];
    std::size_t need = std::string::npos; // total bytes of head + body, once the head is in
    while (need == std::string::npos || in.size() < need) {
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0)
            return false;
        in.append(buf, static_cast<std::size_t>(n));
        if (need != std::string::npos)
            continue;
        const std::size_t end = in.find("\r\n\r\n");
        if (end == std::string::npos)
            continue;
        if (in.compare(0, 12, "HTTP/1.1 200") != 0)
            return false;
        std::size_t length = 0;
        for (std::size_t at = in.find("\r\n"); at < end; at = in.find("\r\n", at + 2)) {
            constexpr std::string_view name = "content-length:";
            if (end - at - 2 < name.size())
                continue;
            bool match = true;
            for (std::size_t i = 0; i < name.size() && match; ++i)
                match = (in[at + 2 + i] | 0x20) == name[i];
            if (match)
                length = std::strtoul(in.c_str() + at + 2 + name.size(), nullptr, 10);
        }
        need = end + 4 + length;
    }
    return true;
}

int open_one(std::uint16_t port, const std::string& request) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    timeval limit{10, 0}; // a server that never answers must not hang the benchmark
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0 ||
        ::send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
            static_cast<ssize_t>(request.size()) ||
        !read_response(fd)) {
        ::close(fd);
        return -1;
    }
    return fd;
}

} // namespace

int main(int argc, char** argv) {
    std::uint16_t port = 8080;
    long conns = 10'000;
    std::string path = "/hello";
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--port") == 0 && i + 1 < argc)
            port = static_cast<std::uint16_t>(std::atoi(argv[++i]));
        else if (std::strcmp(argv[i], "--conns") == 0 && i + 1 < argc)
            conns = std::atol(argv[++i]);
        else if (std::strcmp(argv[i], "--path") == 0 && i + 1 < argc)
            path = argv[++i];
        else {
            std::fprintf(stderr, "usage: http_idle [--port N] [--conns N] [--path P]\n");
            return 2;
        }
    }
    rlimit files{};
    ::getrlimit(RLIMIT_NOFILE, &files);
    if (files.rlim_cur < static_cast<rlim_t>(conns) + 64) {
        files.rlim_cur = std::min<rlim_t>(files.rlim_max, static_cast<rlim_t>(conns) + 64);
        ::setrlimit(RLIMIT_NOFILE, &files);
    }

    const std::string request = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    std::vector<int> fds;
    fds.reserve(static_cast<std::size_t>(conns));
    long failed = 0;
    for (long i = 0; i < conns; ++i) {
        const int fd = open_one(port, request);
        if (fd < 0) {
            if (++failed == 1)
                std::fprintf(stderr, "http_idle: connection %ld failed: %s\n", i,
                             std::strerror(errno));
            continue;
        }
        fds.push_back(fd);
    }
    std::printf("ready %zu %ld\n", fds.size(), failed);
    std::fflush(stdout);

    // Hold them until standard input closes.
    char sink[256];
    for (;;) {
        const ssize_t n = ::read(STDIN_FILENO, sink, sizeof sink);
        if (n == 0 || (n < 0 && errno != EINTR))
            break;
    }
    std::size_t open = 0;
    for (const int fd : fds) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 0) == 0) // nothing to read, no end of stream: still open
            ++open;
        ::close(fd);
    }
    std::printf("still_open %zu\n", open);
    return failed == 0 ? 0 : 1;
}

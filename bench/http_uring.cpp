// SPDX-License-Identifier: MIT
//
// The reference HTTP server of the HTTP benchmarks (issue 5): raw liburing, written for speed
// rather than generality, as the practical limit of an io_uring HTTP "hello" server on one
// thread. It is not an HTTP server: it answers every request head it sees with the same
// response, whatever the method or target.
//
//     http_uring [--port 8080] [--buffers 256]
//
// Listens on 127.0.0.1:port. The design (that of bench/echo_uring.cpp):
//   - one ring, set up with SINGLE_ISSUER | DEFER_TASKRUN when the kernel takes them (6.1+;
//     otherwise COOP_TASKRUN, otherwise no flags), its fd registered;
//   - one multishot accept for the listening socket;
//   - one multishot recv per connection into a provided-buffer ring: the kernel picks a buffer
//     per completion, so no buffer belongs to an idle connection and a recv needs no re-arming;
//   - the request scan is minimal: it counts the "\r\n\r\n" that end request heads (carrying a
//     partial match over from one buffer to the next), so pipelined requests are answered one
//     response each; bodies are not supported. The buffer goes back to the ring at once;
//   - the response is fixed: "HTTP/1.1 200 OK" with Server, Date, Content-Type and
//     Content-Length headers of the same sizes as corio's, and "Hello, World!". Responses for
//     up to `block_responses` requests are sent from one prebuilt block (its Date is rewritten
//     once a second, always the same length); one send in flight per connection, so responses
//     stay in order; requests that arrive meanwhile are answered when it completes;
//   - one io_uring_submit_and_wait per turn, then every available completion is handled. The
//     wait asks for one completion more than the sends in flight: a send normally completes
//     inline during the submit (the socket has room), and a turn that ended on a send's
//     completion alone would cost a second system call for nothing.
// TCP_NODELAY is set on every connection, as the other servers of bench/ do. Stop it with a
// signal (SIGTERM, SIGINT): it keeps no state worth cleaning up.

#include <liburing.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

namespace {

constexpr unsigned ring_entries = 4096; // SQ size; the CQ is four times that
constexpr unsigned buffer_size = 4096;
constexpr int buffer_group = 0;
constexpr unsigned block_responses = 64; // responses one send can carry

[[noreturn]] void die(const char* what, int err) {
    std::fprintf(stderr, "http_uring: %s: %s\n", what, std::strerror(err));
    std::exit(1);
}

/// What a completion is for: user_data = (fd << 2) | kind.
enum class op : std::uint64_t { accept = 0, recv = 1, send = 2 };
std::uint64_t tag(int fd, op kind) {
    return (static_cast<std::uint64_t>(fd) << 2) | static_cast<std::uint64_t>(kind);
}

/// `block_responses` copies of the response, whose Date is refreshed once a second.
class response_block {
public:
    response_block() { refresh(); }

    /// Rewrites the Date fields when the second has changed (a clock read per turn: the vDSO).
    void refresh() {
        const std::time_t now = std::time(nullptr);
        if (now == second_)
            return;
        second_ = now;
        std::tm tm{};
        ::gmtime_r(&now, &tm);
        char date[32];
        const std::size_t n = std::strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        std::string one = "HTTP/1.1 200 OK\r\nServer: uring\r\nDate: ";
        one.append(date, n);
        one += "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 13\r\n\r\n"
               "Hello, World!";
        if (one.size() != size_) { // first time (the Date's length never changes after)
            size_ = one.size();
            bytes_ = std::make_unique<char[]>(size_ * block_responses);
        }
        for (unsigned i = 0; i < block_responses; ++i)
            std::memcpy(bytes_.get() + i * size_, one.data(), size_);
    }
    [[nodiscard]] const char* data() const { return bytes_.get(); }
    [[nodiscard]] std::size_t size() const { return size_; } // of one response

private:
    std::time_t second_ = -1;
    std::size_t size_ = 0;
    std::unique_ptr<char[]> bytes_;
};

struct connection {
    int fd = -1;
    unsigned match = 0;   // bytes of "\r\n\r\n" matched at the end of what was received
    unsigned owed = 0;    // responses not yet sent
    unsigned sending = 0; // responses in the live send
    bool recv_live = false;
    bool send_live = false;
    bool closing = false; // end of stream or an error: close once nothing is in flight
};

class server {
public:
    server(std::uint16_t port, unsigned buffers) : buffer_count_(buffers) {
        setup_ring();
        setup_buffers();
        listen_fd_ = listen_on(port);
        arm_accept();
    }

    [[noreturn]] void run() {
        for (;;) {
            // One system call per turn: submit what the last turn prepared, and wait.
            const int rc = io_uring_submit_and_wait(&ring_, sends_live_ + 1);
            if (rc < 0 && rc != -EINTR && rc != -ETIME)
                die("io_uring_submit_and_wait", -rc);
            block_.refresh();
            unsigned seen = 0;
            unsigned head = 0;
            io_uring_cqe* cqe = nullptr;
            io_uring_for_each_cqe(&ring_, head, cqe) {
                handle(*cqe);
                ++seen;
            }
            io_uring_cq_advance(&ring_, seen);
            if (returned_ > 0) { // the buffers scanned this turn go back before the next submit
                io_uring_buf_ring_advance(buffers_, static_cast<int>(returned_));
                returned_ = 0;
            }
        }
    }

private:
    void setup_ring() {
        const unsigned flag_sets[] = {IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
                                      IORING_SETUP_COOP_TASKRUN, 0};
        int rc = -EINVAL;
        for (unsigned flags : flag_sets) {
            io_uring_params p{};
            p.flags = flags | IORING_SETUP_CQSIZE;
            p.cq_entries = 4 * ring_entries;
            rc = io_uring_queue_init_params(ring_entries, &ring_, &p);
            if (rc == 0) {
                std::fprintf(stderr, "http_uring: ring flags 0x%x\n", ring_.flags);
                break;
            }
            if (rc != -EINVAL)
                break;
        }
        if (rc != 0)
            die("io_uring_queue_init_params", -rc);
        io_uring_register_ring_fd(&ring_); // optional: saves an fd lookup per enter
    }

    /// The provided-buffer ring (liburing 2.3 has no io_uring_setup_buf_ring: map the ring's
    /// memory ourselves, page-aligned, and register it).
    void setup_buffers() {
        const std::size_t ring_bytes = buffer_count_ * sizeof(io_uring_buf);
        void* mem =
            mmap(nullptr, ring_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
        if (mem == MAP_FAILED)
            die("mmap", errno);
        buffers_ = static_cast<io_uring_buf_ring*>(mem);
        io_uring_buf_ring_init(buffers_);
        io_uring_buf_reg reg{};
        reg.ring_addr = reinterpret_cast<std::uint64_t>(mem);
        reg.ring_entries = buffer_count_;
        reg.bgid = buffer_group;
        if (const int rc = io_uring_register_buf_ring(&ring_, &reg, 0); rc != 0)
            die("io_uring_register_buf_ring", -rc);
        storage_ = std::make_unique<unsigned char[]>(std::size_t{buffer_count_} * buffer_size);
        for (unsigned bid = 0; bid < buffer_count_; ++bid)
            give_back(static_cast<unsigned short>(bid));
        io_uring_buf_ring_advance(buffers_, static_cast<int>(returned_));
        returned_ = 0;
    }

    unsigned char* buffer(unsigned short bid) const {
        return storage_.get() + std::size_t{bid} * buffer_size;
    }

    /// Queues buffer `bid` for return to the kernel (published by the advance in run()).
    void give_back(unsigned short bid) {
        io_uring_buf_ring_add(buffers_, buffer(bid), buffer_size, bid,
                              io_uring_buf_ring_mask(buffer_count_), static_cast<int>(returned_));
        ++returned_;
    }

    static int listen_on(std::uint16_t port) {
        const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            die("socket", errno);
        const int one = 1;
        ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        sockaddr_in at{};
        at.sin_family = AF_INET;
        at.sin_port = htons(port);
        at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::bind(fd, reinterpret_cast<sockaddr*>(&at), sizeof at) != 0)
            die("bind", errno);
        if (::listen(fd, 1024) != 0)
            die("listen", errno);
        return fd;
    }

    io_uring_sqe* sqe() {
        io_uring_sqe* s = io_uring_get_sqe(&ring_);
        if (s == nullptr) { // SQ full: hand the batch to the kernel now
            io_uring_submit(&ring_);
            s = io_uring_get_sqe(&ring_);
        }
        return s;
    }

    void arm_accept() {
        io_uring_sqe* s = sqe();
        io_uring_prep_multishot_accept(s, listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        io_uring_sqe_set_data64(s, tag(listen_fd_, op::accept));
    }

    void arm_recv(connection& c) {
        io_uring_sqe* s = sqe();
        io_uring_prep_recv_multishot(s, c.fd, nullptr, 0, 0);
        s->flags |= IOSQE_BUFFER_SELECT; // the kernel picks a buffer of the group per CQE
        s->buf_group = buffer_group;
        io_uring_sqe_set_data64(s, tag(c.fd, op::recv));
        c.recv_live = true;
    }

    void start_send(connection& c) {
        c.sending = c.owed < block_responses ? c.owed : block_responses;
        c.owed -= c.sending;
        io_uring_sqe* s = sqe();
        io_uring_prep_send(s, c.fd, block_.data(), c.sending * block_.size(),
                           MSG_NOSIGNAL | MSG_WAITALL);
        io_uring_sqe_set_data64(s, tag(c.fd, op::send));
        c.send_live = true;
        ++sends_live_;
    }

    void handle(const io_uring_cqe& cqe) {
        const int fd = static_cast<int>(cqe.user_data >> 2);
        const auto kind = static_cast<op>(cqe.user_data & 3);
        const bool more = (cqe.flags & IORING_CQE_F_MORE) != 0;
        switch (kind) {
        case op::accept: on_accept(cqe.res, more); break;
        case op::recv:
            on_recv(conns_[static_cast<std::size_t>(fd)], cqe.res, cqe.flags, more);
            break;
        case op::send: on_send(conns_[static_cast<std::size_t>(fd)], cqe.res); break;
        }
    }

    void on_accept(int res, bool more) {
        if (res >= 0) {
            const int one = 1;
            ::setsockopt(res, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            if (conns_.size() <= static_cast<std::size_t>(res))
                conns_.resize(static_cast<std::size_t>(res) + 1);
            connection& c = conns_[static_cast<std::size_t>(res)];
            c = connection{};
            c.fd = res;
            arm_recv(c);
        } else if (res != -ECANCELED) {
            std::fprintf(stderr, "http_uring: accept: %s\n", std::strerror(-res));
        }
        if (!more)
            arm_accept(); // the kernel ended the multishot accept (error, overflow): re-arm
    }

    /// Counts the request heads that end in `data`, carrying a partial "\r\n\r\n" over.
    static unsigned scan(connection& c, const unsigned char* data, std::size_t n) {
        static constexpr char end[] = "\r\n\r\n";
        unsigned heads = 0;
        unsigned m = c.match;
        for (std::size_t i = 0; i < n; ++i) {
            const char ch = static_cast<char>(data[i]);
            if (ch == end[m]) {
                if (++m == 4) {
                    ++heads;
                    m = 0;
                }
            } else {
                m = ch == '\r' ? 1 : 0;
            }
        }
        c.match = m;
        return heads;
    }

    void on_recv(connection& c, int res, std::uint32_t flags, bool more) {
        if (!more)
            c.recv_live = false;
        if (res > 0) {
            const auto bid = static_cast<unsigned short>(flags >> IORING_CQE_BUFFER_SHIFT);
            const unsigned heads = scan(c, buffer(bid), static_cast<std::size_t>(res));
            give_back(bid);
            if (!c.closing && heads > 0) {
                c.owed += heads;
                if (!c.send_live)
                    start_send(c);
            }
        } else if (res != -ENOBUFS) {
            c.closing = true; // end of stream (0), or an error (reset by peer...)
        }
        // -ENOBUFS: every buffer was taken this turn; re-armed here, submitted after they are
        // back.
        if (!c.recv_live && !c.closing)
            arm_recv(c);
        maybe_close(c);
    }

    void on_send(connection& c, int res) {
        --sends_live_;
        c.send_live = false;
        if (res < 0 || static_cast<std::size_t>(res) != c.sending * block_.size()) {
            c.closing = true; // the peer is gone (MSG_WAITALL: short only on errors)
            c.owed = 0;
        } else if (c.owed > 0) {
            start_send(c);
        }
        maybe_close(c);
    }

    /// Closes a finished connection once the kernel holds nothing of it.
    void maybe_close(connection& c) {
        if (!c.closing || c.recv_live || c.send_live || c.fd < 0)
            return;
        ::close(c.fd);
        c.fd = -1;
    }

    io_uring ring_{};
    io_uring_buf_ring* buffers_ = nullptr;
    std::unique_ptr<unsigned char[]> storage_;
    unsigned buffer_count_;
    unsigned returned_ = 0;   // buffers added to the ring since the last advance
    unsigned sends_live_ = 0; // sends in the kernel
    int listen_fd_ = -1;
    response_block block_;
    std::vector<connection> conns_; // by descriptor
};

} // namespace

int main(int argc, char** argv) {
    std::uint16_t port = 8080;
    unsigned buffers = 256;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--port") == 0 && i + 1 < argc)
            port = static_cast<std::uint16_t>(std::atoi(argv[++i]));
        else if (std::strcmp(argv[i], "--buffers") == 0 && i + 1 < argc)
            buffers = static_cast<unsigned>(std::atoi(argv[++i]));
        else {
            std::fprintf(stderr, "usage: http_uring [--port N] [--buffers N]\n");
            return 2;
        }
    }
    if (buffers == 0 || (buffers & (buffers - 1)) != 0 || buffers > 32768) {
        std::fprintf(stderr, "http_uring: --buffers wants a power of two up to 32768\n");
        return 2;
    }
    server s{port, buffers};
    std::fprintf(stderr, "http_uring: listening on 127.0.0.1:%u\n", static_cast<unsigned>(port));
    s.run();
}

// SPDX-License-Identifier: MIT
//
// The reference echo server of the echo benchmarks (issue 4): raw liburing, written for speed
// rather than generality, as the practical limit of an io_uring echo server on one thread.
//
//     echo_uring [--port 7000] [--buffers 256] [--wait-one]
//
// Listens on 127.0.0.1:port and sends every connection back what it sends. The design:
//   - one ring, set up with SINGLE_ISSUER | DEFER_TASKRUN when the kernel takes them (6.1+;
//     otherwise COOP_TASKRUN, otherwise no flags), its fd registered;
//   - one multishot accept for the listening socket;
//   - one multishot recv per connection, receiving into a provided-buffer ring: the kernel
//     picks a buffer per completion, so no buffer is tied to an idle connection and a recv
//     needs no re-arming. `--buffers` 16 KiB buffers (256 by default): the ring hands them out
//     in FIFO order, so all of them cycle through the cache; with 1,024 (16 MiB), 100
//     connections of 16 KiB messages ran 15-20 % slower than with 256 (4 MiB) on the machine of
//     bench/README.md. Running out is handled (the recv ends with ENOBUFS and is re-armed);
//   - a send of exactly the received bytes from that buffer (MSG_WAITALL: the kernel finishes
//     a short send itself), one send in flight per connection so bytes stay in order; the
//     buffer goes back to the ring when its send has completed;
//   - one io_uring_submit_and_wait per turn, then every available completion is handled.
//     The wait asks for one completion more than the sends in flight: a send completes
//     inline during the submit (the socket has room), and waiting for "a send completion"
//     would cost a second system call per turn for nothing. So a turn normally ends only on a
//     recv or accept completion. When a connection has data queued behind its in-flight send,
//     that send's completion is needed to go on, and the wait is for one completion. (A short
//     send, which MSG_WAITALL leaves to signals and errors, is resumed on the next turn, which
//     some other completion then has to start: acceptable in a benchmark, not in a server.)
//     `--wait-one` always waits for one completion instead (for comparison: it made no
//     measurable difference in bench/README.md's runs).
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
#include <deque>
#include <memory>
#include <string>
#include <vector>

namespace {

constexpr unsigned ring_entries = 4096; // SQ size; the CQ is twice that
constexpr unsigned buffer_size = 16 * 1024;
constexpr int buffer_group = 0;

[[noreturn]] void die(const char* what, int err) {
    std::fprintf(stderr, "echo_uring: %s: %s\n", what, std::strerror(err));
    std::exit(1);
}

/// What a completion is for: user_data = (fd << 2) | kind.
enum class op : std::uint64_t { accept = 0, recv = 1, send = 2 };
std::uint64_t tag(int fd, op kind) {
    return (static_cast<std::uint64_t>(fd) << 2) | static_cast<std::uint64_t>(kind);
}

/// Received bytes waiting to be sent back: a provided buffer, and how much of it is left.
struct chunk {
    unsigned short bid; // buffer id in the ring
    unsigned offset;
    unsigned len;
};

struct connection {
    explicit connection(int f) : fd(f) {}
    int fd;
    bool recv_live = false;    // the multishot recv is in the kernel
    bool send_live = false;    // a send is in the kernel (its chunk is pending.front())
    bool closing = false;      // end of stream or an error: close once nothing is in flight
    std::deque<chunk> pending; // in order; front() is being sent when send_live
};

class server {
public:
    server(std::uint16_t port, unsigned buffers, bool wait_one)
        : buffer_count_(buffers), wait_one_(wait_one) {
        setup_ring();
        setup_buffers();
        listen_fd_ = listen_on(port);
        arm_accept();
    }

    [[noreturn]] void run() {
        for (;;) {
            // One system call per turn: submit what the last turn prepared, and wait.
            const unsigned want = wait_one_ || blocked_sends_ > 0 ? 1 : sends_live_ + 1;
            const int rc = io_uring_submit_and_wait(&ring_, want);
            if (rc < 0 && rc != -EINTR && rc != -ETIME)
                die("io_uring_submit_and_wait", -rc);
            unsigned seen = 0;
            unsigned head = 0;
            io_uring_cqe* cqe = nullptr;
            io_uring_for_each_cqe(&ring_, head, cqe) {
                handle(*cqe);
                ++seen;
            }
            io_uring_cq_advance(&ring_, seen);
            // The buffers whose sends completed go back to the kernel before the next submit.
            if (returned_ > 0) {
                io_uring_buf_ring_advance(buffers_, static_cast<int>(returned_));
                returned_ = 0;
            }
        }
    }

private:
    void setup_ring() {
        // The best flags first: DEFER_TASKRUN runs completion work only when we enter the
        // kernel to wait (no interrupting task work); it needs SINGLE_ISSUER (6.1+).
        const unsigned flag_sets[] = {IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
                                      IORING_SETUP_COOP_TASKRUN, 0};
        int rc = -EINVAL;
        for (unsigned flags : flag_sets) {
            io_uring_params p{};
            p.flags = flags | IORING_SETUP_CQSIZE;
            p.cq_entries = 2 * ring_entries;
            rc = io_uring_queue_init_params(ring_entries, &ring_, &p);
            if (rc == 0) {
                std::fprintf(stderr, "echo_uring: ring flags 0x%x\n", ring_.flags);
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
        const chunk& front = c.pending.front();
        io_uring_sqe* s = sqe();
        io_uring_prep_send(s, c.fd, buffer(front.bid) + front.offset, front.len,
                           MSG_NOSIGNAL | MSG_WAITALL);
        io_uring_sqe_set_data64(s, tag(c.fd, op::send));
        c.send_live = true;
        ++sends_live_;
        if (c.pending.size() > 1)
            ++blocked_sends_; // more is queued behind this send: wake up for its completion
    }

    void handle(const io_uring_cqe& cqe) {
        const int fd = static_cast<int>(cqe.user_data >> 2);
        const auto kind = static_cast<op>(cqe.user_data & 3);
        const bool more = (cqe.flags & IORING_CQE_F_MORE) != 0;
        switch (kind) {
        case op::accept: on_accept(cqe.res, more); break;
        case op::recv:
            on_recv(*conns_[static_cast<std::size_t>(fd)], cqe.res, cqe.flags, more);
            break;
        case op::send: on_send(*conns_[static_cast<std::size_t>(fd)], cqe.res); break;
        }
    }

    void on_accept(int res, bool more) {
        if (res >= 0) {
            const int one = 1;
            ::setsockopt(res, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            if (conns_.size() <= static_cast<std::size_t>(res))
                conns_.resize(static_cast<std::size_t>(res) + 1);
            conns_[static_cast<std::size_t>(res)] = std::make_unique<connection>(res);
            arm_recv(*conns_[static_cast<std::size_t>(res)]);
        } else if (res != -ECANCELED) {
            std::fprintf(stderr, "echo_uring: accept: %s\n", std::strerror(-res));
        }
        if (!more)
            arm_accept(); // the kernel ended the multishot accept (error, overflow): re-arm
    }

    void on_recv(connection& c, int res, std::uint32_t flags, bool more) {
        if (!more)
            c.recv_live = false;
        if (res > 0) {
            const auto bid = static_cast<unsigned short>(flags >> IORING_CQE_BUFFER_SHIFT);
            if (c.closing) {
                give_back(bid); // a send failed: nobody is listening any more
            } else {
                c.pending.push_back({bid, 0, static_cast<unsigned>(res)});
                if (!c.send_live)
                    start_send(c);
                else if (c.pending.size() == 2)
                    ++blocked_sends_; // the live send now has data queued behind it
            }
        } else if (res != -ENOBUFS) {
            c.closing = true; // end of stream (0), or an error (reset by peer...)
        }
        // -ENOBUFS: every buffer is waiting for its send. Re-armed here; the submit comes
        // after this turn's completed sends have returned their buffers.
        if (!c.recv_live && !c.closing)
            arm_recv(c);
        maybe_close(c);
    }

    void on_send(connection& c, int res) {
        --sends_live_;
        if (c.pending.size() > 1)
            --blocked_sends_;
        c.send_live = false;
        chunk& front = c.pending.front();
        if (res < 0) {
            c.closing = true; // the peer is gone: drop what is queued
            for (const chunk& ch : c.pending)
                give_back(ch.bid);
            c.pending.clear();
        } else {
            // MSG_WAITALL makes a short send rare (a signal, a reset), but handle it.
            front.offset += static_cast<unsigned>(res);
            front.len -= static_cast<unsigned>(res);
            if (front.len == 0) {
                give_back(front.bid);
                c.pending.pop_front();
            }
            if (!c.pending.empty())
                start_send(c);
        }
        maybe_close(c);
    }

    /// Closes a finished connection once the kernel holds nothing of it.
    void maybe_close(connection& c) {
        if (!c.closing || c.recv_live || c.send_live)
            return; // a queued chunk always has a live send, so nothing is left unsent
        const int fd = c.fd;
        ::close(fd);
        conns_[static_cast<std::size_t>(fd)].reset();
    }

    io_uring ring_{};
    io_uring_buf_ring* buffers_ = nullptr;
    std::unique_ptr<unsigned char[]> storage_;
    unsigned buffer_count_;
    unsigned returned_ = 0;      // buffers added to the ring since the last advance
    unsigned sends_live_ = 0;    // sends in the kernel
    unsigned blocked_sends_ = 0; // live sends with data queued behind them
    bool wait_one_;
    int listen_fd_ = -1;
    std::vector<std::unique_ptr<connection>> conns_; // by descriptor
};

} // namespace

int main(int argc, char** argv) {
    std::uint16_t port = 7000;
    unsigned buffers = 256;
    bool wait_one = false;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--port") == 0 && i + 1 < argc)
            port = static_cast<std::uint16_t>(std::atoi(argv[++i]));
        else if (std::strcmp(argv[i], "--buffers") == 0 && i + 1 < argc)
            buffers = static_cast<unsigned>(std::atoi(argv[++i]));
        else if (std::strcmp(argv[i], "--wait-one") == 0)
            wait_one = true;
        else {
            std::fprintf(stderr, "usage: echo_uring [--port N] [--buffers N] [--wait-one]\n");
            return 2;
        }
    }
    if (buffers == 0 || (buffers & (buffers - 1)) != 0 || buffers > 32768) {
        std::fprintf(stderr, "echo_uring: --buffers wants a power of two up to 32768\n");
        return 2;
    }
    server s{port, buffers, wait_one};
    std::fprintf(stderr, "echo_uring: listening on 127.0.0.1:%u\n", static_cast<unsigned>(port));
    s.run();
}

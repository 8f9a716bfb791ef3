// TLS bulk throughput through corio: one connection, one direction, as fast as it goes.
//   tls_bulk serve --port P --cert C --key K --bytes N   answers the first client's request
//                                                        with N bytes, then close_notify
//   tls_bulk fetch --port P --ca C                       sends "GET /payload HTTP/1.0" and
//                                                        reads until close_notify
// The request line lets `openssl s_server -WWW` (which serves files) stand in for either side.
// Both force TLS 1.3 with TLS_AES_128_GCM_SHA256, so bench/tls_bulk.sh can compare them with
// openssl s_server / s_client on the same cipher. The fetcher prints "<bytes> <seconds>".
#include <corio/corio.hpp>
#include <corio/tls/stream.hpp>

#include <openssl/ssl.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace net = corio::net;
namespace tls = corio::tls;

namespace {

constexpr const char* cipher = "TLS_AES_128_GCM_SHA256";

void force_cipher(tls::context& ctx) {
    ctx.set_versions(tls::version::tls1_3);
    SSL_CTX_set_ciphersuites(ctx.native_handle(), cipher);
}

corio::task<> serve(std::uint16_t port, tls::context ctx, std::size_t bytes) {
    net::tcp_listener l = net::tcp_listener::bind(net::address::ipv4_loopback(port));
    std::printf("listening\n");
    std::fflush(stdout);
    tls::stream s = co_await tls::stream::accept(co_await l.accept(), ctx);
    std::string request;
    std::vector<std::byte> in(4096);
    while (request.find("\r\n\r\n") == std::string::npos) {
        const std::size_t n = co_await s.read_some(in);
        if (n == 0)
            break;
        request.append(reinterpret_cast<const char*>(in.data()), n);
    }
    const std::vector<char> block(256 * 1024, 'x');
    while (bytes > 0) {
        const std::size_t n = std::min(bytes, block.size());
        co_await s.write_all(std::string_view(block.data(), n));
        bytes -= n;
    }
    co_await s.shutdown();
    co_await s.close();
}

corio::task<> fetch(std::uint16_t port, tls::context ctx) {
    const auto start = std::chrono::steady_clock::now();
    tls::stream s = co_await tls::stream::connect(
        co_await net::tcp_stream::connect(net::address::ipv4_loopback(port)), ctx, "localhost");
    co_await s.write_all("GET /payload HTTP/1.0\r\n\r\n");
    std::vector<std::byte> buf(256 * 1024);
    std::size_t total = 0;
    for (;;) {
        const std::size_t n = co_await s.read_some(buf);
        if (n == 0)
            break;
        total += n;
    }
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
    std::printf("%zu %.6f\n", total, took.count());
    co_await s.close();
}

} // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: tls_bulk serve|fetch --port P [--cert C --key K] [--ca C] "
                             "[--bytes N]\n");
        return 2;
    }
    const std::string mode = argv[1];
    std::uint16_t port = 0;
    std::string cert, key, ca;
    std::size_t bytes = std::size_t{1} << 30;
    for (int i = 2; i + 1 < argc; i += 2) {
        const std::string opt = argv[i];
        if (opt == "--port")
            port = static_cast<std::uint16_t>(std::stoi(argv[i + 1]));
        else if (opt == "--cert")
            cert = argv[i + 1];
        else if (opt == "--key")
            key = argv[i + 1];
        else if (opt == "--ca")
            ca = argv[i + 1];
        else if (opt == "--bytes")
            bytes = std::stoull(argv[i + 1]);
    }
    try {
        if (mode == "serve") {
            tls::context ctx = tls::context::server(cert, key);
            force_cipher(ctx);
            corio::run(serve(port, ctx, bytes));
        } else {
            tls::context ctx = tls::context::client().load_ca_file(ca);
            force_cipher(ctx);
            corio::run(fetch(port, ctx));
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "tls_bulk: %s\n", e.what());
        return 1;
    }
    return 0;
}

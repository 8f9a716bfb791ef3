// The guide's headline: ten requests to an endpoint that answers after a delay, fetched one
// after another, then all at once with gather. Sequential takes about 10 x the delay,
// concurrent about 1 x, and the CPU stays idle in both: waiting costs nothing.
// It serves the endpoint itself on 127.0.0.1, so it runs offline.
// Usage: sync_vs_async [--delay SECONDS] [--count N]   (defaults 2 and 10, as in the guide)
#include <corio/corio.hpp>
#include <corio/http/client.hpp>
#include <corio/http/server.hpp>

#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace http = corio::http;
using seconds = std::chrono::duration<double>;

namespace {

seconds delay{2.0};

corio::task<http::response> slow_endpoint(http::request& req) {
    co_await corio::sleep_for(delay);
    co_return http::response::json(200, "{\"item\": \"" + std::string(req.param("id")) + "\"}");
}

double cpu_seconds() {
    rusage u{};
    ::getrusage(RUSAGE_SELF, &u);
    const auto tv = [](const timeval& t) {
        return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6;
    };
    return tv(u.ru_utime) + tv(u.ru_stime);
}

struct measured {
    double wall = 0;
    double cpu = 0;
};

corio::task<measured> sequential(http::client& cli, const std::vector<std::string>& urls) {
    const auto start = std::chrono::steady_clock::now();
    const double cpu = cpu_seconds();
    for (const std::string& url : urls) {
        const http::response r = co_await cli.get(url);
        if (r.status() != 200)
            throw std::runtime_error(url + " answered " + std::to_string(r.status()));
    }
    co_return measured{seconds(std::chrono::steady_clock::now() - start).count(),
                       cpu_seconds() - cpu};
}

corio::task<measured> concurrent(http::client& cli, const std::vector<std::string>& urls) {
    const auto start = std::chrono::steady_clock::now();
    const double cpu = cpu_seconds();
    std::vector<corio::task<http::response>> requests;
    for (const std::string& url : urls)
        requests.push_back(cli.get(url));
    const std::vector<http::response> all = co_await corio::gather(std::move(requests));
    for (const http::response& r : all)
        if (r.status() != 200)
            throw std::runtime_error("a request answered " + std::to_string(r.status()));
    co_return measured{seconds(std::chrono::steady_clock::now() - start).count(),
                       cpu_seconds() - cpu};
}

corio::task<> compare(int count) {
    http::router routes;
    routes.get("/items/{id}", slow_endpoint);
    http::server srv{routes};
    corio::net::tcp_listener listener =
        corio::net::tcp_listener::bind(corio::net::address::parse("127.0.0.1:0"));
    const std::string base = "http://" + listener.local_address().to_string();
    auto serving = corio::spawn(srv.serve(std::move(listener)));

    std::vector<std::string> urls;
    for (int i = 0; i < count; ++i)
        urls.push_back(base + "/items/" + std::to_string(i));
    std::printf("%d requests to an endpoint that answers after %.2f s\n\n", count, delay.count());
    http::client cli;
    const measured seq = co_await sequential(cli, urls);
    const measured con = co_await concurrent(cli, urls);

    std::printf("%-12s %10s %10s %8s\n", "mode", "seconds", "CPU s", "speedup");
    std::printf("%-12s %10.2f %10.3f %8s\n", "sequential", seq.wall, seq.cpu, "1.0x");
    std::printf("%-12s %10.2f %10.3f %7.1fx\n", "concurrent", con.wall, con.cpu,
                seq.wall / con.wall);
    srv.stop();
    co_await serving;
}

} // namespace

int main(int argc, char** argv) {
    int count = 10;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--delay") == 0 && i + 1 < argc) {
            delay = seconds(std::stod(argv[++i]));
        } else if (std::strcmp(argv[i], "--count") == 0 && i + 1 < argc) {
            count = std::stoi(argv[++i]);
        } else {
            std::fprintf(stderr, "usage: sync_vs_async [--delay SECONDS] [--count N]\n");
            return 2;
        }
    }
    try {
        corio::run(compare(count));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "sync_vs_async: %s\n", e.what());
        return 1;
    }
}

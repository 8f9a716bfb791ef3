// corio-demo, the README's first command: the asyncio guide's scraper against a site it serves
// itself. It starts corio's HTTP server on a free port of 127.0.0.1 with a generated site of
// 500 linked pages, each answering after 50 ms like a slow backend; crawls it with a semaphore
// of 20 (one shared client, a progress line on stderr); crawls the first 100 pages again one at
// a time; prints the guide's comparison table; stops the server gracefully. Offline, seconds.
// Usage: corio-demo [--pages N] [--latency MS] [--concurrency N] [--sequential-pages N]
#include "crawl.hpp"

#include <corio/corio.hpp>
#include <corio/http/client.hpp>
#include <corio/http/server.hpp>

#include <chrono>
#include <cstdio>
#include <exception>
#include <optional>
#include <string>
#include <string_view>

namespace http = corio::http;
using namespace std::chrono_literals;

namespace {

struct settings {
    crawl::site_options site{.pages = 500, .latency = 50ms};
    std::ptrdiff_t concurrency = 20;
    std::size_t sequential_pages = 100;
};

void print_crawl(const crawl::report& r, std::size_t titles) {
    std::printf("  %zu pages fetched, %zu failed, in %.2f s", r.fetched, r.failed(), r.seconds);
    for (const auto& [kind, count] : r.failures)
        std::printf("; %s: %zu (%s)", kind.c_str(), count, r.examples.at(kind).c_str());
    std::printf("\n");
    for (std::size_t i = 0; i < r.pages.size() && i < titles; ++i)
        std::printf("    %-34s %s\n", r.pages[i].url.c_str(), r.pages[i].title.c_str());
    std::printf(titles > 0 ? "    ...\n\n" : "\n");
    std::fflush(stdout);
}

struct both {
    crawl::report concurrent;
    crawl::report sequential;
};

corio::task<both> crawl_twice(std::string start, settings how) {
    http::client cli; // one for the whole program, like aiohttp's ClientSession
    both out;

    std::printf("1. All %d pages, at most %td requests at once (the guide's Semaphore(%td)):\n",
                how.site.pages, how.concurrency, how.concurrency);
    std::fflush(stdout);
    const crawl::options concurrent{.max_pages = static_cast<std::size_t>(how.site.pages),
                                    .concurrency = how.concurrency,
                                    .label = "  concurrent"};
    corio::task<crawl::report> first = crawl::crawl(cli, start, concurrent);
    out.concurrent = co_await first;
    print_crawl(out.concurrent, 3);

    std::printf("2. The first %zu pages again, one request at a time (requests.get in a loop):\n",
                how.sequential_pages);
    std::fflush(stdout);
    const crawl::options sequential{
        .max_pages = how.sequential_pages, .concurrency = 1, .label = "  sequential"};
    corio::task<crawl::report> second = crawl::crawl(cli, start, sequential);
    out.sequential = co_await second;
    print_crawl(out.sequential, 0);
    co_return out;
}

void print_table(const both& b, const settings& how) {
    const crawl::report& seq = b.sequential;
    const crawl::report& con = b.concurrent;
    const double speedup =
        seq.pages_per_second() > 0 ? con.pages_per_second() / seq.pages_per_second() : 0;
    std::printf("%-18s %7s %9s %9s %9s %8s\n", "", "pages", "seconds", "pages/s", "speedup",
                "CPU s");
    std::printf("%-18s %7zu %9.2f %9.1f %8.1fx %8.3f\n", "sequential", seq.fetched, seq.seconds,
                seq.pages_per_second(), 1.0, seq.cpu_seconds);
    const std::string label = "concurrent (" + std::to_string(how.concurrency) + ")";
    std::printf("%-18s %7zu %9.2f %9.1f %8.1fx %8.3f\n", label.c_str(), con.fetched, con.seconds,
                con.pages_per_second(), speedup, con.cpu_seconds);
    if (seq.pages_per_second() > 0)
        std::printf("\nOne at a time, all %zu pages would take about %.0f s. The CPU idles in "
                    "both: the time\ngoes to waiting for the %lld ms each page takes, and corio "
                    "waits for %td pages at once.\n(CPU s counts the whole process: the site's "
                    "server runs on the same loop.)\n",
                    con.fetched, static_cast<double>(con.fetched) / seq.pages_per_second(),
                    static_cast<long long>(how.site.latency.count()), how.concurrency);
}

corio::task<int> demo(settings how) {
    http::server srv{crawl::site_routes(how.site)};
    corio::net::tcp_listener listener =
        corio::net::tcp_listener::bind(corio::net::address::parse("127.0.0.1:0"));
    const std::string start = "http://" + listener.local_address().to_string() + "/";
    corio::join_handle<> serving = corio::spawn(srv.serve(std::move(listener)));
    std::printf("corio demo: the asyncio guide's scraper, in C++20 on io_uring.\n\n"
                "corio's HTTP server serves a generated site of %d linked pages on %s;\n"
                "each page answers after %lld ms. The scraper follows their links breadth-first,\n"
                "parsing each page with gumbo for its title and links.\n\n",
                how.site.pages, start.c_str(), static_cast<long long>(how.site.latency.count()));

    std::optional<both> results;
    std::exception_ptr failure;
    try {
        corio::task<both> crawls = crawl_twice(start, how);
        results = co_await crawls;
    } catch (...) {
        failure = std::current_exception();
    }
    srv.stop(5s); // lets requests in progress finish, closes idle connections
    co_await serving;
    if (failure)
        std::rethrow_exception(failure);

    print_table(*results, how);
    std::printf("\nThe server stopped gracefully.\n");
    const bool complete = results->concurrent.failed() == 0 && results->sequential.failed() == 0;
    co_return complete ? 0 : 1;
}

int usage() {
    std::fprintf(stderr, "usage: corio-demo [--pages N] [--latency MS] [--concurrency N] "
                         "[--sequential-pages N]\n");
    return 2;
}

} // namespace

int main(int argc, char** argv) {
    settings how;
    try {
        for (int i = 1; i < argc; ++i) {
            const std::string_view arg = argv[i];
            if (i + 1 >= argc)
                return usage();
            if (arg == "--pages")
                how.site.pages = std::stoi(argv[++i]);
            else if (arg == "--latency")
                how.site.latency = std::chrono::milliseconds(std::stol(argv[++i]));
            else if (arg == "--concurrency")
                how.concurrency = std::stol(argv[++i]);
            else if (arg == "--sequential-pages")
                how.sequential_pages = std::stoul(argv[++i]);
            else
                return usage();
        }
    } catch (const std::exception&) {
        return usage();
    }
    if (how.site.pages < 1 || how.concurrency < 1 || how.sequential_pages < 1 ||
        how.site.latency < 0ms)
        return usage();
    try {
        return corio::run(demo(how));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "corio-demo: %s\n", e.what());
        return 1;
    }
}

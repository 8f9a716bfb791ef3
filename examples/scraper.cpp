// The guide's scraper: one shared client, a semaphore of 20, a 10 s timeout per request, HTML
// parsed with gumbo for each page's title and links, followed breadth-first within the start
// URL's host. A progress line on stderr while it runs, a summary table at the end.
// With no URL it serves a generated site of linked pages on 127.0.0.1 and crawls that, offline.
// With --threads N the crawl runs on N loops of a corio::runtime (crawl::crawl_on): the first
// loop keeps the frontier (and serves the local site), workers on every loop fetch and parse,
// each loop with a client of its own; --rate still holds for the whole crawl, granted by one
// rate limiter on the first loop.
// Usage: scraper [URL] [--max-pages N] [--concurrency N] [--rate N/PERIOD] [--timeout SECONDS]
//                [--titles N] [--site-pages N] [--latency MS] [--threads N]
//   scraper                                    the local site (500 pages, 50 ms each)
//   scraper https://example.com/ --max-pages 50 --rate 5/1s
//   scraper --threads 2                        the local site, crawled on 2 loops
#include "crawl.hpp"

#include <corio/corio.hpp>
#include <corio/http/client.hpp>
#include <corio/http/server.hpp>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace http = corio::http;
using namespace std::chrono_literals;

namespace {

// "50/1s", "100/60s", "10/500ms", "100/1m", "5/s": N requests per period.
http::rate_limit parse_rate(std::string_view text) {
    const auto [n, period] = crawl::parse_rate(text);
    return http::rate_limit{n, period};
}

struct settings {
    std::optional<std::string> url;
    crawl::options opt{.label = "scraper"};
    crawl::site_options site;
    std::size_t titles = 5;
    std::size_t threads = 1; // loops; 0: one per CPU
};

// Crawls from `start`: on this loop with one shared client, as the guide does, or over every
// loop of `loops` when given one.
corio::task<crawl::report> crawl_from(std::string start, crawl::options opt,
                                      corio::runtime* loops) {
    if (loops != nullptr)
        co_return co_await crawl::crawl_on(*loops, std::move(start), std::move(opt));
    http::client cli{
        http::client_options{.max_connections = static_cast<std::size_t>(opt.concurrency)}};
    co_return co_await crawl::crawl(cli, std::move(start), std::move(opt));
}

corio::task<crawl::report> crawl_named(std::string url, crawl::options opt, corio::runtime* loops) {
    std::fprintf(stderr, "crawling %s\n", url.c_str());
    co_return co_await crawl_from(std::move(url), std::move(opt), loops);
}

// Serves the generated site on a free port of 127.0.0.1 (on this loop), crawls it, stops the
// server.
corio::task<crawl::report> crawl_local(crawl::site_options site, crawl::options opt,
                                       corio::runtime* loops) {
    http::server srv{crawl::site_routes(site)};
    corio::net::tcp_listener listener =
        corio::net::tcp_listener::bind(corio::net::address::parse("127.0.0.1:0"));
    const std::string start = "http://" + listener.local_address().to_string() + "/";
    corio::join_handle<> serving = corio::spawn(srv.serve(std::move(listener)));
    std::fprintf(stderr, "crawling a local site of %d pages (%lld ms each) on %s\n", site.pages,
                 static_cast<long long>(site.latency.count()), start.c_str());
    std::optional<crawl::report> done;
    std::exception_ptr failure;
    try {
        corio::task<crawl::report> job = crawl_from(start, std::move(opt), loops);
        done = co_await job;
    } catch (...) {
        failure = std::current_exception();
    }
    srv.stop(5s); // the server must not outlive this frame: stop it before anything is thrown
    co_await serving;
    if (failure)
        std::rethrow_exception(failure);
    co_return std::move(*done);
}

corio::task<int> scrape(settings how, corio::runtime* loops) {
    crawl::report r;
    if (how.url)
        r = co_await crawl_named(*how.url, how.opt, loops);
    else
        r = co_await crawl_local(how.site, how.opt, loops);
    crawl::print_summary(r, how.titles);
    co_return r.fetched > 0 ? 0 : 1;
}

int usage() {
    std::fprintf(stderr,
                 "usage: scraper [URL] [--max-pages N] [--concurrency N] [--rate N/PERIOD]\n"
                 "               [--timeout SECONDS] [--titles N] [--site-pages N] [--latency MS]\n"
                 "               [--threads N]\n"
                 "  URL            where to start (http or https); none: a local generated site\n"
                 "  --max-pages    pages to queue at most (100)\n"
                 "  --concurrency  requests in flight at once (20)\n"
                 "  --rate         at most N requests per PERIOD, e.g. 50/1s, 10/500ms, 100/1m\n"
                 "  --timeout      seconds per request, redirects included (10)\n"
                 "  --titles       titles to list at the end (5)\n"
                 "  --site-pages   pages of the local site (500)\n"
                 "  --latency      milliseconds each page of the local site takes (50)\n"
                 "  --threads      loops to crawl on, one thread each (1; 0: one per CPU): the\n"
                 "                 first keeps the frontier and hands pages to workers on every\n"
                 "                 loop; --concurrency is split among the loops, and --rate\n"
                 "                 holds for them all (one limiter on the first loop grants\n"
                 "                 every request)\n");
    return 2;
}

} // namespace

int main(int argc, char** argv) {
    settings how;
    try {
        for (int i = 1; i < argc; ++i) {
            const std::string_view arg = argv[i];
            const bool has_value = i + 1 < argc;
            if (arg == "--max-pages" && has_value) {
                how.opt.max_pages = std::stoul(argv[++i]);
            } else if (arg == "--concurrency" && has_value) {
                how.opt.concurrency = std::stol(argv[++i]);
            } else if (arg == "--rate" && has_value) {
                how.opt.rate = parse_rate(argv[++i]);
            } else if (arg == "--timeout" && has_value) {
                how.opt.request_timeout =
                    std::chrono::milliseconds(static_cast<long>(std::stod(argv[++i]) * 1000));
            } else if (arg == "--titles" && has_value) {
                how.titles = std::stoul(argv[++i]);
            } else if (arg == "--site-pages" && has_value) {
                how.site.pages = std::stoi(argv[++i]);
            } else if (arg == "--latency" && has_value) {
                how.site.latency = std::chrono::milliseconds(std::stol(argv[++i]));
            } else if (arg == "--threads" && has_value) {
                how.threads = std::stoul(argv[++i]);
            } else if (!arg.starts_with("-") && !how.url) {
                // "example.com" means https://example.com/.
                how.url = arg.find("://") == std::string_view::npos ? "https://" + std::string(arg)
                                                                    : std::string(arg);
            } else {
                return usage();
            }
        }
        if (how.opt.concurrency < 1 || how.opt.max_pages < 1 || how.site.pages < 1 ||
            how.opt.request_timeout <= 0ms)
            return usage();
        if (how.url)
            (void)http::url::parse(*how.url); // a malformed URL is a usage error
    } catch (const std::exception& e) {
        std::fprintf(stderr, "scraper: %s\n", e.what());
        return usage();
    }
    try {
        if (how.threads == 1)
            return corio::run(scrape(std::move(how), nullptr));
        corio::runtime rt{corio::runtime_options{.threads = how.threads}};
        return rt.run(scrape(std::move(how), &rt));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "scraper: %s\n", e.what());
        return 1;
    }
}

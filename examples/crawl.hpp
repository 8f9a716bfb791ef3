// The crawl shared by examples/scraper.cpp and examples/corio_demo.cpp (examples only, not part of
// the library): a generated local site to crawl offline, and the asyncio guide's scraper grown
// into a breadth-first crawler.
//
// The guide's scraper, in Python:
//     async def scrape_all(urls):
//         sem = asyncio.Semaphore(20)
//         async def limited_scrape(url):
//             async with sem:
//                 return await scrape_page(url)   # aiohttp GET with ClientTimeout(10),
//                 BeautifulSoup
//         return await asyncio.gather(*[limited_scrape(url) for url in urls])
// Here one shared http::client fetches, a corio::semaphore of 20 bounds the requests in flight,
// corio::timeout bounds each at 10 s, gumbo parses the HTML, and every page found is a task of
// one task_group. The semaphore is FIFO, so pages are fetched in the order they were found:
// breadth-first.
//
// `crawl_on` spreads the same crawl over every loop of a corio::runtime (scraper --threads N):
// one loop keeps the frontier, and workers on every loop, each loop with its own client, fetch
// and parse the pages it hands them through a corio::channel.
#pragma once

#include <corio/corio.hpp>
#include <corio/http/client.hpp>
#include <corio/http/router.hpp>

#include <gumbo.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <deque>
#include <exception>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

namespace crawl {

namespace http = corio::http;
using seconds = std::chrono::duration<double>;

// ---------------------------------------------------------------------------------------------
// The local site: pages "/" (page 0) and "/page/{n}", each with a title and five links to other
// pages, answering after an artificial latency. Deterministic; every page is reachable from "/"
// (page n links to 2n+1 and 2n+2, a binary tree rooted at "/"). The links come in the forms real
// sites use: absolute paths, relative paths, "../", and an off-site link the crawler must skip.

struct site_options {
    int pages = 500;
    std::chrono::milliseconds latency{50};
};

/// A --rate option ("50/1s", "100/60s", "10/500ms", "100/1m", "5/s", "1000/1h"): N per period.
/// **Errors**: `std::invalid_argument` naming the text and the form expected.
inline std::pair<long, std::chrono::milliseconds> parse_rate(std::string_view text) {
    const auto bad = [&] {
        return std::invalid_argument("--rate '" + std::string(text) +
                                     "': expected N/PERIOD, like 50/1s, 10/500ms or 100/1m");
    };
    const std::size_t slash = text.find('/');
    if (slash == std::string_view::npos)
        throw bad();
    std::size_t used = 0;
    const std::string count(text.substr(0, slash));
    long n = 0;
    try {
        n = count.empty() ? 0 : std::stol(count, &used);
    } catch (const std::exception&) {
        throw bad();
    }
    if (n < 1 || used != count.size())
        throw bad();
    std::string_view period = text.substr(slash + 1);
    double scale = 1000; // milliseconds per unit
    if (period.ends_with("ms")) {
        scale = 1;
        period.remove_suffix(2);
    } else if (period.ends_with('s')) {
        period.remove_suffix(1);
    } else if (period.ends_with('m')) {
        scale = 60'000;
        period.remove_suffix(1);
    } else if (period.ends_with('h')) {
        scale = 3'600'000;
        period.remove_suffix(1);
    }
    const std::string amount = period.empty() ? "1" : std::string(period);
    double value = 0;
    try {
        value = std::stod(amount, &used);
    } catch (const std::exception&) {
        throw bad();
    }
    if (used != amount.size() || !(value * scale >= 1))
        throw bad();
    return {n, std::chrono::milliseconds(static_cast<long>(value * scale))};
}

inline std::string page_path(int n) { return n == 0 ? "/" : "/page/" + std::to_string(n); }

/// The HTML of page `n` of the site.
inline std::string page_html(const site_options& site, int n) {
    const int count = site.pages;
    // Links relative to this page's own path: "page/7" from "/", "7" from "/page/3".
    const auto relative = [n](int to) {
        return to == 0 ? std::string("/") : (n == 0 ? "page/" : "") + std::to_string(to);
    };
    std::string html = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
                       "<title>Page " +
                       std::to_string(n) + " of " + std::to_string(count) +
                       " | corio local site</title></head>\n<body>\n"
                       "<nav><a href=\"/\">Home</a> <a href=\"https://example.org/\">elsewhere</a>"
                       " <a href=\"#top\">top</a></nav>\n<h1>Page " +
                       std::to_string(n) + "</h1>\n<ul>\n";
    const auto link = [&](const std::string& href, int to) {
        html += "  <li><a href=\"" + href + "\">Page " + std::to_string(to) + "</a></li>\n";
    };
    for (const int child : {2 * n + 1, 2 * n + 2})
        if (child < count)
            link(relative(child), child);
    const int far = (n * 37 + 11) % count;
    link(page_path(far), far);
    if (n > 0) {
        const int parent = (n - 1) / 2;
        link(parent == 0 ? "../" : "../page/" + std::to_string(parent), parent);
    }
    html += "</ul>\n<p>Generated for corio's scraper example. Each page answers after " +
            std::to_string(site.latency.count()) +
            " ms, like a slow backend.</p>\n</body></html>\n";
    return html;
}

namespace detail {

inline corio::task<http::response> serve_page(site_options site, std::string number) {
    int n = -1;
    if (number.empty())
        n = 0;
    else if (number.size() <= 9 && number.find_first_not_of("0123456789") == std::string::npos &&
             number.front() != '0')
        n = std::stoi(number);
    co_await corio::sleep_for(site.latency);
    if (n < 0 || n >= site.pages)
        co_return http::response::text(404, "no such page\n");
    co_return http::response::html(200, page_html(site, n));
}

} // namespace detail

/// The site's routes: GET "/" and "/page/{n}".
inline http::router site_routes(site_options site) {
    http::router routes;
    // Plain lambdas returning a call to a coroutine: the coroutine gets its own copies.
    routes.get("/", [site](http::request&) { return detail::serve_page(site, ""); });
    routes.get("/page/{n}", [site](http::request& req) {
        return detail::serve_page(site, std::string(req.param("n")));
    });
    return routes;
}

// ---------------------------------------------------------------------------------------------
// HTML: gumbo (the HTML5 parsing algorithm, as browsers parse) gives the title and the links.

struct parsed_html {
    std::string title;
    std::string base; // <base href>, if any
    std::vector<std::string> links;
};

/// Whitespace collapsed to single spaces, trimmed.
inline std::string squeeze(std::string_view text) {
    std::string out;
    bool space = false;
    for (const char c : text) {
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f') {
            space = !out.empty();
        } else {
            if (space)
                out += ' ';
            space = false;
            out += c;
        }
    }
    return out;
}

inline parsed_html parse_html(std::string_view html) {
    const auto destroy = [](GumboOutput* out) { gumbo_destroy_output(&kGumboDefaultOptions, out); };
    std::unique_ptr<GumboOutput, decltype(destroy)> doc(
        gumbo_parse_with_options(&kGumboDefaultOptions, html.data(), html.size()), destroy);
    parsed_html page;
    bool have_title = false;
    // Depth first, in document order, with a stack of our own: deep documents cannot overflow it.
    std::vector<const GumboNode*> stack{doc->root};
    while (!stack.empty()) {
        const GumboNode* node = stack.back();
        stack.pop_back();
        if (node->type != GUMBO_NODE_ELEMENT)
            continue;
        const GumboElement& e = node->v.element;
        if (e.tag == GUMBO_TAG_TITLE && !have_title) {
            have_title = true;
            std::string text;
            for (unsigned i = 0; i < e.children.length; ++i) {
                const auto* child = static_cast<const GumboNode*>(e.children.data[i]);
                if (child->type == GUMBO_NODE_TEXT || child->type == GUMBO_NODE_WHITESPACE)
                    text += child->v.text.text;
            }
            page.title = squeeze(text);
        } else if (e.tag == GUMBO_TAG_A) {
            if (const GumboAttribute* href = gumbo_get_attribute(&e.attributes, "href"))
                page.links.emplace_back(href->value);
        } else if (e.tag == GUMBO_TAG_BASE && page.base.empty()) {
            if (const GumboAttribute* href = gumbo_get_attribute(&e.attributes, "href"))
                page.base = href->value;
        }
        for (unsigned i = e.children.length; i > 0; --i)
            stack.push_back(static_cast<const GumboNode*>(e.children.data[i - 1]));
    }
    return page;
}

/// What `href` points to from `page`, when it is an http(s) URL worth fetching: ASCII
/// whitespace trimmed, fragments-only, javascript:, mailto:, tel: and malformed links skipped.
inline std::optional<http::url> resolve_link(const http::url& page, std::string_view href) {
    const std::size_t first = href.find_first_not_of(" \t\n\r\f");
    if (first == std::string_view::npos)
        return std::nullopt;
    href = href.substr(first, href.find_last_not_of(" \t\n\r\f") - first + 1);
    if (href.front() == '#')
        return std::nullopt;
    // A scheme ("mailto:") ends at a ':' before any '/', '?' or '#'. url::resolve handles
    // only http(s) ones, and only written with "//".
    const std::size_t colon = href.find(':');
    if (colon != std::string_view::npos && colon < href.find_first_of("/?#")) {
        std::string scheme(href.substr(0, colon));
        for (char& c : scheme)
            c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
        if ((scheme != "http" && scheme != "https") || href.substr(colon + 1, 2) != "//")
            return std::nullopt;
    }
    try {
        return page.resolve(href);
    } catch (const std::invalid_argument&) {
        return std::nullopt;
    }
}

// ---------------------------------------------------------------------------------------------
// The crawler.

/// How a crawl runs.
struct options {
    /// Pages queued at most (the start page included).
    std::size_t max_pages = 100;
    /// Requests in flight at once: the guide's Semaphore(20).
    std::ptrdiff_t concurrency = 20;
    /// Each request, redirects included: the guide's ClientTimeout(10).
    std::chrono::milliseconds request_timeout = std::chrono::seconds(10);
    /// At most `requests` per `period`, over the whole crawl.
    std::optional<http::rate_limit> rate = {};
    /// A progress line on stderr while it runs, starting with `label`.
    bool progress = true;
    std::string label = "crawl";
};

/// A page fetched.
struct page {
    std::size_t order = 0; ///< when it was found: 0 is the start page
    std::string url;       ///< after redirects
    std::string title;
    bool html = false;
};

/// What a crawl did.
struct report {
    std::string start;
    std::size_t max_pages = 0;
    std::ptrdiff_t concurrency = 0;
    std::size_t queued = 0;                      ///< pages found and queued (at most max_pages)
    std::size_t fetched = 0;                     ///< answered 2xx
    std::size_t duplicates = 0;                  ///< redirected to a page fetched already
    std::size_t links = 0;                       ///< links found in the pages
    std::size_t off_host = 0;                    ///< of them, to another host (not followed)
    std::map<std::string, std::size_t> failures; ///< by kind: "timeout", "HTTP 404", ...
    std::map<std::string, std::string> examples; ///< by kind: the first error's message or URL
    double seconds = 0;
    double cpu_seconds = 0;  ///< of the whole process (a local site's server included)
    std::vector<page> pages; ///< in the order they were found
    /// A crawl on several loops (`crawl_on`): the pages each loop fetched or failed.
    std::vector<std::size_t> by_loop;

    [[nodiscard]] std::size_t failed() const {
        std::size_t n = 0;
        for (const auto& [kind, count] : failures)
            n += count;
        return n;
    }
    [[nodiscard]] double pages_per_second() const {
        return seconds > 0 ? static_cast<double>(fetched) / seconds : 0;
    }
};

inline double cpu_seconds() {
    rusage u{};
    ::getrusage(RUSAGE_SELF, &u);
    const auto tv = [](const timeval& t) {
        return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
    };
    return tv(u.ru_utime) + tv(u.ru_stime);
}

namespace detail {

/// A page to fetch: when it was found (0 is the start page) and its URL.
struct job {
    std::size_t order = 0;
    std::string url;
};

/// What the crawl knows, kept by the one loop that runs the crawl (and alone reads or changes
/// it): the pages seen and found, the counts, the report.
struct frontier {
    frontier(options o, http::url s) : opt(std::move(o)), start(std::move(s)) {}

    options opt;
    http::url start;
    std::unordered_set<std::string> seen;
    std::vector<std::optional<page>> found; // by order
    report rep;
    std::size_t in_flight = 0;
    std::size_t done = 0; // fetched or failed
    std::chrono::steady_clock::time_point began = std::chrono::steady_clock::now();
};

/// A crawl on one loop: the frontier, with the client, semaphore, rate limiter and task group
/// of that loop.
struct crawl_state : frontier {
    crawl_state(http::client& c, options o, http::url s)
        : frontier(std::move(o), std::move(s)), cli(c), sem(opt.concurrency) {
        if (opt.rate)
            rate.emplace(opt.rate->requests, opt.rate->period);
    }

    http::client& cli;
    corio::semaphore sem;
    std::optional<corio::rate_limiter> rate;
    corio::task_group pages;
};

/// One page fetched and parsed, or failed, by the loop that fetched it: what the frontier
/// needs to record it.
struct fetch_result {
    std::size_t order = 0;
    std::string url;             // as requested
    std::string failure;         // the kind it failed with ("timeout", "HTTP 404"); empty: none
    std::string failure_example; // the error's message, or the URL for an HTTP status
    std::string final_url;       // after redirects
    bool html = false;
    std::string title;
    std::vector<http::url> links; // its http(s) links, resolved, in document order
    std::size_t loop = 0;         // the loop that fetched it (a crawl on several loops)
};

inline std::string progress_line(const frontier& s) {
    const double elapsed = seconds(std::chrono::steady_clock::now() - s.began).count();
    char line[160];
    std::snprintf(line, sizeof line, "%s: %zu/%zu pages, %zu in flight, %zu failed, %.0f req/s",
                  s.opt.label.c_str(), s.done, s.rep.queued, s.in_flight, s.rep.failed(),
                  elapsed > 0 ? static_cast<double>(s.done) / elapsed : 0.0);
    return line;
}

// Redraws the progress line (at most 10 times a second on a terminal, once a second into a
// file or pipe) until cancelled.
inline corio::task<> show_progress(const frontier& s) {
    const bool tty = ::isatty(STDERR_FILENO) == 1;
    for (;;) {
        co_await corio::sleep_for(std::chrono::milliseconds(tty ? 100 : 1000));
        const std::string line = progress_line(s);
        std::fprintf(stderr, tty ? "\r%s\x1b[K" : "%s\n", line.c_str());
    }
}

// The error kind a failed request counts under.
inline std::string failure_kind(std::exception_ptr e) {
    try {
        std::rethrow_exception(std::move(e));
    } catch (const corio::timeout_error&) { // http::timeout_error too
        return "timeout";
    } catch (const http::connect_error&) {
        return "connect";
    } catch (const http::tls_error&) {
        return "TLS";
    } catch (const http::protocol_error&) {
        return "protocol";
    } catch (const http::too_many_redirects&) {
        return "redirects";
    } catch (const http::body_too_large&) {
        return "too large";
    } catch (const http::error&) {
        return "other HTTP";
    } catch (const std::exception&) {
        return "other";
    }
}

inline std::string what(const std::exception_ptr& e) {
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& x) {
        return x.what();
    } catch (...) {
        return "an exception of unknown type";
    }
}

inline void fail(frontier& s, const std::string& kind, std::string example) {
    if (++s.rep.failures[kind] == 1)
        s.rep.examples[kind] = std::move(example);
}

// text/html, application/xhtml+xml, or no Content-Type at all.
inline bool is_html(const http::response& r) {
    std::string type(r.header("content-type").value_or("text/html"));
    std::transform(type.begin(), type.end(), type.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return type.find("html") != std::string::npos;
}

// GET `url`, reading the body only when it is HTML: a PDF or a video on the site is not
// downloaded (its connection is closed instead of going back to the pool).
inline corio::task<http::response> fetch(http::client& cli, std::string url) {
    constexpr std::size_t max_html_bytes = std::size_t{16} * 1024 * 1024;
    corio::task<http::response_stream> opening = cli.stream(std::move(url));
    http::response_stream body = co_await opening;
    http::response r(body.status());
    r.headers() = body.headers();
    r.set_url(body.url());
    if (!is_html(r))
        co_return r;
    std::string html;
    for (;;) {
        std::optional<std::string> chunk = co_await body.next_chunk();
        if (!chunk)
            break;
        html += *chunk;
        if (html.size() > max_html_bytes)
            throw http::body_too_large(max_html_bytes, "corio::http::client GET " + r.url() +
                                                           ": HTML larger than 16 MiB");
    }
    r.set_body(std::move(html));
    co_return r;
}

// What a response tells: where it ended up, and for a 2xx HTML page its title and links.
inline void examine(const http::response& r, fetch_result& out) {
    out.final_url = r.url();
    if (r.status() < 200 || r.status() > 299) {
        out.failure = "HTTP " + std::to_string(r.status());
        out.failure_example = r.url();
        return;
    }
    out.html = is_html(r);
    if (!out.html)
        return;
    parsed_html parsed = parse_html(r.text());
    out.title = std::move(parsed.title);
    http::url here = http::url::parse(r.url());
    if (!parsed.base.empty())
        here = resolve_link(here, parsed.base).value_or(here);
    for (const std::string& href : parsed.links)
        if (std::optional<http::url> link = resolve_link(here, href))
            out.links.push_back(std::move(*link));
}

// Fetches page `j` with `cli` within `timeout`, then parses it. A failure is in the result;
// only cancellation is thrown.
inline corio::task<fetch_result> fetch_page(http::client& cli, std::chrono::milliseconds timeout,
                                            job j) {
    fetch_result out;
    out.order = j.order;
    out.url = std::move(j.url);
    std::exception_ptr failure;
    try {
        corio::task<http::response> get = fetch(cli, out.url);
        const http::response r = co_await corio::timeout(timeout, std::move(get));
        examine(r, out);
    } catch (const corio::cancelled_error&) {
        throw;
    } catch (...) {
        failure = std::current_exception();
    }
    if (failure) {
        out.failure = failure_kind(failure);
        out.failure_example = what(failure);
    }
    co_return out;
}

// Queues `u` unless it is on another host, seen already, or the crawl is full; returns the
// page to fetch when it was queued.
inline std::optional<job> enqueue(frontier& s, const http::url& u) {
    if (u.host != s.start.host) {
        ++s.rep.off_host;
        return std::nullopt;
    }
    if (s.rep.queued >= s.opt.max_pages)
        return std::nullopt;
    std::string key = u.to_string();
    if (!s.seen.insert(key).second)
        return std::nullopt;
    const std::size_t order = s.rep.queued++;
    s.found.emplace_back();
    return job{.order = order, .url = std::move(key)};
}

// Records a page fetched (or failed) in the frontier: counts it, and queues the new links of
// the same host. Returns the pages it queued, in the order found.
inline std::vector<job> record(frontier& s, fetch_result r) {
    if (!r.failure.empty()) {
        fail(s, r.failure, std::move(r.failure_example));
        return {};
    }
    // The start page moved (to https, to www.): go there.
    if (r.order == 0 && r.final_url != r.url) {
        s.start = http::url::parse(r.final_url);
        s.rep.start += " -> " + r.final_url;
    }
    if (r.final_url != r.url && !s.seen.insert(r.final_url).second) {
        ++s.rep.duplicates; // redirected to a page already queued
        return {};
    }
    ++s.rep.fetched;
    std::vector<job> queued;
    for (const http::url& link : r.links) {
        ++s.rep.links;
        if (std::optional<job> next = enqueue(s, link))
            queued.push_back(std::move(*next));
    }
    s.found[r.order] = page{.order = r.order,
                            .url = std::move(r.final_url),
                            .title = std::move(r.title),
                            .html = r.html};
    return queued;
}

struct cancel_on_exit {
    explicit cancel_on_exit(std::optional<corio::join_handle<>>& handle) : h(handle) {}
    cancel_on_exit(const cancel_on_exit&) = delete;
    cancel_on_exit& operator=(const cancel_on_exit&) = delete;
    ~cancel_on_exit() {
        if (h)
            h->cancel();
    }
    std::optional<corio::join_handle<>>& h;
};

// The crawl begins: the report's settings, and the progress line if asked for.
inline void begin(frontier& s, std::optional<corio::join_handle<>>& progress) {
    s.rep.start = s.start.to_string();
    s.rep.max_pages = s.opt.max_pages;
    s.rep.concurrency = s.opt.concurrency;
    if (s.opt.progress)
        progress = corio::spawn(show_progress(s));
}

// The crawl is over: its times, the last progress line, and the pages in the order found.
inline corio::task<report> finish(frontier& s, std::optional<corio::join_handle<>>& progress,
                                  double cpu_at_start) {
    s.rep.seconds = seconds(std::chrono::steady_clock::now() - s.began).count();
    s.rep.cpu_seconds = cpu_seconds() - cpu_at_start;
    if (progress) {
        progress->cancel();
        try {
            co_await *progress;
        } catch (const corio::cancelled_error&) {
        }
        const std::string line = progress_line(s);
        std::fprintf(stderr, ::isatty(STDERR_FILENO) == 1 ? "\r%s\x1b[K\n" : "%s\n", line.c_str());
    }
    for (std::optional<page>& p : s.found)
        if (p)
            s.rep.pages.push_back(std::move(*p));
    co_return std::move(s.rep);
}

// One page on the crawl's one loop: wait for a permit (the guide's `async with sem`), fetch
// with a timeout, parse, queue the new links of the same host, each a page of its own.
inline corio::task<> visit(crawl_state& s, job j) {
    corio::semaphore_permit permit = co_await s.sem.scoped_acquire();
    if (s.rate)
        co_await s.rate->acquire();
    ++s.in_flight;
    fetch_result fetched;
    try {
        corio::task<fetch_result> get = fetch_page(s.cli, s.opt.request_timeout, std::move(j));
        fetched = co_await get;
    } catch (...) { // cancelled: fetch_page keeps every other failure in its result
        --s.in_flight;
        throw;
    }
    --s.in_flight;
    ++s.done;
    permit.release();
    for (job& next : record(s, std::move(fetched)))
        s.pages.spawn(visit(s, std::move(next)));
}

} // namespace detail

/// Crawls breadth-first from `start_url` within its host (the host it redirects to, if it
/// does), at most `opt.max_pages` pages, with
/// `opt.concurrency` requests in flight at once, sharing `cli`.
/// **Errors**: `std::invalid_argument` for a malformed start URL; failed pages are counted in
/// the report, not thrown.
inline corio::task<report> crawl(http::client& cli, std::string start_url, options opt) {
    detail::crawl_state s{cli, std::move(opt), http::url::parse(start_url)};
    const double cpu = cpu_seconds();
    std::optional<corio::join_handle<>> progress;
    detail::begin(s, progress);
    // Should the crawl be cancelled, the progress task must not outlive `s`: cancelled, it
    // wakes with cancelled_error from its sleep and ends without reading `s` again.
    const detail::cancel_on_exit stop_progress{progress};
    if (std::optional<detail::job> first = detail::enqueue(s, s.start))
        s.pages.spawn(detail::visit(s, std::move(*first)));
    co_await s.pages.join();
    co_return co_await detail::finish(s, progress, cpu);
}

// ---------------------------------------------------------------------------------------------
// The crawler on every loop of a runtime.
//
// The calling loop coordinates: it alone keeps the frontier, so the frontier needs no lock.
// Workers on every loop take pages from one channel, fetch and parse each with a client of
// their own loop, and send the result back on another channel; the coordinator records it and
// hands out the pages it queued, breadth-first. The rate limit is one rate_limiter on the
// coordinating loop, which grants each page as it is handed out; it is handed out only while
// fewer than `concurrency` pages are in flight, that is to a worker that is free, so its
// request starts at once.

namespace detail {

// A worker: fetches the pages it is handed until the channel of pages is closed.
inline corio::task<> fetch_pages(http::client& cli, std::size_t loop,
                                 std::chrono::milliseconds timeout, corio::channel<job>& jobs,
                                 corio::channel<fetch_result>& results) {
    for (;;) {
        std::optional<job> j;
        try {
            j = co_await jobs.receive();
        } catch (const corio::queue_closed&) {
            break;
        }
        corio::task<fetch_result> get = fetch_page(cli, timeout, std::move(*j));
        fetch_result r = co_await get;
        r.loop = loop;
        co_await results.send(std::move(r));
    }
}

// Loop `loop`'s share of the workers, `count` of them, sharing a client of this loop.
inline corio::task<> loop_workers(std::size_t loop, std::size_t count,
                                  std::chrono::milliseconds timeout, corio::channel<job>& jobs,
                                  corio::channel<fetch_result>& results) {
    http::client cli{http::client_options{.max_connections = count}};
    corio::task_group workers;
    for (std::size_t i = 0; i < count; ++i)
        workers.spawn(fetch_pages(cli, loop, timeout, jobs, results));
    co_await workers.join();
}

// The coordinator: hands out the queued pages, each granted by the rate limiter, while fewer
// than `concurrency` are in flight, and records the results, until no page is left. Each
// channel then holds at most `concurrency` items, so a send to either never waits.
inline corio::task<> coordinate(frontier& s, corio::channel<job>& jobs,
                                corio::channel<fetch_result>& results) {
    std::optional<corio::rate_limiter> rate;
    if (s.opt.rate)
        rate.emplace(s.opt.rate->requests, s.opt.rate->period);
    const auto concurrency = static_cast<std::size_t>(s.opt.concurrency);
    std::deque<job> queued;
    if (std::optional<job> first = enqueue(s, s.start))
        queued.push_back(std::move(*first));
    while (!queued.empty() || s.in_flight > 0) {
        while (!queued.empty() && s.in_flight < concurrency) {
            if (rate)
                co_await rate->acquire();
            co_await jobs.send(std::move(queued.front()));
            queued.pop_front();
            ++s.in_flight;
        }
        fetch_result r = co_await results.receive();
        --s.in_flight;
        ++s.done;
        ++s.rep.by_loop[r.loop];
        for (job& next : record(s, std::move(r)))
            queued.push_back(std::move(next));
    }
}

} // namespace detail

/// Crawls as `crawl` does, over every loop of `rt`: the calling loop keeps the frontier, and
/// `opt.concurrency` workers split among the loops (a loop gets none when there are more
/// loops than workers), each loop with a client of its own, fetch and parse the pages.
/// `opt.rate` holds for the whole crawl: one limiter on the calling loop grants every request.
/// The report tells how many pages each loop fetched or failed (`by_loop`).
/// **Errors**: as `crawl`.
inline corio::task<report> crawl_on(corio::runtime& rt, std::string start_url, options opt) {
    detail::frontier s{std::move(opt), http::url::parse(start_url)};
    s.rep.by_loop.assign(rt.size(), 0);
    const double cpu = cpu_seconds();
    const std::ptrdiff_t concurrency = s.opt.concurrency;
    corio::channel<detail::job> jobs{concurrency};
    corio::channel<detail::fetch_result> results{concurrency};
    std::vector<corio::join_handle<>> workers;
    for (std::size_t i = 0; i < rt.size(); ++i) {
        const auto total = static_cast<std::size_t>(concurrency);
        const std::size_t share = total / rt.size() + (i < total % rt.size() ? 1 : 0);
        if (share > 0)
            workers.push_back(corio::spawn_on(
                rt.loop(i), detail::loop_workers(i, share, s.opt.request_timeout, jobs, results)));
    }
    std::optional<corio::join_handle<>> progress;
    detail::begin(s, progress);
    const detail::cancel_on_exit stop_progress{progress};
    std::exception_ptr failure;
    try {
        corio::task<> coordinating = detail::coordinate(s, jobs, results);
        co_await coordinating;
    } catch (...) {
        failure = std::current_exception();
    }
    // The workers use the channels, which live in this frame: they must all have ended before
    // it goes. Idle, they end when the channel of pages closes; after a failure, at once.
    jobs.close();
    for (corio::join_handle<>& w : workers) {
        if (failure)
            w.cancel();
        try {
            co_await w;
        } catch (...) {
            if (!failure)
                failure = std::current_exception();
        }
    }
    if (failure)
        std::rethrow_exception(failure);
    co_return co_await detail::finish(s, progress, cpu);
}

/// `text` cut to at most `width` bytes at a UTF-8 character boundary, "..." marking the cut.
inline std::string clip(std::string_view text, std::size_t width) {
    if (text.size() <= width)
        return std::string(text);
    std::size_t end = width - 3;
    while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80)
        --end;
    return std::string(text.substr(0, end)) + "...";
}

/// The summary table, with the first `titles` titles.
inline void print_summary(const report& r, std::size_t titles = 5) {
    std::printf("\ncrawl of %s (at most %zu pages, %td at once", r.start.c_str(), r.max_pages,
                r.concurrency);
    if (r.by_loop.size() > 1)
        std::printf(", on %zu loops", r.by_loop.size());
    std::printf(")\n\n");
    std::printf("  %-22s %10zu\n", "pages queued", r.queued);
    std::size_t not_html = 0;
    for (const page& p : r.pages)
        not_html += p.html ? 0 : 1;
    std::printf("  %-22s %10zu", "pages fetched", r.fetched);
    if (not_html > 0)
        std::printf("   (%zu not HTML)", not_html);
    std::printf("\n  %-22s %10zu\n", "failed", r.failed());
    for (const auto& [kind, count] : r.failures) {
        const auto example = r.examples.find(kind);
        std::printf("    %-20s %10zu   %s\n", kind.c_str(), count,
                    example == r.examples.end() ? "" : clip(example->second, 160).c_str());
    }
    if (r.duplicates > 0)
        std::printf("  %-22s %10zu\n", "redirects to pages seen", r.duplicates);
    if (r.by_loop.size() > 1)
        for (std::size_t i = 0; i < r.by_loop.size(); ++i) {
            const std::string label = "handled by loop " + std::to_string(i);
            std::printf("  %-22s %10zu\n", label.c_str(), r.by_loop[i]);
        }
    std::printf("  %-22s %10zu   (%zu to other hosts, not followed)\n", "links found", r.links,
                r.off_host);
    std::printf("  %-22s %10.2f\n", "seconds", r.seconds);
    std::printf("  %-22s %10.1f\n", "pages/s", r.pages_per_second());
    std::printf("  %-22s %10.3f\n", "CPU seconds", r.cpu_seconds);
    if (titles == 0 || r.pages.empty())
        return;
    std::printf("\n  first titles:\n");
    for (std::size_t i = 0; i < r.pages.size() && i < titles; ++i) {
        const page& p = r.pages[i];
        const std::string title =
            p.html ? (p.title.empty() ? "(no title)" : p.title) : "(not HTML)";
        std::printf("    %-40s %s\n", clip(p.url, 40).c_str(), clip(title, 60).c_str());
    }
}

} // namespace crawl

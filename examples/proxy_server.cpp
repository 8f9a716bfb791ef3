// The guide's FastAPI proxy: GET /proxy?url=... fetches the URL with one shared
// corio::http::client (its keep-alive pool serves every request, unlike a client per request)
// and answers with the upstream status and body. A timeout and a concurrency cap protect it;
// failures answer JSON errors ({"error": "..."}). Stops gracefully on SIGINT/SIGTERM.
//
// It is not an open proxy: it fetches only what the allow-list names, and nothing by default.
// Every hop is checked, so an allowed host cannot redirect it elsewhere, and every address is
// checked just before it is connected to, so a name cannot resolve it into the private network.
//   403  the requested URL is not on the allow-list
//   502  the upstream redirected to a URL not on the allow-list (the error names that URL; it
//        is not connected to), its name resolved only to private addresses that the list does
//        not name (the error names each address), or it failed
//   504  the upstream did not answer in time
//
// Usage: proxy_server [--port N] [--allow HOST[:PORT]]...   (default port 8081, 0: any free)
//   --allow example.com        that host on any port, while it resolves to public addresses
//   --allow 127.0.0.1:8080     a private address (loopback, RFC 1918, link-local, ...) is
//   --allow [::1]:8080         fetched only when named itself, with or without a port
//   proxy_server --allow 127.0.0.1:8080
//   curl 'http://127.0.0.1:8081/proxy?url=http://127.0.0.1:8080/hello'
#include <corio/corio.hpp>
#include <corio/http/client.hpp>
#include <corio/http/server.hpp>

#include <pthread.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace http = corio::http;
using namespace std::chrono_literals;

namespace {

// A JSON string literal for `text` (quotes, backslashes and control characters escaped).
std::string json_string(std::string_view text) {
    std::string out = "\"";
    for (const char c : text) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (static_cast<unsigned char>(c) < 0x20) {
            char esc[8];
            std::snprintf(esc, sizeof esc, "\\u%04x", c);
            out += esc;
        } else {
            out += c;
        }
    }
    return out + "\"";
}

http::response json_error(int status, std::string_view message) {
    return http::response::json(status, "{\"error\": " + json_string(message) + "}");
}

// Where the proxy may go: entries "host" (any port) or "host:port" ("[v6]:port" for IPv6).
// A name is fetched only while it resolves to public addresses; a private address (loopback,
// RFC 1918, link-local, ...) only when the list names that address itself, as 127.0.0.1:8080.
class allow_list {
public:
    /// Adds "host" or "host:port"; throws std::invalid_argument naming a malformed entry.
    void add(std::string_view entry) {
        std::string_view host = entry;
        std::string_view port;
        if (entry.starts_with('[')) { // "[::1]" or "[::1]:8080"
            const std::size_t close = entry.find(']');
            if (close == std::string_view::npos)
                throw std::invalid_argument("--allow '" + std::string(entry) + "': no ']'");
            host = entry.substr(1, close - 1);
            port = entry.substr(close + 1);
            if (!port.empty() && !port.starts_with(':'))
                throw std::invalid_argument("--allow '" + std::string(entry) + "': text after ']'");
            port = port.empty() ? port : port.substr(1);
        } else if (const std::size_t colon = entry.find(':');
                   colon != std::string_view::npos && entry.find(':', colon + 1) == entry.npos) {
            host = entry.substr(0, colon); // one colon: host:port; more: a bare IPv6 address
            port = entry.substr(colon + 1);
        }
        unsigned number = 0; // 0: any port
        if (!port.empty()) {
            const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), number);
            if (ec != std::errc{} || end != port.data() + port.size() || number == 0 ||
                number > 65535)
                throw std::invalid_argument("--allow '" + std::string(entry) + "': bad port");
        }
        if (host.empty())
            throw std::invalid_argument("--allow '" + std::string(entry) + "': no host");
        entries_.push_back({canonical(host), static_cast<std::uint16_t>(number)});
    }

    [[nodiscard]] bool empty() const noexcept { return entries_.empty(); }

    /// Whether a URL (the requested one, or any redirect's) may be fetched.
    [[nodiscard]] bool allows(const http::url& u) const {
        const std::string host = canonical(u.host);
        return std::ranges::any_of(entries_, [&](const entry& e) {
            return e.host == host && (e.port == 0 || e.port == u.port);
        });
    }

    /// The client's connect_filter: refuses private addresses unless this list names them.
    [[nodiscard]] std::optional<std::string> check(const corio::net::address& a) const {
        const std::string ip = a.ip_string();
        const bool named = std::ranges::any_of(entries_, [&](const entry& e) {
            return e.host == ip && (e.port == 0 || e.port == a.port());
        });
        if (named)
            return std::nullopt;
        return http::deny_private_addresses(a);
    }

private:
    struct entry {
        std::string host; // a lowercase name, or an IP as ip_string() writes it
        std::uint16_t port = 0;
    };

    // "LOCALHOST" -> "localhost", "0:0::1" -> "::1": one spelling per host.
    static std::string canonical(std::string_view host) {
        if (const auto a = corio::net::address::from_ip(host, 0))
            return a->ip_string();
        std::string name(host);
        for (char& c : name)
            c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        return name;
    }

    std::vector<entry> entries_;
};

class proxy {
public:
    explicit proxy(allow_list allowed)
        : allowed_(std::move(allowed)),
          client_(http::client_options{
              .max_connections = 100,
              .read_timeout = 10s,
              // Every hop is checked, not only the requested URL: a refused redirect is
              // returned as the 3xx it is, and nothing is connected for it.
              .redirect_filter = [this](const http::url& next) { return allowed_.allows(next); },
              // Checked on each address a name resolved to, just before connecting to it.
              .connect_filter = [this](const corio::net::address& a) { return allowed_.check(a); },
          }) {}
    proxy(const proxy&) = delete; // the filters point at this object
    proxy& operator=(const proxy&) = delete;

    corio::task<http::response> handle(http::request& req) {
        const std::optional<std::string_view> target = req.query("url");
        if (!target)
            co_return json_error(400, "missing the url query parameter");
        http::url u;
        try {
            u = http::url::parse(*target);
        } catch (const std::invalid_argument& e) {
            co_return json_error(400, e.what());
        }
        if (!allowed_.allows(u))
            co_return json_error(403, "'" + u.to_string() + "' is not on the allow-list");
        corio::semaphore_permit slot = co_await in_flight_.scoped_acquire();
        std::optional<http::response> upstream;
        std::string failure;
        int status = 502;
        try {
            upstream = co_await corio::timeout(15s, client_.get(std::string(*target)));
        } catch (const http::timeout_error& e) { // the client's own (also a corio one)
            failure = e.what();
            status = 504;
        } catch (const corio::timeout_error&) {
            failure = "the upstream did not answer within 15 s";
            status = 504;
        } catch (const http::error& e) {
            failure = e.what(); // connect_error names each address connect_filter refused
        }
        if (!upstream)
            co_return json_error(status, failure);
        if (const std::optional<std::string> refused = refused_redirect(*upstream))
            co_return json_error(502, "'" + upstream->url() + "' redirected to '" + *refused +
                                          "', which is not on the allow-list");
        http::response out(upstream->status());
        if (const auto type = upstream->header("content-type"))
            out.set_header("Content-Type", *type);
        out.set_body(std::move(*upstream).body());
        co_return out;
    }

private:
    // The next URL of a redirect that redirect_filter stopped (the client follows every other).
    std::optional<std::string> refused_redirect(const http::response& r) const {
        const int s = r.status();
        const std::optional<std::string_view> location = r.header("location");
        if ((s != 301 && s != 302 && s != 303 && s != 307 && s != 308) || !location)
            return std::nullopt;
        const http::url next = http::url::parse(r.url()).resolve(*location);
        if (allowed_.allows(next))
            return std::nullopt;
        return next.to_string();
    }

    allow_list allowed_;
    http::client client_;
    corio::semaphore in_flight_{50};
};

proxy* the_proxy = nullptr;
corio::task<http::response> handle(http::request& req) { return the_proxy->handle(req); }

corio::task<> run(http::server& srv, std::uint16_t port) {
    corio::net::tcp_listener listener =
        corio::net::tcp_listener::bind(corio::net::address::ipv4_loopback(port));
    std::printf("proxy on http://%s/proxy?url=... (Ctrl-C stops it)\n",
                listener.local_address().to_string().c_str());
    std::fflush(stdout);
    co_await srv.serve(std::move(listener));
}

} // namespace

int main(int argc, char** argv) {
    std::uint16_t port = 8081;
    allow_list allowed; // empty: every URL is refused
    for (int i = 1; i < argc; ++i) {
        try {
            if (std::strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
                port = static_cast<std::uint16_t>(std::stoi(argv[++i]));
                continue;
            }
            if (std::strcmp(argv[i], "--allow") == 0 && i + 1 < argc) {
                allowed.add(argv[++i]);
                continue;
            }
        } catch (const std::exception& e) {
            std::fprintf(stderr, "proxy_server: %s\n", e.what());
            return 2;
        }
        std::fprintf(stderr, "usage: proxy_server [--port N] [--allow HOST[:PORT]]...\n");
        return 2;
    }
    if (allowed.empty())
        std::printf("no --allow given: every URL will be refused\n");
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

    corio::event_loop loop;
    proxy p{std::move(allowed)};
    the_proxy = &p;
    http::router r;
    r.get("/proxy", handle);
    http::server srv{r};
    std::thread signals([&loop, &srv, &stop_signals] {
        int sig = 0;
        sigwait(&stop_signals, &sig);
        loop.post([&srv] { srv.stop(5s); });
    });
    int status = 0;
    try {
        loop.run(run(srv, port));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "proxy_server: %s\n", e.what());
        status = 1;
    }
    pthread_kill(signals.native_handle(), SIGTERM);
    signals.join();
    return status;
}

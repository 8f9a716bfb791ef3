// SPDX-License-Identifier: MIT
//
// libcurl's multi interface for the client benchmarks of issue 6 (bench/client.sh), written
// against its C API: `concurrency` easy handles created once and reused, each removed from the
// multi handle when its transfer is done and added back for the next request, so its
// connection comes from the multi handle's keep-alive cache; CURLMOPT_MAX_TOTAL_CONNECTIONS =
// concurrency; a `curl_multi_perform` + `curl_multi_poll` loop on one thread.
//
//     client_curl [--url http://127.0.0.1:8080/hello] [--requests 20000] [--concurrency 100]
//
// Prints one JSON line like client_corio's (requests, ok, wall and CPU time of the request
// phase, peak RSS). Exit status 1 when any request failed or did not answer 200.

#include <curl/curl.h>

#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace {

double cpu_seconds() {
    rusage u{};
    ::getrusage(RUSAGE_SELF, &u);
    const auto tv = [](const timeval& t) {
        return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
    };
    return tv(u.ru_utime) + tv(u.ru_stime);
}

/// The process's peak RSS, VmHWM of /proc/self/status, in KiB (ru_maxrss would not do: Linux
/// carries it over an exec, so a client started by a large parent would report the parent's).
long peak_rss_kib() {
    std::FILE* f = std::fopen("/proc/self/status", "r");
    if (f == nullptr)
        return -1;
    char line[256];
    long kib = -1;
    while (std::fgets(line, sizeof line, f) != nullptr)
        if (std::strncmp(line, "VmHWM:", 6) == 0)
            kib = std::strtol(line + 6, nullptr, 10);
    std::fclose(f);
    return kib;
}

struct transfer {
    CURL* easy = nullptr;
    std::string body;
};

std::size_t on_data(char* data, std::size_t size, std::size_t n, void* user) {
    static_cast<transfer*>(user)->body.append(data, size * n);
    return size * n;
}

bool check(CURLMcode rc, const char* what) {
    if (rc == CURLM_OK)
        return true;
    std::fprintf(stderr, "client_curl: %s: %s\n", what, curl_multi_strerror(rc));
    return false;
}

} // namespace

int main(int argc, char** argv) {
    std::string url = "http://127.0.0.1:8080/hello";
    long requests = 20000;
    long concurrency = 100;
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        if (a == "--url" && i + 1 < argc) {
            url = argv[++i];
        } else if (a == "--requests" && i + 1 < argc) {
            requests = std::stol(argv[++i]);
        } else if (a == "--concurrency" && i + 1 < argc) {
            concurrency = std::stol(argv[++i]);
        } else {
            std::fprintf(stderr,
                         "usage: client_curl [--url URL] [--requests N] [--concurrency C]\n");
            return 2;
        }
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        std::fprintf(stderr, "client_curl: curl_global_init failed\n");
        return 1;
    }
    CURLM* multi = curl_multi_init();
    curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, concurrency);
    curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, concurrency); // the keep-alive cache
    std::vector<transfer> transfers(static_cast<std::size_t>(concurrency));
    for (transfer& t : transfers) {
        t.easy = curl_easy_init();
        curl_easy_setopt(t.easy, CURLOPT_URL, url.c_str());
        curl_easy_setopt(t.easy, CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(t.easy, CURLOPT_WRITEDATA, &t);
        curl_easy_setopt(t.easy, CURLOPT_PRIVATE, &t);
        curl_easy_setopt(t.easy, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(t.easy, CURLOPT_TCP_NODELAY, 1L);
    }

    long started = 0;
    long ok = 0;
    long bad = 0;
    bool failed = false;
    const double cpu0 = cpu_seconds();
    const auto t0 = std::chrono::steady_clock::now();
    for (transfer& t : transfers) {
        if (started == requests)
            break;
        ++started;
        failed = failed || !check(curl_multi_add_handle(multi, t.easy), "add");
    }
    int running = 1;
    while (!failed && (running > 0 || ok + bad < started)) {
        failed = !check(curl_multi_perform(multi, &running), "perform");
        int left = 0;
        while (CURLMsg* m = curl_multi_info_read(multi, &left)) {
            if (m->msg != CURLMSG_DONE)
                continue;
            transfer* t = nullptr;
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, reinterpret_cast<char**>(&t));
            long status = 0;
            curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &status);
            if (m->data.result == CURLE_OK && status == 200 && t->body == "Hello, World!")
                ++ok;
            else
                ++bad;
            t->body.clear();
            curl_multi_remove_handle(multi, m->easy_handle);
            if (started < requests) {
                ++started;
                failed = failed || !check(curl_multi_add_handle(multi, m->easy_handle), "add");
                running = 1; // a new transfer: perform again before polling
            }
        }
        if (running > 0 && !failed)
            failed = !check(curl_multi_poll(multi, nullptr, 0, 1000, nullptr), "poll");
    }
    const double wall =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double cpu = cpu_seconds() - cpu0;

    std::printf("{\"client\": \"curl\", \"requests\": %ld, \"ok\": %ld, \"bad\": %ld, "
                "\"concurrency\": %ld, \"wall_s\": %.6f, \"cpu_s\": %.6f, "
                "\"peak_rss_kib\": %ld, \"curl\": \"%s\"}\n",
                requests, ok, bad, concurrency, wall, cpu, peak_rss_kib(), curl_version());
    for (transfer& t : transfers)
        curl_easy_cleanup(t.easy);
    curl_multi_cleanup(multi);
    curl_global_cleanup();
    return ok == requests ? 0 : 1;
}

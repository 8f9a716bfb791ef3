// SPDX-License-Identifier: MIT
#pragma once

#if defined(CORIO_HAVE_ZLIB)
#include <zlib.h>
#endif

#include <array>
#include <stdexcept>
#include <string>
#include <string_view>

namespace corio::http::detail {

/// Decodes a gzip or deflate body as it arrives.
class inflater {
public:
#if defined(CORIO_HAVE_ZLIB)
    explicit inflater(bool gzip) {
        // 32 + 15: gzip or zlib header detected; -15: raw deflate (for servers that send it).
        if (inflateInit2(&z_, gzip ? 32 + 15 : 15) != Z_OK)
            throw std::runtime_error("cannot start zlib");
        raw_fallback_ = !gzip;
    }
    inflater(const inflater&) = delete;
    inflater& operator=(const inflater&) = delete;
    ~inflater() { inflateEnd(&z_); }

    /// Appends the decoded bytes of `in` to `out`; false when the data is corrupt.
    bool feed(std::string_view in, std::string& out) {
        z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
        z_.avail_in = static_cast<uInt>(in.size());
        while (z_.avail_in > 0 && !done_) {
            std::array<char, 16384> buf;
            z_.next_out = reinterpret_cast<Bytef*>(buf.data());
            z_.avail_out = buf.size();
            const int rc = inflate(&z_, Z_NO_FLUSH);
            if (rc == Z_DATA_ERROR && raw_fallback_ && z_.total_out == 0) {
                // "deflate" is often sent without its zlib header.
                inflateEnd(&z_);
                z_ = {};
                if (inflateInit2(&z_, -15) != Z_OK)
                    return false;
                raw_fallback_ = false;
                z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
                z_.avail_in = static_cast<uInt>(in.size());
                continue;
            }
            if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR)
                return false;
            out.append(buf.data(), buf.size() - z_.avail_out);
            if (rc == Z_STREAM_END)
                done_ = true;
            if (rc == Z_BUF_ERROR)
                break;
        }
        return true;
    }
    [[nodiscard]] bool done() const noexcept { return done_; }

private:
    z_stream z_{};
    bool raw_fallback_ = false;
    bool done_ = false;
#else
    explicit inflater(bool) { throw std::logic_error("corio was built without zlib"); }
    bool feed(std::string_view, std::string&) { return false; }
    [[nodiscard]] bool done() const noexcept { return true; }
#endif
};

inline constexpr bool have_zlib =
#if defined(CORIO_HAVE_ZLIB)
    true;
#else
    false;
#endif

} // namespace corio::http::detail

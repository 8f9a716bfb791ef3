// SPDX-License-Identifier: MIT
#pragma once

#include <exception>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <variant>

namespace corio {

/// The result of one child of `gather_settled`: a value or the exception it ended with
/// (asyncio's `gather(..., return_exceptions=True)` entries).
template <class T>
class outcome {
public:
    outcome() = default;

    [[nodiscard]] bool has_value() const noexcept { return value_.has_value(); }
    [[nodiscard]] bool has_error() const noexcept { return static_cast<bool>(error_); }

    /// The value; rethrows the stored exception when there is one.
    /// **Errors**: `std::logic_error` when it holds neither (the child never finished).
    T& value() & {
        check();
        return *value_;
    }
    const T& value() const& {
        check();
        return *value_;
    }
    T&& value() && {
        check();
        return std::move(*value_);
    }
    /// The stored exception, or null.
    [[nodiscard]] std::exception_ptr error() const noexcept { return error_; }

    template <class... Args>
    void emplace(Args&&... args) {
        value_.emplace(std::forward<Args>(args)...);
    }
    void set_error(std::exception_ptr e) noexcept { error_ = std::move(e); }

private:
    void check() const {
        if (error_)
            std::rethrow_exception(error_);
        if (!value_)
            throw std::logic_error("corio::outcome: holds neither a value nor an error");
    }

    std::optional<T> value_;
    std::exception_ptr error_;
};

/// `outcome<void>`: success or the exception.
template <>
class outcome<void> {
public:
    outcome() = default;

    [[nodiscard]] bool has_value() const noexcept { return done_ && !error_; }
    [[nodiscard]] bool has_error() const noexcept { return static_cast<bool>(error_); }
    /// Rethrows the stored exception; returns when the child succeeded.
    void value() const {
        if (error_)
            std::rethrow_exception(error_);
        if (!done_)
            throw std::logic_error("corio::outcome: holds neither a value nor an error");
    }
    [[nodiscard]] std::exception_ptr error() const noexcept { return error_; }

    void emplace() noexcept { done_ = true; }
    void set_error(std::exception_ptr e) noexcept {
        error_ = std::move(e);
        done_ = true;
    }

private:
    std::exception_ptr error_;
    bool done_ = false;
};

} // namespace corio

// SPDX-License-Identifier: MIT
#pragma once

#include <corio/pg/error.hpp>
#include <corio/pg/types.hpp>

#include <libpq-fe.h>

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace corio::pg {

namespace detail {
struct result_deleter {
    void operator()(PGresult* r) const noexcept { PQclear(r); }
};
using result_ptr = std::unique_ptr<PGresult, result_deleter>;
} // namespace detail

/// One row of a `result` (asyncpg's `Record`): a view, valid while its result lives.
/// Columns are numbered from 0 or named as the query named them (exact match).
class row {
public:
    row(const PGresult* result, int index) noexcept : result_(result), index_(index) {}

    /// The number of columns.
    [[nodiscard]] std::size_t size() const noexcept {
        return static_cast<std::size_t>(PQnfields(result_));
    }

    /// The value of column `column` as `T`; `std::optional<T>` reads NULL as std::nullopt.
    /// **Errors**: `pg::error` of kind `type` naming the column and its type when the column's
    /// type does not convert to `T`, the value does not fit, or it is NULL and `T` is not an
    /// optional; of kind `usage` for a column out of range.
    template <class T>
    [[nodiscard]] T get(int column) const {
        check_column(column);
        const value_origin at{PQfname(result_, column), column, PQftype(result_, column)};
        if constexpr (detail::is_optional<T>::value) {
            if (PQgetisnull(result_, index_, column) != 0)
                return std::nullopt;
            return decode<typename T::value_type>(column, at);
        } else {
            if (PQgetisnull(result_, index_, column) != 0)
                detail::mismatch(at, "a value", "it is NULL (read it as a std::optional)");
            return decode<T>(column, at);
        }
    }
    /// The value of the column named `name`.
    /// **Errors**: those of `get(int)`; `pg::error` of kind `usage` when no column has that name.
    template <class T>
    [[nodiscard]] T get(std::string_view name) const {
        return get<T>(column_index(name));
    }

    /// True when column `column` is NULL.
    [[nodiscard]] bool is_null(int column) const {
        check_column(column);
        return PQgetisnull(result_, index_, column) != 0;
    }

    /// The column's value as the server sent it (text format), "" for NULL.
    [[nodiscard]] std::string_view text(int column) const {
        check_column(column);
        return {PQgetvalue(result_, index_, column),
                static_cast<std::size_t>(PQgetlength(result_, index_, column))};
    }

    /// The number of the column named `name`.
    /// **Errors**: `pg::error` of kind `usage` naming it when there is none.
    [[nodiscard]] int column_index(std::string_view name) const {
        const int n = PQnfields(result_);
        for (int i = 0; i < n; ++i)
            if (name == PQfname(result_, i))
                return i;
        throw error(error_kind::usage, "corio::pg::row::get: no column named \"" +
                                           std::string(name) + "\" in the result");
    }

private:
    template <class T>
    T decode(int column, const value_origin& at) const {
        static_assert(decodable<T>, "corio::pg::row::get<T>: no decoder<T> for this type");
        return decoder<T>::decode(text(column), at);
    }

    void check_column(int column) const {
        if (column < 0 || column >= PQnfields(result_))
            throw error(error_kind::usage, "corio::pg::row::get: column " + std::to_string(column) +
                                               " out of range (" +
                                               std::to_string(PQnfields(result_)) + " columns)");
    }

    const PGresult* result_;
    int index_;
};

/// The rows a statement returned (asyncpg's list of `Record`s), or what it did ("INSERT 0 1"):
/// owns libpq's `PGresult`. Move-only.
class result {
public:
    result() = default;
    explicit result(detail::result_ptr r) noexcept : result_(std::move(r)) {}

    /// The number of rows.
    [[nodiscard]] std::size_t size() const noexcept {
        return result_ ? static_cast<std::size_t>(PQntuples(result_.get())) : 0;
    }
    [[nodiscard]] bool empty() const noexcept { return size() == 0; }
    /// The number of columns.
    [[nodiscard]] std::size_t columns() const noexcept {
        return result_ ? static_cast<std::size_t>(PQnfields(result_.get())) : 0;
    }
    /// Column `i`'s name.
    [[nodiscard]] std::string_view column_name(int i) const {
        const char* name = result_ ? PQfname(result_.get(), i) : nullptr;
        if (name == nullptr)
            throw error(error_kind::usage, "corio::pg::result::column_name: column " +
                                               std::to_string(i) + " out of range");
        return name;
    }
    /// The rows an INSERT, UPDATE, DELETE, MERGE, SELECT, MOVE, FETCH or COPY touched.
    [[nodiscard]] std::uint64_t rows_affected() const noexcept {
        if (!result_)
            return 0;
        const std::string_view n = PQcmdTuples(result_.get());
        std::uint64_t v = 0;
        (void)std::from_chars(n.data(), n.data() + n.size(), v);
        return v;
    }
    /// The command tag: "SELECT 3", "INSERT 0 1", "BEGIN".
    [[nodiscard]] std::string_view command() const noexcept {
        return result_ ? PQcmdStatus(result_.get()) : "";
    }

    /// Row `i` (unchecked, like a vector's `operator[]`).
    [[nodiscard]] row operator[](std::size_t i) const noexcept {
        return {result_.get(), static_cast<int>(i)};
    }
    /// Row `i`. **Errors**: `std::out_of_range` naming i and the size.
    [[nodiscard]] row at(std::size_t i) const {
        if (i >= size())
            throw std::out_of_range("corio::pg::result::at: row " + std::to_string(i) + " of " +
                                    std::to_string(size()));
        return (*this)[i];
    }

    class iterator {
    public:
        using iterator_category = std::random_access_iterator_tag;
        using value_type = row;
        using difference_type = std::ptrdiff_t;
        using pointer = void;
        using reference = row;

        iterator() = default;
        iterator(const PGresult* r, int i) noexcept : result_(r), index_(i) {}
        row operator*() const noexcept { return {result_, index_}; }
        iterator& operator++() noexcept {
            ++index_;
            return *this;
        }
        iterator operator++(int) noexcept {
            iterator before = *this;
            ++index_;
            return before;
        }
        difference_type operator-(const iterator& other) const noexcept {
            return index_ - other.index_;
        }
        bool operator==(const iterator& other) const noexcept { return index_ == other.index_; }

    private:
        const PGresult* result_ = nullptr;
        int index_ = 0;
    };
    [[nodiscard]] iterator begin() const noexcept { return {result_.get(), 0}; }
    [[nodiscard]] iterator end() const noexcept {
        return {result_.get(), static_cast<int>(size())};
    }

    /// libpq's result, for what this class does not wrap.
    [[nodiscard]] const PGresult* native() const noexcept { return result_.get(); }

private:
    detail::result_ptr result_;
};

} // namespace corio::pg

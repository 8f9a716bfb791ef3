// SPDX-License-Identifier: MIT
#include "../support/corio_test.hpp"

#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>

using corio::outcome;

namespace {

std::exception_ptr make_error(const char* what) {
    return std::make_exception_ptr(std::runtime_error(what));
}

std::string message_of(const std::exception_ptr& e) {
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& ex) {
        return ex.what();
    }
}

} // namespace

TEST_CASE("outcome: an empty outcome holds neither, and value() is a logic_error", "[outcome]") {
    outcome<int> o;
    CHECK_FALSE(o.has_value());
    CHECK_FALSE(o.has_error());
    CHECK_FALSE(o.error());
    CHECK_THROWS_AS(o.value(), std::logic_error);
    CHECK_THROWS_AS(std::move(o).value(), std::logic_error);
}

TEST_CASE("outcome: a value is has_value, value() returns it, error() is null", "[outcome]") {
    outcome<std::string> o;
    o.emplace("hello");
    CHECK(o.has_value());
    CHECK_FALSE(o.has_error());
    CHECK_FALSE(o.error());
    CHECK(o.value() == "hello");
    o.value() += " world"; // an lvalue outcome hands out a reference
    CHECK(o.value() == "hello world");
}

TEST_CASE("outcome: an error is has_error, value() rethrows it, error() returns it", "[outcome]") {
    outcome<int> o;
    o.set_error(make_error("boom"));
    CHECK_FALSE(o.has_value());
    CHECK(o.has_error());
    REQUIRE(o.error());
    CHECK(message_of(o.error()) == "boom");
    CHECK_THROWS_WITH(o.value(), "boom");
    CHECK_THROWS_AS(std::move(o).value(), std::runtime_error);
    CHECK(o.has_error()); // rethrowing does not consume it
}

TEST_CASE("outcome: value() of an rvalue moves a move-only value out", "[outcome]") {
    outcome<std::unique_ptr<int>> o;
    o.emplace(std::make_unique<int>(42));
    std::unique_ptr<int> p = std::move(o).value();
    REQUIRE(p);
    CHECK(*p == 42);
}

TEST_CASE("outcome: a value type without a default constructor", "[outcome]") {
    struct no_default {
        explicit no_default(int v) : value(v) {}
        int value;
    };
    outcome<no_default> o;
    CHECK_FALSE(o.has_value());
    o.emplace(7);
    CHECK(o.value().value == 7);
}

TEST_CASE("outcome: outcome<void> success, error and empty", "[outcome]") {
    outcome<void> empty;
    CHECK_FALSE(empty.has_value());
    CHECK_FALSE(empty.has_error());
    CHECK_FALSE(empty.error());
    CHECK_THROWS_AS(empty.value(), std::logic_error);

    outcome<void> ok;
    ok.emplace();
    CHECK(ok.has_value());
    CHECK_FALSE(ok.has_error());
    CHECK_FALSE(ok.error());
    CHECK_NOTHROW(ok.value());

    outcome<void> failed;
    failed.set_error(make_error("void boom"));
    CHECK_FALSE(failed.has_value());
    CHECK(failed.has_error());
    REQUIRE(failed.error());
    CHECK(message_of(failed.error()) == "void boom");
    CHECK_THROWS_WITH(failed.value(), "void boom");
}

TEST_CASE("outcome: a stored cancelled_error is rethrown as cancelled_error", "[outcome]") {
    outcome<int> o;
    o.set_error(std::make_exception_ptr(corio::cancelled_error{}));
    CHECK(o.has_error());
    CHECK_THROWS_AS(o.value(), corio::cancelled_error);
    outcome<void> v;
    v.set_error(std::make_exception_ptr(corio::cancelled_error{}));
    CHECK_THROWS_AS(v.value(), corio::cancelled_error);
}

TEST_CASE("outcome: value() can be read through a const outcome", "[outcome]") {
    outcome<int> o;
    o.emplace(3);
    const outcome<int>& view = o; // a `const auto&` loop over gather_settled's results
    CHECK(view.value() == 3);
    outcome<int> failed;
    failed.set_error(make_error("const boom"));
    const outcome<int>& failed_view = failed;
    CHECK_THROWS_WITH(failed_view.value(), "const boom");
    const outcome<void> done = [] {
        outcome<void> v;
        v.emplace();
        return v;
    }();
    CHECK_NOTHROW(done.value());
}

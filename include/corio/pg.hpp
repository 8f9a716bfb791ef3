// SPDX-License-Identifier: MIT
// corio::pg: PostgreSQL on the loop (asyncpg's counterpart), on libpq. Link the corio::pg
// target (it brings libpq).
#pragma once

#include <corio/pg/connection.hpp>
#include <corio/pg/error.hpp>
#include <corio/pg/pool.hpp>
#include <corio/pg/result.hpp>
#include <corio/pg/types.hpp>

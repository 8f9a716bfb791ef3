# SPDX-License-Identifier: MIT
"""aiohttp on uvloop for the HTTP benchmarks (issue 5): GET /hello answering "Hello, World!" as
text/plain, one process, access log off.

    python3 bench/http_aiohttp.py --port 8080
"""
import argparse

import uvloop
from aiohttp import web


async def hello(request: web.Request) -> web.Response:
    return web.Response(text="Hello, World!")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    uvloop.install()
    app = web.Application()
    app.router.add_get("/hello", hello)
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None)

# SPDX-License-Identifier: MIT
"""uvicorn + FastAPI for the HTTP benchmarks (issue 5): GET /hello answering "Hello, World!" as
text/plain, on uvloop with httptools' parser (uvicorn's fastest set-up), one process, access log
off.

    python3 bench/http_fastapi.py --port 8080
"""
import argparse

import uvicorn
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse

app = FastAPI()


@app.get("/hello", response_class=PlainTextResponse)
async def hello() -> str:
    return "Hello, World!"


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    uvicorn.run(app, host="127.0.0.1", port=args.port, loop="uvloop", http="httptools",
                access_log=False, log_level="warning", server_header=True, date_header=True)

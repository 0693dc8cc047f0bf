"""Connection throughput: 3,000 pipelined request() calls against a plain websocket-client loop.

    python benchmarks/bench_connection.py [--runs 21] [--requests 3000]

The reference sends the same 3,000 messages on its own websocket-client connection (with
``skip_utf8_validation``, its fastest setting), then reads the 3,000 replies. Both talk to the
sample server in another process; runs alternate in this process; the median of the per-run
ratios is printed. Goal: at most 1.5.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import websocket

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import alternate, describe, server_process  # noqa: E402

from inspector import Connection  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args()
    params = [{"id": f"gen-1x1-r{i}"} for i in range(args.requests)]

    with server_process() as url:
        conn = Connection(url, max_in_flight=None)
        plain = websocket.create_connection(url, skip_utf8_validation=True)
        counter = iter(range(1, 1 << 62))

        def ours() -> None:
            futures = [conn.request("GetDocument", p) for p in params]
            for future in futures:
                future.result()

        def reference() -> None:
            for p in params:
                plain.send(json.dumps({"id": next(counter), "method": "GetDocument", "params": p}))
            for _ in params:
                json.loads(plain.recv())

        ratio, mine, theirs = alternate(ours, reference, args.runs)
        print(describe(f"{args.requests} pipelined requests", ratio, mine, theirs))
        plain.close()
        conn.close()


if __name__ == "__main__":
    main()

"""The sample server killed under ``inspect --from-file`` of 60 documents.

    python benchmarks/outage.py

Starts ``document-inspector serve`` with 2 s of latency (so every document is waiting when it
dies), runs ``document-inspector inspect --from-file`` on 60 generated documents against it,
kills the server with SIGKILL 1.5 s in, and prints the command's exit status, its stderr, and
how long after the kill it exited. The reopening budget with the defaults is 5 attempts with
waits of at most 0.05 + 0.1 + 0.2 + 0.4 = 0.75 s between them, each attempt refused at once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time


def main() -> None:
    command = [sys.executable, "-m", "inspector"]
    with tempfile.TemporaryDirectory() as directory:
        ids = os.path.join(directory, "ids.txt")
        with open(ids, "w") as file:
            file.write("".join(f"gen-2x2-n{n}\n" for n in range(1, 61)))
        server = subprocess.Popen([*command, "serve", "--port", "0", "--latency", "2"],
                                  stdout=subprocess.PIPE, text=True)
        assert server.stdout is not None
        url = server.stdout.readline().split()[-1]
        client = subprocess.Popen([*command, "inspect", "--from-file", ids, "--url", url],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        time.sleep(1.5)  # a benchmark's own pacing: the documents are in flight by then
        server.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        server.wait()
        _, errors = client.communicate(timeout=60)
        exited = time.monotonic() - killed
    lines = errors.strip().splitlines()
    print(f"exit status: {client.returncode}")
    print(f"stderr lines: {len(lines)}")
    for line in lines:
        print(line)
    print(f"exited {exited:.2f} s after the kill (budget: 5 attempts, at most 0.75 s of waits)")


if __name__ == "__main__":
    main()

"""A real PostgreSQL server for the tests, started from the machine's binaries.

``initdb`` and ``pg_ctl`` are looked for on PATH, then where Debian's ``postgresql`` package puts
them (``/usr/lib/postgresql/<version>/bin``; ``.ci/run`` installs it when they are missing).
PostgreSQL refuses to run as root, so under root the server runs as the ``postgres`` user
(``runuser``). The cluster lives in a temporary directory, trusts local connections, and is
stopped and removed at the end of the session.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from typing import List, Optional

import attrs


@attrs.define
class PostgreSQLServer:
    """A running cluster: ``url(database)`` gives a SQLAlchemy URL for one of its databases."""

    port: int
    directory: str
    bin_dir: str
    as_user: List[str]

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://inventory@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        _run(self.as_user + [os.path.join(self.bin_dir, "pg_ctl"), "-D", self.data, "-m",
                             "immediate", "-w", "stop"])
        shutil.rmtree(self.directory, ignore_errors=True)

    @property
    def data(self) -> str:
        return os.path.join(self.directory, "data")


def find_bin_dir() -> Optional[str]:
    """The directory holding initdb and pg_ctl, or None."""
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return os.path.dirname(os.path.realpath(on_path))
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.path.exists(os.path.join(candidate, "pg_ctl")):
            return candidate
    return None


def start(timeout: float) -> PostgreSQLServer:
    """Create a cluster in a new temporary directory and start it on a free port."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise RuntimeError("PostgreSQL's pg_ctl and initdb are not installed (Debian: apt-get "
                           "install postgresql); the inventory's tests need them")
    directory = tempfile.mkdtemp(prefix="inventory-pg-")
    as_user: List[str] = []
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = PostgreSQLServer(port, directory, bin_dir, as_user)
    _run(as_user + [os.path.join(bin_dir, "initdb"), "-D", server.data, "-U", "inventory",
                    "-A", "trust", "-E", "UTF8", "--no-sync"], timeout)
    options = (f"-F -p {port} -c listen_addresses=127.0.0.1 -k {directory} "
               f"-c max_connections=100")
    _run(as_user + [os.path.join(bin_dir, "pg_ctl"), "-D", server.data, "-l",
                    os.path.join(directory, "log"), "-o", options, "-w", "-t",
                    str(int(timeout)), "start"], timeout)
    return server


def _run(command: List[str], timeout: float = 60.0) -> None:
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {result.stderr.strip()}")

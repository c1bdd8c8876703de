"""A real PostgreSQL server for the tests: started on loopback from a data folder under a
temp directory, stopped at the end of the session.

The server binaries come from Debian's ``postgresql`` package (``make test`` installs it
when missing). The server refuses to run as root, so as root it runs as the ``postgres``
user that the package creates. Without the binaries the PostgreSQL tests are skipped, but
never under CI (``CI=true``), where a missing server fails the run.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def server_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _as_server_user(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@contextmanager
def postgres_server() -> Iterator[str]:
    """Yield a ``postgresql://`` URL (user hpo, password in it) of a fresh server."""
    bin_dir = server_bin()
    if bin_dir is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL server binaries missing: `make test` installs them")
        pytest.skip("no PostgreSQL server binaries (apt-get install postgresql)")
    root = Path(tempfile.mkdtemp(prefix="hpo-pg-"))
    data, port = root / "data", _free_port()
    (root / "pw").write_text("hpo-secret-pw\n")
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        os.chmod(root / "pw", 0o644)
    subprocess.run(_as_server_user([str(bin_dir / "initdb"), "-D", str(data), "-U", "hpo",
                                    "--pwfile", str(root / "pw"), "-A", "md5"]),
                   check=True, capture_output=True)
    options = f"-h 127.0.0.1 -p {port} -k {root} -c max_connections=200 -c fsync=off"
    subprocess.run(_as_server_user([str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options,
                                    "-l", str(root / "log"), "-w", "start"]),
                   check=True, capture_output=True)
    try:
        url = f"postgresql://hpo:hpo-secret-pw@127.0.0.1:{port}/postgres"
        _wait_ready(url)
        yield url
    finally:
        subprocess.run(_as_server_user([str(bin_dir / "pg_ctl"), "-D", str(data), "-m",
                                        "immediate", "stop"]), capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def _wait_ready(url: str) -> None:
    import psycopg2

    for _ in range(50):
        try:
            psycopg2.connect(url).close()
            return
        except psycopg2.OperationalError:
            time.sleep(0.2)
    raise RuntimeError("the test PostgreSQL server did not accept connections")


_counter = iter(range(10**6))


def fresh_database(server_url: str) -> str:
    """A new empty database on the server, so each test starts from nothing."""
    import psycopg2

    name = f"t{os.getpid()}_{next(_counter)}"
    connection = psycopg2.connect(server_url)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {name}")
    connection.close()
    return server_url.rsplit("/", 1)[0] + f"/{name}"

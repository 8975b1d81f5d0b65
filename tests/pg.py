"""A throwaway PostgreSQL cluster for the history tests: initdb into a temporary folder,
`pg_ctl start` on 127.0.0.1 at a free port, a password-authenticated user, stopped and
removed afterwards.

The binaries come from PATH or Debian's /usr/lib/postgresql/*/bin (.ci/run installs the
`postgresql` package when missing). initdb refuses to run as root, so as root the cluster is
made and run by the `postgres` user (Debian's package creates it), through runuser.
Where PostgreSQL is not installed the tests that need it skip, saying so; under CI=true
they fail instead, since .ci/run installs it.
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

USER = "history_test_owner"
INSTALL_HINT = "apt-get install postgresql; bash .ci/run does"


def binaries() -> Path | None:
    """The folder holding initdb and pg_ctl, or None when PostgreSQL is not installed."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).resolve().parent
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(folder) / "initdb").is_file() and (Path(folder) / "pg_ctl").is_file():
            return Path(folder)
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Cluster:
    """A running cluster: `url(database)` for a password-authenticated connection."""

    def __init__(self, port: int, password: str) -> None:
        self.port = port
        self.password = password

    def url(self, database: str = "postgres", *, password: str | None = None) -> str:
        secret = self.password if password is None else password
        return f"postgresql://{USER}:{secret}@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A new empty database; its name."""
        import psycopg

        name = "t_" + secrets.token_hex(6)
        with psycopg.connect(
            host="127.0.0.1",
            port=self.port,
            user=USER,
            password=self.password,
            dbname="postgres",
            autocommit=True,
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
        return name


@contextmanager
def cluster() -> Iterator[Cluster]:
    """Start a cluster; stop it and remove its files on the way out.

    Raises:
        RuntimeError: initdb or pg_ctl failed (their output says why).
    """
    bin_dir = binaries()
    assert bin_dir is not None
    as_root = os.geteuid() == 0
    # Not under pytest's tmp_path: as root the `postgres` user must reach it, and pytest's are 0700.
    folder = Path(tempfile.mkdtemp(prefix="agent-evals-pg-"))
    password = "pw-" + secrets.token_hex(12)
    port = _free_port()
    data = folder / "data"
    pwfile = folder / "pwfile"
    pwfile.write_text(password + "\n", encoding="utf-8")
    prefix: list[str] = []
    if as_root:
        shutil.chown(folder, "postgres", "postgres")
        shutil.chown(pwfile, "postgres", "postgres")
        prefix = ["runuser", "-u", "postgres", "--"]

    def run(*args: str) -> None:
        result = subprocess.run(
            [*prefix, *args], capture_output=True, text=True, timeout=120, check=False, cwd=folder
        )
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:2])} failed: {result.stdout}{result.stderr}")

    run(
        str(bin_dir / "initdb"),
        "-D", str(data),
        "-U", USER,
        "--auth=scram-sha-256",
        f"--pwfile={pwfile}",
        "--encoding=UTF8",
        "--no-sync",
    )  # fmt: skip
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {folder} -c fsync=off -c max_connections=40"
    try:
        run(str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(folder / "log"), "-w", "start")
        yield Cluster(port, password)
    finally:
        subprocess.run(
            [*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
            capture_output=True,
            timeout=60,
            check=False,
            cwd=folder,
        )
        shutil.rmtree(folder, ignore_errors=True)


def skip_or_fail(reason: str) -> None:
    """Skip a test that needs PostgreSQL, or fail it under CI, where .ci/run installs it."""
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    """One throwaway cluster for the test session (each test gets its own database)."""
    if binaries() is None:
        skip_or_fail(f"PostgreSQL is not installed, so the PostgreSQL history tests skip ({INSTALL_HINT})")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        skip_or_fail("psycopg is not installed (pip install -e '.[dev]')")
    started = time.monotonic()
    with cluster() as running:
        running.started_in = time.monotonic() - started  # type: ignore[attr-defined]
        yield running

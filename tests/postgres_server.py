"""A throw-away PostgreSQL server for the `postgres` tests.

With STUDY_TEST_POSTGRES set (an admin URL, e.g. postgresql://postgres:pw@127.0.0.1:5432/
postgres) the tests use that server. Otherwise the fixture creates its own cluster with
Debian's `initdb` in a temporary folder, on a free port on 127.0.0.1, with a random
password (scram-sha-256), and removes it afterwards; as root it runs the server as the
`postgres` user. Without PostgreSQL installed (`apt-get install postgresql`) the tests
are skipped. Each test gets its own databases, one for MLflow and one for Optuna.
"""

from __future__ import annotations

import contextlib
import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

ENV_ADMIN = "STUDY_TEST_POSTGRES"


def pg_bindir() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    versions = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4])
    )
    return Path(versions[-1]).parent if versions else None


def free_port() -> int:
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_postgres() -> dict:
    """subprocess arguments that run a command as the `postgres` user when we are root."""
    if os.geteuid() != 0:
        return {}
    import pwd

    user = pwd.getpwnam("postgres")
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


class Server:
    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url

    def url(self, database: str) -> str:
        base, _, _ = self.admin_url.rpartition("/")
        return f"{base}/{database}"

    def create_database(self, prefix: str) -> str:
        import psycopg2

        name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        connection = psycopg2.connect(self.admin_url)
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{name}"')
        finally:
            connection.close()
        return self.url(name)

    @property
    def password(self) -> str:
        from urllib.parse import urlsplit

        return urlsplit(self.admin_url).password or ""


@contextlib.contextmanager
def throwaway_server():
    bindir = pg_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (apt-get install -y postgresql)")
    pytest.importorskip("psycopg2", reason="psycopg2 is in the `postgres` extra")
    if os.geteuid() == 0:
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root, and there is no `postgres` user to run the server")
    folder = Path(tempfile.mkdtemp(prefix="pg-", dir="/tmp"))  # short: socket path limit
    run_as = _as_postgres()
    password = secrets.token_hex(12)
    (folder / "pw").write_text(password)
    if run_as:
        for path in (folder, folder / "pw"):
            os.chown(path, run_as["user"], run_as["group"])
    data, log, port = folder / "data", folder / "server.log", free_port()
    subprocess.run(
        [
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth=scram-sha-256",
            f"--pwfile={folder / 'pw'}",
            "-E",
            "UTF8",
            "--locale=C",
        ],
        check=True,
        capture_output=True,
        cwd=folder,
        **run_as,
    )
    options = (
        f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c max_connections=200 "
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    )
    pg_ctl = str(bindir / "pg_ctl")
    started = subprocess.run(
        [pg_ctl, "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "60", "start"],
        capture_output=True,
        text=True,
        cwd=folder,
        **run_as,
    )
    if started.returncode != 0:
        message = log.read_text() if log.exists() else started.stderr
        shutil.rmtree(folder, ignore_errors=True)
        raise RuntimeError(f"PostgreSQL did not start: {message[-2000:]}")
    try:
        yield Server(f"postgresql://postgres:{password}@127.0.0.1:{port}/postgres")
    finally:
        subprocess.run(
            [pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"],
            capture_output=True,
            cwd=folder,
            **run_as,
        )
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres():
    """A PostgreSQL server (see the module doc); `.create_database(prefix)` gives a URL."""
    if os.environ.get(ENV_ADMIN):
        pytest.importorskip("psycopg2", reason="psycopg2 is in the `postgres` extra")
        yield Server(os.environ[ENV_ADMIN])
        return
    with throwaway_server() as server:
        yield server

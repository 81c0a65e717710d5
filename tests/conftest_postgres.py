"""A real PostgreSQL server for the tests: started once per test run on a free loopback port in a temporary
data directory (`initdb`, `pg_ctl start`), stopped at exit; `postgres_url` gives each test an empty database.

Debian's `postgresql` package puts the binaries in /usr/lib/postgresql/<version>/bin (`make test` installs it
where apt can); $PG_BINDIR overrides. As root the server runs as the `postgres` user (initdb refuses root).
Where no binaries are found, or the server cannot start here, the tests that need it skip with the reason.

    pytest_plugins = ["conftest_postgres"]      # in a test module: the fixtures postgres_server, postgres_url
"""
import atexit
import glob
import os
import pwd
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
from itertools import count
from pathlib import Path

import pytest

_STATE: dict = {}
_NAMES = count()


def _bindir() -> str | None:
    found = shutil.which("initdb")
    for d in [os.environ.get("PG_BINDIR"), *sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True),
              os.path.dirname(found) if found else None]:
        if d and os.path.isfile(os.path.join(d, "initdb")) and os.path.isfile(os.path.join(d, "pg_ctl")):
            return d
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start() -> str:
    """The base URL of a running server (without a database), or raise RuntimeError with the reason."""
    bindir = _bindir()
    if bindir is None:
        raise RuntimeError("PostgreSQL not found (no initdb/pg_ctl on PATH or in /usr/lib/postgresql/*/bin; "
                           "`apt-get install postgresql`, or set $PG_BINDIR)")
    as_user = []
    root = tempfile.mkdtemp(prefix="wb-postgres-")
    if os.geteuid() == 0:
        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            raise RuntimeError("running as root and there is no `postgres` user to run the server as") from None
        runuser = shutil.which("runuser") or shutil.which("su")
        if runuser is None:
            raise RuntimeError("running as root and neither runuser nor su is there to drop to `postgres`")
        as_user = [runuser, "-u", "postgres", "--"] if runuser.endswith("runuser") else ["su"]
        os.chown(root, pw.pw_uid, pw.pw_gid)
    _STATE["root"] = root
    data, log, port = os.path.join(root, "data"), os.path.join(root, "server.log"), _free_port()

    def run(*args):
        cmd = [os.path.join(bindir, args[0]), *args[1:]]
        if as_user == ["su"]:  # su takes one shell command line
            cmd = ["su", "postgres", "-s", "/bin/sh", "-c", shlex.join(cmd)]
        else:
            cmd = as_user + cmd
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        if r.returncode != 0:
            tail = Path(log).read_text()[-800:] if os.path.exists(log) else ""
            raise RuntimeError(f"{args[0]} failed ({r.returncode}): {(r.stderr or r.stdout).strip()[-800:]} {tail}")

    run("initdb", "-D", data, "-U", "wb", "--auth=trust", "-E", "UTF8", "--no-sync", "--no-instructions")
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100"
    run("pg_ctl", "-D", data, "-l", log, "-o", options, "-w", "-t", "60", "start")
    _STATE["stop"] = lambda: run("pg_ctl", "-D", data, "-m", "immediate", "-w", "stop")
    return f"postgresql://wb@127.0.0.1:{port}"


def _stop() -> None:
    try:
        if "stop" in _STATE:
            _STATE.pop("stop")()
    finally:
        if "root" in _STATE:
            shutil.rmtree(_STATE.pop("root"), ignore_errors=True)


def server_url() -> str:
    """The running server's base URL (started on first use, stopped at exit); skips the test without one."""
    if "url" not in _STATE and "error" not in _STATE:
        atexit.register(_stop)
        try:
            _STATE["url"] = _start()
        except (RuntimeError, OSError, subprocess.SubprocessError) as e:
            _STATE["error"] = str(e)
            _stop()
    if "error" in _STATE:
        pytest.skip(f"no PostgreSQL server: {_STATE['error']}")
    return _STATE["url"]


def _admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(server_url() + "/postgres", autocommit=True) as con:
        con.execute(sql)


@pytest.fixture(scope="session")
def postgres_server():
    """The base URL postgresql://wb@127.0.0.1:PORT of a server of this test run."""
    pytest.importorskip("psycopg", reason="the PostgreSQL driver is not installed (pip install 'psycopg[binary]')")
    return server_url()


@pytest.fixture
def postgres_url(postgres_server):
    """The URL of a fresh, empty database (dropped after the test)."""
    name = f"wb_test_{os.getpid()}_{next(_NAMES)}_{int(time.time() * 1000) % 100000}"
    _admin(f"CREATE DATABASE {name}")
    yield f"{postgres_server}/{name}"
    _admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

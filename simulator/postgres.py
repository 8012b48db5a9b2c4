"""A throwaway PostgreSQL server on 127.0.0.1: the local Airflow's metadata database.

MWAA keeps Airflow's metadata in PostgreSQL, and what Airflow does concurrently depends
on it: with two triggerers, ``Trigger.assign_unassigned`` locks rows (``SELECT ... FOR
UPDATE SKIP LOCKED``) so that one trigger gets one triggerer; SQLite has no row locks,
and both triggerers would run the same trigger. The machine image carries PostgreSQL's
server; as root it runs as the ``postgres`` user, which PostgreSQL requires.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

USER = "airflow"
DATABASE = "airflow"


def _binary(name: str) -> str:
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None
    )
    if found is None:
        raise FileNotFoundError(f"PostgreSQL's {name} not found (Debian package postgresql)")
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalPostgres:
    """``with LocalPostgres() as db: db.url`` - a fresh server and database, in a folder of
    its own (the ``postgres`` user must reach it: not under pytest's private temp dirs)."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="mlp-postgres-"))
        self.data = self.folder / "data"
        self.port = _free_port()
        # PostgreSQL refuses to run as root.
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    @property
    def url(self) -> str:
        return f"postgresql+psycopg2://{USER}@127.0.0.1:{self.port}/{DATABASE}"

    @property
    def dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} user={USER} dbname={DATABASE}"

    def _run(self, *command: str) -> None:
        result = subprocess.run(
            [*self._as, *command], capture_output=True, text=True, check=False, timeout=120
        )
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout}{result.stderr}")

    def start(self) -> LocalPostgres:
        if self._as:
            shutil.chown(self.folder, user="postgres")
        self._run(_binary("initdb"), "-D", str(self.data), "-A", "trust", "-U", USER)
        self._run(
            _binary("pg_ctl"), "-D", str(self.data), "-l", str(self.folder / "postgres.log"),
            "-o", f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 "
            "-c max_connections=300 -c fsync=off",
            "-w", "start",
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while True:
            try:
                self._run(_binary("createdb"), "-h", "127.0.0.1", "-p", str(self.port),
                          "-U", USER, DATABASE)  # fmt: skip
                return self
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def stop(self) -> None:
        if self.data.exists():
            with contextlib.suppress(RuntimeError):
                self._run(_binary("pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> LocalPostgres:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

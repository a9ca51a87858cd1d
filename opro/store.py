"""Persistence: one JSON document per session and per optimisation job, in PostgreSQL or SQLite.

Both databases hold the same tables; calls run in a worker thread, serialised by one lock (SQLite
allows one writer; for PostgreSQL one connection is plenty at a prompt optimiser's request rate).

A running job is leased to one replica (``opro_job_leases``: owner and expiry, renewed while it
runs); the owner's writes are fenced by the lease, so a replica that lost its job cannot overwrite
what the new owner wrote.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar

from opro.sessions import Session
from services.errors import NotReady

SCHEMA = [
    """
    CREATE TABLE IF NOT EXISTS opro_sessions (
        session_id TEXT PRIMARY KEY,
        updated_at DOUBLE PRECISION NOT NULL,
        data TEXT NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS opro_jobs (
        job_id TEXT PRIMARY KEY,
        status TEXT NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL,
        data TEXT NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS opro_job_leases (
        job_id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        expires_at DOUBLE PRECISION NOT NULL
    )
    """,
]


T = TypeVar("T")


class Connection(Protocol):
    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> Any: ...
    def commit(self) -> None: ...
    def close(self) -> None: ...


class SessionStore:
    def __init__(self, connect: Any, placeholder: str, description: str, errors: tuple[type[Exception], ...]) -> None:
        self._connect = connect
        self._placeholder = placeholder
        self.description = description
        self._errors = errors  # what the driver raises when the database fails (not a programming error)
        self._conn: Connection | None = None
        self._lock = threading.Lock()

    @classmethod
    def open(cls, database_url: str | None, data_dir: str) -> SessionStore:
        if database_url:
            import psycopg  # only needed when OPRO_DATABASE_URL is set

            return cls(lambda: psycopg.connect(database_url, connect_timeout=10), "%s", "postgresql", (psycopg.Error,))
        path = Path(data_dir) / "opro.sqlite3"
        return cls(lambda: sqlite_connect(path), "?", f"sqlite:{path}", (sqlite3.Error, OSError))

    def _sql(self, sql: str) -> str:
        return sql.replace("?", self._placeholder)

    def _run(self, sql: str, params: tuple[Any, ...] = (), fetch: bool = False) -> list[Any]:
        return self._execute(sql, params, lambda cursor: list(cursor.fetchall()) if fetch else [])

    def _changed(self, sql: str, params: tuple[Any, ...]) -> int:
        """Run a write; how many rows it changed."""
        return self._execute(sql, params, lambda cursor: int(cursor.rowcount))

    def _execute(self, sql: str, params: tuple[Any, ...], result: Callable[[Any], T]) -> T:
        with self._lock:
            if self._conn is None:
                try:
                    self._conn = self._connect()
                    for statement in SCHEMA:
                        self._conn.execute(statement)
                    self._conn.commit()
                except self._errors as exc:
                    self._conn = None
                    raise NotReady(f"session database ({self.description}) is unavailable: {exc}") from exc
            try:
                cursor = self._conn.execute(self._sql(sql), params)
                outcome = result(cursor)
                self._conn.commit()
                return outcome
            except self._errors as exc:
                self._reset()
                raise NotReady(f"session database ({self.description}) failed: {type(exc).__name__}") from exc

    def _reset(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except self._errors:  # the connection is being thrown away anyway
                pass
            self._conn = None

    async def check(self) -> None:
        await asyncio.to_thread(self._run, "SELECT 1", (), True)

    async def get(self, session_id: str) -> Session | None:
        rows = await asyncio.to_thread(
            self._run, "SELECT data FROM opro_sessions WHERE session_id = ?", (session_id,), True
        )
        return Session.from_dict(json.loads(rows[0][0])) if rows else None

    async def save(self, session: Session) -> None:
        session.updated_at = time.time()
        data = json.dumps(session.to_dict(), ensure_ascii=False)
        await asyncio.to_thread(
            self._run,
            "INSERT INTO opro_sessions (session_id, updated_at, data) VALUES (?, ?, ?) "
            "ON CONFLICT (session_id) DO UPDATE SET updated_at = excluded.updated_at, data = excluded.data",
            (session.session_id, session.updated_at, data),
        )

    async def recent(self, limit: int = 200) -> list[Session]:
        rows = await asyncio.to_thread(
            self._run, "SELECT data FROM opro_sessions ORDER BY updated_at DESC LIMIT ?", (limit,), True
        )
        return [Session.from_dict(json.loads(row[0])) for row in rows]

    async def get_job(self, job_id: str) -> dict[str, Any] | None:
        rows = await asyncio.to_thread(self._run, "SELECT data FROM opro_jobs WHERE job_id = ?", (job_id,), True)
        return json.loads(rows[0][0]) if rows else None

    async def save_job(self, job: dict[str, Any], owner: str | None = None) -> bool:
        """Store ``job`` (a dict with ``job_id`` and ``status``), stamping its ``updated_at``. With an
        ``owner`` the write is fenced: it lands only while that replica holds the job's lease."""
        job["updated_at"] = time.time()
        data = json.dumps(job, ensure_ascii=False)
        if owner is not None:
            changed = await asyncio.to_thread(
                self._changed,
                "UPDATE opro_jobs SET status = ?, updated_at = ?, data = ? WHERE job_id = ? AND EXISTS "
                "(SELECT 1 FROM opro_job_leases WHERE job_id = ? AND owner = ?)",
                (job["status"], job["updated_at"], data, job["job_id"], job["job_id"], owner),
            )
            return changed > 0
        await asyncio.to_thread(
            self._run,
            "INSERT INTO opro_jobs (job_id, status, updated_at, data) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (job_id) DO UPDATE SET status = excluded.status, updated_at = excluded.updated_at, "
            "data = excluded.data",
            (job["job_id"], job["status"], job["updated_at"], data),
        )
        return True

    async def claim_job(self, job_id: str, owner: str, lease_s: float, *, steal: bool = False) -> bool:
        """Take the lease on ``job_id`` for ``lease_s`` seconds; False while another replica's lease
        has not expired, unless ``steal``."""
        now = time.time()
        condition = "" if steal else " WHERE opro_job_leases.owner = excluded.owner OR opro_job_leases.expires_at < ?"
        changed = await asyncio.to_thread(
            self._changed,
            "INSERT INTO opro_job_leases (job_id, owner, expires_at) VALUES (?, ?, ?) "
            "ON CONFLICT (job_id) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at" + condition,
            (job_id, owner, now + lease_s) if steal else (job_id, owner, now + lease_s, now),
        )
        return changed > 0

    async def renew_job(self, job_id: str, owner: str, lease_s: float) -> bool:
        """Extend ``owner``'s lease; False when it holds the job no more."""
        changed = await asyncio.to_thread(
            self._changed,
            "UPDATE opro_job_leases SET expires_at = ? WHERE job_id = ? AND owner = ?",
            (time.time() + lease_s, job_id, owner),
        )
        return changed > 0

    async def release_job(self, job_id: str, owner: str) -> None:
        await asyncio.to_thread(
            self._run, "DELETE FROM opro_job_leases WHERE job_id = ? AND owner = ?", (job_id, owner)
        )

    async def jobs(self, statuses: tuple[str, ...] = (), limit: int = 200) -> list[dict[str, Any]]:
        """The newest jobs first, only those in ``statuses`` when given."""
        where = f"WHERE status IN ({', '.join('?' for _ in statuses)}) " if statuses else ""
        rows = await asyncio.to_thread(
            self._run, f"SELECT data FROM opro_jobs {where}ORDER BY updated_at DESC LIMIT ?", (*statuses, limit), True
        )
        return [json.loads(row[0]) for row in rows]

    def close(self) -> None:
        with self._lock:
            self._reset()


def sqlite_connect(path: Path) -> Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    return conn

"""Where grades keeps its courses: the PostgreSQL database vpskit made for it
(DATABASE_URL), or a SQLite file in DATA_DIR when it has none."""

import os
import sqlite3
import threading
from contextlib import suppress

URL = os.environ.get("DATABASE_URL", "")


_lock = threading.Lock()
_kept = None  # this process's PostgreSQL connection


def connection():
    """(connection, placeholder). One PostgreSQL connection is kept per process (opening
    one costs a SCRAM handshake, more than a query); callers hold ``_lock`` while using it."""
    global _kept
    if URL.startswith("postgresql://"):
        import psycopg2  # installed into the venv by vpskit for PostgreSQL apps

        if _kept is None or _kept.closed:
            _kept = psycopg2.connect(URL)
        return _kept, "%s"
    return sqlite3.connect(os.path.join(os.environ.get("DATA_DIR", "."), "grades.sqlite3")), "?"


def _execute(db, mark: str, sql: str, params) -> list:
    try:
        cur = db.cursor()
        cur.execute(sql.format(*[mark] * len(params)), params)
        rows = cur.fetchall() if cur.description else []
        db.commit()
        return rows
    except Exception:
        with suppress(Exception):
            db.rollback()  # the kept connection must not stay in a failed transaction
        raise


def execute(sql: str, *params) -> list:
    """``sql`` with ``{}`` for each parameter; committed; the rows it returned.

    The endpoints run in a thread pool: the process's one connection is used by one
    thread at a time, and replaced once if the server dropped it (a restart)."""
    if not URL.startswith("postgresql://"):
        db, mark = connection()
        try:
            return _execute(db, mark, sql, params)
        finally:
            db.close()
    import psycopg2

    with _lock:
        db, mark = connection()
        try:
            return _execute(db, mark, sql, params)
        except (psycopg2.OperationalError, psycopg2.InterfaceError):
            db.close()
        db, mark = connection()
        return _execute(db, mark, sql, params)

"""dibby's database: PostgreSQL when DATABASE_URL says so (vpskit sets it for
``database = { engine = "postgresql" }``), else SQLite in DATA_DIR."""

import os
import sqlite3
import threading
from contextlib import closing, suppress

URL = os.environ.get("DATABASE_URL", "")
ENGINE = "postgresql" if URL.startswith(("postgresql://", "postgres://")) else "sqlite"
ID = "SERIAL PRIMARY KEY" if ENGINE == "postgresql" else "INTEGER PRIMARY KEY"


_local = threading.local()


def connect():
    if ENGINE == "postgresql":
        import psycopg2  # vpskit installs the driver into the venv

        return psycopg2.connect(URL)
    return sqlite3.connect(os.path.join(os.environ.get("DATA_DIR", "."), "dibby.sqlite3"))


def _execute(db, sql: str, params, fetch: bool):
    try:
        cur = db.cursor()
        cur.execute(sql, params)
        rows = cur.fetchall() if fetch else None
        db.commit()
        return rows
    except Exception:
        with suppress(Exception):
            db.rollback()  # a kept connection must not stay in a failed transaction
        raise


def run(sql: str, params=(), fetch: bool = False):
    """One statement in its own transaction; ``%s`` placeholders on both engines.

    PostgreSQL: each thread keeps its connection (a new one costs a SCRAM handshake,
    more than the query); one that the server dropped is replaced once.
    """
    if ENGINE == "sqlite":
        with closing(connect()) as db:
            return _execute(db, sql.replace("%s", "?"), params, fetch)
    import psycopg2

    db = getattr(_local, "db", None)
    if db is not None and not db.closed:
        try:
            return _execute(db, sql, params, fetch)
        except (psycopg2.OperationalError, psycopg2.InterfaceError):
            db.close()  # the server went away (restarted): reconnect below
    _local.db = connect()
    return _execute(_local.db, sql, params, fetch)

"""Where grades keeps its courses: the PostgreSQL database vpskit made for it
(DATABASE_URL), or a SQLite file in DATA_DIR when it has none."""

import os
import sqlite3
import threading
from contextlib import suppress

URL = os.environ.get("DATABASE_URL", "")


_local = threading.local()


def connection():
    """(connection, placeholder). PostgreSQL connections are kept, one per thread:
    opening one costs a SCRAM handshake, more than a query."""
    if URL.startswith("postgresql://"):
        import psycopg2  # installed into the venv by vpskit for PostgreSQL apps

        db = getattr(_local, "db", None)
        if db is None or db.closed:
            db = _local.db = psycopg2.connect(URL)
        return db, "%s"
    return sqlite3.connect(os.path.join(os.environ.get("DATA_DIR", "."), "grades.sqlite3")), "?"


def execute(sql: str, *params) -> list:
    """``sql`` with ``{}`` for each parameter; committed; the rows it returned.

    A kept PostgreSQL connection that the server dropped (a restart) is replaced once."""
    for attempt in (1, 2):
        db, mark = connection()
        try:
            cur = db.cursor()
            cur.execute(sql.format(*[mark] * len(params)), params)
            rows = cur.fetchall() if cur.description else []
            db.commit()
            return rows
        except Exception as e:
            with suppress(Exception):
                db.rollback()
            if attempt == 2 or mark == "?" or type(e).__name__ not in ("OperationalError", "InterfaceError"):
                raise
            db.close()
        finally:
            if mark == "?":
                db.close()

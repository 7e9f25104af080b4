"""dibby's database: PostgreSQL when DATABASE_URL says so (vpskit sets it for
``database = { engine = "postgresql" }``), else SQLite in DATA_DIR."""

import os
import sqlite3
from contextlib import closing

URL = os.environ.get("DATABASE_URL", "")
ENGINE = "postgresql" if URL.startswith(("postgresql://", "postgres://")) else "sqlite"
ID = "SERIAL PRIMARY KEY" if ENGINE == "postgresql" else "INTEGER PRIMARY KEY"


def connect():
    if ENGINE == "postgresql":
        import psycopg2  # vpskit installs the driver into the venv

        return psycopg2.connect(URL)
    return sqlite3.connect(os.path.join(os.environ.get("DATA_DIR", "."), "dibby.sqlite3"))


def run(sql: str, params=(), fetch: bool = False):
    """One statement in its own transaction; ``%s`` placeholders on both engines."""
    if ENGINE == "sqlite":
        sql = sql.replace("%s", "?")
    with closing(connect()) as db:
        cur = db.cursor()
        cur.execute(sql, params)
        rows = cur.fetchall() if fetch else None
        db.commit()
        return rows

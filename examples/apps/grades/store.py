"""Where grades keeps its courses: the PostgreSQL database vpskit made for it
(DATABASE_URL), or a SQLite file in DATA_DIR when it has none."""

import os
import sqlite3

URL = os.environ.get("DATABASE_URL", "")


def connection():
    if URL.startswith("postgresql://"):
        import psycopg2  # installed into the venv by vpskit for PostgreSQL apps

        return psycopg2.connect(URL), "%s"
    return sqlite3.connect(os.path.join(os.environ.get("DATA_DIR", "."), "grades.sqlite3")), "?"


def execute(sql: str, *params) -> list:
    """``sql`` with ``{}`` for each parameter; committed; the rows it returned."""
    db, mark = connection()
    try:
        cur = db.cursor()
        cur.execute(sql.format(*[mark] * len(params)), params)
        rows = cur.fetchall() if cur.description else []
        db.commit()
        return rows
    finally:
        db.close()

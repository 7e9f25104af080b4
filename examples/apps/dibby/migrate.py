"""Bring dibby's SQLite schema up to date (idempotent)."""

import os
import sqlite3

DB = os.path.join(os.environ.get("DATA_DIR", "."), "dibby.sqlite3")

with sqlite3.connect(DB) as db:
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version < 1:
        db.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL)")
        db.execute("PRAGMA user_version = 1")
    print(f"dibby schema at version {db.execute('PRAGMA user_version').fetchone()[0]}")

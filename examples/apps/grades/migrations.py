"""Bring grades' SQLite schema up to date (idempotent): python -m migrations."""

import os
import sqlite3

DB = os.path.join(os.environ.get("DATA_DIR", "."), "grades.sqlite3")

with sqlite3.connect(DB) as db:
    db.execute("CREATE TABLE IF NOT EXISTS courses (name TEXT PRIMARY KEY)")
    db.execute("INSERT OR IGNORE INTO courses (name) VALUES ('maths'), ('physics')")

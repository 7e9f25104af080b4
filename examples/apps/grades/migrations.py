"""Bring grades' schema up to date (idempotent): python -m migrations."""

from store import execute

execute("CREATE TABLE IF NOT EXISTS courses (name TEXT PRIMARY KEY)")
for course in ("maths", "physics"):
    execute("INSERT INTO courses (name) VALUES ({}) ON CONFLICT DO NOTHING", course)

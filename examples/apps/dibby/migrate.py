"""Bring dibby's schema up to date (idempotent; vpskit runs it when the code changed)."""

from db import ENGINE, ID, run

run(f"CREATE TABLE IF NOT EXISTS notes (id {ID}, text TEXT NOT NULL)")
run("CREATE TABLE IF NOT EXISTS accounts (name TEXT PRIMARY KEY, balance_cents INTEGER NOT NULL)")
run(f"CREATE TABLE IF NOT EXISTS balance_snapshots (id {ID}, taken_at TEXT NOT NULL, total_cents INTEGER NOT NULL)")
print(f"dibby schema ready ({ENGINE})")

"""Put dibby's first note and accounts in place (vpskit runs it once)."""

from db import run

run("INSERT INTO notes (text) VALUES (%s)", ("first note",))
for name, cents in (("alice", 10000), ("bob", 2500)):
    run("INSERT INTO accounts (name, balance_cents) VALUES (%s, %s)", (name, cents))

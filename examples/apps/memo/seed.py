"""The first memo (run by vpskit once, after the first migration)."""

import os

import psycopg2

with psycopg2.connect(os.environ["DATABASE_URL"]) as conn, conn.cursor() as cur:
    cur.execute("INSERT INTO memos (text) VALUES ('first memo')")
print("memo: seeded")

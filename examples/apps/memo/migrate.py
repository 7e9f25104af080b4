"""Create memo's table (run by vpskit in the web container when the code changed)."""

import os

import psycopg2

with psycopg2.connect(os.environ["DATABASE_URL"]) as conn, conn.cursor() as cur:
    cur.execute("CREATE TABLE IF NOT EXISTS memos (id serial PRIMARY KEY, text text NOT NULL)")
print("memo: migrated")

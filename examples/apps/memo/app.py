"""memo: a small web app in a container, with its PostgreSQL in another (vpskit's compose sample).

GET  /         {"app": "memo", "greeting": ..., "database": "postgresql", "memos": [...]}
POST /memos    {"text": "..."} adds a memo
GET  /health   200 when the database answers (the container's healthcheck)
"""

import json
import os
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg2

DATABASE_URL = os.environ["DATABASE_URL"]


def db():
    return psycopg2.connect(DATABASE_URL)


class Handler(BaseHTTPRequestHandler):
    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/health":
            with db() as conn, conn.cursor() as cur:
                cur.execute("SELECT 1")
            return self.reply(200, {"ok": True})
        if self.path != "/":
            return self.reply(404, {"error": "not found"})
        with db() as conn, conn.cursor() as cur:
            cur.execute("SELECT text FROM memos ORDER BY id")
            memos = [row[0] for row in cur.fetchall()]
        self.reply(200, {"app": "memo", "greeting": os.environ.get("GREETING", ""), "database": "postgresql", "memos": memos})

    def do_POST(self):
        if self.path != "/memos":
            return self.reply(404, {"error": "not found"})
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        with db() as conn, conn.cursor() as cur:
            cur.execute("INSERT INTO memos (text) VALUES (%s)", (str(body.get("text", "")),))
        self.reply(201, {"ok": True})

    def log_message(self, fmt, *args):
        sys.stderr.write("memo: " + fmt % args + "\n")


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    ThreadingHTTPServer(("0.0.0.0", 8000), Handler).serve_forever()

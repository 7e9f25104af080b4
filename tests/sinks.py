"""Stand-ins for where notifications go: a webhook receiver and an SMTP relay, each writing what it got.

Standard library only: the end-to-end tests copy this file into a target and run it there
with the target's python3 (listening on the target's loopback); the unit tests run it in threads.

    python3 sinks.py webhook PORT OUT.jsonl                # every POST as one JSON line
    python3 sinks.py smtp PORT OUT.jsonl [CERT.pem KEY.pem]  # every mail as one JSON line; STARTTLS with a cert

A webhook path ending in /fail answers 500 (a notifier that does not deliver).
"""

from __future__ import annotations

import base64
import json
import socketserver
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_write_lock = threading.Lock()


def _record(path: str, entry: dict) -> None:
    with _write_lock, open(path, "a") as f:
        f.write(json.dumps(entry) + "\n")


class WebhookHandler(BaseHTTPRequestHandler):
    out = ""

    def do_POST(self):  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode("utf-8", "replace")
        failing = self.path.endswith("/fail")
        _record(self.out, {"path": self.path, "headers": dict(self.headers), "body": body, "answered": 500 if failing else 200})
        self.send_response(500 if failing else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def webhook_server(port: int, out: str) -> ThreadingHTTPServer:
    handler = type("Handler", (WebhookHandler,), {"out": out})
    return ThreadingHTTPServer(("127.0.0.1", port), handler)


class SmtpHandler(socketserver.StreamRequestHandler):
    out = ""
    tls: ssl.SSLContext | None = None

    def reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")
        self.wfile.flush()

    def line(self) -> str | None:
        """The next line without its CRLF; None when the client has gone."""
        raw = self.rfile.readline(65536)
        return raw.decode("utf-8", "replace").rstrip("\r\n") if raw else None

    def handle(self):
        mail = {"tls": False, "auth": None, "from": "", "to": []}
        self.reply("220 sink ESMTP")
        while True:
            cmd = self.line()
            if cmd is None:
                return
            verb, _, arg = cmd.partition(" ")
            verb = verb.upper()
            if verb == "EHLO":
                caps = ["250-sink", "250-AUTH PLAIN LOGIN"] + (["250-STARTTLS"] if self.tls and not mail["tls"] else [])
                for c in caps:
                    self.reply(c)
                self.reply("250 8BITMIME")
            elif verb == "HELO":
                self.reply("250 sink")
            elif verb == "STARTTLS" and self.tls:
                self.reply("220 go ahead")
                self.request = self.tls.wrap_socket(self.request, server_side=True)
                self.rfile = self.request.makefile("rb")
                self.wfile = self.request.makefile("wb")
                mail["tls"] = True
            elif verb == "AUTH":
                mech, _, initial = arg.partition(" ")
                if mech.upper() == "PLAIN":
                    if not initial:
                        self.reply("334 ")
                        initial = self.line()
                    _, user, password = base64.b64decode(initial).decode().split("\0")
                else:
                    self.reply("334 VXNlcm5hbWU6")
                    user = base64.b64decode(self.line()).decode()
                    self.reply("334 UGFzc3dvcmQ6")
                    password = base64.b64decode(self.line()).decode()
                mail["auth"] = [user, password]
                self.reply("235 accepted")
            elif verb == "MAIL":
                mail["from"] = arg.split(":", 1)[1].strip()
                self.reply("250 ok")
            elif verb == "RCPT":
                mail["to"].append(arg.split(":", 1)[1].strip())
                self.reply("250 ok")
            elif verb == "DATA":
                self.reply("354 end with .")
                lines = []
                while (ln := self.line()) not in (".", None):
                    lines.append(ln[1:] if ln.startswith("..") else ln)
                _record(self.out, {**mail, "data": "\n".join(lines)})
                mail["to"] = []
                self.reply("250 queued")
            elif verb in ("RSET", "NOOP"):
                self.reply("250 ok")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("502 not implemented")


def smtp_server(port: int, out: str, cert: str = "", key: str = "") -> socketserver.ThreadingTCPServer:
    tls = None
    if cert:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(cert, key)
    handler = type("Handler", (SmtpHandler,), {"out": out, "tls": tls})
    socketserver.ThreadingTCPServer.allow_reuse_address = True
    return socketserver.ThreadingTCPServer(("127.0.0.1", port), handler)


if __name__ == "__main__":
    kind, port, out, *tls_files = sys.argv[1:]
    server = webhook_server(int(port), out) if kind == "webhook" else smtp_server(int(port), out, *tls_files)
    server.serve_forever()

"""A stand-in for one LearnUp service (frontend, api or frs): answers every path with JSON naming itself.

GET/POST/... any path   {"service": NAME, "method": ..., "path": ...}, with the request's Host and X-Forwarded-Proto
WebSocket upgrade       any path: the handshake (RFC 6455), then every text message is echoed back as
                        {"service": NAME, "echo": TEXT}; the connection stays open until the client closes it
Its own X-Frame-Options is SAMEORIGIN, so a proxy that replaces it shows.
"""

import base64
import hashlib
import json
import os
import signal
import struct
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NAME = os.environ.get("SERVICE_NAME", "standin")
PORT = int(os.environ.get("PORT", "8080"))
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def read_frame(rfile):
    """One client frame: (opcode, payload); None when the connection ends."""
    head = rfile.read(2)
    if len(head) < 2:
        return None
    opcode, length = head[0] & 0x0F, head[1] & 0x7F
    if length == 126:
        length = struct.unpack("!H", rfile.read(2))[0]
    elif length == 127:
        length = struct.unpack("!Q", rfile.read(8))[0]
    mask = rfile.read(4) if head[1] & 0x80 else b"\0\0\0\0"
    data = rfile.read(length)
    return opcode, bytes(b ^ mask[i % 4] for i, b in enumerate(data))


def frame(opcode: int, payload: bytes) -> bytes:
    """One unmasked server frame."""
    n = len(payload)
    size = bytes([n]) if n < 126 else bytes([126]) + struct.pack("!H", n) if n < 65536 else bytes([127]) + struct.pack("!Q", n)
    return bytes([0x80 | opcode]) + size + payload


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self):
        if self.headers.get("Upgrade", "").lower() == "websocket":
            return self.websocket()
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        body = json.dumps(
            {
                "service": NAME,
                "method": self.command,
                "path": self.path,
                "host": self.headers.get("Host", ""),
                "proto": self.headers.get("X-Forwarded-Proto", ""),
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Frame-Options", "SAMEORIGIN")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = answer

    def websocket(self):
        accept = base64.b64encode(hashlib.sha1((self.headers["Sec-WebSocket-Key"] + WS_GUID).encode()).digest()).decode()
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.end_headers()
        self.wfile.flush()
        while True:
            got = read_frame(self.rfile)
            if got is None or got[0] == 0x8:  # gone, or a close frame
                if got is not None:
                    self.wfile.write(frame(0x8, b""))
                break
            opcode, data = got
            if opcode == 0x9:  # ping
                self.wfile.write(frame(0xA, data))
            elif opcode == 0x1:
                reply = json.dumps({"service": NAME, "echo": data.decode()}).encode()
                self.wfile.write(frame(0x1, reply))
            self.wfile.flush()
        self.close_connection = True

    def log_message(self, fmt, *args):
        sys.stderr.write(f"{NAME}: {fmt % args}\n")


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    ThreadingHTTPServer(("0.0.0.0", PORT), Handler).serve_forever()

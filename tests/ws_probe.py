"""A WebSocket client small enough to run with any python3 (the test targets have no websocket package).

    python3 ws_probe.py HOST PATH IDLE_SECONDS [CA_FILE]

Opens wss://HOST/PATH through 127.0.0.1:443 (TLS name HOST; CA_FILE trusted, or no verification without
one), sends "hello", reads the echo, stays idle IDLE_SECONDS, then sends "still here" and reads that echo.
Prints one JSON line: the handshake status, both replies and how long the connection was open.
"""

import base64
import json
import os
import socket
import ssl
import struct
import sys
import time


def send_text(sock, text: str) -> None:
    data, mask = text.encode(), os.urandom(4)
    n = len(data)
    size = bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack("!H", n)
    sock.sendall(bytes([0x81]) + size + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))


def read_exact(sock, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed by the other end")
        buf += chunk
    return buf


def read_text(sock) -> str:
    head = read_exact(sock, 2)
    length = head[1] & 0x7F
    if length == 126:
        length = struct.unpack("!H", read_exact(sock, 2))[0]
    elif length == 127:
        length = struct.unpack("!Q", read_exact(sock, 8))[0]
    data = read_exact(sock, length)
    if head[0] & 0x0F == 0x8:
        raise ConnectionError("closed by a close frame")
    return data.decode()


def main(host: str, path: str, idle: float, ca: str = "") -> dict:
    ctx = ssl.create_default_context(cafile=ca) if ca else ssl._create_unverified_context()
    ctx.set_alpn_protocols(["http/1.1"])
    started = time.time()
    result = {"status": None, "first": None, "after_idle": None, "error": None}
    try:
        sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", 443), timeout=idle + 30), server_hostname=host)
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall(
            (
                f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            head += read_exact(sock, 1)
        result["status"] = int(head.split(b" ", 2)[1])
        if result["status"] == 101:
            send_text(sock, "hello")
            result["first"] = json.loads(read_text(sock))
            time.sleep(idle)
            send_text(sock, "still here")
            result["after_idle"] = json.loads(read_text(sock))
    except (OSError, ValueError) as e:
        result["error"] = f"{type(e).__name__}: {e}"
    result["seconds"] = round(time.time() - started, 1)
    return result


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2], float(sys.argv[3]), *sys.argv[4:5])))

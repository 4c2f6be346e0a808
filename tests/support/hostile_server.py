"""A loopback HTTP server that misbehaves on purpose: one behaviour per path."""

from __future__ import annotations

import gzip
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

_BOMB = gzip.compress(b"[" + b"0," * (4 * 2**20) + b"0]", compresslevel=9)


def _handle(conn: socket.socket, stop: threading.Event) -> None:
    # Every answer says "Connection: close" and the socket is closed after it: a client must
    # not reuse it (a reused socket the server already closed is a different failure).
    try:
        request = b""
        while b"\r\n\r\n" not in request:
            chunk = conn.recv(4096)
            if not chunk:
                return
            request += chunk
        head, _, body = request.partition(b"\r\n\r\n")
        # Read the request body before answering, as a real server does: closing a socket with
        # unread data sends a reset, and the client would see a broken connection, not the
        # answer under test (a flaky "connection failed" instead of the 429).
        length = next(
            (
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")[1:]
                if line.lower().startswith(b"content-length:")
            ),
            0,
        )
        while len(body) < length:
            chunk = conn.recv(65536)
            if not chunk:
                return
            body += chunk
        path = request.split(b" ", 2)[1].decode()
        if path.startswith("/drip"):  # headers at once, then a byte every 0.3 s for ever
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: application/json\r\n"
            )
            conn.sendall(b"Content-Length: 100000\r\n\r\n")
            while not stop.is_set():
                conn.sendall(b" ")
                time.sleep(0.3)
        elif path.startswith("/header-drip"):
            for byte in b"HTTP/1.1 200 OK\r\nConnection: close\r\nX-Slow: " + b"a" * 10000:
                if stop.is_set():
                    return
                conn.sendall(bytes([byte]))
                time.sleep(0.3)
        elif path.startswith("/reject"):  # a receiver that quotes the pupil back
            body = (
                b'{"title": "Invalid return", "detail": "Pupil Ava Smith born 2012-03-04 is not '
                b'on roll", "errors": [{"forename": "Ava", "dob": "2012-03-04"}]}'
            )
            conn.sendall(
                b"HTTP/1.1 422 Unprocessable Entity\r\nConnection: close\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
        elif path.startswith("/busy"):
            conn.sendall(
                b"HTTP/1.1 429 Too Many Requests\r\nConnection: close\r\nRetry-After: 1\r\nContent-Length: 0\r\n\r\n"
            )
        elif path.startswith("/hang"):
            stop.wait(60)
        elif path.startswith("/truncated"):
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: application/json\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n10\r\n[1,2,3,4,5,6,7,8"
            )
        elif path.startswith("/bomb"):
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
                + f"Content-Length: {len(_BOMB)}\r\n\r\n".encode()
                + _BOMB
            )
        elif path.startswith("/redirect"):
            conn.sendall(
                b"HTTP/1.1 302 Found\r\nConnection: close\r\nLocation: http://attacker.example/steal\r\n"
                b"Content-Length: 0\r\n\r\n"
            )
        elif path.startswith("/nested"):
            body = b"[" * 100000 + b"]" * 100000
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
    except OSError:
        pass
    finally:
        conn.close()


@contextmanager
def hostile_server() -> Iterator[str]:
    """Serve until the block ends; yields the base URL."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=_handle, args=(conn, stop), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(2)
        listener.close()

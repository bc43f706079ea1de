"""Tiny local servers that misbehave in exactly one way each, on 127.0.0.1.

Each runs in a daemon thread, serves until the test ends, and handles every
connection with one behaviour function; used to reproduce real socket
failures for the classification table.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from typing import Callable

RESPONSE_OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Pod-Name: pod-a\r\n\r\nok"


def status_response(code: int, reason: str = "X") -> bytes:
    return f"HTTP/1.1 {code} {reason}\r\nContent-Length: 0\r\nX-Pod-Name: pod-a\r\n\r\n".encode()


def read_request(conn: socket.socket, timeout: float = 5.0) -> bytes:
    conn.settimeout(timeout)
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = conn.recv(65536)
        if not chunk:
            return buf
        buf += chunk
    return buf


def answer(response: bytes) -> Callable[[socket.socket], None]:
    def behave(conn: socket.socket) -> None:
        while True:
            req = read_request(conn)
            if not req:
                return
            conn.sendall(response)
    return behave


def close_after_request(conn: socket.socket) -> None:
    read_request(conn)
    conn.close()  # FIN, no response


def reset_after_request(conn: socket.socket) -> None:
    read_request(conn)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()  # RST


def never_answer(conn: socket.socket) -> None:
    read_request(conn)
    time.sleep(3)


def garbage(conn: socket.socket) -> None:
    read_request(conn)
    conn.sendall(b"SMTP ready\r\n\r\n")
    time.sleep(0.5)


def close_after_partial(conn: socket.socket) -> None:
    read_request(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly-part")
    conn.close()


class Server:
    def __init__(self, behave: Callable[[socket.socket], None], *, backlog: int = 128, accept: bool = True):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(backlog)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/work"
        self.behave = behave
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        if accept:
            t = threading.Thread(target=self._accept_loop, daemon=True)
            t.start()
            self._threads.append(t)

    def _accept_loop(self) -> None:
        self.sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                return
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            t.start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            self.behave(conn)
        except OSError:
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def close(self) -> None:
        self._stop.set()
        self.sock.close()


def free_port() -> int:
    """A port with nothing listening on it (bound, then released)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port

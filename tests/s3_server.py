"""A local S3-compatible server for the object-storage tests, and a proxy in
front of it that can fail requests for real (HTTP 500 with an S3 error body).

``moto_server()`` starts moto's ``ThreadedMotoServer`` on 127.0.0.1 and a free
port, polls until it answers (with a deadline, no fixed sleep) and stops it at
the end. ``FaultProxy`` forwards every request to that server unless a rule
says to fail it; the tests arm a rule ("fail PUT/POST of keys containing
batch-"), run a FLUSH, then disarm it and retry.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pyarrow.fs as pafs

Rule = Callable[[str, str], bool]  # (method, path) -> fail this request?


def wait_until_answers(host: str, port: int, *, deadline_s: float = 20.0) -> None:
    """Poll until an HTTP request to the server gets any response."""
    end = time.monotonic() + deadline_s
    last: Exception | None = None
    while time.monotonic() < end:
        try:
            conn = http.client.HTTPConnection(host, port, timeout=2)
            conn.request("GET", "/")
            conn.getresponse().read()
            conn.close()
            return
        except OSError as exc:
            last = exc
            threading.Event().wait(0.02)  # a poll interval, not a wait for work
    raise TimeoutError(f"S3 test server on {host}:{port} did not answer: {last}")


@contextmanager
def moto_server() -> Iterator[str]:
    """A running moto S3 server; yields its endpoint URL (http://127.0.0.1:<port>)."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        wait_until_answers(host, port)
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def make_bucket(endpoint: str, bucket: str) -> None:
    host_port = endpoint.split("://", 1)[1]
    fs = pafs.S3FileSystem(
        endpoint_override=host_port, scheme="http", region="us-east-1", allow_bucket_creation=True
    )
    fs.create_dir(bucket)


def object_keys(endpoint: str, prefix: str) -> list[str]:
    """Every object (file) under ``bucket/prefix``, sorted."""
    fs = pafs.S3FileSystem(
        endpoint_override=endpoint.split("://", 1)[1], scheme="http", region="us-east-1"
    )
    infos = fs.get_file_info(pafs.FileSelector(prefix, recursive=True, allow_not_found=True))
    return sorted(i.path for i in infos if i.type == pafs.FileType.File)


_FAILURE = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InternalError</Code>'
    b"<Message>injected fault</Message></Error>"
)
_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade", "expect"}


class FaultProxy:
    """An HTTP proxy on 127.0.0.1 in front of ``upstream`` that answers 500
    to the requests ``rule`` picks, and counts them."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.split("://", 1)[1]
        self.rule: Rule | None = None
        self.failed: list[str] = []
        self.seen: list[str] = []  # "METHOD /path" of every request, failed or not
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                return None

            def _any(self) -> None:
                body = self._body()
                with proxy.lock:
                    proxy.seen.append(f"{self.command} {self.path}")
                    fail = proxy.rule is not None and proxy.rule(self.command, self.path)
                    if fail:
                        proxy.failed.append(f"{self.command} {self.path}")
                if fail:
                    self.send_response(500)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(_FAILURE)))
                    self.end_headers()
                    self.wfile.write(_FAILURE)
                    return
                host, port = proxy.upstream.rsplit(":", 1)
                conn = http.client.HTTPConnection(host, int(port), timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in _HOP and k.lower() != "content-length":
                        self.send_header(k, v)
                if self.command == "HEAD":
                    self.send_header("Content-Length", resp.getheader("Content-Length") or "0")
                else:
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                conn.close()

            def _body(self) -> bytes:
                if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                    # The AWS SDK streams uploads; pass on the de-chunked payload.
                    parts = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass  # trailers
                            return b"".join(parts)
                        parts.append(self.rfile.read(size))
                        self.rfile.readline()
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FaultProxy:
        self.thread.start()
        host, port = self.server.server_address[:2]
        wait_until_answers(str(host), int(port))
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)

    def fail(self, rule: Rule | None) -> None:
        with self.lock:
            self.rule = rule
            self.failed.clear()

"""A local HTTP server for the download tests: serves a folder on 127.0.0.1, honours `Range: bytes=N-`
(or not, to test servers that ignore it) and logs every request as (path, Range header)."""

from __future__ import annotations

import contextlib
import functools
import http.server
import re
import threading
from pathlib import Path
from typing import Iterator


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """SimpleHTTPRequestHandler plus single `bytes=N-` ranges, and a request log."""

    log: list = []
    honour_range = True

    def log_message(self, *args):  # keep test output quiet
        pass

    def do_GET(self):
        rng = self.headers.get("Range")
        self.log.append((self.path, rng))
        path = self.translate_path(self.path)
        m = re.fullmatch(r"bytes=(\d+)-", rng or "")
        if not (m and self.honour_range):
            return super().do_GET()
        try:
            data = open(path, "rb").read()
        except OSError:
            return self.send_error(404)
        start = int(m.group(1))
        if start >= len(data):
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(data)}")
            self.end_headers()
            return
        self.send_response(206)
        self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        self.wfile.write(data[start:])


@contextlib.contextmanager
def serve(directory: str | Path) -> Iterator[tuple[str, type[RangeHandler]]]:
    """Serve `directory`; yields the base URL and the handler class (its `log`, `honour_range`)."""
    handler = type("H", (RangeHandler,), {"log": [], "honour_range": True})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(directory)))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", handler
    finally:
        httpd.shutdown()
        httpd.server_close()

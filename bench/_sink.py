"""An OTLP/HTTP endpoint that accepts everything and keeps nothing, for `make bench`.

    python bench/_sink.py PORTFILE

Standard library only. Writes the port it listens on to PORTFILE once it accepts connections.
"""

from __future__ import annotations

import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    tmp = Path(sys.argv[1] + ".tmp")
    tmp.write_text(str(server.server_address[1]))
    tmp.rename(sys.argv[1])  # atomically: the reader sees a whole port number
    server.serve_forever()


if __name__ == "__main__":
    main()

"""Ten webhook receivers for bench/webhooks.sh: port BASE is slow (answers after 2 s),
BASE+1 always fails (500), the others answer 204 at once."""
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread

BASE = int(sys.argv[1])


def handler(kind):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            self.rfile.read(int(self.headers.get("content-length", 0)))
            if kind == "slow":
                time.sleep(2)
            status = 500 if kind == "failing" else 204
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    return Handler


servers = []
for i in range(10):
    kind = "slow" if i == 0 else "failing" if i == 1 else "healthy"
    server = ThreadingHTTPServer(("127.0.0.1", BASE + i), handler(kind))
    server.daemon_threads = True
    Thread(target=server.serve_forever, daemon=True).start()
    servers.append(server)
while True:
    time.sleep(3600)

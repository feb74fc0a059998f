"""An app that fails on purpose, for trying restarts, back-off and alerts.

GET /       answers, and exits after CRASH_AFTER requests (0: never)
GET /crash  exits at once with status 1
GET /oom    allocates memory until the container's limit kills it

CRASH_ON_START=1 makes it exit with status 4 as soon as it starts, before it listens: an
instance that crashes on every start (crash loops, back-off, InstanceCrashLoop alerts). Any
other value (or none) starts normally.
"""
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CRASH_AFTER = int(os.environ.get("CRASH_AFTER", "0"))
served = 0

if os.environ.get("CRASH_ON_START") == "1":
    print("CRASH_ON_START=1: exiting at start with status 4", flush=True)
    sys.exit(4)


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        global served
        if self.path == "/crash":
            print("crashing on request", flush=True)
            os._exit(1)
        if self.path == "/oom":
            print("allocating until the memory limit", flush=True)
            hog = []
            while True:
                hog.append(bytearray(16 << 20))
        served += 1
        body = b"crasher served %d request(s)\n" % served
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        if CRASH_AFTER and served >= CRASH_AFTER:
            print("served %d requests: exiting" % served, flush=True)
            sys.stdout.flush()
            os._exit(3)

    def log_message(self, fmt, *args):
        pass


print("crasher listening on port %s" % os.environ.get("PORT", "8080"), flush=True)
ThreadingHTTPServer(("0.0.0.0", int(os.environ.get("PORT", "8080"))), Handler).serve_forever()

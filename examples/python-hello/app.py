"""A standard-library web app: answers with its instance index and VCAP_APPLICATION."""
import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({
            "message": "hello from python-hello",
            "instance_index": os.environ.get("CF_INSTANCE_INDEX"),
            "vcap_application": json.loads(os.environ.get("VCAP_APPLICATION", "{}")),
        }, indent=2).encode() + b"\n"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        print("%s %s" % (self.command, self.path), flush=True)


print("python-hello listening on port %s" % os.environ.get("PORT", "8080"), flush=True)
ThreadingHTTPServer(("0.0.0.0", int(os.environ.get("PORT", "8080"))), Handler).serve_forever()

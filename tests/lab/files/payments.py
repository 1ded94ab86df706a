"""The lab's external dependency: a payments provider stub with /health and /status."""
import http.server
import json
import os
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path in ("/health", "/status"):
            body = json.dumps({"status": "ok", "provider": "lab-payments"}).encode()
            self.send_response(200)
        else:
            body = b'{"error": "not found"}'
            self.send_response(404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        sys.stdout.write("payments: " + (fmt % args) + "\n")


port = int(os.environ.get("PORT", "18081"))
http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()

#!/usr/bin/env python3
"""A loopback OTLP/HTTP JSON receiver for the observability tests.

Binds 127.0.0.1 on an ephemeral port, prints "port N" on stdout, and appends the body of
every POST /v1/traces (one JSON document per line) to the file given as argv[1].  A GET
appends its traceparent header to argv[1].tp and answers {"traceparent": header}.  Exits
when stdin reaches end of file (the test holds a pipe open) or after 120 s.
"""
import http.server
import json
import sys
import threading

OUT = sys.argv[1]


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n)
        ok = self.path == "/v1/traces" and self.headers.get("Content-Type", "").startswith("application/json")
        if ok:
            try:
                doc = json.loads(body)
            except ValueError:
                ok = False
        if ok:
            with open(OUT, "a", encoding="utf-8") as f:
                f.write(json.dumps(doc, ensure_ascii=False) + "\n")
        self.send_response(200 if ok else 400)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    def do_GET(self):
        # For traceparent propagation: records the header (a line of OUT.tp) and answers it.
        tp = self.headers.get("traceparent")
        with open(OUT + ".tp", "a", encoding="utf-8") as f:
            f.write("%s\n" % tp)
        body = json.dumps({"traceparent": tp}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print("port", srv.server_address[1], flush=True)
threading.Thread(target=srv.serve_forever, daemon=True).start()
done = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
done.wait(120)
srv.shutdown()

#!/usr/bin/env python3
"""Stand-in for agora-proxy to self-test run.py's gateway plumbing (standard library only).

Takes the same command line run.py gives the real binary (`-f config.yaml --admin HOST:PORT`),
reads the bind port and the static MCP target from the config run.py writes, answers
/readyz on the admin address, and relays every request on the bind port to the target
unchanged (Host header included), streaming responses (SSE) as they come.

  python3 run.py --compare passthrough_gateway.py     # every scenario must pass both ways
"""

import argparse
import http.client
import re
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "trailer"}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-f", dest="config", required=True)
    ap.add_argument("--admin", required=True)
    a = ap.parse_args()
    cfg = open(a.config, encoding="utf-8").read()
    bind_port = int(re.search(r"^- port: (\d+)", cfg, re.M).group(1))
    t = re.search(r"static: \{host: ([^,]+), port: (\d+), path: ([^,]+),", cfg)
    up_host, up_port, up_path = t.group(1), int(t.group(2)), t.group(3)
    admin_host, admin_port = a.admin.rsplit(":", 1)

    class Admin(BaseHTTPRequestHandler):
        def do_GET(self):
            body = b"ready\n" if self.path == "/readyz" else b"ok\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_):
            pass

    class Relay(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def relay(self):
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n else None
            path = up_path + self.path[len("/mcp"):] if self.path.startswith("/mcp") else self.path
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
            conn = http.client.HTTPConnection(up_host, up_port, timeout=120)
            conn.putrequest(self.command, path, skip_host=True, skip_accept_encoding=True)
            for k, v in headers.items():
                conn.putheader(k, v)
            conn.endheaders(body)
            r = conn.getresponse()
            self.send_response(r.status)
            for k, v in r.getheaders():
                if k.lower() not in HOP and k.lower() != "content-length":
                    self.send_header(k, v)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            try:
                while True:
                    chunk = r.read1(65536)
                    if not chunk:
                        break
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True
            finally:
                conn.close()

        do_GET = do_POST = do_DELETE = relay

        def log_message(self, *_):
            pass

    ThreadingHTTPServer.daemon_threads = True
    admin = ThreadingHTTPServer((admin_host, int(admin_port)), Admin)
    threading.Thread(target=admin.serve_forever, daemon=True).start()
    relay = ThreadingHTTPServer(("127.0.0.1", bind_port), Relay)
    print(f"relaying 127.0.0.1:{bind_port}/mcp -> {up_host}:{up_port}{up_path}", flush=True)
    try:
        relay.serve_forever()
    except KeyboardInterrupt:
        pass
    sys.exit(0)


if __name__ == "__main__":
    main()

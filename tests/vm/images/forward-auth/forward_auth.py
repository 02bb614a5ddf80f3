#!/usr/bin/python3
"""Forward-auth stand-in for Authelia (cloudcode test image; the only double in the deployment path).

Answers like Authelia's /api/authz/forward-auth: 200 plus Remote-* headers when the request carries the
session cookie FORWARD_AUTH_COOKIE_NAME=FORWARD_AUTH_COOKIE_VALUE (default: the content of
AUTHELIA_SESSION_SECRET_FILE, as the bundle sets it for Authelia), otherwise a redirect to the portal
(https://auth.<forwarded host>/ unless FORWARD_AUTH_PORTAL_URL is set) with ?rd=<original URL>&rm=<method>:
302 for GET/HEAD/OPTIONS, 303 for other methods. /api/health answers 200; `forward-auth --check` probes it
(the image's HEALTHCHECK).
"""
import http.cookies
import http.server
import os
import sys
import urllib.parse
import urllib.request

PORT = int(os.environ.get("FORWARD_AUTH_PORT", "9091"))
COOKIE_NAME = os.environ.get("FORWARD_AUTH_COOKIE_NAME", "authelia_session")
COOKIE_VALUE = os.environ.get("FORWARD_AUTH_COOKIE_VALUE", "")
# Deployed by the real bundle (as service `authelia`), the stand-in has no variable of its own: it accepts the
# session secret the bundle hands Authelia as the cookie value, so a test can read it from the host's secrets/.
if not COOKIE_VALUE and os.environ.get("AUTHELIA_SESSION_SECRET_FILE"):
    try:
        with open(os.environ["AUTHELIA_SESSION_SECRET_FILE"]) as f:
            COOKIE_VALUE = f.read().strip()
    except OSError:
        COOKIE_VALUE = ""
PORTAL_URL = os.environ.get("FORWARD_AUTH_PORTAL_URL", "")
USER = os.environ.get("FORWARD_AUTH_USER", "cloudcode")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "forward-auth-stand-in"

    def _send(self, status, headers=(), body=b""):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _authenticated(self):
        jar = http.cookies.SimpleCookie()
        try:
            jar.load(self.headers.get("Cookie", ""))
        except http.cookies.CookieError:
            return False
        morsel = jar.get(COOKIE_NAME)
        return bool(COOKIE_VALUE) and morsel is not None and morsel.value == COOKIE_VALUE

    def _handle(self):
        path = urllib.parse.urlsplit(self.path).path
        if path == "/api/health":
            return self._send(200, [("Content-Type", "application/json")], b'{"status":"OK"}')
        if path not in ("/api/authz/forward-auth", "/api/verify"):
            return self._send(404, [("Content-Type", "text/plain")], b"not found\n")
        if self._authenticated():
            return self._send(200, [("Remote-User", USER), ("Remote-Groups", "admins"),
                                    ("Remote-Name", USER), ("Remote-Email", USER + "@localhost")])
        proto = self.headers.get("X-Forwarded-Proto", "https")
        host = self.headers.get("X-Forwarded-Host", "")
        uri = self.headers.get("X-Forwarded-Uri", "/")
        method = self.headers.get("X-Forwarded-Method", "GET").upper()
        portal = PORTAL_URL or "https://auth." + host.split(":")[0] + "/"
        query = urllib.parse.urlencode({"rd": f"{proto}://{host}{uri}", "rm": method})
        status = 302 if method in ("GET", "HEAD", "OPTIONS") else 303
        return self._send(status, [("Location", f"{portal}?{query}"), ("Content-Type", "text/plain")],
                          b"redirecting to the login portal\n")

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _handle

    def log_message(self, fmt, *args):  # access log without cookies
        sys.stderr.write("%s %s\n" % (self.address_string(), fmt % args))


def check():
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/api/health", timeout=3) as resp:
            return 0 if resp.status == 200 else 1
    except OSError:
        return 1


def main():
    if sys.argv[1:] == ["--check"]:
        sys.exit(check())
    if not COOKIE_VALUE:
        sys.stderr.write("FORWARD_AUTH_COOKIE_VALUE is not set: every request will be redirected\n")
    server = http.server.ThreadingHTTPServer(("0.0.0.0", PORT), Handler)
    sys.stderr.write(f"forward-auth stand-in listening on :{PORT}\n")
    server.serve_forever()


if __name__ == "__main__":
    main()

"""The HTTP side of the double: sessions (in memory, as Authelia without Redis), the cookie, request dispatch,
forward-auth, the first factor with regulation, user info, state and logout."""
import datetime
import html
import http.server
import json
import secrets
import time
import urllib.parse

import argon2

from .common import LEVEL, MSG_1FA, MSG_FAIL, log
from .config import Config
from .factors import SecondFactors
from .store import Store

SESSIONS = {}


def new_session():
    return {"username": None, "level": 0, "passkey_first": False, "elevated_until": 0, "totp_pending": None,
            "webauthn_state": None, "created": time.time(), "last": time.time(), "remember": False}



class Handler(SecondFactors, http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "authelia-double"
    config: Config = None
    store: Store = None

    # -- plumbing --
    def log_message(self, fmt, *args):
        pass

    def _send(self, status, body=b"", ctype="application/json; charset=utf-8", headers=()):
        if isinstance(body, (dict, list)):
            body = json.dumps(body, separators=(",", ":")).encode()
        elif isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        for name, value in headers:
            self.send_header(name, value)
        if self.session_dirty and self.cookie_cfg is not None:
            self.send_header("Set-Cookie", self._cookie_header())
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.status = status

    def ok(self, data=None, status=200):
        self._send(status, {"status": "OK", **({"data": data} if data is not None else {})})

    def ko(self, status, message):
        self._send(status, {"status": "KO", "message": message})

    def _cookie_header(self):
        c = self.cookie_cfg
        if self.session is None:
            return (f"{c['name']}=; expires=Thu, 01 Jan 1970 00:00:00 GMT; domain={c['domain']}; path=/; HttpOnly; "
                    f"secure; SameSite={c['same_site'].capitalize()}")
        lifetime = c["remember_me"] if self.session["remember"] else c["expiration"]
        expires = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=lifetime)
        return (f"{c['name']}={self.session_id}; expires={expires.strftime('%a, %d %b %Y %H:%M:%S GMT')}; "
                f"domain={c['domain']}; path=/; HttpOnly; secure; SameSite={c['same_site'].capitalize()}")

    def _json(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n == 0:
            return {}
        try:
            value = json.loads(self.rfile.read(n))
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    def _load_session(self):
        """The session named by the cookie of the request's Host (through Caddy: the site's host)."""
        self.cookie_cfg = self.config.cookie_for(self.headers.get("Host"))
        self.session, self.session_id, self.session_dirty = None, None, False
        if self.cookie_cfg is None:
            return
        for part in (self.headers.get("Cookie") or "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == self.cookie_cfg["name"] and value in SESSIONS:
                s = SESSIONS[value]
                now = time.time()
                lifetime = self.cookie_cfg["remember_me"] if s["remember"] else self.cookie_cfg["expiration"]
                if now - s["created"] > lifetime or (not s["remember"] and now - s["last"] > self.cookie_cfg["inactivity"]):
                    del SESSIONS[value]
                    break
                self.session, self.session_id = s, value
        if self.session is None:
            self.session_id = secrets.token_urlsafe(24)
            self.session = new_session()
            SESSIONS[self.session_id] = self.session

    def _touch(self):
        self.session["last"] = time.time()
        self.session_dirty = True

    def _regenerate(self):
        """A new session id on every change of authentication level (as Authelia, against fixation)."""
        SESSIONS.pop(self.session_id, None)
        self.session_id = secrets.token_urlsafe(24)
        SESSIONS[self.session_id] = self.session
        self._touch()

    def _client_ip(self):
        return (self.headers.get("X-Forwarded-For") or self.client_address[0]).split(",")[0].strip()

    def _origin(self):
        proto = self.headers.get("X-Forwarded-Proto", "https")
        return f"{proto}://{self.headers.get('X-Forwarded-Host') or self.headers.get('Host')}"

    def _safe_redirect(self, target):
        """`data.redirect` only for an https URL inside a cookie domain (Authelia's safe redirection)."""
        if not target:
            return None
        parts = urllib.parse.urlsplit(target)
        if parts.scheme != "https" or self.config.cookie_for(parts.hostname) is None:
            return None
        return target

    def _user(self):
        return self.config.users.get(self.session["username"]) if self.session and self.session["username"] else None

    # -- dispatch --
    def _handle(self):
        self.status = 0
        self.username_logged = None
        url = urllib.parse.urlsplit(self.path)
        self.query = urllib.parse.parse_qs(url.query)
        self.config.reload_users()
        self._load_session()
        route = {
            ("GET", "/api/health"): self.health,
            ("GET", "/api/authz/forward-auth"): self.forward_auth,
            ("HEAD", "/api/authz/forward-auth"): self.forward_auth,
            ("GET", "/api/state"): self.state,
            ("POST", "/api/firstfactor"): self.first_factor,
            ("GET", "/api/firstfactor/passkey"): self.passkey_options,
            ("POST", "/api/firstfactor/passkey"): self.passkey_login,
            ("POST", "/api/secondfactor/password"): self.second_factor_password,
            ("GET", "/api/user/info"): self.user_info,
            ("POST", "/api/logout"): self.logout,
            ("GET", "/api/user/session/elevation"): self.elevation_state,
            ("POST", "/api/user/session/elevation"): self.elevation_start,
            ("PUT", "/api/user/session/elevation"): self.elevation_finish,
            ("GET", "/api/secondfactor/totp/register"): self.totp_register_options,
            ("PUT", "/api/secondfactor/totp/register"): self.totp_register_start,
            ("POST", "/api/secondfactor/totp/register"): self.totp_register_finish,
            ("POST", "/api/secondfactor/totp"): self.totp_login,
            ("PUT", "/api/secondfactor/webauthn/credential/register"): self.webauthn_register_start,
            ("POST", "/api/secondfactor/webauthn/credential/register"): self.webauthn_register_finish,
            ("GET", "/api/secondfactor/webauthn"): self.webauthn_options,
            ("POST", "/api/secondfactor/webauthn"): self.webauthn_login,
        }.get((self.command, url.path))
        try:
            if route is not None:
                route()
            elif self.command == "GET" and not url.path.startswith("/api/"):
                self._send(200, "<!DOCTYPE html><title>Login - Authelia</title><div id=root></div>\n",
                           "text/html; charset=utf-8")
            else:
                self._send(404, "404 Not Found", "text/plain; charset=utf-8")
        except Exception as e:  # the double's own fault: say so, never hang the client
            log(level="error", msg="handler failed", path=url.path, error=repr(e))
            if not self.status:
                self.ko(500, MSG_FAIL)
        log(msg="request", method=self.command, path=url.path, status=self.status,
            remote_ip=self._client_ip(), username=self.username_logged or (self.session or {}).get("username"),
            level_now=(self.session or {}).get("level", 0))

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = _handle

    # -- routes --
    def health(self):
        self._send(200, {"status": "OK"})

    def forward_auth(self):
        proto = self.headers.get("X-Forwarded-Proto", "https")
        host = self.headers.get("X-Forwarded-Host", "")
        uri = self.headers.get("X-Forwarded-URI") or self.headers.get("X-Forwarded-Uri") or "/"
        method = (self.headers.get("X-Forwarded-Method") or "GET").upper()
        hostname = host.split(":")[0].lower()
        target_cookie = self.config.cookie_for(hostname)
        if target_cookie is None:
            log(level="error", msg="target URL is not within a configured cookie domain", host=host)
            return self.ko(400, MSG_FAIL)
        policy = self.config.policy(hostname, method)
        if self.session is not None:
            self._touch()
        level = self.session["level"] if self.session else 0
        if policy != "deny" and level >= LEVEL[policy]:
            u = self._user() or {}
            headers = [] if policy == "bypass" and not u else [
                ("Remote-User", self.session["username"]), ("Remote-Groups", ",".join(u.get("groups") or [])),
                ("Remote-Name", u.get("displayname", "")), ("Remote-Email", u.get("email", ""))]
            return self._send(200, "", "text/plain; charset=utf-8", headers)
        if policy == "deny" and level >= 1:
            return self._send(403, "403 Forbidden", "text/plain; charset=utf-8")
        portal = target_cookie["authelia_url"]
        if not urllib.parse.urlsplit(portal).path:
            portal += "/"  # Authelia's URL of an empty path is "/"
        asked = (self.query.get("authelia_url") or [None])[0]
        if asked:
            parts = urllib.parse.urlsplit(asked)
            if parts.scheme == "https" and self.config.cookie_for(parts.hostname) is target_cookie:
                portal = asked  # checked by host only: a port is kept
            else:
                log(level="error", msg="authelia_url is not within the cookie domain", authelia_url=asked)
                return self.ko(400, MSG_FAIL)
        target = f"{proto}://{host}{uri}"
        location = f"{portal}?rd={urllib.parse.quote_plus(target, safe='')}&rm={method}"
        accept = self.headers.get("Accept", "")
        xhr = self.headers.get("X-Requested-With", "").lower() == "xmlhttprequest"
        html_ok = (not accept) or any(m.split(";")[0].strip() in ("text/html", "text/*", "*/*") for m in accept.split(","))
        if xhr or not html_ok:
            status, text = 401, "401 Unauthorized"
        elif method in ("GET", "HEAD", "OPTIONS"):
            status, text = 302, "302 Found"
        else:
            status, text = 303, "303 See Other"
        # Through Caddy (Host: the site) the body links the portal; called directly (Host: authelia) it is empty.
        body = f'<a href="{html.escape(location)}">{text}</a>' if self.cookie_cfg is not None else ""
        self._send(status, body, "text/html; charset=utf-8", [("Location", location)])

    def state(self):
        self._send(200, {"status": "OK", "data": {
            "username": self.session["username"] or "" if self.session else "",
            "authentication_level": self.session["level"] if self.session else 0,
            "factor_knowledge": bool(self.session and self.session["level"] >= 1 and not self.session["passkey_first"]),
            "default_redirection_url": (self.cookie_cfg or {}).get("default_redirection_url") or ""}})

    def _banned(self, username):
        now = time.time()
        fails = self.store.failures_since(username, now - self.config.find_time - self.config.ban_time)
        if len(fails) >= self.config.max_retries:
            window = fails[: self.config.max_retries]
            if window[0] - window[-1] <= self.config.find_time and now < window[0] + self.config.ban_time:
                return True
        return False

    def _attempt(self, username, ok):
        self.store.q("INSERT INTO authentication_logs VALUES (?, ?, ?)", username, 1 if ok else 0, time.time())

    def _check_password(self, username, password):
        user = self.config.users.get(username)
        if user is None or user.get("disabled"):
            return False
        try:
            return argon2.PasswordHasher().verify(user["password"], password)
        except argon2.exceptions.VerificationError:
            return False
        except argon2.exceptions.InvalidHashError:
            return False

    def first_factor(self):
        body = self._json()
        if body is None or not isinstance(body.get("username"), str) or not isinstance(body.get("password"), str):
            return self.ko(400, MSG_1FA)
        username = body["username"]
        self.username_logged = username
        if self._banned(username):
            log(level="error", msg="unsuccessful 1FA authentication attempt: user is banned", username=username)
            self._attempt(username, False)
            return self.ko(401, MSG_1FA)
        if not self._check_password(username, body["password"]):
            self._attempt(username, False)
            log(level="error", msg="unsuccessful 1FA authentication attempt", username=username)
            return self.ko(401, MSG_1FA)
        self._attempt(username, True)
        self.session.update(username=username, level=1, passkey_first=False, elevated_until=0,
                            remember=bool(body.get("keepMeLoggedIn")))
        self._regenerate()
        target = self._safe_redirect(body.get("targetURL"))
        if target and self.config.policy(urllib.parse.urlsplit(target).hostname, body.get("requestMethod") or "GET") == "one_factor":
            return self.ok({"redirect": target})
        self.ok()

    def user_info(self):
        u = self._user()
        if u is None:
            return self.ko(403, MSG_FAIL)
        name = self.session["username"]
        has_webauthn = bool(self.store.credentials(name))
        has_totp = self.store.totp(name) is not None
        self.ok({"display_name": u.get("displayname", name), "emails": [u.get("email", "")],
                 "method": "webauthn" if has_webauthn or not has_totp else "totp",
                 "has_webauthn": has_webauthn, "has_totp": has_totp, "has_duo": False})

    def logout(self):
        SESSIONS.pop(self.session_id, None)
        self.session = None
        self.session_dirty = True
        self.ok()

    # elevation: a one-time code sent by the notifier

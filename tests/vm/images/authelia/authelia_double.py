#!/usr/bin/python3
"""Contract double of Authelia 4.39.20 (cloudcode's test image `cloudcode-test/authelia-double`).

Authelia cannot be built here, so the tests run this in its place. It is held to recordings of the real
Authelia answering our rendered stack (tests/fixtures/authelia/, replayed by tests/tests/authelia_double.rs):
where the two disagree, this file is wrong.

What it checks like Authelia: it reads /config/configuration.yml, the users file it names and the secrets
named by AUTHELIA_*_FILE exactly as deployed, and refuses to start (exit 1, one line) on a configuration key
the pinned version does not know (config-keys.txt beside this file), a missing secret, an encryption key under
20 characters or one that does not open the existing database, and a cookie domain that is a public suffix.
It serves the routes users and our tests touch: forward-auth (access rules, default deny, 302/303 for a
browser, 401 for XHR/JSON, `authelia_url`), first factor (argon2id, regulation ban), elevation by one-time
code written to the filesystem notifier in 4.39.20's layout, TOTP registration and login (period, digits,
algorithm and skew from the configuration; a used code refused), WebAuthn registration and login verified by
the `fido2` library (credProps.rk marks a passkey), passkey login as the first factor followed by the password,
user info, logout, health. Sessions live in memory (a restart logs everyone out, as Authelia without Redis);
registrations live in storage.local.path (the authelia_data volume). One JSON log line per request on stdout,
without secrets.
"""
import base64
import datetime
import hashlib
import hmac
import html
import http.server
import json
import os
import re
import secrets
import socketserver
import sqlite3
import sys
import threading
import time
import urllib.parse
import urllib.request

import argon2
import pyotp
import fido2.features
import yaml
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from fido2.server import Fido2Server
from fido2.utils import websafe_decode, websafe_encode
from fido2.webauthn import (
    AttestedCredentialData,
    AuthenticationResponse,
    PublicKeyCredentialRpEntity,
    PublicKeyCredentialUserEntity,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)
from publicsuffixlist import PublicSuffixList

VERSION = "4.39.20"
HERE = os.path.dirname(os.path.abspath(__file__))
KEYS_FILE = os.environ.get("AUTHELIA_DOUBLE_KEYS", os.path.join(HERE, "config-keys.txt"))
CODE_CHARSET = "ABCDEFGHJKLMNPQRTUVWYXZ2346789"
LEVEL = {"bypass": 0, "one_factor": 1, "two_factor": 2}
MSG_1FA = "Authentication failed. Check your credentials."
MSG_2FA = "Authentication failed, please retry later."
MSG_FAIL = "Operation failed."
LOCK = threading.Lock()
# Registration and assertion responses arrive as the browser's JSON (base64url strings).
fido2.features.webauthn_json_mapping.enabled = True


def mounted(path):
    """A path inside the container; AUTHELIA_DOUBLE_ROOT maps it (`/config/x` -> `$ROOT/config/x`) when the
    double runs outside one, as the replay test runs it."""
    root = os.environ.get("AUTHELIA_DOUBLE_ROOT")
    return os.path.join(root, path.lstrip("/")) if root and os.path.isabs(path) else path


class Refused(Exception):
    """Authelia would not start with this configuration."""


def log(**fields):
    fields = {"level": "info", "time": datetime.datetime.now(datetime.timezone.utc).isoformat(), **fields}
    sys.stdout.write(json.dumps(fields, sort_keys=True) + "\n")
    sys.stdout.flush()


def duration(value, default):
    """Authelia's durations: '10 minutes', '1 month', '2 hours 30 minutes', '90s', '5m', plain seconds."""
    if value is None:
        return default
    if isinstance(value, int):
        return value
    units = {"s": 1, "second": 1, "m": 60, "minute": 60, "h": 3600, "hour": 3600, "d": 86400, "day": 86400,
             "w": 604800, "week": 604800, "M": 2592000, "month": 2592000, "y": 31536000, "year": 31536000}
    pairs = re.findall(r"(\d+)\s*([A-Za-z]*)", str(value))
    if not pairs or re.sub(r"[\d\sA-Za-z]", "", str(value)):
        raise Refused(f"could not parse '{value}' as a duration")
    total = 0
    for number, unit in pairs:
        unit = unit or "s"
        unit = unit if unit in units else unit[:-1] if unit.endswith("s") else unit
        if unit not in units:
            raise Refused(f"could not parse '{value}' as a duration")
        total += int(number) * units[unit]
    return total


# ---- configuration ---------------------------------------------------------------------------------------
def flatten(value, prefix=""):
    """Dotted configuration keys, with `[]` for lists of maps, as Authelia's schema lists them."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from flatten(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(value, list) and any(isinstance(i, dict) for i in value):
        yield prefix
        for item in value:
            yield from flatten(item, prefix + "[]")
    else:
        yield prefix


def load_config(path):
    with open(KEYS_FILE) as f:
        known = {line.strip() for line in f if line.strip() and not line.startswith("#")}
    with open(path) as f:
        cfg = yaml.safe_load(f) or {}
    for key in flatten(cfg):
        if key not in known:
            raise Refused(f"configuration key not expected: {key}")
    # Secrets by file, as the bundle hands them over: AUTHELIA_SESSION_SECRET_FILE -> session.secret.
    by_env = {k.replace(".", "_").upper(): k for k in known}
    for name, file in sorted(os.environ.items()):
        if not (name.startswith("AUTHELIA_") and name.endswith("_FILE")) or name.startswith("AUTHELIA_DOUBLE"):
            continue
        key = by_env.get(name[len("AUTHELIA_"):-len("_FILE")])
        if key is None:
            raise Refused(f"environment variable not expected: {name}")
        try:
            with open(file) as f:
                content = f.read().strip()
        except OSError as e:
            raise Refused(f"could not load the secret file for {key}: {e.strerror}")
        node = cfg
        *parents, last = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = content
    return cfg


class Config:
    def __init__(self, cfg):
        self.raw = cfg
        session = cfg.get("session") or {}
        if not session.get("secret"):
            raise Refused("session: option 'secret' is required")
        storage = cfg.get("storage") or {}
        key = storage.get("encryption_key") or ""
        if not key:
            raise Refused("storage: option 'encryption_key' is required")
        if len(key) < 20:
            raise Refused("storage: option 'encryption_key' must be 20 characters or longer")
        self.encryption_key = key
        if not (storage.get("local") or {}).get("path"):
            raise Refused("storage: option 'local.path' is required (the double keeps SQLite storage only)")
        self.db_path = mounted(storage["local"]["path"])
        psl = PublicSuffixList()
        self.cookies = []
        for i, c in enumerate(session.get("cookies") or []):
            domain = c.get("domain", "")
            if psl.privatesuffix(domain) is None:
                raise Refused(f"session: domain config #{i + 1} (domain '{domain}'): option 'domain' is not a "
                              "valid cookie domain: the domain is part of the special public suffix list")
            self.cookies.append({
                "domain": domain,
                "authelia_url": c.get("authelia_url"),
                "default_redirection_url": c.get("default_redirection_url"),
                "name": c.get("name", session.get("name", "authelia_session")),
                "same_site": c.get("same_site", session.get("same_site", "lax")),
                "expiration": duration(c.get("expiration", session.get("expiration")), 3600),
                "inactivity": duration(c.get("inactivity", session.get("inactivity")), 300),
                "remember_me": duration(c.get("remember_me", session.get("remember_me")), 2592000),
            })
        if not self.cookies:
            raise Refused("session: option 'cookies' is required")
        ac = cfg.get("access_control") or {}
        self.default_policy = ac.get("default_policy", "deny")
        self.rules = []
        for i, r in enumerate(ac.get("rules") or []):
            unsupported = set(r) - {"domain", "policy", "methods"}
            if unsupported:
                raise Refused(f"access_control: rule #{i + 1}: the double does not implement {sorted(unsupported)}")
            domains = r["domain"] if isinstance(r["domain"], list) else [r["domain"]]
            self.rules.append((domains, r.get("policy", "deny"), [m.upper() for m in r.get("methods") or []]))
        reg = cfg.get("regulation") or {}
        self.max_retries = int(reg.get("max_retries", 3))
        self.find_time = duration(reg.get("find_time"), 120)
        self.ban_time = duration(reg.get("ban_time"), 300)
        totp = cfg.get("totp") or {}
        self.totp = {
            "issuer": totp.get("issuer", "Authelia"),
            "algorithm": str(totp.get("algorithm", "SHA1")).upper(),
            "digits": int(totp.get("digits", 6)),
            "period": int(totp.get("period", 30)),
            "skew": int(totp.get("skew", 1)),
            "secret_size": int(totp.get("secret_size", 32)),
            "allowed_algorithms": [a.upper() for a in totp.get("allowed_algorithms", ["SHA1"])],
            "allowed_digits": totp.get("allowed_digits", [6]),
            "allowed_periods": totp.get("allowed_periods", [30]),
        }
        wa = cfg.get("webauthn") or {}
        self.webauthn_disabled = bool(wa.get("disable", False))
        self.passkey_login = bool(wa.get("enable_passkey_login", False))
        self.webauthn_display_name = wa.get("display_name", "Authelia")
        self.webauthn_timeout_ms = duration(wa.get("timeout"), 60) * 1000
        el = ((cfg.get("identity_validation") or {}).get("elevated_session") or {})
        self.code_lifespan = duration(el.get("code_lifespan"), 300)
        self.elevation_lifespan = duration(el.get("elevation_lifespan"), 600)
        self.code_length = int(el.get("characters", 8))
        notifier = cfg.get("notifier") or {}
        if not (notifier.get("filesystem") or {}).get("filename"):
            raise Refused("notifier: you must ensure either the 'smtp' or 'filesystem' notifier is configured")
        self.notifier_file = mounted(notifier["filesystem"]["filename"])
        ab = (cfg.get("authentication_backend") or {}).get("file") or {}
        if not ab.get("path"):
            raise Refused("authentication_backend: you must ensure either the 'file' or 'ldap' backend is configured")
        self.users_path = mounted(ab["path"])
        address = (cfg.get("server") or {}).get("address", "tcp://:9091/")
        self.port = int(urllib.parse.urlsplit(address).port or 9091)
        self.users = self.load_users()

    def load_users(self):
        with open(self.users_path) as f:
            users = (yaml.safe_load(f) or {}).get("users") or {}
        for name, u in users.items():
            if not str(u.get("password", "")).startswith("$argon2id$"):
                raise Refused(f"authentication_backend: file: user '{name}': the password is not an argon2id hash")
        return users

    def cookie_for(self, host):
        hostname = (host or "").split(":")[0].lower()
        for c in self.cookies:
            if hostname == c["domain"] or hostname.endswith("." + c["domain"]):
                return c
        return None

    def policy(self, hostname, method):
        for domains, policy, methods in self.rules:
            if methods and method not in methods:
                continue
            for d in domains:
                if hostname == d or (d.startswith("*.") and hostname.endswith(d[1:])):
                    return policy
        return self.default_policy


# ---- storage (the authelia_data volume) -----------------------------------------------------------------
class Store:
    def __init__(self, path, encryption_key):
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.db.executescript("""
            CREATE TABLE IF NOT EXISTS encryption (name TEXT PRIMARY KEY, value TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS user_opaque_identifier (username TEXT PRIMARY KEY, handle TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS totp_configurations (username TEXT PRIMARY KEY, secret TEXT NOT NULL,
                algorithm TEXT NOT NULL, digits INTEGER NOT NULL, period INTEGER NOT NULL);
            CREATE TABLE IF NOT EXISTS totp_history (username TEXT NOT NULL, step INTEGER NOT NULL);
            CREATE TABLE IF NOT EXISTS webauthn_credentials (credential_id TEXT PRIMARY KEY, username TEXT NOT NULL,
                description TEXT NOT NULL, data TEXT NOT NULL, sign_count INTEGER NOT NULL,
                discoverable INTEGER NOT NULL);
            CREATE TABLE IF NOT EXISTS authentication_logs (username TEXT NOT NULL, successful INTEGER NOT NULL,
                time REAL NOT NULL);
            CREATE TABLE IF NOT EXISTS one_time_codes (public_id TEXT PRIMARY KEY, username TEXT NOT NULL,
                code TEXT NOT NULL, expires REAL NOT NULL, consumed INTEGER NOT NULL DEFAULT 0);
        """)
        # Authelia encrypts stored secrets with storage.encryption_key and refuses to start when the key does
        # not open the database (its check value).
        self.key = hashlib.sha256(encryption_key.encode()).digest()
        check = hmac.new(self.key, b"cloudcode-authelia-double-check", hashlib.sha256).hexdigest()
        row = self.db.execute("SELECT value FROM encryption WHERE name = 'check'").fetchone()
        if row is None:
            self.db.execute("INSERT INTO encryption VALUES ('check', ?)", (check,))
        elif not hmac.compare_digest(row[0], check):
            raise Refused("the configured encryption key does not appear to be valid for this database which may "
                          "occur if the encryption key was changed in the configuration")

    def encrypt(self, text):
        nonce = secrets.token_bytes(12)
        return base64.b64encode(nonce + AESGCM(self.key).encrypt(nonce, text.encode(), None)).decode()

    def decrypt(self, blob):
        raw = base64.b64decode(blob)
        return AESGCM(self.key).decrypt(raw[:12], raw[12:], None).decode()

    def q(self, sql, *args):
        with LOCK:
            return self.db.execute(sql, args).fetchall()

    def user_handle(self, username):
        row = self.q("SELECT handle FROM user_opaque_identifier WHERE username = ?", username)
        if row:
            return websafe_decode(row[0][0])
        handle = secrets.token_urlsafe(48).encode()
        self.q("INSERT INTO user_opaque_identifier VALUES (?, ?)", username, websafe_encode(handle))
        return handle

    def totp(self, username):
        row = self.q("SELECT secret, algorithm, digits, period FROM totp_configurations WHERE username = ?", username)
        if not row:
            return None
        secret, algorithm, digits, period = row[0]
        return {"secret": self.decrypt(secret), "algorithm": algorithm, "digits": digits, "period": period}

    def credentials(self, username=None):
        rows = self.q("SELECT credential_id, username, description, data, sign_count, discoverable "
                      "FROM webauthn_credentials" + (" WHERE username = ?" if username else ""),
                      *([username] if username else []))
        return [{"id": r[0], "username": r[1], "description": r[2],
                 "data": AttestedCredentialData(websafe_decode(r[3])), "sign_count": r[4],
                 "discoverable": bool(r[5])} for r in rows]

    def failures_since(self, username, since):
        rows = self.q("SELECT successful, time FROM authentication_logs WHERE username = ? AND time >= ? "
                      "ORDER BY time DESC", username, since)
        fails = []
        for ok, t in rows:  # consecutive failures, newest first, stop at a success
            if ok:
                break
            fails.append(t)
        return fails


# ---- the HTTP service -----------------------------------------------------------------------------------
SESSIONS = {}


def new_session():
    return {"username": None, "level": 0, "passkey_first": False, "elevated_until": 0, "totp_pending": None,
            "webauthn_state": None, "created": time.time(), "last": time.time(), "remember": False}


def totp_at(cfg, step):
    digest = {"SHA1": hashlib.sha1, "SHA256": hashlib.sha256, "SHA512": hashlib.sha512}[cfg["algorithm"]]
    return pyotp.TOTP(cfg["secret"], digits=cfg["digits"], digest=digest, interval=cfg["period"]).generate_otp(step)


class Handler(http.server.BaseHTTPRequestHandler):
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

    def _elevated(self):
        return self.session["level"] >= 1 and self.session["elevated_until"] > time.time()

    def _fido(self):
        rp_id = (self.headers.get("X-Forwarded-Host") or self.headers.get("Host") or "").split(":")[0]
        origin = self._origin()
        return Fido2Server(PublicKeyCredentialRpEntity(name=self.config.webauthn_display_name, id=rp_id),
                           verify_origin=lambda o: o == origin), rp_id

    # -- dispatch --
    def _handle(self):
        self.status = 0
        self.username_logged = None
        url = urllib.parse.urlsplit(self.path)
        self.query = urllib.parse.parse_qs(url.query)
        self.config.users = self.config.load_users()  # `watch: true`: the users file is re-read
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
    def elevation_state(self):
        if self.session["level"] < 1:
            return self.ko(403, MSG_FAIL)
        self.ok({"require_second_factor": False, "skip_second_factor": False, "can_skip_second_factor": False,
                 "elevated": self._elevated(),
                 "expires": max(0, int(self.session["elevated_until"] - time.time()))})

    def elevation_start(self):
        u = self._user()
        if u is None or self.session["level"] < 1:
            return self.ko(403, MSG_FAIL)
        code = "".join(secrets.choice(CODE_CHARSET) for _ in range(self.config.code_length))
        public_id = websafe_encode(secrets.token_bytes(16))
        self.store.q("INSERT INTO one_time_codes VALUES (?, ?, ?, ?, 0)", public_id, self.session["username"],
                     hashlib.sha256(code.encode()).hexdigest(), time.time() + self.config.code_lifespan)
        self._notify(u, code, public_id)
        self.ok({"delete_id": public_id})

    def _notify(self, user, code, public_id):
        """The filesystem notifier of 4.39.20: truncated on each message; the code alone between 40-dash rules."""
        now = datetime.datetime.now(datetime.timezone.utc)
        name = user.get("displayname", self.session["username"])
        portal = f"{self._origin()}/"
        rule = "-" * 40
        text = "\n".join([
            f"Date: {now.strftime('%Y-%m-%d %H:%M:%S.%f')}000 +0000 UTC m=+{time.monotonic():.9f}",
            f"Recipient: {{{name} {user.get('email', '')}}}",
            "Subject: Confirm your identity",
            "A ONE-TIME CODE HAS BEEN GENERATED TO COMPLETE A REQUESTED ACTION", "",
            f"Hi {name},", "",
            "This notification has been sent to you in order to verify your identity to change security details "
            f"for your account at {self.cookie_cfg['domain']}.", "",
            "Do not share this notification or the content of this notification with anyone.", "",
            "The following one-time code should only be used in the prompt displayed in your browser.", "",
            rule, "", code, "", rule, "",
            "If you did not initiate the process your credentials may have been compromised and you should:", "",
            " 1. Revoke this code using the provided links below",
            " 2. Reset your password or other login credentials",
            " 3. Contact an Administrator", "",
            "To revoke the code, click the link below:", "",
            f"{portal}revoke/one-time-code?id={public_id}", "",
            rule, "",
            f"This notification was intended for {name}. This one-time code was generated due to an action from "
            f"{self._client_ip()}. If you do not believe that your actions could have triggered this event or if "
            "you are concerned about your account's safety, please follow the explicit directions in this "
            "notification.", "",
            "Powered by Authelia https://www.authelia.com", "", ""])
        path = self.config.notifier_file
        tmp = f"{path}.{os.getpid()}"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, path)
        log(msg="one-time code sent by the filesystem notifier", username=self.session["username"], file=path)

    def elevation_finish(self):
        body = self._json()
        if self.session["level"] < 1 or body is None or not isinstance(body.get("otc"), str):
            return self.ko(403 if self.session["level"] < 1 else 400, MSG_FAIL)
        digest = hashlib.sha256(body["otc"].strip().upper().encode()).hexdigest()
        rows = self.store.q("SELECT public_id FROM one_time_codes WHERE username = ? AND code = ? AND consumed = 0 "
                            "AND expires > ?", self.session["username"], digest, time.time())
        if not rows:
            log(level="error", msg="one-time code refused", username=self.session["username"])
            return self.ko(403, MSG_FAIL)
        self.store.q("UPDATE one_time_codes SET consumed = 1 WHERE public_id = ?", rows[0][0])
        self.session["elevated_until"] = time.time() + self.config.elevation_lifespan
        self._touch()
        self.ok()

    # TOTP
    def totp_register_options(self):
        if self.session["level"] < 1:
            return self.ko(403, MSG_FAIL)
        t = self.config.totp
        self._touch()
        self.ok({"algorithm": t["algorithm"], "algorithms": t["allowed_algorithms"], "length": t["digits"],
                 "lengths": t["allowed_digits"], "period": t["period"], "periods": t["allowed_periods"]})

    def totp_register_start(self):
        if not self._elevated():
            return self.ko(403, MSG_FAIL)
        body = self._json() or {}
        t = self.config.totp
        algorithm = str(body.get("algorithm", t["algorithm"])).upper()
        digits, period = body.get("length", t["digits"]), body.get("period", t["period"])
        if algorithm not in t["allowed_algorithms"] or digits not in t["allowed_digits"] \
                or period not in t["allowed_periods"]:
            return self.ko(400, MSG_FAIL)
        secret = base64.b32encode(secrets.token_bytes(t["secret_size"])).decode().rstrip("=")
        self.session["totp_pending"] = {"secret": secret, "algorithm": algorithm, "digits": digits, "period": period}
        self._touch()
        issuer, user = t["issuer"], self.session["username"]
        query = urllib.parse.urlencode({"algorithm": algorithm, "digits": digits, "issuer": issuer,
                                        "period": period, "secret": secret})
        self.ok({"base32_secret": secret,
                 "otpauth_url": f"otpauth://totp/{urllib.parse.quote(issuer)}:{urllib.parse.quote(user)}?{query}"})

    def _totp_valid(self, username, cfg, token, record):
        if not isinstance(token, str) or len(token) != cfg["digits"] or not token.isdigit():
            return False
        now = int(time.time()) // cfg["period"]
        used = {r[0] for r in self.store.q("SELECT step FROM totp_history WHERE username = ?", username)}
        for step in range(now - self.config.totp["skew"], now + self.config.totp["skew"] + 1):
            if hmac.compare_digest(totp_at(cfg, step), token):
                if step in used:
                    log(level="error", msg="TOTP code already used", username=username)
                    return False
                if record:
                    self.store.q("INSERT INTO totp_history VALUES (?, ?)", username, step)
                return True
        return False

    def totp_register_finish(self):
        pending = self.session.get("totp_pending")
        body = self._json() or {}
        if not self._elevated() or pending is None:
            return self.ko(403, MSG_FAIL)
        name = self.session["username"]
        if not self._totp_valid(name, pending, body.get("token"), record=True):
            return self.ko(400, MSG_FAIL)
        self.store.q("INSERT OR REPLACE INTO totp_configurations VALUES (?, ?, ?, ?, ?)", name,
                     self.store.encrypt(pending["secret"]), pending["algorithm"], pending["digits"], pending["period"])
        self.session["totp_pending"] = None
        self._touch()
        log(msg="TOTP registered", username=name)
        self.ok()

    def _second_factor_done(self, target):
        self.session["level"] = 2
        self._regenerate()
        target = self._safe_redirect(target)
        self.ok({"redirect": target} if target else None)

    def totp_login(self):
        body = self._json() or {}
        name = self.session["username"]
        if self.session["level"] < 1:
            return self.ko(401, MSG_2FA)
        cfg = self.store.totp(name)
        if self._banned(name) or cfg is None or not self._totp_valid(name, cfg, body.get("token"), record=True):
            self._attempt(name, False)
            return self.ko(401, MSG_2FA)
        self._attempt(name, True)
        self._second_factor_done(body.get("targetURL"))

    # WebAuthn
    def _descriptor(self, cred):
        return {"type": "public-key", "id": cred["id"], "transports": ["internal"]}

    def webauthn_register_start(self):
        if self.config.webauthn_disabled or not self._elevated():
            return self.ko(403, MSG_FAIL)
        body = self._json() or {}
        description = body.get("description")
        if not isinstance(description, str) or not description.strip():
            return self.ko(400, MSG_FAIL)
        name, u = self.session["username"], self._user()
        if any(c["description"] == description for c in self.store.credentials(name)):
            return self.ko(409, MSG_FAIL)
        server, rp_id = self._fido()
        handle = self.store.user_handle(name)
        existing = self.store.credentials(name)
        _, state = server.register_begin(
            PublicKeyCredentialUserEntity(name=name, id=handle, display_name=u.get("displayname", name)),
            [c["data"] for c in existing], resident_key_requirement=ResidentKeyRequirement.PREFERRED,
            user_verification=UserVerificationRequirement.PREFERRED)
        self.session["webauthn_state"] = {"kind": "register", "state": state, "description": description}
        self._touch()
        self.ok({"publicKey": {
            "rp": {"name": self.config.webauthn_display_name, "id": rp_id},
            "user": {"name": name, "displayName": u.get("displayname", name), "id": websafe_encode(handle)},
            "challenge": state["challenge"],
            "pubKeyCredParams": [{"type": "public-key", "alg": a} for a in (-7, -35, -36, -257, -258, -259, -37, -38, -39, -8)],
            "timeout": self.config.webauthn_timeout_ms,
            "excludeCredentials": [self._descriptor(c) for c in existing],
            "authenticatorSelection": {"residentKey": "preferred", "requireResidentKey": False,
                                       "userVerification": "preferred"},
            "attestation": "indirect",
            "extensions": {"credProps": True}}})

    def webauthn_register_finish(self):
        pending = self.session.get("webauthn_state")
        body = self._json()
        if not self._elevated() or not pending or pending["kind"] != "register" or body is None:
            return self.ko(403, MSG_FAIL)
        server, _ = self._fido()
        try:
            auth_data = server.register_complete(pending["state"], body)
        except Exception as e:
            log(level="error", msg="webauthn registration refused", error=str(e))
            return self.ko(400, MSG_FAIL)
        finally:
            self.session["webauthn_state"] = None
        cred = auth_data.credential_data
        rk = ((body.get("clientExtensionResults") or {}).get("credProps") or {}).get("rk") is True
        self.store.q("INSERT INTO webauthn_credentials VALUES (?, ?, ?, ?, ?, ?)", websafe_encode(cred.credential_id),
                     self.session["username"], pending["description"], websafe_encode(bytes(cred)),
                     auth_data.counter, 1 if rk else 0)
        self._touch()
        log(msg="webauthn credential registered", username=self.session["username"], discoverable=rk)
        self.ok(status=201)

    def _assertion_options(self, creds, kind):
        server, rp_id = self._fido()
        _, state = server.authenticate_begin([c["data"] for c in creds] or None,
                                             user_verification=UserVerificationRequirement.PREFERRED)
        self.session["webauthn_state"] = {"kind": kind, "state": state}
        self._touch()
        key = {"challenge": state["challenge"], "timeout": self.config.webauthn_timeout_ms, "rpId": rp_id}
        if kind == "2fa":
            key["allowCredentials"] = [self._descriptor(c) for c in creds]
        key["userVerification"] = "preferred"
        self.ok({"publicKey": key})

    def _verify_assertion(self, kind, body, creds):
        """The credential that signed `body['response']`, its counter checked and carried on; None if refused."""
        pending = self.session.get("webauthn_state")
        self.session["webauthn_state"] = None
        if not pending or pending["kind"] != kind or not isinstance((body or {}).get("response"), dict):
            return None, 403
        server, _ = self._fido()
        try:
            matched = server.authenticate_complete(pending["state"], [c["data"] for c in creds], body["response"])
            counter = AuthenticationResponse.from_dict(body["response"]).response.authenticator_data.counter
        except Exception as e:
            log(level="error", msg="webauthn assertion refused", error=str(e))
            return None, 401
        cred = next(c for c in creds if c["data"].credential_id == matched.credential_id)
        if counter != 0 or cred["sign_count"] != 0:
            if counter <= cred["sign_count"]:
                log(level="error", msg="webauthn sign count did not increase (cloned authenticator?)",
                    username=cred["username"])
                return None, 403
        self.store.q("UPDATE webauthn_credentials SET sign_count = ? WHERE credential_id = ?", counter, cred["id"])
        return cred, 200

    def webauthn_options(self):
        if self.config.webauthn_disabled or self.session["level"] < 1:
            return self.ko(403, MSG_FAIL)
        creds = self.store.credentials(self.session["username"])
        if not creds:
            return self.ko(400, MSG_FAIL)
        self._assertion_options(creds, "2fa")

    def webauthn_login(self):
        body = self._json()
        if self.session["level"] < 1:
            return self.ko(401, MSG_2FA)
        name = self.session["username"]
        cred, status = self._verify_assertion("2fa", body, self.store.credentials(name))
        if cred is None:
            self._attempt(name, False)
            self._touch()
            return self.ko(status, MSG_2FA)
        self._attempt(name, True)
        self._second_factor_done(body.get("targetURL"))

    def passkey_options(self):
        if self.config.webauthn_disabled or not self.config.passkey_login:
            return self.ko(403, MSG_FAIL)
        self._assertion_options([], "passkey")

    def passkey_login(self):
        body = self._json()
        if not self.config.passkey_login:
            return self.ko(403, MSG_FAIL)
        cred_id = ((body or {}).get("response") or {}).get("id")
        creds = [c for c in self.store.credentials() if c["discoverable"] and c["id"] == cred_id]
        handle = (((body or {}).get("response") or {}).get("response") or {}).get("userHandle")
        if not creds or handle != websafe_encode(self.store.user_handle(creds[0]["username"])):
            log(level="error", msg="passkey login refused: Unable to find the credential")
            self.session["webauthn_state"] = None
            return self.ko(401, MSG_1FA)
        name = creds[0]["username"]
        self.username_logged = name
        if self._banned(name):
            return self.ko(401, MSG_1FA)
        cred, status = self._verify_assertion("passkey", body, creds)
        if cred is None:
            self._attempt(name, False)
            return self.ko(status, MSG_1FA)
        self._attempt(name, True)
        # One factor in 4.39: with two_factor rules the password follows at /api/secondfactor/password.
        self.session.update(username=name, level=1, passkey_first=True, elevated_until=0,
                            remember=bool(body.get("keepMeLoggedIn")))
        self._regenerate()
        self.ok()

    def second_factor_password(self):
        body = self._json() or {}
        if self.session["level"] < 1 or not self.session["passkey_first"]:
            return self.ko(401, MSG_2FA)
        name = self.session["username"]
        if self._banned(name) or not self._check_password(name, body.get("password") or ""):
            self._attempt(name, False)
            return self.ko(401, MSG_2FA)
        self._attempt(name, True)
        self._second_factor_done(body.get("targetURL"))


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def check(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=3) as r:
            return 0 if r.status == 200 else 1
    except OSError:
        return 1


def main(argv):
    path = os.environ.get("AUTHELIA_DOUBLE_CONFIG", "/config/configuration.yml")
    if "--config" in argv:
        path = argv[argv.index("--config") + 1]
    if "--check" in argv:
        return check(int(os.environ.get("AUTHELIA_DOUBLE_PORT", "9091")))
    try:
        config = Config(load_config(mounted(path)))
        store = Store(config.db_path, config.encryption_key)
    except Refused as e:
        log(level="fatal", msg=f"Can't continue due to the errors loading the configuration: {e}")
        return 1
    except (OSError, yaml.YAMLError) as e:
        log(level="fatal", msg=f"Can't continue due to the errors loading the configuration: {e}")
        return 1
    Handler.config, Handler.store = config, store
    port = int(os.environ.get("AUTHELIA_DOUBLE_PORT", config.port))
    server = Server(("", port), Handler)
    log(msg=f"Authelia contract double of {VERSION} is starting", port=port, configuration=path)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

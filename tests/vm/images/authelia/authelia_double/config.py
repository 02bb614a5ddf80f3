"""The configuration as Authelia reads it: the rendered YAML checked against the pinned version's keys, the
secrets from AUTHELIA_*_FILE, and what Authelia refuses at start-up."""
import os
import re
import urllib.parse

import yaml
from publicsuffixlist import PublicSuffixList

from .common import Refused, mounted

KEYS_FILE = os.environ.get("AUTHELIA_DOUBLE_KEYS",
                           os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "config-keys.txt"))


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
        self.users_mtime = None
        self.users = {}
        self.reload_users()

    def reload_users(self):
        """`watch: true`: re-reads the users file when it changed (by modification time), not on every request."""
        mtime = os.stat(self.users_path).st_mtime_ns
        if mtime != self.users_mtime:
            self.users = self.load_users()
            self.users_mtime = mtime

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

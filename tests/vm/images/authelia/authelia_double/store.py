"""Storage at storage.local.path (the authelia_data volume): SQLite, secrets encrypted with a key derived from
storage.encryption_key, which must open the database it finds."""
import base64
import hashlib
import hmac
import os
import secrets
import sqlite3

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from fido2.utils import websafe_decode, websafe_encode
from fido2.webauthn import AttestedCredentialData

from .common import LOCK, Refused


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

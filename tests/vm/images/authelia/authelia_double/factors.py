"""The second factors and what guards their registration: elevation by one-time code, TOTP, WebAuthn (verified
by fido2), passkey login and the password as second factor after it. A mixin of the portal's handler."""
import base64
import hashlib
import hmac
import secrets
import time
import urllib.parse

import pyotp
from fido2.server import Fido2Server
from fido2.utils import websafe_encode
from fido2.webauthn import (
    AuthenticationResponse,
    PublicKeyCredentialRpEntity,
    PublicKeyCredentialUserEntity,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from .common import CODE_CHARSET, MSG_1FA, MSG_2FA, MSG_FAIL, log
from .notifier import send_one_time_code


def totp_at(cfg, step):
    digest = {"SHA1": hashlib.sha1, "SHA256": hashlib.sha256, "SHA512": hashlib.sha512}[cfg["algorithm"]]
    return pyotp.TOTP(cfg["secret"], digits=cfg["digits"], digest=digest, interval=cfg["period"]).generate_otp(step)


class SecondFactors:
    """Routes under /api/user/session/elevation, /api/secondfactor/* and /api/firstfactor/passkey."""

    def _elevated(self):
        return self.session["level"] >= 1 and self.session["elevated_until"] > time.time()

    def _fido(self):
        rp_id = (self.headers.get("X-Forwarded-Host") or self.headers.get("Host") or "").split(":")[0]
        origin = self._origin()
        return Fido2Server(PublicKeyCredentialRpEntity(name=self.config.webauthn_display_name, id=rp_id),
                           verify_origin=lambda o: o == origin), rp_id

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
        name = user.get("displayname", self.session["username"])
        send_one_time_code(self.config.notifier_file, name, user.get("email", ""), code, self.cookie_cfg["domain"],
                           f"{self._origin()}/", public_id, self._client_ip())
        log(msg="one-time code sent by the filesystem notifier", username=self.session["username"],
            file=self.config.notifier_file)

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

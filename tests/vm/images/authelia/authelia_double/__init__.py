"""Contract double of Authelia 4.39.20 (cloudcode's test image `cloudcode-test/authelia-double`).

Authelia cannot be built here, so the tests run this in its place (`python3 -m authelia_double`). It is held to recordings of the real
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

VERSION = "4.39.20"

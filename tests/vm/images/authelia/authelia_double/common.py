"""What every part of the double shares: container paths, the start-up refusal, the log, constants."""
import datetime
import json
import os
import sys
import threading

CODE_CHARSET = "ABCDEFGHJKLMNPQRTUVWYXZ2346789"
LEVEL = {"bypass": 0, "one_factor": 1, "two_factor": 2}
MSG_1FA = "Authentication failed. Check your credentials."
MSG_2FA = "Authentication failed, please retry later."
MSG_FAIL = "Operation failed."
LOCK = threading.Lock()


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

"""`python3 -m authelia_double [--config FILE] [--check]`: load and check the configuration, open the storage,
serve on server.address (AUTHELIA_DOUBLE_PORT overrides); `--check` probes /api/health (the image's health check)."""
import http.server
import os
import socketserver
import sys
import urllib.request

import fido2.features
import yaml

from . import VERSION
from .common import Refused, log, mounted
from .config import Config, load_config
from .portal import Handler
from .store import Store

# Registration and assertion responses arrive as the browser's JSON (base64url strings).
fido2.features.webauthn_json_mapping.enabled = True


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

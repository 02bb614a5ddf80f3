#!/usr/bin/env bash
# Renders the devbox image's build context (Dockerfile + entrypoint.sh) from the bundle's templates
# (provider/bundle/templates/devbox/) for the OpenCode version the bundle pins, into OUT_DIR, and prints the
# image reference the bundle deploys: ghcr.io/cloudcode-dev/devbox:<opencode_version>
# (DEFAULT_DEVBOX_REPOSITORY:<opencode_version> in provider/bundle/src/settings.rs).
# Usage: devbox-context.sh --out DIR [--cloudcode-version V]   (needs python3 with jinja2)
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
out="" version=""
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=$2; shift 2 ;;
    --cloudcode-version) version=${2#v}; shift 2 ;;
    *) echo "usage: $0 --out DIR [--cloudcode-version V]" >&2; exit 2 ;;
  esac
done
[ -n "$out" ] || { echo "usage: $0 --out DIR [--cloudcode-version V]" >&2; exit 2; }
const() { # const NAME FILE: the value of `pub const NAME: T = value;`
  sed -n "s/^pub const $1: [^=]* = \"\{0,1\}\([^\";]*\)\"\{0,1\};.*/\1/p" "$2"
}
settings="$repo/provider/bundle/src/settings.rs" render="$repo/provider/bundle/src/render.rs"
opencode_version=$(const DEFAULT_OPENCODE_VERSION "$settings")
repository=$(const DEFAULT_DEVBOX_REPOSITORY "$settings")
opencode_port=$(const OPENCODE_PORT "$render")
ttyd_port=$(const TTYD_PORT "$render")
[ -z "$version" ] && version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$repo/Cargo.toml" | head -n1)
for v in opencode_version repository opencode_port ttyd_port version; do
  [ -n "${!v}" ] || { echo "could not read $v from the bundle sources" >&2; exit 1; }
done
mkdir -p "$out"
python3 - "$repo/provider/bundle/templates/devbox" "$out" "$version" "$opencode_version" "$opencode_port" "$ttyd_port" <<'PY'
import os, sys, jinja2
src, out, version, oc, op, tp = sys.argv[1:]
env = jinja2.Environment(loader=jinja2.FileSystemLoader(src), keep_trailing_newline=True,
                         undefined=jinja2.StrictUndefined)
ctx = dict(version=version, opencode_version=oc, opencode_port=int(op), ttyd_port=int(tp))
for name, mode in (("Dockerfile", 0o644), ("entrypoint.sh", 0o755)):
    path = os.path.join(out, name)
    with open(path, "w") as f:
        f.write(env.get_template(name + ".j2").render(**ctx))
    os.chmod(path, mode)
PY
echo "$repository:$opencode_version"

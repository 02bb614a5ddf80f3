#!/usr/bin/env bash
# Packages one platform's release artifacts into OUT_DIR (shared by .github/workflows/release.yml and
# tests/tests/release_install.rs):
#   terraform-provider-cloudcode_<ver>_<os>_<arch>.zip   holding terraform-provider-cloudcode_v<ver>
#   cloudcode_<ver>_<os>_<arch>.tar.gz                   holding cloudcode (only with --cli)
# Usage: package.sh --version 1.2.3 --os linux --arch amd64 --provider PATH [--cli PATH] --out DIR
set -euo pipefail

usage() { echo "usage: $0 --version V --os OS --arch ARCH --provider BIN [--cli BIN] --out DIR" >&2; exit 2; }
version="" os="" arch="" provider="" cli="" out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --version) version=${2#v}; shift 2 ;;
    --os) os=$2; shift 2 ;;
    --arch) arch=$2; shift 2 ;;
    --provider) provider=$2; shift 2 ;;
    --cli) cli=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) usage ;;
  esac
done
[ -n "$version" ] && [ -n "$os" ] && [ -n "$arch" ] && [ -n "$provider" ] && [ -n "$out" ] || usage
case "$os" in linux|darwin) ;; *) echo "unsupported os '$os' (linux, darwin)" >&2; exit 2 ;; esac
case "$arch" in amd64|arm64) ;; *) echo "unsupported arch '$arch' (amd64, arm64)" >&2; exit 2 ;; esac
[ -f "$provider" ] || { echo "provider binary '$provider' not found" >&2; exit 1; }
[ -z "$cli" ] || [ -f "$cli" ] || { echo "cloudcode binary '$cli' not found" >&2; exit 1; }

mkdir -p "$out"
out=$(cd "$out" && pwd)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

# Registry zip: exactly one file, the versioned provider binary, executable, with a fixed timestamp so that
# packaging the same binary twice gives the same bytes.
install -m 0755 "$provider" "$stage/terraform-provider-cloudcode_v$version"
zip_name="terraform-provider-cloudcode_${version}_${os}_${arch}.zip"
rm -f "$out/$zip_name"
python3 - "$stage" "terraform-provider-cloudcode_v$version" "$out/$zip_name" <<'PY'
import sys, zipfile
stage, name, dest = sys.argv[1:]
info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
info.external_attr = (0o100755 & 0xFFFF) << 16
info.compress_type = zipfile.ZIP_DEFLATED
with open(f"{stage}/{name}", "rb") as f, zipfile.ZipFile(dest, "w") as z:
    z.writestr(info, f.read())
PY
echo "$out/$zip_name"

if [ -n "$cli" ]; then
  mkdir -p "$stage/cli"
  install -m 0755 "$cli" "$stage/cli/cloudcode"
  tar_name="cloudcode_${version}_${os}_${arch}.tar.gz"
  # Python's tarfile rather than tar(1): GNU and BSD tar (macOS runners) disagree on the reproducibility flags.
  python3 - "$stage/cli/cloudcode" "$out/$tar_name" <<'PY'
import gzip, io, sys, tarfile
src, dest = sys.argv[1:]
info = tarfile.TarInfo("cloudcode")
info.mode, info.mtime, info.uid, info.gid, info.uname, info.gname = 0o755, 0, 0, 0, "root", "root"
with open(src, "rb") as f:
    data = f.read()
info.size = len(data)
with open(dest, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", filename="", mtime=0) as gz:
    with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(info, io.BytesIO(data))
PY
  echo "$out/$tar_name"
fi

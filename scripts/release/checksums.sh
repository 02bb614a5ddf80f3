#!/usr/bin/env bash
# Finishes a release directory after every platform was packaged with package.sh:
#   terraform-provider-cloudcode_<ver>_manifest.json   {"version":1,"metadata":{"protocol_versions":["6.0"]}}
#   terraform-provider-cloudcode_<ver>_SHA256SUMS      the zips and the manifest (what the registry verifies)
#   cloudcode_<ver>_SHA256SUMS                         the cloudcode CLI archives (install.sh verifies both)
#   terraform-provider-cloudcode_<ver>_SHA256SUMS.sig  detached binary GPG signature, only with --sign KEY
# Usage: checksums.sh --version 1.2.3 --dir DIR [--sign GPG_FINGERPRINT]
set -euo pipefail

version="" dir="" key=""
while [ $# -gt 0 ]; do
  case "$1" in
    --version) version=${2#v}; shift 2 ;;
    --dir) dir=$2; shift 2 ;;
    --sign) key=$2; shift 2 ;;
    *) echo "usage: $0 --version V --dir DIR [--sign KEY]" >&2; exit 2 ;;
  esac
done
[ -n "$version" ] && [ -d "$dir" ] || { echo "usage: $0 --version V --dir DIR [--sign KEY]" >&2; exit 2; }
cd "$dir"

prefix="terraform-provider-cloudcode_${version}"
printf '{\n  "version": 1,\n  "metadata": {\n    "protocol_versions": ["6.0"]\n  }\n}\n' >"${prefix}_manifest.json"

shopt -s nullglob
zips=("${prefix}"_*_*.zip)
[ ${#zips[@]} -gt 0 ] || { echo "no ${prefix}_<os>_<arch>.zip in $dir: run package.sh first" >&2; exit 1; }
sha256sum "${zips[@]}" "${prefix}_manifest.json" | LC_ALL=C sort -k2 >"${prefix}_SHA256SUMS"

tars=("cloudcode_${version}"_*_*.tar.gz)
if [ ${#tars[@]} -gt 0 ]; then
  sha256sum "${tars[@]}" | LC_ALL=C sort -k2 >"cloudcode_${version}_SHA256SUMS"
fi

if [ -n "$key" ]; then
  rm -f "${prefix}_SHA256SUMS.sig"
  gpg --batch --yes --local-user "$key" --detach-sign --output "${prefix}_SHA256SUMS.sig" "${prefix}_SHA256SUMS"
fi
ls -1

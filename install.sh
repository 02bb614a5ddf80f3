#!/bin/sh
# Installs cloudcode: the `cloudcode` CLI into a bin directory and the provider cloudcode-dev/cloudcode into
# the filesystem-mirror layout that Terraform and OpenTofu both search (under each one's registry host), after
# checking both archives against the release's SHA256SUMS.
#
#   curl -fsSL https://raw.githubusercontent.com/cloudcode-dev/cloudcode/main/install.sh | sh
#
# Options (flag or environment variable):
#   --version V        CLOUDCODE_VERSION      release to install (default: the latest GitHub release)
#   --release-dir DIR  CLOUDCODE_RELEASE_DIR  read the artifacts from DIR instead of downloading them
#   --bin-dir DIR      CLOUDCODE_BIN_DIR      where `cloudcode` goes (default: ~/.local/bin)
#   --plugin-dir DIR   CLOUDCODE_PLUGIN_DIR   the mirror root (default: ~/.terraform.d/plugins, which Terraform
#                                             and OpenTofu search without any configuration)
#   --os OS --arch A   CLOUDCODE_OS/_ARCH     override detection (linux|darwin, amd64|arm64)
set -eu

REPO_URL=${CLOUDCODE_REPO_URL:-https://github.com/cloudcode-dev/cloudcode}
version=${CLOUDCODE_VERSION:-}
release_dir=${CLOUDCODE_RELEASE_DIR:-}
bin_dir=${CLOUDCODE_BIN_DIR:-${HOME}/.local/bin}
plugin_dir=${CLOUDCODE_PLUGIN_DIR:-${HOME}/.terraform.d/plugins}
os=${CLOUDCODE_OS:-}
arch=${CLOUDCODE_ARCH:-}

die() { echo "install.sh: error: $*" >&2; exit 1; }
say() { echo "install.sh: $*" >&2; }

while [ $# -gt 0 ]; do
  case "$1" in
    --version) version=$2; shift 2 ;;
    --release-dir) release_dir=$2; shift 2 ;;
    --bin-dir) bin_dir=$2; shift 2 ;;
    --plugin-dir) plugin_dir=$2; shift 2 ;;
    --os) os=$2; shift 2 ;;
    --arch) arch=$2; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done
version=${version#v}

if [ -z "$os" ]; then
  case "$(uname -s)" in
    Linux) os=linux ;;
    Darwin) os=darwin ;;
    *) die "unsupported operating system '$(uname -s)': cloudcode ships for Linux and macOS" ;;
  esac
fi
if [ -z "$arch" ]; then
  case "$(uname -m)" in
    x86_64|amd64) arch=amd64 ;;
    aarch64|arm64) arch=arm64 ;;
    *) die "unsupported CPU '$(uname -m)': cloudcode ships for amd64 and arm64" ;;
  esac
fi

sha256() {
  if command -v sha256sum >/dev/null 2>&1; then sha256sum "$1" | cut -d' ' -f1
  elif command -v shasum >/dev/null 2>&1; then shasum -a 256 "$1" | cut -d' ' -f1
  else die "neither sha256sum nor shasum is installed: cannot verify the download"
  fi
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM

# fetch NAME: copies or downloads one release artifact into $work; fails if it does not exist.
fetch() {
  if [ -n "$release_dir" ]; then
    [ -f "$release_dir/$1" ] || return 1
    cp "$release_dir/$1" "$work/$1"
  else
    curl -fsSL --retry 3 -o "$work/$1" "$REPO_URL/releases/download/v$version/$1" 2>/dev/null || return 1
  fi
}

if [ -z "$version" ]; then
  if [ -n "$release_dir" ]; then
    sums=$(cd "$release_dir" && ls terraform-provider-cloudcode_*_SHA256SUMS 2>/dev/null | head -n1) ||
      true
    [ -n "$sums" ] || die "no terraform-provider-cloudcode_<version>_SHA256SUMS in $release_dir"
    version=${sums#terraform-provider-cloudcode_}
    version=${version%_SHA256SUMS}
  else
    latest=$(curl -fsSLI -o /dev/null -w '%{url_effective}' "$REPO_URL/releases/latest") ||
      die "could not find the latest release at $REPO_URL (set CLOUDCODE_VERSION)"
    version=${latest##*/v}
  fi
fi
say "installing cloudcode $version for ${os}_${arch}"

# verify NAME SUMS: the SHA256 of $work/NAME must be the one SUMS lists for NAME.
verify() {
  want=$(awk -v f="$1" '$2 == f || $2 == "*" f { print $1 }' "$work/$2")
  [ -n "$want" ] || die "$2 does not list $1: refusing to install an unverified file"
  got=$(sha256 "$work/$1")
  if [ "$want" != "$got" ]; then
    die "checksum mismatch for $1: expected $want (from $2), got $got. The download is corrupt or was tampered with; nothing was installed."
  fi
}

provider_zip="terraform-provider-cloudcode_${version}_${os}_${arch}.zip"
provider_sums="terraform-provider-cloudcode_${version}_SHA256SUMS"
cli_tar="cloudcode_${version}_${os}_${arch}.tar.gz"
cli_sums="cloudcode_${version}_SHA256SUMS"

fetch "$provider_sums" || die "$provider_sums not found for version $version"
fetch "$provider_zip" || die "$provider_zip not found: is ${os}_${arch} built for $version?"
verify "$provider_zip" "$provider_sums"
with_cli=0
if fetch "$cli_sums" && fetch "$cli_tar"; then
  verify "$cli_tar" "$cli_sums"
  with_cli=1
else
  say "warning: release $version has no $cli_tar; installing the provider only"
fi

# Everything is verified: unpack and install.
mkdir -p "$work/provider"
if command -v unzip >/dev/null 2>&1; then
  unzip -q -o "$work/$provider_zip" -d "$work/provider"
else
  python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' \
    "$work/$provider_zip" "$work/provider" || die "need unzip or python3 to unpack $provider_zip"
fi
binary="terraform-provider-cloudcode_v$version"
[ -f "$work/provider/$binary" ] || die "$provider_zip does not hold $binary"
# A source without a host (`cloudcode-dev/cloudcode`) means registry.terraform.io to Terraform and
# registry.opentofu.org to OpenTofu: the provider goes under both, so either engine finds it.
for host in registry.terraform.io registry.opentofu.org; do
  target="$plugin_dir/$host/cloudcode-dev/cloudcode/$version/${os}_${arch}"
  mkdir -p "$target"
  cp "$work/provider/$binary" "$target/$binary.tmp"
  chmod 0755 "$target/$binary.tmp"
  mv -f "$target/$binary.tmp" "$target/$binary"
  say "provider: $target/$binary"
done

if [ "$with_cli" = 1 ]; then
  mkdir -p "$work/cli" "$bin_dir"
  tar -xzf "$work/$cli_tar" -C "$work/cli"
  [ -f "$work/cli/cloudcode" ] || die "$cli_tar does not hold cloudcode"
  cp "$work/cli/cloudcode" "$bin_dir/cloudcode.tmp"
  chmod 0755 "$bin_dir/cloudcode.tmp"
  mv -f "$bin_dir/cloudcode.tmp" "$bin_dir/cloudcode"
  say "cli: $bin_dir/cloudcode"
  case ":$PATH:" in
    *":$bin_dir:"*) ;;
    *) say "add $bin_dir to your PATH to run cloudcode" ;;
  esac
fi
say "done: use source = \"cloudcode-dev/cloudcode\", version = \"$version\" in required_providers"

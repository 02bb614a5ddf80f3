#!/usr/bin/env bash
# Terraform comes with the machine image (it cannot be downloaded here): check it is >= 1.11, the first
# version with write-only attributes, and fail with a clear message otherwise.
set -euo pipefail
if ! command -v terraform >/dev/null 2>&1; then
  echo "terraform is not on PATH: the tests need Terraform >= 1.11 (install it, or set PATH)." >&2
  exit 1
fi
version=$(CHECKPOINT_DISABLE=1 terraform version -json | python3 -c 'import json,sys; print(json.load(sys.stdin)["terraform_version"])')
major=${version%%.*}; rest=${version#*.}; minor=${rest%%.*}
if [ "$major" -lt 1 ] || { [ "$major" -eq 1 ] && [ "$minor" -lt 11 ]; }; then
  echo "terraform $version is too old: cloudcode needs Terraform >= 1.11 (write-only attributes)." >&2
  exit 1
fi
echo "terraform $version"

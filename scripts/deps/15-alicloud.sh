#!/usr/bin/env bash
# The real official alicloud provider (github.com/aliyun/terraform-provider-alicloud, the newest version the
# Go module proxy serves here) for the cloud-path tests, built into
# $CLOUDCODE_TEST_CACHE/alicloud/<version>/terraform-provider-alicloud_v<version> once per version
# (~11 min cold on 2 cores, 275 MB). The harness lays it out offline under both registry hosts.
set -euo pipefail
cd "$(dirname "$0")/../.."
CACHE=${CLOUDCODE_TEST_CACHE:-$HOME/.cache/cloudcode-test}
VERSION=1.240.0
H1=h1:lmQprvS+xDV2j7f6h6fhcJj2E559FHCtwJijlKSbO84=
out=$CACHE/alicloud/$VERSION/terraform-provider-alicloud_v$VERSION
bash scripts/deps/lib/gobuild.sh "alicloud $VERSION" github.com/aliyun/terraform-provider-alicloud "v$VERSION" "$H1" . "$out"
echo "alicloud provider $VERSION ($out)"

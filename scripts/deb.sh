#!/usr/bin/env bash
# Builds the Debian package with nfpm (pinned; installed on first use into the tools cache):
# dist/tsconnect_VERSION_ARCH.deb, holding the binary (stripped, its version set), the systemd
# units and /etc/default files of deploy/, a man page, the copyright and a changelog.
# Usage: scripts/deb.sh [VERSION] (default 0.1.TIMESTAMP of the last commit). The front end must
# be built first (`make web`: the binary embeds it); `make deb` does both.
set -euo pipefail
cd "$(dirname "$0")/.."
NFPM_VERSION=v2.45.2
TOOLS="${XDG_CACHE_HOME:-$HOME/.cache}/tsconnect/tools/nfpm-$NFPM_VERSION-$(go env GOVERSION)"
if [ ! -x "$TOOLS/nfpm" ]; then
  mkdir -p "$TOOLS"
  (cd "$TOOLS" && GOBIN="$TOOLS" GOFLAGS= go install "github.com/goreleaser/nfpm/v2/cmd/nfpm@$NFPM_VERSION")
fi
VERSION="${1:-0.1.$(git log -1 --format=%cd --date=format:%Y%m%d%H%M%S)}"
ARCH="$(go env GOARCH)"
OUT="${DEB_OUT:-dist}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$OUT" "$work/build"
ln -s "$PWD/deploy" "$work/deploy"
# cgo stays on: the agent looks users up through the system's NSS (LDAP, SSSD), not only /etc/passwd.
# PIE, full RELRO and immediate binding, as Debian's hardening asks of every binary.
go build -trimpath -buildmode=pie \
  -ldflags "-s -w -X main.version=$VERSION -linkmode=external -extldflags=-Wl,-z,relro,-z,now" -o "$work/build/tsconnect" ./cmd/tsconnect
cp deploy/copyright "$work/build/copyright"
gzip -9n <deploy/tsconnect.1 >"$work/build/tsconnect.1.gz"
{
  printf 'tsconnect (%s) unstable; urgency=medium\n\n' "$VERSION"
  printf '  * Built from commit %s.\n\n' "$(git rev-parse --short HEAD)"
  printf ' -- tsconnect developers <dev@tsconnect.dev>  %s\n' "$(git log -1 --format=%cd --date=rfc2822)"
} | gzip -9n >"$work/build/changelog.gz"
target="$(cd "$OUT" && pwd)/tsconnect_${VERSION}_${ARCH}.deb"
(cd "$work" && VERSION="$VERSION" ARCH="$ARCH" "$TOOLS/nfpm" package --config deploy/nfpm.yaml --packager deb --target "$target" >&2)
echo "$OUT/tsconnect_${VERSION}_${ARCH}.deb"

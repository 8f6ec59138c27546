#!/bin/sh
# Install the Debian packages detour needs to build, test, run the demo and
# the benchmarks. Idempotent: checks first, runs `apt-get update` once and
# only when something is missing.
set -eu

PACKAGES="make gcc clang llvm pkg-config bpftool libbpf-dev libelf-dev zlib1g-dev
libssl-dev libcurl4-openssl-dev libnl-3-dev libnl-route-3-dev libnl-idiag-3-dev
libevent-dev libhttp-parser-dev libjansson-dev libinih-dev libcmocka-dev
iproute2 util-linux procps curl openssl ca-certificates wrk nodejs haproxy"

missing=""
for p in $PACKAGES; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	case "$status" in
	"install ok installed") ;;
	*) missing="$missing $p" ;;
	esac
done

# The official SDKs the end-to-end tests run unmodified (npm registry).
sdk_clients() {
	sdk=$(dirname "$0")/../tests/e2e/sdk
	[ -d "$sdk/node_modules" ] && return 0
	command -v npm >/dev/null 2>&1 || { echo "deps: npm missing (package npm)" >&2; return 1; }
	echo "deps: installing the SDK clients of the end-to-end tests (npm ci)"
	(cd "$sdk" && npm ci --no-audit --no-fund --loglevel=error)
}

# promtool, the Prometheus text-format checker of the end-to-end tests, from
# Debian's prometheus package without installing the package (which would
# also start a Prometheus server on the host): only its binary, in
# /usr/local/bin.
promtool_tool() {
	command -v promtool >/dev/null 2>&1 && return 0
	[ "$(id -u)" -eq 0 ] || { echo "deps: promtool missing; installing it needs root" >&2; return 1; }
	echo "deps: installing promtool (from the Debian package prometheus)"
	tmp=$(mktemp -d)
	chmod 755 "$tmp" # apt-get download writes as _apt
	(cd "$tmp" && { apt-get download -qq prometheus 2>/dev/null ||
		{ apt-get update -qq && apt-get download -qq prometheus; }; }) &&
		dpkg-deb --fsys-tarfile "$tmp"/prometheus_*.deb | tar -xO ./usr/bin/promtool >"$tmp/promtool" &&
		install -m 0755 "$tmp/promtool" /usr/local/bin/promtool
	rc=$?
	rm -rf "$tmp"
	return $rc
}

if [ -z "$missing" ]; then
	echo "deps: all $(echo $PACKAGES | wc -w) packages present"
	promtool_tool && sdk_clients
	exit $?
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing:$missing; installing them needs root" >&2
	exit 1
fi
echo "deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
promtool_tool
sdk_clients
echo "deps: done"

#!/bin/bash
# make install / make uninstall into a scratch DESTDIR: every file lands, the
# installed example configuration is one detourd accepts, and uninstall leaves
# nothing behind (an edited configuration is kept, and said so).
set -u
E2E_NAME=install
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-build}
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT
passed=0 failed=0
check() { local name=$1; shift; if "$@"; then echo "ok - $E2E_NAME: $name"; passed=$((passed + 1)); else echo "not ok - $E2E_NAME: $name"; failed=$((failed + 1)); fi; }
mk() { make -s -C "$root" --no-print-directory BUILD="$build" DESTDIR="$dest" "$@" >"$dest.log" 2>&1; }

mk install
check "make install succeeds" [ $? -eq 0 ]
for f in usr/local/sbin/detourd usr/local/bin/detourctl etc/systemd/system/detour.service \
	usr/lib/tmpfiles.d/detour.conf etc/detour/detour.conf etc/detour/prices.conf \
	usr/local/share/doc/detour/README.md; do
	check "installs /$f" [ -s "$dest/$f" ]
done
check "key directory is root-only" [ "$(stat -c %a "$dest/etc/detour/keys")" = 700 ]
check "the unit runs the installed binary with the installed configuration" \
	grep -q '^ExecStart=/usr/local/sbin/detourd -c /etc/detour/detour.conf$' "$dest/etc/systemd/system/detour.service"
check "the unit bounds capabilities and protects the system" \
	grep -q '^CapabilityBoundingSet=.*CAP_BPF' "$dest/etc/systemd/system/detour.service"
check "the installed configuration passes detourd --check" \
	"$dest/usr/local/sbin/detourd" --check -c "$dest/etc/detour/detour.conf"

mk uninstall
check "make uninstall succeeds" [ $? -eq 0 ]
check "uninstall leaves no file behind" [ -z "$(find "$dest" -type f)" ]

mk install && echo "; edited" >>"$dest/etc/detour/detour.conf" && mk uninstall
check "an edited configuration is kept" [ -f "$dest/etc/detour/detour.conf" ]
check "... and uninstall says so" grep -q "kept $dest/etc/detour" "$dest.log"
rm -f "$dest.log"
echo "# $E2E_NAME: $passed passed, $failed failed"
[ "$failed" -eq 0 ]

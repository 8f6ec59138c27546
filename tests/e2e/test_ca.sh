#!/bin/bash
# The local CA seen by Node's TLS (tests/unit/test_ca.c does the same with
# OpenSSL's verifier): a client trusting only detour's root accepts the leaf
# detour mints for a configured host, and rejects certificates forged with
# the intermediate's key for any other name or an IP address. Then
# `detourctl ca path|show|install` on that CA.
#
# Standalone: no namespaces, no agent, 127.0.0.1 only. tests/e2e/test_ca.sh BUILD_DIR
set -u
here=$(cd "$(dirname "$0")" && pwd)
b=${1:-build}
case $b in
/*) build=$b ;;
*) if [ -d "$b" ]; then build=$(cd "$b" && pwd); else build=$(cd "$here/../.." && pwd)/$b; fi ;;
esac

failed=0
ok() { echo "ok - ca: $*"; }
notok() { echo "not ok - ca: $*"; failed=1; }
check() { local name=$1 why=$2; shift 2; if "$@"; then ok "$name"; else notok "$name: $why"; fi; }

for p in "$build/tests/test_ca" "$build/detourctl"; do
	[ -x "$p" ] || { notok "missing $p (not built yet?)"; exit 1; }
done
command -v node >/dev/null || { notok "node is not installed"; exit 1; }

# the runner removes /tmp/detour-e2e-<tag>.* left behind
W=$(mktemp -d "/tmp/detour-e2e-${DETOUR_E2E_TAG:-ca}.XXXXXX")
trap 'rm -rf "$W"' EXIT

# CA in $W/ca for api.openai.com and api.anthropic.com; leaves in $W
if ! DETOUR_CA_EXPORT=$W "$build/tests/test_ca"; then
	notok "test_ca could not export a CA"
	exit 1
fi

# node try.js DIR LEAF NAME: a TLS server on 127.0.0.1 presenting LEAF, a
# client trusting only DIR/root.pem asking for NAME (a host, or an IP address
# checked as such). Prints "connected <alpn>" or "<error code>: <message>"
# (Node has no code of its own for constraint violations: UNSPECIFIED).
cat >"$W/try.js" <<'EOF'
const tls = require('tls'), net = require('net'), fs = require('fs'), path = require('path');
const [dir, leaf, name] = process.argv.slice(2);
const read = f => fs.readFileSync(path.join(dir, f));
const server = tls.createServer({ cert: read(leaf + '.pem'), key: read(leaf + '.key'),
                                  ALPNProtocols: ['http/1.1'] }, s => s.end());
server.on('tlsClientError', () => {});
server.listen(0, '127.0.0.1', () => {
	const opts = { host: '127.0.0.1', port: server.address().port, ca: read('root.pem'),
	               ALPNProtocols: ['http/1.1'] };
	if (net.isIP(name))
		opts.checkServerIdentity = (h, cert) => tls.checkServerIdentity(name, cert);
	else
		opts.servername = name;
	const c = tls.connect(opts, () => {
		console.log('connected ' + c.alpnProtocol);
		c.end();
		server.close();
	});
	c.on('error', e => { console.log(e.code + ': ' + e.message); server.close(); });
});
EOF
try() { timeout 20 node "$W/try.js" "$W" "$1" "$2" 2>&1; }

r=$(try leaf-good api.openai.com)
check "node accepts the minted leaf for api.openai.com" "$r" [ "$r" = "connected http/1.1" ]
r=$(try leaf-good api.anthropic.com)
check "node rejects that leaf for another configured host (${r%%:*})" "$r" \
	eval '[[ $r == ERR_TLS_CERT_ALTNAME_INVALID:* ]]'

# forged with intermediate.key: the chain itself must fail on the constraints
nc_violation() { [[ $1 =~ ^[A-Z_]+:\ (permitted|excluded)\ subtree\ violation$ ]]; }
r=$(try leaf-evil evil.example)
check "node rejects a forged leaf for evil.example ($r)" "$r" nc_violation "$r"
r=$(try leaf-evil-ip 203.0.113.7)
check "node rejects a forged leaf for IP 203.0.113.7 ($r)" "$r" nc_violation "$r"
r=$(try leaf-evil-wildcard evil.com)
check "node rejects a forged leaf for *.com ($r)" "$r" nc_violation "$r"

# detourctl on the same CA, through a configuration naming its state dir
cat >"$W/detour.conf" <<EOF
[detour]
state_dir = $W
[provider openai]
hosts = api.openai.com
EOF
ctl() { "$build/detourctl" -c "$W/detour.conf" ca "$@"; }

out=$(ctl path); rc=$?
check "detourctl ca path" "exit $rc: $out" eval '[ $rc -eq 0 ] && [ "$out" = "$W/ca/root.pem" ]'
out=$(ctl show); rc=$?
check "detourctl ca show: PEM, fingerprint, permitted names" "exit $rc: $out" eval '
	[ $rc -eq 0 ] && echo "$out" | grep -q "^-----BEGIN CERTIFICATE-----" &&
	echo "$out" | grep -Eq "^sha256 +([0-9A-F]{2}:){31}[0-9A-F]{2}$" &&
	echo "$out" | grep -q "^subject .*detour local root" &&
	echo "$out" | grep -q "^permits .*api.anthropic.com, api.openai.com"'
mkdir "$W/trust"
out=$(ctl install --trust-dir "$W/trust" --no-update); rc=$?
check "detourctl ca install --no-update: the root copied, runtimes told" "exit $rc: $out" eval '
	[ $rc -eq 0 ] && cmp -s "$W/trust/detour-root.crt" "$W/ca/root.pem" &&
	[ "$(stat -c %a "$W/trust/detour-root.crt")" = 644 ] &&
	echo "$out" | grep -q "^  export NODE_EXTRA_CA_CERTS=$W/trust/detour-root.crt" &&
	echo "$out" | grep -q "^  export REQUESTS_CA_BUNDLE=" &&
	echo "$out" | grep -q "^  export SSL_CERT_FILE="'
r=$(NODE_EXTRA_CA_CERTS=$W/trust/detour-root.crt timeout 20 node -e '
const tls = require("tls"), fs = require("fs"), dir = process.argv[1];
const s = tls.createServer({ cert: fs.readFileSync(dir + "/leaf-good.pem"),
                             key: fs.readFileSync(dir + "/leaf-good.key") }, c => c.end());
s.listen(0, "127.0.0.1", () => {
	const c = tls.connect({ host: "127.0.0.1", port: s.address().port, servername: "api.openai.com" },
	                      () => { console.log("connected"); c.end(); s.close(); });
	c.on("error", e => { console.log(e.code); s.close(); });
});' "$W" 2>&1)
check "node with NODE_EXTRA_CA_CERTS as printed trusts the leaf" "$r" [ "$r" = connected ]

sed -i "s|^state_dir = .*|state_dir = $W/none|" "$W/detour.conf"
ctl path >/dev/null 2>"$W/err"; rc=$?
check "detourctl ca with no CA yet: exit 3" "exit $rc: $(cat "$W/err")" \
	eval '[ $rc -eq 3 ] && grep -q "detourd has not created it yet" "$W/err"'

exit $failed

# shellcheck shell=bash
# tests/e2e/lib.sh: the end-to-end test bed. Sourced by every tests/e2e/test_*.sh
# and by tools/demo.sh, then:
#
#   e2e_init "$@"      re-exec under a private mount namespace, set up the world
#   ...                fake_start / detourd_start / ccurl / ok / notok ...
#   e2e_finish         exit status = failures seen
#
# The world (one per test script, removed on exit, also on failure):
#   - a private mount namespace (unshare --mount --propagation private) holding
#     a private bpffs ($W/bpf, pin_dir $W/bpf/detour), the bind-mounted hosts file
#     and nsswitch.conf (hosts: files only, never DNS), and the files that keep
#     the network namespaces alive ($W/ns/cli, $W/ns/prov);
#   - network namespace "cli" (detourd and the clients) and "prov" (fakellm
#     instances = provider endpoints) joined by a veth pair c0 <-> p0:
#         cli  c0  198.18.0.1/24   fd00:de70::1/64
#         prov p0  198.18.0.2 (A)  .3 (B)  .4 (X: anthropic)  .9 (N: no provider)
#                  fd00:de70::2 (A6) ::3 (B6) ::4 (X6) ::9 (N6)
#   - a test CA and one server certificate for every provider name and address;
#   - cgroups $CG2/detour-e2e-$TAG/{enrolled,other,agent,prov}.
# Nothing leaves the two namespaces but loopback traffic.

E2E_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
E2E_ROOT=$(cd "$E2E_LIB_DIR/../.." && pwd)
E2E_NAME=${E2E_NAME:-$(basename "$0" .sh)}
E2E_NAME=${E2E_NAME#test_}

C4=198.18.0.1 A4=198.18.0.2 B4=198.18.0.3 X4=198.18.0.4 N4=198.18.0.9
C6=fd00:de70::1 A6=fd00:de70::2 B6=fd00:de70::3 X6=fd00:de70::4 N6=fd00:de70::9
G4=198.18.0.5 G6=fd00:de70::5 D4=198.18.0.6 D6=fd00:de70::6 Y4=198.18.0.7 Y6=fd00:de70::7
LISTEN_PORT=15001
HOST_OAI=api.openai.com HOST_ANT=api.anthropic.com HOST_PLAIN=api.plain.test
HOST_GROQ=api.groq.com HOST_DEEPSEEK=api.deepseek.com HOST_GEM=generativelanguage.googleapis.com

E2E_FAILED=0 E2E_PASSED=0
E2E_PIDS=()
declare -A FAKE_PID FAKE_ADMIN
DETOURD_PID=
W=

if [ -x /usr/bin/python3 ]; then PY=/usr/bin/python3; else PY=$(command -v python3); fi

# ---- reporting ----------------------------------------------------------------

ok()    { echo "ok - $E2E_NAME: $*"; E2E_PASSED=$((E2E_PASSED + 1)); }
notok() { echo "not ok - $E2E_NAME: $*"; E2E_FAILED=$((E2E_FAILED + 1)); E2E_SHOW_LOGS=1; }
note()  { echo "# $*"; }
# check NAME WHY-IF-FAILED COMMAND...: ok when COMMAND succeeds
check() { local _c_name=$1 _c_why=$2; shift 2; if "$@"; then ok "$_c_name"; else notok "$_c_name: $_c_why"; fi; }

now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }

# wait_for TIMEOUT_S COMMAND...: poll every 50 ms, bounded
wait_for() {
	local deadline=$(( $(now_ms) + ${1%.*} * 1000 )); shift
	while [ "$(now_ms)" -lt $deadline ]; do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	"$@" >/dev/null 2>&1
}

# ---- entry: private mount namespace, world, cleanup ---------------------------

e2e_init() {
	if [ "${DETOUR_E2E_INNER:-}" != "$$" ]; then
		if [ "$(id -u)" -ne 0 ]; then
			echo "not ok - $E2E_NAME: needs root (BPF, cgroups, namespaces)"; exit 1
		fi
		# unshare execs in place: same pid, so signals reach this script.
		DETOUR_E2E_INNER=$$ exec unshare --mount --propagation private -- bash "$0" "$@"
	fi
	local b=${1:-${BUILD:-build}}
	case $b in /*) ;; *) b=$E2E_ROOT/$b ;; esac
	BUILD=$b
	DETOURD=${DETOURD:-$BUILD/detourd}
	DETOURCTL=${DETOURCTL:-$BUILD/detourctl}
	FAKELLM=${FAKELLM:-$BUILD/fakellm}
	E2E_TAG=${DETOUR_E2E_TAG:-$$}
	trap e2e_cleanup EXIT
	trap 'note "interrupted"; exit 130' INT
	trap 'note "terminated"; exit 143' TERM
	e2e_world || { notok "world setup failed"; exit 1; }
}

e2e_require() { # e2e_require detourd fakellm detourctl
	local b p
	for b in "$@"; do
		case $b in detourd) p=$DETOURD ;; fakellm) p=$FAKELLM ;; detourctl) p=$DETOURCTL ;; *) p=$(command -v "$b") ;; esac
		[ -x "$p" ] || { notok "missing $p (not built yet?)"; exit 1; }
	done
}

cg2_root() { awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts; }

e2e_world() {
	set -e
	W=$(mktemp -d "/tmp/detour-e2e-$E2E_TAG.XXXXXX")
	chmod 755 "$W"
	mkdir -p "$W/ns" "$W/bpf" "$W/log"

	# network namespaces, kept alive by bind mounts that exist only in our
	# private mount namespace: nothing appears in `ip netns list`.
	NSC=$W/ns/cli NSP=$W/ns/prov
	touch "$NSC" "$NSP"
	unshare --net="$NSC" true
	unshare --net="$NSP" true
	nsenter --net="$NSC" ip link add c0 type veth peer name p0 netns "$NSP"
	local ns
	for ns in "$NSC" "$NSP"; do
		nsenter --net="$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 >/dev/null
		nsenter --net="$ns" ip link set lo up
	done
	nsenter --net="$NSC" ip addr add $C4/24 dev c0
	nsenter --net="$NSC" ip addr add $C6/64 dev c0 nodad
	nsenter --net="$NSC" ip link set c0 up
	local a
	for a in $A4 $B4 $X4 $N4 $G4 $D4 $Y4; do nsenter --net="$NSP" ip addr add $a/24 dev p0; done
	for a in $A6 $B6 $X6 $N6 $G6 $D6 $Y6; do nsenter --net="$NSP" ip addr add $a/64 dev p0 nodad; done
	nsenter --net="$NSP" ip link set p0 up

	# names: hosts file only (every provider name has two addresses per family)
	cat >"$W/hosts" <<-EOF
	127.0.0.1 localhost
	::1 localhost
	$A4 $HOST_OAI
	$B4 $HOST_OAI
	$A6 $HOST_OAI
	$B6 $HOST_OAI
	$X4 $HOST_ANT
	$X6 $HOST_ANT
	$A4 $HOST_PLAIN
	$B4 $HOST_PLAIN
	$G4 $HOST_GROQ
	$G6 $HOST_GROQ
	$D4 $HOST_DEEPSEEK
	$D6 $HOST_DEEPSEEK
	$Y4 $HOST_GEM
	$Y6 $HOST_GEM
	EOF
	sed 's/^hosts:.*/hosts: files/' /etc/nsswitch.conf >"$W/nsswitch.conf"
	grep -q '^hosts:' "$W/nsswitch.conf" || echo 'hosts: files' >>"$W/nsswitch.conf"
	mount --bind "$W/hosts" /etc/hosts
	mount --bind "$W/nsswitch.conf" /etc/nsswitch.conf

	# private bpffs: pins vanish with the mount namespace
	mount -t bpf bpf "$W/bpf"
	PIN=$W/bpf/detour

	# test CA and server certificate
	e2e_certs >"$W/log/openssl.log" 2>&1

	# cgroups
	CG2=$(cg2_root)
	[ -n "$CG2" ]
	CG_ORIG=$CG2$(sed -n 's/^0:://p' /proc/self/cgroup)
	CGROOT=$CG2/detour-e2e-$E2E_TAG
	mkdir "$CGROOT"
	for a in enrolled other agent prov; do mkdir "$CGROOT/$a"; done
	CG_ENROLLED=$CGROOT/enrolled CG_OTHER=$CGROOT/other CG_AGENT=$CGROOT/agent
	set +e
}

e2e_certs() {
	set -e
	cd "$W"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout ca.key -out ca.pem -days 2 -subj "/CN=detour e2e test CA $E2E_TAG" \
		-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout srv.key -out srv.csr -subj "/CN=$HOST_OAI"
	cat >srv.ext <<-EOF
	subjectAltName=DNS:$HOST_OAI,DNS:$HOST_ANT,DNS:$HOST_PLAIN,DNS:$HOST_GROQ,DNS:$HOST_DEEPSEEK,DNS:$HOST_GEM,IP:$A4,IP:$B4,IP:$X4,IP:$N4,IP:$A6,IP:$B6,IP:$X6,IP:$N6
	basicConstraints=CA:FALSE
	keyUsage=critical,digitalSignature
	extendedKeyUsage=serverAuth
	subjectKeyIdentifier=hash
	authorityKeyIdentifier=keyid
	EOF
	openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
		-out srv.pem -days 2 -extfile srv.ext
	cd - >/dev/null
}

# Kill one process we started: TERM, then KILL after $2 seconds (default 3).
# Never blocks for longer than that. Returns its exit status when known.
stop_pid() {
	local pid=$1 grace=${2:-3} sig=${3:-TERM} i
	[ -n "$pid" ] || return 0
	if ! alive "$pid"; then wait "$pid" 2>/dev/null; return $?; fi
	kill -"$sig" "$pid" 2>/dev/null
	for ((i = 0; i < grace * 20; i++)); do
		alive "$pid" || break
		sleep 0.05
	done
	if alive "$pid"; then
		note "pid $pid still alive $grace s after SIG$sig, killing it"
		kill -KILL "$pid" 2>/dev/null
	fi
	wait "$pid" 2>/dev/null
} 2>/dev/null  # also bash's "Killed" job report

# alive PID: exists and is not a zombie
alive() {
	local st
	st=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 1
	[ -n "$st" ] && [ "$st" != Z ]
}

e2e_cleanup() {
	local rc=$? p d i
	trap - EXIT INT TERM
	set +e
	[ -z "$W" ] && exit $rc
	if [ "${E2E_SHOW_LOGS:-0}" = 1 ] && [ "${E2E_QUIET_LOGS:-0}" != 1 ]; then
		for p in "$W"/log/detourd*.log; do
			[ -s "$p" ] || continue
			note "---- tail of $(basename "$p")"
			tail -n 25 "$p" | sed 's/^/#   /'
		done
	fi
	[ -n "${E2E_KEEP_LOGS:-}" ] && cp -r "$W/log" "$E2E_KEEP_LOGS/$E2E_NAME" 2>/dev/null
	# our processes: detourd first (clean shutdown detaches its links), then the rest
	stop_pid "$DETOURD_PID" 3
	for p in "${E2E_PIDS[@]}"; do stop_pid "$p" 2; done
	# sanitizer builds: any report in a log of ours is a failure
	for p in "$W"/log/*.log; do
		[ -s "$p" ] || continue
		if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$p"; then
			echo "not ok - $E2E_NAME: sanitizer report in $(basename "$p"):"
			grep -E -m3 -A6 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$p" | sed 's/^/#   /'
			rc=1
		fi
	done
	# anything left in our cgroups was started by this test: kill it
	if [ -n "${CGROOT:-}" ] && [ -d "$CGROOT" ]; then
		for d in "$CGROOT"/*/ "$CGROOT"; do
			[ -e "$d/cgroup.kill" ] && [ -s "$d/cgroup.procs" ] && echo 1 >"$d/cgroup.kill" 2>/dev/null
		done
		for ((i = 0; i < 40; i++)); do
			rmdir "$CGROOT"/*/ 2>/dev/null; rmdir "$CGROOT" 2>/dev/null
			[ -d "$CGROOT" ] || break
			sleep 0.05
		done
		[ -d "$CGROOT" ] && echo "# cleanup: could not remove $CGROOT" >&2
	fi
	# mounts (lazy: never hangs), then files
	for p in "$W/bpf" /etc/hosts /etc/nsswitch.conf "$W/ns/cli" "$W/ns/prov"; do
		timeout 5 umount -l "$p" 2>/dev/null
	done
	# only delete when nothing is mounted below $W any more
	if ! grep -q " $W/" /proc/self/mounts; then
		rm -rf "$W"
	else
		echo "# cleanup: mounts left under $W" >&2
	fi
	exit $rc
}

e2e_finish() {
	[ $E2E_FAILED -eq 0 ] && [ $E2E_PASSED -gt 0 ]
	exit $?
}

# ---- running things in the world -----------------------------------------------

in_cli()  { nsenter --net="$NSC" "$@"; }
in_prov() { nsenter --net="$NSP" "$@"; }

# spawn_in CGROUP-NAME NETNS-FILE LOGFILE COMMAND...: start COMMAND in the
# background inside that cgroup of ours and that network namespace (the mount
# namespace is ours). SPAWN_PID = its pid (sh execs nsenter execs COMMAND, so
# the pid is COMMAND's own).
spawn_in() {
	local cg=$CGROOT/$1 ns=$2 log=$3; shift 3
	sh -c 'echo $$ >"$0/cgroup.procs" || exit 126; ns=$1; shift; exec nsenter --net="$ns" "$@"' \
		"$cg" "$ns" "$@" >>"$log" 2>&1 &
	SPAWN_PID=$!
}

CURL_FMT='%{http_code} %header{x-fakellm-name} %{remote_ip} %{remote_port} %{time_total}\n'

# ccurl CGROUP-NAME CURL-ARGS...: unmodified curl in the client netns, in that
# cgroup, bounded. Prints "CODE NAME REMOTE_IP REMOTE_PORT TIME" (CODE 000 on
# failure), exit status is curl's. CURL_OUT: where the body goes (/dev/null),
# CURL_W: another -w format.
ccurl() {
	local cg=$1; shift
	timeout -k 1 12 bash -c 'cg=$1; ns=$2; shift 2; echo $$ >"$cg/cgroup.procs" || exit 126; exec nsenter --net="$ns" "$@"' \
		_ "$CGROOT/$cg" "$NSC" curl -sS --cacert "${CURL_CA:-$W/ca.pem}" --connect-timeout 4 --max-time 8 \
		-o "${CURL_OUT:-/dev/null}" -w "${CURL_W:-$CURL_FMT}" "$@"
}

CHAT_BODY='{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello"}]}'

# chat CGROUP [curl args]: one OpenAI chat completion to https://api.openai.com
chat() {
	local cg=$1; shift
	ccurl "$cg" -H 'content-type: application/json' -H 'authorization: Bearer sk-test' \
		-d "$CHAT_BODY" "$@" "https://$HOST_OAI/v1/chat/completions"
}

# pyclient CGROUP ARGS...: tests/e2e/client.py in the client netns and cgroup
pyclient() {
	local cg=$1; shift
	timeout -k 1 12 bash -c 'cg=$1; ns=$2; shift 2; echo $$ >"$cg/cgroup.procs" || exit 126; exec nsenter --net="$ns" "$@"' \
		_ "$CGROOT/$cg" "$NSC" "$PY" "$E2E_LIB_DIR/client.py" --cacert "$W/ca.pem" "$@"
}

# jget JSON KEY[.SUB|.N]...: print one field of a JSON document
jget() {
	"$PY" -c 'import json,sys
o=json.loads(sys.argv[1])
for k in sys.argv[2].split("."):
    o = o[int(k)] if isinstance(o, list) else (o.get(k) if isinstance(o, dict) else None)
print("" if o is None else o)' "$1" "$2" 2>/dev/null
}

# ---- fakellm -------------------------------------------------------------------

FAKE_NEXT_ADMIN=9100

# fake_start NAME [--plain] LISTEN|--OPTION=VALUE...: a fakellm in the provider namespace.
# TLS with the test certificate unless --plain. Waits until its admin answers.
fake_start() {
	local name=$1 tls=1; shift
	[ "${1:-}" = --plain ] && { tls=0; shift; }
	local port=$FAKE_NEXT_ADMIN args=() l
	FAKE_NEXT_ADMIN=$((FAKE_NEXT_ADMIN + 1))
	for l in "$@"; do
		case $l in --*=*) args+=("${l%%=*}" "${l#*=}") ;; *) args+=(--listen "$l") ;; esac
	done
	[ $tls = 1 ] && args+=(--tls-cert "$W/srv.pem" --tls-key "$W/srv.key")
	args+=(--admin "127.0.0.1:$port" --name "$name" --pidfile "$W/fake-$name.pid" --quiet)
	spawn_in prov "$NSP" "$W/log/fake-$name.log" "$FAKELLM" "${args[@]}"
	FAKE_PID[$name]=$SPAWN_PID
	FAKE_ADMIN[$name]=$port
	E2E_PIDS+=($SPAWN_PID)
	if ! wait_for 10 fake_admin "$name" GET /stats; then
		notok "fakellm $name did not come up: $(tail -n 3 "$W/log/fake-$name.log" | tr '\n' ' ')"
		return 1
	fi
}

# fake_admin NAME METHOD PATH [JSON]
fake_admin() {
	local name=$1 m=$2 path=$3 body=${4:-}
	if [ -n "$body" ]; then
		timeout -k 1 5 nsenter --net="$NSP" curl -sSf --max-time 3 -X "$m" \
			-H 'content-type: application/json' -d "$body" "http://127.0.0.1:${FAKE_ADMIN[$name]}$path"
	else
		timeout -k 1 5 nsenter --net="$NSP" curl -sSf --max-time 3 -X "$m" \
			"http://127.0.0.1:${FAKE_ADMIN[$name]}$path"
	fi
}
fake_fault() { fake_admin "$1" POST /fault "$2" >/dev/null; }
fake_stop()  { stop_pid "${FAKE_PID[$1]}" 3; }

# The usual endpoints: A and B serve api.openai.com (TLS, 443, both families);
# X serves api.anthropic.com; Y generativelanguage.googleapis.com (Gemini); PA/PB serve plain HTTP on 80 for api.plain.test,
# and PA also on 8080 (a port no provider uses); N is a non-provider address.
fake_std() {
	fake_start A "$A4:443" "[$A6]:443" || return 1
	fake_start B "$B4:443" "[$B6]:443" || return 1
	local what
	for what in "$@"; do
		case $what in
		X) fake_start X "$X4:443" "[$X6]:443" || return 1 ;;
		G) fake_start G "$G4:443" "[$G6]:443" --path-prefix=/openai || return 1 ;;
		D) fake_start D "$D4:443" "[$D6]:443" || return 1 ;;
		Y) fake_start Y "$Y4:443" "[$Y6]:443" || return 1 ;;
		N) fake_start N "$N4:443" "[$N6]:443" || return 1 ;;
		plain) fake_start PA --plain "$A4:80" "$A4:8080" "[$A6]:8080" || return 1
		       fake_start PB --plain "$B4:80" || return 1 ;;
		esac
	done
}

# rst_start NAME [--on accept|data] ADDR:PORT...: an endpoint that resets
# every connection before its first byte (tests/e2e/rstserver.py)
rst_start() {
	local name=$1; shift
	spawn_in prov "$NSP" "$W/log/rst-$name.log" "$PY" "$E2E_LIB_DIR/rstserver.py" "$@"
	FAKE_PID[$name]=$SPAWN_PID
	E2E_PIDS+=($SPAWN_PID)
	local a=${@: -1}
	wait_for 5 eval "in_prov ss -Hltn \"src $a\" | grep -q LISTEN" || { notok "rstserver $name did not come up"; return 1; }
	sleep 0.1
}

# ---- official SDK clients (Node) ----------------------------------------------------

# sdk_require PACKAGE...: node and these npm packages (tests/e2e/sdk, make deps)
sdk_require() {
	NODE=$(command -v node || command -v nodejs)
	if [ -z "$NODE" ]; then notok "node is not installed (make deps)"; return 1; fi
	local pkg
	for pkg in "$@"; do
		if [ ! -d "$E2E_LIB_DIR/sdk/node_modules/$pkg" ]; then
			notok "the $pkg package is not installed in $E2E_LIB_DIR/sdk/node_modules (make deps)"
			return 1
		fi
	done
}

# sdk_run OUT SCRIPT [VAR=VALUE...] -- ARGS...: a client script of tests/e2e/sdk
# in the enrolled cgroup and the client netns (like ccurl), bounded, with a
# clean environment: no proxy variables, no base URLs, only the VARs given and
# detour's CA root (NODE_EXTRA_CA_CERTS). Its stdout goes to OUT, its stderr
# to OUT.err.
sdk_run() { sdk_exec 60 "$@"; }

# sdk_exec LIMIT-S OUT SCRIPT [VAR=VALUE...] -- ARGS...: sdk_run, bounded by LIMIT-S
sdk_exec() {
	local limit=$1 out=$2 script=$3 envs=()
	shift 3
	while [ $# -gt 0 ] && [ "$1" != -- ]; do envs+=("$1"); shift; done
	[ $# -gt 0 ] && shift
	timeout -k 1 "$limit" bash -c 'cg=$1; ns=$2; shift 2; echo $$ >"$cg/cgroup.procs" || exit 126; exec nsenter --net="$ns" "$@"' \
		_ "$CGROOT/enrolled" "$NSC" \
		env -i PATH=/usr/local/bin:/usr/bin:/bin HOME="$W" NODE_EXTRA_CA_CERTS="$W/state/ca/root.pem" \
		"${envs[@]}" "$NODE" "$E2E_LIB_DIR/sdk/$script" "$@" >"$out" 2>"$out.err"
}

# ---- the re-signing proxy ------------------------------------------------------

KEY_GROQ=gsk-detour-groq-0002
KEY_DEEPSEEK=sk-detour-deepseek-0003

# proxy_conf [PROXY-LINES]: CONF_PROXY and CONF_PROVIDERS for the re-signing
# proxy: TLS intercepted, providers verified against the test CA; OpenAI
# (api.openai.com: A, B), Groq (G, its API under /openai) and DeepSeek (D) in
# one class gpt-4o-mini ≈ llama-3.3-70b-versatile ≈ deepseek-chat, signed with
# detour's keys $KEY_GROQ and $KEY_DEEPSEEK from root-only files. PROXY-LINES:
# more [proxy] settings.
proxy_conf() {
	mkdir -p "$W/keys" && chmod 700 "$W/keys"
	printf '%s\n' "$KEY_GROQ" >"$W/keys/groq"
	printf '%s\n' "$KEY_DEEPSEEK" >"$W/keys/deepseek"
	chmod 600 "$W/keys/groq" "$W/keys/deepseek"
	CONF_PROXY="intercept_tls = yes
upstream_ca_bundle = $W/ca.pem${1:+
$1}"
	CONF_PROVIDERS="[provider openai]
hosts = $HOST_OAI
family = openai

[provider groq]
hosts = $HOST_GROQ
family = openai
base_url = https://$HOST_GROQ/openai/v1
key_file = $W/keys/groq

[provider deepseek]
hosts = $HOST_DEEPSEEK
family = openai
key_file = $W/keys/deepseek

[class chat-small]
member = openai:gpt-4o-mini
member = groq:llama-3.3-70b-versatile
member = deepseek:deepseek-chat"
}

KEY_OAI=sk-detour-openai-0004 KEY_ANT=sk-ant-detour-0005 KEY_GEM=AIza-detour-gemini-0006
MINI=gpt-4o-mini HAIKU=claude-haiku-4-5 FLASH=gemini-2.0-flash

# mixed_family_conf: CONF_PROXY and CONF_PROVIDERS for translation between
# API families: OpenAI (A, B), Anthropic (X) and Gemini (Y) in one class
# mixed, each signed with detour's key ($KEY_OAI, $KEY_ANT, $KEY_GEM) from a
# root-only file; deadlines short and neither the retry budget nor ejection
# in the way, failures being what these tests cause.
mixed_family_conf() {
	mkdir -p "$W/keys" && chmod 700 "$W/keys"
	printf '%s\n' "$KEY_OAI" >"$W/keys/openai"
	printf '%s\n' "$KEY_ANT" >"$W/keys/anthropic"
	printf '%s\n' "$KEY_GEM" >"$W/keys/gemini"
	chmod 600 "$W/keys/openai" "$W/keys/anthropic" "$W/keys/gemini"
	CONF_PROXY="intercept_tls = yes
upstream_ca_bundle = $W/ca.pem
first_byte_timeout_ms = 1500
stream_idle_timeout_ms = 1500
retry_budget_min = 1000
provider_failures_to_eject = 1000"
	CONF_PROVIDERS="[provider openai]
hosts = $HOST_OAI
family = openai
key_file = $W/keys/openai

[provider anthropic]
hosts = $HOST_ANT
family = anthropic
key_file = $W/keys/anthropic

[provider gemini]
hosts = $HOST_GEM
family = gemini
key_file = $W/keys/gemini

[class mixed]
member = openai:$MINI
member = anthropic:$HAIKU
member = gemini:$FLASH"
}

# ---- detourd -------------------------------------------------------------------

# conf_write FILE [EXTRA-SECTIONS-TEXT]: the test configuration. Variables:
# CONF_MODE (proxy or failover, default proxy),
# CONF_ENROLL (cgroup paths, default the enrolled cgroup), CONF_PROVIDERS
# (default openai + anthropic + plain), CONF_EXTRA ([detour] lines),
# CONF_PROXY ([proxy] lines; default: TLS relayed untouched, the transport
# relay the issue-2 tests are about; test_proxy* turn interception on),
# CONF_HEALTH (more [health] lines), CONF_PROBES (yes: active probes; no by
# default, so fakellm's counts are the clients' requests only).
conf_write() {
	local f=$1 cg
	{
		echo "[detour]"
		echo "mode = ${CONF_MODE:-proxy}"
		echo "listen = 127.0.0.1:$LISTEN_PORT"
		echo "listen6 = [::1]:$LISTEN_PORT"
		echo "pin_dir = $PIN"
		echo "state_dir = $W/state"
		echo "log_level = debug"
		echo "heartbeat_interval_ms = 100"
		echo "heartbeat_ttl_ms = 500"
		echo "connect_timeout_ms = ${CONF_CONNECT_TIMEOUT_MS:-500}"
		echo "down_hold_ms = ${CONF_DOWN_HOLD_MS:-5000}"
		echo "dns_refresh_s = 30"
		[ -n "${CONF_EXTRA:-}" ] && printf '%s\n' "$CONF_EXTRA"
		echo
		echo "[proxy]"
		printf '%s\n' "${CONF_PROXY:-intercept_tls = no}"
		echo
		echo "[health]"
		echo "probes = ${CONF_PROBES:-no}"
		[ -n "${CONF_HEALTH:-}" ] && printf '%s\n' "$CONF_HEALTH"
		echo
		echo "[enroll]"
		for cg in ${CONF_ENROLL:-$CG_ENROLLED}; do echo "cgroup = $cg"; done
		echo
		if [ -n "${CONF_PROVIDERS+x}" ]; then
			printf '%s\n' "$CONF_PROVIDERS"
		else
			printf '[provider openai]\nhosts = %s\nport = 443\nfamily = openai\n\n' $HOST_OAI
			printf '[provider anthropic]\nhosts = %s\nport = 443\nfamily = anthropic\n\n' $HOST_ANT
			printf '[provider plain]\nhosts = %s\nport = 80\nfamily = openai\n' $HOST_PLAIN
		fi
	} >"$f"
}

DETOURD_RUNS=0

# detourd_start [CONFIG]: detourd in the agent cgroup and the client netns,
# waits until it redirects (listener up, programs attached, intercept map filled).
detourd_start() {
	local conf=${1:-$W/detour.conf}
	[ -f "$conf" ] || conf_write "$conf"
	mkdir -p "$W/state"
	DETOURD_RUNS=$((DETOURD_RUNS + 1))
	DETOURD_LOG=$W/log/detourd.$DETOURD_RUNS.log
	spawn_in agent "$NSC" "$DETOURD_LOG" "$DETOURD" -c "$conf" --pidfile "$W/detourd.pid"
	DETOURD_PID=$SPAWN_PID
	if ! wait_for 15 detourd_ready_or_dead || ! detourd_ready; then
		notok "detourd did not become ready (run $DETOURD_RUNS): $(detourd_why)"
		return 1
	fi
}

listener_up() { in_cli ss -Hltn "sport = :$LISTEN_PORT" | grep -q LISTEN; }
attached()    { [ -n "$(bpftool cgroup show "$1" 2>/dev/null | sed 1d)" ]; }
detached()    { [ -z "$(bpftool cgroup show "$1" 2>/dev/null | sed 1d)" ]; }
no_dup_attach() { [ -z "$(bpftool cgroup show "$1" 2>/dev/null | sed 1d | awk '{print $2}' | sort | uniq -d)" ]; }
intercept_n() { bpftool -j map dump pinned "$PIN/intercept" 2>/dev/null | "$PY" -c 'import json,sys; d=json.load(sys.stdin); print(len(d) if isinstance(d, list) else 0)' 2>/dev/null || echo 0; }

detourd_ready() {
	alive "$DETOURD_PID" && listener_up && [ -e "$PIN/stats" ] &&
		attached "$CG_ENROLLED" && [ "$(intercept_n)" -gt 0 ]
}

detourd_ready_or_dead() { detourd_ready || ! alive "$DETOURD_PID"; }

detourd_why() {
	alive "$DETOURD_PID" || echo -n "exited; "
	listener_up || echo -n "no listener on :$LISTEN_PORT; "
	[ -e "$PIN/stats" ] || echo -n "no $PIN/stats; "
	attached "$CG_ENROLLED" || echo -n "nothing attached to the enrolled cgroup; "
	echo -n "intercept entries: $(intercept_n); log: "
	tail -n 3 "$DETOURD_LOG" 2>/dev/null | tr '\n' ' '
}

# detourd_stop [SIGNAL]: TERM (default) or KILL; returns detourd's exit status
detourd_stop() {
	local sig=${1:-TERM} rc
	stop_pid "$DETOURD_PID" 5 "$sig"
	rc=$?
	DETOURD_PID=
	return $rc
}

# ---- BPF state -----------------------------------------------------------------

# stats: the per-CPU stats map summed over CPUs, as "name=value ..." lines
stats() {
	bpftool -j map dump pinned "$PIN/stats" 2>/dev/null | "$PY" "$E2E_LIB_DIR/bpfjson.py" stats
}
# snap: remember the stats now; delta FIELD: how much FIELD grew since snap
declare -A SNAP
snap() { local kv; SNAP=(); for kv in $(stats); do SNAP[${kv%%=*}]=${kv#*=}; done; }
stat_get() { stats | sed -n "s/^$1=//p"; }
delta() { local v; v=$(stat_get "$1"); echo $(( ${v:-0} - ${SNAP[$1]:-0} )); }

# verdict ADDR PORT: "state=N failures=N failovers=N relayed=N ..." of that endpoint
verdict() {
	bpftool -j map dump pinned "$PIN/verdicts" 2>/dev/null | "$PY" "$E2E_LIB_DIR/bpfjson.py" verdict "$1" "$2"
}

map_id()  { bpftool -j map show pinned "$PIN/$1" 2>/dev/null | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["id"])' 2>/dev/null; }
# link_ids: "file=id" of every link pinned under $PIN/links
link_ids() {
	local f
	[ -d "$PIN/links" ] || return 0
	for f in $(find "$PIN/links" -type f | sort); do
		echo "${f#"$PIN"/links/}=$(bpftool -j link show pinned "$f" 2>/dev/null | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["id"])' 2>/dev/null)"
	done
}

# ---- health verdicts -------------------------------------------------------------

STATE_NAMES=(healthy degraded rate-limited down probing)

# health ID [MODEL]: "STATE SINCE_NS EJECTIONS UNTIL_NS REASON-TEXT" of provider
# ID's verdict in the pinned provider_health map, or of its MODEL's in model_health
health() { health_lookup "$@" | "$PY" "$E2E_LIB_DIR/bpfjson.py" health 2>/dev/null; }
# health_fields ID [MODEL]: the same verdict as "state=N override=N ... reason_text=..."
# (every field, spaces in the text as _, the probe counts as probes.sent=N ...)
health_fields() { health_lookup "$@" | "$PY" "$E2E_LIB_DIR/bpfjson.py" health_fields 2>/dev/null; }
# health_lookup ID [MODEL]: bpftool's JSON of that verdict
health_lookup() {
	local map=provider_health key
	if [ -n "${2:-}" ]; then
		map=model_health
		key=$("$PY" -c 'import sys
b = int(sys.argv[1]).to_bytes(4, "little") + sys.argv[2].encode().ljust(128, b"\0")
print(" ".join(str(x) for x in b))' "$1" "$2")
	else
		key="$(($1 & 255)) $(($1 >> 8 & 255)) 0 0"
	fi
	# shellcheck disable=SC2086 # the key's bytes
	bpftool -j map lookup pinned "$PIN/$map" key $key 2>/dev/null
}

MONO_OFFSET=
# wall_of_mono NS: the wall-clock time (seconds) of a CLOCK_MONOTONIC time in ns
wall_of_mono() {
	[ -n "$MONO_OFFSET" ] || MONO_OFFSET=$("$PY" -c 'import time; print(time.time() - time.monotonic())')
	awk -v n="$1" -v o="$MONO_OFFSET" 'BEGIN { printf "%.6f", n / 1e9 + o }'
}
# ms_since T0 [T1]: milliseconds from wall time T0 to T1 (default now)
ms_since() { awk -v a="$1" -v b="${2:-$EPOCHREALTIME}" 'BEGIN { printf "%d", (b - a) * 1000 }'; }

# log_stamp_start: follow detourd's log into $STAMPED, each line prefixed by
# the wall-clock time it was read at (tail follows with inotify: milliseconds)
log_stamp_start() {
	STAMPED=$W/log/stamped.$DETOURD_RUNS.txt
	tail --pid="$DETOURD_PID" -n +1 -F "$DETOURD_LOG" 2>/dev/null | "$PY" -u -c '
import sys, time
for line in iter(sys.stdin.readline, ""):
    sys.stdout.write("%.6f %s" % (time.time(), line))' >"$STAMPED" &
	E2E_PIDS+=($!)
}
# change_after T REGEX: read time of the first verdict change logged after wall
# time T whose text after "health: " matches REGEX (awk), e.g.
# 'openai model gpt-4o-mini: [a-z-]+ -> down'; nothing when there is none yet
change_after() { awk -v t="$1" -v re="health: $2" '$1 >= t && $0 ~ re { print $1; exit }' "$STAMPED"; }
# changes_between T0 T1 REGEX: how many such lines were read between T0 and T1
changes_between() { awk -v a="$1" -v b="$2" -v re="health: $3" '$1 >= a && $1 <= b && $0 ~ re { n++ } END { print n + 0 }' "$STAMPED"; }

# fake_counts NAME...: "CHAT PROBES TOKENS" summed over those fakellms: chat
# completion requests, model list requests (what probes ask), completion tokens
fake_counts() {
	local n
	for n in "$@"; do fake_admin "$n" GET /stats; echo; done | "$PY" -c '
import json, sys
c = m = t = 0
for line in sys.stdin:
    if line.strip():
        d = json.loads(line)
        c += d["by_path"]["/v1/chat/completions"]; m += d["by_path"]["/v1/models"]; t += d["tokens"]["completion"]
print(c, m, t)'
}

# ---- steady load: the official openai SDK (sdk/load_client.mjs) -------------------

LOAD_KEY=sk-app-load-key-0001 LOAD_RUNS=0 LOAD_RETRIES=0 LOAD_CA=
# load_start WORKERS INTERVAL-MS MAX-S [STREAM yes|no]: WORKERS sequential
# clients in the enrolled cgroup, in the background until load_stop (or MAX-S);
# their lines in $LOAD_OUT. LOAD_RETRIES: the SDK's retries (0; 2 is its
# default); LOAD_CA: the roots it trusts (default detour's only).
load_start() {
	LOAD_RUNS=$((LOAD_RUNS + 1))
	LOAD_OUT=$W/log/load.$LOAD_RUNS.jsonl LOAD_STOP=$W/load.$LOAD_RUNS.stop
	sdk_exec $(($3 + 30)) "$LOAD_OUT" load_client.mjs OPENAI_API_KEY="$LOAD_KEY" \
		${LOAD_CA:+NODE_EXTRA_CA_CERTS="$LOAD_CA"} -- --workers "$1" --interval-ms "$2" \
		--duration-ms $(($3 * 1000)) --stop "$LOAD_STOP" --stream "${4:-yes}" --retries "$LOAD_RETRIES" &
	LOAD_PID=$!
	E2E_PIDS+=($LOAD_PID)
	wait_for 15 test -s "$LOAD_OUT" || { notok "the load client did not start: $(tail -n 3 "$LOAD_OUT.err")"; return 1; }
}
load_stop() { touch "$LOAD_STOP"; wait "$LOAD_PID" 2>/dev/null; }

# load_stat FROM TO [AFTER]: LS[key] = the load's figures for the requests
# started between wall times FROM and TO (tests/e2e/loadstat.py)
declare -A LS
load_stat() {
	local kv
	LS=()
	while IFS= read -r kv; do LS[${kv%%=*}]=${kv#*=}; done < <(LOADSTAT_VIA=${prov:-openai},direct \
		"$PY" "$E2E_LIB_DIR/loadstat.py" "$LOAD_OUT" "$@")
}
# answered_by PROVIDER: of the last load_stat, the requests PROVIDER answered,
# through detour or directly (failover mode: only the provider an application
# addressed is reached directly)
answered_by() { echo $((${LS[via_$1]:-0} + ${LS[via_direct]:-0})); }

# ---- transition scenarios (test_scenarios*.sh, bench/transition.sh) --------------
#
# Under the running load, the primary's fakellms ($SCEN_FAKES) are switched to
# a fault and back. Each scenario reports, and checks: the errors the clients
# saw (zero), the chat requests the failed provider got after its verdict
# flipped (at most what its readmissions allow), the verdict in the pinned
# map with its reason, and the recovery (healthy again, traffic back).
# Settings: SCEN_FAKES (the failing provider's fakellms), SCEN_ALL (every
# fakellm of the class), SCEN_WINDOW_S (how long the fault lasts),
# SCEN_RECOVER_S (how long recovery may take), SCEN_PER_READMIT (requests
# allowed per half-open phase: its trials), SCEN_PER_REOPEN (per return to
# healthy or degraded while the fault lasts: a rate limit's reset, slowness
# aged out, a trial judged good: what it takes to flip again), SCEN_REPORT (a file: one
# line of NAME<tab>KEY=VALUE... per scenario, for bench/transition.sh) and
# SCEN_WATCH (bench/verdict_watch: when a provider's verdict reaches the map),
# SCEN_ONLY (a regular expression: only the scenarios it matches run; also
# from the environment, to run one scenario of a test).
SCEN_FAKES="A B" SCEN_ALL="A B G" SCEN_WINDOW_S=3 SCEN_RECOVER_S=8 SCEN_PER_READMIT=1 SCEN_PER_REOPEN=3
SCEN_REPORT= SCEN_WATCH=
SCEN_ONLY=${SCEN_ONLY:-}

scen_report() { # NAME KEY=VALUE...
	[ -n "$SCEN_REPORT" ] || return 0
	local IFS=$'\t'
	echo "$*" >>"$SCEN_REPORT"
}

scen_fault() { local f; for f in $SCEN_FAKES; do fake_fault "$f" "$1"; done; }

# scen_verdict SCOPE: the verdict of "openai" or "openai model M" in the maps
scen_verdict() {
	local p=${1%% *} m=
	[[ $1 == *" model "* ]] && m=${1##* model }
	health "$(provider_id "$p")" $m
}
# provider_id NAME: its id in the pinned providers map
provider_id() {
	bpftool -j map dump pinned "$PIN/providers" 2>/dev/null | "$PY" -c '
import json, sys
for e in json.load(sys.stdin):
    v = e.get("formatted", e)["value"]; n = v["name"]
    n = n if isinstance(n, str) else bytes(int(x, 16) if isinstance(x, str) else x for x in n).split(b"\0")[0].decode()
    if v.get("used") and n == sys.argv[1]:
        print(e.get("formatted", e)["key"]); break' "$1"
}

# scen_state SCOPE: the state (number) of its verdict in the maps
scen_state() { local v; v=$(scen_verdict "$1"); echo "${v%% *}"; }

# scen_ready SCOPE: the verdict is healthy and the provider answers the load
scen_ready() {
	local t=$EPOCHREALTIME
	[ "$(scen_state "$1")" = 0 ] || return 1
	wait_for 3 eval "load_stat $t 9e9; [ \"\$(answered_by ${1%% *})\" -gt 0 ]"
}

# scen_run NAME SCOPE FAILED-STATE FAULT [NORMAL]: FAULT for SCEN_WINDOW_S,
# then NORMAL (default ok). SCOPE is the verdict as detourd logs it ("openai",
# "openai model gpt-4o-mini"); FAILED-STATE what it must turn to (down,
# rate-limited, degraded).
scen_run() {
	local name=$1 scope=$2 failed=$3 fault=$4 normal=${5:-'{"mode":"ok"}'}
	local prov=${2%% *} model= code t_c0 t_c1 t_on t_flip t_off t_back="" t_healthy c0 c_flip c_end c1 readmits reopens allowed after
	local since_ms=- flip_ms=- healthy_ms=- answering_ms=- visible_us=- v_flip watch=
	[[ $name =~ ${SCEN_ONLY:-.} ]] || return 0
	[[ $scope == *" model "* ]] && model=${scope##* model }
	for code in "${!STATE_NAMES[@]}"; do [ "${STATE_NAMES[$code]}" = "$failed" ] && break; done
	scen_fault "$normal"
	if ! wait_for "$SCEN_RECOVER_S" scen_ready "$scope"; then
		notok "$name: $scope was not healthy and answering before the fault: $(scen_verdict "$scope")"
		return 1
	fi
	t_c0=$EPOCHREALTIME
	read -r -a c0 <<<"$(fake_counts $SCEN_ALL)"
	# bench: a tight reader of the map, for when the verdict reaches it
	if [ -n "$SCEN_WATCH" ]; then
		"$SCEN_WATCH" --pin-dir "$PIN" --provider "$(provider_id "$prov")" --state "$code" \
			${model:+--model "$model"} --timeout-ms $((SCEN_WINDOW_S * 1000)) >"$W/watch.out" 2>&1 &
		watch=$!
		sleep 0.05
	fi
	t_on=$EPOCHREALTIME
	scen_fault "$fault"
	# the flip: the change logged, the failed provider's count right then, the map
	wait_for "$SCEN_WINDOW_S" eval '[ -n "$(change_after $t_on "$scope: [a-z-]+ -> $failed")" ]'
	t_flip=$(change_after "$t_on" "$scope: [a-z-]+ -> $failed")
	c_flip=$(fake_counts $SCEN_FAKES)
	v_flip=$(scen_verdict "$scope")
	sleep "$(awk -v t="$t_on" -v w="$SCEN_WINDOW_S" -v n="$EPOCHREALTIME" 'BEGIN { d = t + w - n; print (d > 0 ? d : 0) }')"
	c_end=$(fake_counts $SCEN_FAKES)
	t_off=$EPOCHREALTIME
	scen_fault "$normal"
	# recovered: healthy (as a change after the fault ended, or already) and
	# answering requests sent after it
	wait_for "$SCEN_RECOVER_S" eval '[ "$(scen_state "$scope")" = 0 ] &&
		load_stat $t_off 9e9 && [ "$(answered_by $prov)" -gt 0 ]' && t_back=$EPOCHREALTIME
	t_c1=$EPOCHREALTIME
	read -r -a c1 <<<"$(fake_counts $SCEN_ALL)"
	# what the providers did beyond the clients' requests, over the same time
	load_stat "$t_c0" "$t_c1"
	local extra=$((c1[0] - c0[0] - LS[n])) probes=$((c1[1] - c0[1])) xtok=$((c1[2] - c0[2] - LS[tokens]))

	if [ -n "$t_flip" ]; then
		flip_ms=$(ms_since "$t_on" "$t_flip")
		[ "${v_flip%% *}" = "$code" ] && since_ms=$(ms_since "$t_on" "$(wall_of_mono "$(cut -d' ' -f2 <<<"$v_flip")")")
		# readmissions: half-open phases, and returns to a state that takes
		# every request (the evidence to flip again is then needed again)
		readmits=$(changes_between "$t_flip" "$t_off" "$scope: $failed -> probing")
		reopens=$(changes_between "$t_flip" "$t_off" "$scope: [a-z-]+ -> (healthy|degraded)")
		allowed=$((readmits * SCEN_PER_READMIT + reopens * SCEN_PER_REOPEN))
		after=$((${c_end%% *} - ${c_flip%% *}))
	fi
	if [ -n "$t_back" ]; then
		t_healthy=$(change_after "$t_off" "$scope: [a-z-]+ -> healthy")
		[ -n "$t_healthy" ] && healthy_ms=$(ms_since "$t_off" "$t_healthy")
		load_stat "$t_off" "$t_back"
		answering_ms=${LS[first_via_ms]}
	fi
	if [ -n "$watch" ]; then
		wait "$watch"
		visible_us=$(sed -n 's/.*visible_us=\([0-9.]*\).*/\1/p' "$W/watch.out")
	fi
	load_stat "$t_on" "${t_back:-$EPOCHREALTIME}" "${t_flip:-9e9}"
	note "$name: verdict $failed decided after $since_ms ms${watch:+, in the map ${visible_us:-?} µs later}, \
logged after $flip_ms ms (map: ${v_flip#* * * * }); \
the failed provider got ${after:--} chat requests after the flip (allowed ${allowed:--}: ${readmits:--} half-open, ${reopens:--} reopened); \
clients: ${LS[n]} requests, ${LS[errors]} errors, worst ${LS[worst_ms]} ms (first token ${LS[worst_first_ms]} ms), \
started after the flip worst ${LS[worst_after_ms]} ms; after the fault ended: healthy after $healthy_ms ms, \
answering after $answering_ms ms; extra upstream chat requests $extra, probes $probes, extra tokens $xtok"
	scen_report "$name" decided_ms="$since_ms" visible_us="$visible_us" logged_ms="$flip_ms" after="${after:--}" \
		allowed="${allowed:--}" requests="${LS[n]}" errors="${LS[errors]}" worst_ms="${LS[worst_ms]}" \
		worst_after_ms="${LS[worst_after_ms]}" healthy_ms="$healthy_ms" answering_ms="$answering_ms" \
		extra="$extra" probes="$probes" extra_tokens="$xtok"

	check "$name: zero errors seen by the clients" "${LS[errors]} of ${LS[n]}: ${LS[first_error]}" [ "${LS[errors]}" = 0 ]
	check "$name: verdict $failed within the fault, none of its requests after the flip but the readmissions'" \
		"flip at ${flip_ms} ms; ${after:-?} requests after it, allowed ${allowed:-?}; what detourd logged meanwhile: \
$(awk -v a="${t_flip:-$t_on}" -v b="$t_off" '$1 >= a && $1 <= b && /health: |failover: |openai failed|hedged|attempt [0-9]+: openai/' \
	"$STAMPED" | head -n 12 | tr '\n' ';')" \
		eval '[ -n "$t_flip" ] && [ "$after" -le "$allowed" ]'
	check "$name: the verdict is in the map at the flip, with its reason" "map: '$v_flip'" \
		eval '[ "${v_flip%% *}" = "$code" ] && [ -n "${v_flip#* * * * }" ]'
	check "$name: recovery: healthy again and answering within $SCEN_RECOVER_S s of the fault's end" \
		"map: $(scen_verdict "$scope"); load since: $(answered_by $prov) answered by $prov" [ -n "$t_back" ]
}

# scen_flap NAME SCOPE FAULT CYCLES DOWN-S UP-S: the primary fails with FAULT
# for DOWN-S and answers for UP-S, CYCLES times, under the running load. Checks
# zero client errors, that each ejection lasts longer than the one before (a
# flapping provider is kept out longer and longer), the ejections in the map,
# and the recovery.
scen_flap() {
	local name=$1 scope=$2 fault=$3 cycles=$4 down=$5 up=$6 prov=${2%% *} i t_c0 t_c1 t_on t_off t_back="" v
	local lens c0 c1 f0 f1
	[[ $name =~ ${SCEN_ONLY:-.} ]] || return 0
	scen_fault '{"mode":"ok"}'
	if ! wait_for "$SCEN_RECOVER_S" scen_ready "$scope"; then
		notok "$name: $scope was not healthy and answering before the fault: $(scen_verdict "$scope")"
		return 1
	fi
	t_c0=$EPOCHREALTIME
	read -r -a c0 <<<"$(fake_counts $SCEN_ALL)"
	f0=$(fake_counts $SCEN_FAKES)
	t_on=$EPOCHREALTIME
	for ((i = 0; i < cycles; i++)); do
		scen_fault "$fault"; sleep "$down"
		scen_fault '{"mode":"ok"}'; sleep "$up"
	done
	t_off=$EPOCHREALTIME
	v=$(scen_verdict "$scope")
	wait_for "$SCEN_RECOVER_S" eval '[ "$(scen_state "$scope")" = 0 ] &&
		load_stat $t_off 9e9 && [ "$(answered_by $prov)" -gt 0 ]' && t_back=$EPOCHREALTIME
	f1=$(fake_counts $SCEN_FAKES)
	t_c1=$EPOCHREALTIME
	read -r -a c1 <<<"$(fake_counts $SCEN_ALL)"
	load_stat "$t_c0" "$t_c1"
	local extra=$((c1[0] - c0[0] - LS[n])) probes=$((c1[1] - c0[1])) xtok=$((c1[2] - c0[2] - LS[tokens]))
	# each ejection's length: from "-> down" to the "down -> probing" after it
	lens=$(awk -v a="$t_on" -v re="health: $scope: " '$1 >= a && $0 ~ re {
		if ($0 ~ / -> down /) d = $1
		else if (d && $0 ~ / down -> probing /) { printf "%d ", ($1 - d) * 1000; d = 0 } }' "$STAMPED")
	lens=${lens% }
	load_stat "$t_on" "${t_back:-$EPOCHREALTIME}"
	note "$name: $cycles cycles of ${down} s down, ${up} s up: ejections of ${lens:-none} ms; map at the end: ${v:-none}; \
clients: ${LS[n]} requests, ${LS[errors]} errors, worst ${LS[worst_ms]} ms; the flapping provider got \
$((${f1%% *} - ${f0%% *})) chat requests, $(answered_by $prov) answered; extra upstream chat requests $extra, \
probes $probes, extra tokens $xtok"
	scen_report "$name" requests="${LS[n]}" errors="${LS[errors]}" worst_ms="${LS[worst_ms]}" \
		ejections_ms="${lens// /,}" extra="$extra" probes="$probes" extra_tokens="$xtok"
	check "$name: zero errors seen by the clients" "${LS[errors]} of ${LS[n]}: ${LS[first_error]}" [ "${LS[errors]}" = 0 ]
	check "$name: ejected at least twice, each ejection longer than the one before" "ejections (ms): ${lens:-none}" \
		eval '[ "$(wc -w <<<"$lens")" -ge 2 ] && awk -v l="$lens" '"'"'BEGIN { n = split(l, a, " "); for (i = 2; i <= n; i++) if (a[i] <= a[i - 1]) exit 1 }'"'"
	check "$name: the ejections are counted in the map" "map: ${v:-none}" eval '[ "$(cut -d" " -f3 <<<"$v")" -ge 2 ]'
	check "$name: recovery: healthy again and answering within $SCEN_RECOVER_S s" "map: $(scen_verdict "$scope")" [ -n "$t_back" ]
}

# The scenario groups: test_scenarios*.sh and
# bench/transition.sh run these, after fake_std G D. Each starts detourd with
# its thresholds (small, so that a scenario takes seconds) and WORKERS SDK
# clients sending one request INTERVAL-MS after the other, runs its
# scenarios, and stops both.
SCEN_FIRST_BYTE_MS=1000 SCEN_MODE=proxy SCEN_PROBE_MS=1000
# hedge_min_ms's default: the hedge deadline of a provider whose first token
# usually comes within a third of it
SCEN_HEDGE_MS=1000

scen_group_start() { # WORKERS INTERVAL-MS FIRST-BYTE-TIMEOUT-MS EJECT-MS [HEALTH-LINES]
	proxy_conf "first_byte_timeout_ms = $3
retry_budget_min = 100000
provider_failures_to_eject = 3
provider_eject_ms = $4"
	CONF_HEALTH="trial_requests = 1
probe_interval_ms = $SCEN_PROBE_MS
probe_interval_down_ms = $((SCEN_PROBE_MS / 2))
probe_timeout_ms = $((SCEN_PROBE_MS < 500 ? 500 : SCEN_PROBE_MS))${5:+
$5}"
	CONF_MODE=$SCEN_MODE CONF_PROBES=yes conf_write "$W/detour.conf"
	detourd_start "$W/detour.conf" || return 1
	# the roots of a client that may go direct or through detour
	cat "$W/ca.pem" "$W/state/ca/root.pem" >"$W/roots.pem"
	log_stamp_start
	# from healthy providers: in a fresh network namespace the first probes
	# may time out (IPv6 neighbour discovery) and eject them for a while
	wait_for 10 scen_all_healthy || { notok "the providers are not healthy at the start: $(scen_verdict openai)"; return 1; }
	SCEN_LOAD="$1 $2"
	load_start "$1" "$2" 300 || return 1
	# after a return to healthy: the 3 failures that eject, and the other
	# workers' requests in flight meanwhile
	SCEN_ALL="A B G D" SCEN_PER_READMIT=1 SCEN_PER_REOPEN=$(($1 + 2))
}
# scen_new_clients: the load's clients replaced by new ones (new connections)
scen_new_clients() { load_stop; load_start $SCEN_LOAD 300; }
scen_all_healthy() { local p v; for p in openai groq deepseek; do v=$(scen_verdict $p); [ "${v%% *}" = 0 ] || return 1; done; }
scen_group_stop() {
	load_stop
	check "the agent is still alive after the scenarios" "detourd exited" alive "$DETOURD_PID"
	detourd_stop
}

# outages: a full outage (503), connections refused, a blackhole (requests
# never answered), each ended by the recovery
scen_outages() { # WORKERS INTERVAL-MS
	scen_group_start "$1" "$2" "$SCEN_FIRST_BYTE_MS" 1000 "eject_max_ms = 2000
eject_decay_ms = 1000" || return 1
	scen_run "outage (503)" "openai model gpt-4o-mini" down '{"mode":"status","status":503}'
	scen_run "connection refused" openai down '{"mode":"refuse"}'
	scen_run "blackhole (hang)" "openai model gpt-4o-mini" down '{"mode":"hang"}'
	scen_group_stop
}

# limits: slow first tokens, a 429 storm, a hedged blackhole, flapping
scen_limits() { # WORKERS INTERVAL-MS
	local workers=$1
	scen_group_start "$1" "$2" 6000 500 "eject_max_ms = 4000
eject_decay_ms = 4000
window_ms = 3000
min_calls = 3
slow_ceiling_ms = 2000" || return 1
	# slow calls are judged per model; DEGRADED ranks it after its healthy
	# peers until the evidence ages out of the window, then every worker may
	# go back; 4 workers make the 3 slow calls the verdict needs at once
	SCEN_WINDOW_S=6 SCEN_PER_REOPEN=$workers scen_run "degradation (first token 4 s)" \
		"openai model gpt-4o-mini" degraded '{"mode":"slow","ttft_ms":4000}' '{"mode":"slow","ttft_ms":300}'
	# a 429 sets the model aside until its retry-after; each reset lets the
	# workers' next requests in until the next 429
	SCEN_PER_REOPEN=$workers scen_run "rate-limit storm (429, retry-after 1 s)" "openai model gpt-4o-mini" \
		rate-limited '{"mode":"status","status":429,"retry_after":1}'
	# with a first-byte timeout of 6 s, a blackhole is hedged: after the hedge
	# deadline (the provider's usual first token x 3, at least hedge_min_ms,
	# 1 s) Groq answers too, the hung attempt is cancelled and counts as a
	# slow call: DEGRADED once the slow calls are enough (3 s here)
	SCEN_WINDOW_S=5 SCEN_PER_REOPEN=$workers scen_run "blackhole (hang), hedged" "openai model gpt-4o-mini" degraded '{"mode":"hang"}'
	scen_flap "flapping (1 s reset, 1 s up)" openai '{"mode":"reset"}' 3 1 1
	scen_group_stop
}

# failover mode (issue 5 §4): while OpenAI is healthy its connections are
# left alone, the clients talk to it directly; when it leaves HEALTHY the
# hook redirects its new connections to the proxy and the agent aborts the
# direct ones (SOCK_DESTROY). Only probes and the kernel's TCP signals see it
# fail, so they run every 200 ms: slow first tokens and one model's outage
# are not seen (docs/health.md). The clients are unmodified applications:
# the SDK's own 2 retries (an aborted connection is retried on a new one),
# trusting the providers' CA (direct) and detour's (redirected).
# test_failmode.sh checks which connections are aborted and which are not.
scen_failover() { # GROUP (outages, limits) WORKERS INTERVAL-MS
	local SCEN_MODE=failover SCEN_PROBE_MS=200 LOAD_RETRIES=2 LOAD_CA=$W/roots.pem group=$1
	shift
	"scen_failover_$group" "$@"
}

scen_failover_outages() { # WORKERS INTERVAL-MS
	local t
	scen_group_start "$1" "$2" "$SCEN_FIRST_BYTE_MS" 1000 "eject_max_ms = 2000
eject_decay_ms = 1000" || return 1
	# each with new clients: connections redirected in a scenario stay with
	# the proxy (kept alive) after the recovery, only new ones go direct.
	# A 503 outage: probes (a model list answered 503) eject the provider;
	# a half-open trial answered 503 fails (a 5xx proves nothing of a
	# provider on trial), so it stays out while the outage lasts.
	scen_run "failover mode: outage (503)" openai down '{"mode":"status","status":503}'
	scen_new_clients || return 1
	scen_run "failover mode: connection refused" openai down '{"mode":"refuse"}'
	scen_new_clients || return 1
	t=$EPOCHREALTIME
	SCEN_WINDOW_S=5 scen_run "failover mode: blackhole (hang)" openai down '{"mode":"hang"}'
	[[ "failover mode: blackhole" =~ ${SCEN_ONLY:-.} ]] &&
		check "failover mode: blackhole: the hung direct keep-alive connections were aborted" \
			"$(grep 'failover: openai' "$STAMPED" | tail -n 2)" \
			awk -v t="$t" '$1 >= t && /failover: openai: aborted [1-9]/ { f = 1 } END { exit !f }' "$STAMPED"
	scen_group_stop
}

# limits in failover mode: a 429 storm and flapping, with scen_limits'
# ejections (500 ms, doubling up to 4 s, forgotten after 4 s)
scen_failover_limits() { # WORKERS INTERVAL-MS
	scen_group_start "$1" "$2" "$SCEN_FIRST_BYTE_MS" 500 "eject_max_ms = 4000
eject_decay_ms = 4000" || return 1
	# a probe answered 429 sets the whole provider aside until its
	# retry-after: the hook redirects, the direct connections are aborted;
	# the clients' own 429s (direct, unseen by the agent) are retried by the
	# SDK after the retry-after. Each reset lets every worker's next request
	# go direct until a probe's 429 sets the provider aside again.
	SCEN_PER_REOPEN=$1 scen_run "failover mode: rate-limit storm (429, retry-after 1 s)" openai \
		rate-limited '{"mode":"status","status":429,"retry_after":1}'
	scen_new_clients || return 1
	scen_flap "failover mode: flapping (1 s reset, 1 s up)" openai '{"mode":"reset"}' 3 1 1
	scen_group_stop
}

#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Requests per second fakellm serves on one core: small non-streaming
# chat completions over keep-alive, measured with wrk on 127.0.0.1.
#
#   bench/fakellm-rps.sh BUILD_DIR [SECONDS]
#
# Builds nothing: BUILD_DIR/fakellm must exist. fakellm is pinned to CPU 0,
# wrk to the other CPUs when there are any.
set -euo pipefail

build=${1:?usage: $0 BUILD_DIR [SECONDS]}
seconds=${2:-5}
fakellm=$build/fakellm
[ -x "$fakellm" ] || { echo "fakellm-rps: no $fakellm (run make first)" >&2; exit 1; }
command -v wrk >/dev/null || { echo "fakellm-rps: wrk is not installed" >&2; exit 1; }

tmp=$(mktemp -d)
pid=
cleanup() {
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill "$pid"
		wait "$pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

cpus=$(nproc)
server_cpu=0
client_cpus=0
client_threads=1
if [ "$cpus" -gt 1 ]; then
	client_cpus=1-$((cpus - 1))
	client_threads=$((cpus - 1 < 4 ? cpus - 1 : 4))
fi

# Port 0: the kernel picks a free port, fakellm says which.
taskset -c "$server_cpu" "$fakellm" --listen 127.0.0.1:0 --name bench \
	--pidfile "$tmp/pid" 2>"$tmp/log" &
pid=$!
for _ in $(seq 50); do
	[ -s "$tmp/pid" ] && break
	kill -0 "$pid" 2>/dev/null || { cat "$tmp/log" >&2; exit 1; }
	sleep 0.1
done
port=$(sed -n 's/^fakellm: listening on 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$tmp/log" | head -1)
[ -n "$port" ] || { echo "fakellm-rps: fakellm did not start" >&2; cat "$tmp/log" >&2; exit 1; }

cat >"$tmp/post.lua" <<'EOF'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model":"gpt-4o-mini","max_tokens":16,"messages":[{"role":"user","content":"Say hello in one short sentence."}]}'
EOF

taskset -c "$client_cpus" wrk -t"$client_threads" -c32 -d"${seconds}s" -s "$tmp/post.lua" \
	"http://127.0.0.1:$port/v1/chat/completions" >"$tmp/wrk"
rps=$(awk '/^Requests\/sec:/ { printf "%d", $2 }' "$tmp/wrk")
if grep -q "Non-2xx" "$tmp/wrk"; then
	echo "fakellm-rps: some responses were not 200:" >&2
	cat "$tmp/wrk" >&2
	exit 1
fi
echo "fakellm: ${rps:-0} req/s (1 core, keep-alive, non-streaming)"

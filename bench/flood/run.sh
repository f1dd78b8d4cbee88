#!/usr/bin/env bash
# Floods of issue 12 (B7) against callbackd on loopback, with legitimate
# calls meanwhile; bounded (fixed rates, counts and durations) and every
# process it starts is stopped by its pid.
#
#   bench/flood/run.sh invite [RATE] [SECONDS]   # unauthenticated INVITEs/s over UDP, each from a new source (default 5000 for 20 s)
#   bench/flood/run.sh tcp [CONNS] [SECONDS]     # TCP connections held (half idle, half sending a message slowly; default 5000 for 60 s)
#
# Prints: the server's RSS (and Go heap, goroutines) every second during
# the flood and AFTER seconds after it (default 90), the time it took to
# come back near its idle footprint, and SIPp's counters for the
# legitimate calls (LEGIT_RATE calls/s, default 5, 500 ms each) made from
# 5 s before the flood to 5 s after it. MAX_TX sets sip.max_transactions,
# TCP_IDLE sip.tcp_idle_timeout; AFTER how long to watch after the flood;
# KEEP=1 keeps the work folder.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
mode=${1:?invite or tcp}
SIP_PORT=${SIP_PORT:-16060}
HTTP_PORT=${HTTP_PORT:-16080}
DEBUG_PORT=${DEBUG_PORT:-16081}
UAS_PORT=${UAS_PORT:-16070}
UAC_PORT=${UAC_PORT:-16090}
AFTER=${AFTER:-90}
LEGIT_RATE=${LEGIT_RATE:-5}
for t in sipp python3 curl; do # fail loudly, before anything starts, when a tool is missing
	command -v "$t" >/dev/null 2>&1 || { echo "flood/run.sh: $t is not installed" >&2; exit 1; }
done
work=$(mktemp -d /tmp/callbackd-flood.XXXXXX)
pids=()
cleanup() { # KEEP=1 keeps the work folder (config, logs, heap profile)
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	if [ -n "${KEEP:-}" ]; then echo "work dir: $work (kept)"; else rm -rf "$work"; fi
}
trap cleanup EXIT

(cd "$root" && go build -o "$work/callbackd" ./cmd/callbackd && go build -o "$work/flood" ./bench/flood)
cat > "$work/callbackd.toml" <<EOC
[sip]
listen = ["udp:127.0.0.1:$SIP_PORT", "tcp:127.0.0.1:$SIP_PORT"]
tcp_idle_timeout = ${TCP_IDLE:-120}
max_transactions = ${MAX_TX:-150000}
${OVERLOAD_DELAY:+overload_delay = \"$OVERLOAD_DELAY\"}
[http]
listen = "127.0.0.1:$HTTP_PORT"
debug_listen = "127.0.0.1:$DEBUG_PORT"
[store]
path = "$work/data/callbackd.db"
[log]
level = "info"
[[line]]
dn = "2001"
password = "p2001"
busy_trigger = 100
[[line]]
dn = "3001"
password = "p3001"
busy_trigger = 100
EOC
(cd "$work" && exec ./callbackd -config callbackd.toml 2> server.log) &
server=$!
pids+=("$server")
for _ in $(seq 100); do grep -q 'SIP listening" addr=tcp' "$work/server.log" 2>/dev/null && break; sleep 0.1; done

printf 'SEQUENTIAL\n2001;p2001;[authentication username=2001 password=p2001]\n' > "$work/caller.csv"
printf 'SEQUENTIAL\n3001;p3001;[authentication username=3001 password=p3001]\n' > "$work/callee.csv"
(cd "$work" && sipp 127.0.0.1:$SIP_PORT -sf "$root/bench/load/register_load.xml" -inf caller.csv -p $UAC_PORT -m 1 -nostdin -timeout 10 >/dev/null)
(cd "$work" && sipp 127.0.0.1:$SIP_PORT -sf "$root/bench/load/register_load.xml" -inf callee.csv -p $UAS_PORT -m 1 -nostdin -timeout 10 >/dev/null)

case "$mode" in
invite) rate=${2:-5000}; secs=${3:-20}; args=(-mode invite -rate "$rate") ;;
tcp) conns=${2:-5000}; secs=${3:-60}; args=(-mode tcp -conns "$conns") ;;
*) echo "unknown mode $mode"; exit 2 ;;
esac
legit=$(( (secs+10)*LEGIT_RATE ))
(cd "$work" && exec sipp 127.0.0.1:$SIP_PORT -sf "$root/test/interop/sipp/uas.xml" -p $UAS_PORT -nostdin -timeout $((secs+40)) >/dev/null 2>&1) &
pids+=("$!")
sleep 0.5
# The legitimate caller is a phone of line 2001: each call answers the 407
# with the line's digest, bound to the callee's URI (B7).
(cd "$work" && exec sipp 127.0.0.1:$SIP_PORT -sf "$root/test/interop/sipp/uac.xml" -s 3001 -set caller 2001 \
	-au 2001 -ap p2001 -auth_uri "3001@127.0.0.1:$SIP_PORT" -p $UAC_PORT \
	-r "$LEGIT_RATE" -m "$legit" -d 500 -nostdin -timeout $((secs+40)) -trace_stat -stf uac_stats.csv -fd 1 >/dev/null 2>&1) &
legit_pid=$!
pids+=("$legit_pid")
sleep 5
echo "== $mode flood (${args[*]}) for $secs s; legitimate calls: $legit at $LEGIT_RATE/s from 5 s before to 5 s after"
uptime
"$work/flood" "${args[@]}" -target 127.0.0.1:$SIP_PORT -duration "${secs}s" -after "${AFTER}s" \
	-pid "$server" -http 127.0.0.1:$DEBUG_PORT &
flood_pid=$!
pids+=("$flood_pid")
wait "$legit_pid" || true
python3 - "$work/uac_stats.csv" <<'EOP'
import csv, sys
rows = list(csv.reader(open(sys.argv[1]), delimiter=';'))
h, last = rows[0], rows[-1]
g = lambda k: int(last[h.index(k)])
ok, failed = g('SuccessfulCall(C)'), g('FailedCall(C)')
print(f"legitimate calls: {ok+failed} made, {ok} successful, {failed} failed")
EOP
wait "$flood_pid" || true
curl -s "http://127.0.0.1:$DEBUG_PORT/debug/pprof/heap?gc=1" > "$work/heap.pprof" # KEEP=1, then go tool pprof -top $work/heap.pprof
echo "log lines: $(wc -l < "$work/server.log"), of which WARN/ERROR: $(grep -c 'level=WARN\|level=ERROR' "$work/server.log" || true)"
curl -s "http://127.0.0.1:$HTTP_PORT/metrics" | grep -E '^callbackd_sip_(tcp|accept|udp|overload|read)' || true

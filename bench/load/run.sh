#!/usr/bin/env bash
# Load runs of callbackd with SIPp on loopback. Bounded: every SIPp run has a
# fixed call count (-m) and a timeout; the server is stopped at the end.
#
#   bench/load/run.sh calls RATE [SECONDS]   # SIPp uac -> callbackd -> SIPp uas, 500 ms calls
#                                            # RECOVERY=1: then the 503s refused, and 40 calls after the load
#   bench/load/run.sh register COUNT RATE    # COUNT devices REGISTER with digest auth, then RSS
#   bench/load/run.sh restore COUNT          # start with COUNT stored Call Back requests: time, RSS
#   bench/load/run.sh notify N [K]           # B's BYE -> A's "has become available" MESSAGE, N open requests, K cycles
#   bench/load/run.sh offers RATE [SECONDS]  # calls to logged-out lines: the offer's announcement (183 + RTP, ~11 s each)
#
# Prints SIPp's counters (successful / failed calls) and the server's RSS.
# BIN=path runs that callbackd binary instead of building one from this tree
# (bench/load/compare.sh uses it to load two revisions the same way).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
if [ "${1:-}" = notify ]; then
	# bench/notify runs its own server, SIPp phones and SIPp load (RATE
	# calls/s, default 200; HOLD: how long B talks before hanging up) and
	# stops them by pid. Further arguments go to it (see -help).
	n=${2:?N open requests}; k=${3:-100}
	cd "$root"
	exec go run ./bench/notify -n "$n" -k "$k" -rate "${RATE:-200}" -hold "${HOLD:-800ms}" "${@:4}"
fi
work=$(mktemp -d /tmp/callbackd-load.XXXXXX)
cleanup() { # every process started here is a job of this shell: stop them by pid
	kill $(jobs -p) 2>/dev/null || true
	wait 2>/dev/null || true
}
trap 'cleanup; echo "work dir: $work"' EXIT

SIP_PORT=${SIP_PORT:-15060}
UAS_PORT=${UAS_PORT:-15070}
UAC_PORT=${UAC_PORT:-15080}
LINES=${LINES:-10} # caller lines 2001.. and callee lines 3001.., each busy_trigger 100
cleanup

if [ -n "${BIN:-}" ]; then
	cp "$BIN" "$work/callbackd"
else
	(cd "$root" && go build -o "$work/callbackd" ./cmd/callbackd)
fi

config() { # $1 = extra lines generator
	cat > "$work/callbackd.toml" <<EOC
[sip]
listen = ["udp:127.0.0.1:$SIP_PORT"]
# SIPp 3.6 answers the first challenge whatever its algorithm, and knows MD5 only.
digest_algorithms = ["MD5"]
[http]
listen = "127.0.0.1:${HTTP_PORT:-18080}"
debug_listen = "127.0.0.1:${DEBUG_PORT:-18081}"
[store]
path = "$work/data/callbackd.db"
[log]
level = "${LOG_LEVEL:-warn}"
EOC
	"$@" >> "$work/callbackd.toml"
}

# The load caller's SIPp is a trunk (a trusted peer, B7): every INVITE of a
# line is challenged, and SIPp cannot bind its digest to a Request-URI that
# changes per row of an injection file (-auth_uri is one value). So the
# load calls come from outside (callers 9<DN>, not lines) to the lines.
loadtrunk() {
	printf '[[trunk]]\nname = "load"\naddress = "udp:127.0.0.1:%d"\nprefixes = []\n' $UAC_PORT
}

start() {
	(cd "$work" && exec ./callbackd -config callbackd.toml 2> server.log) &
	server=$!
	for _ in $(seq 100); do grep -q "SIP listening" "$work/server.log" 2>/dev/null && return; sleep 0.1; done
	# level=warn hides the info line: wait for the port instead
	for _ in $(seq 50); do ss -lun | grep -q ":$SIP_PORT " && return; sleep 0.1; done
	echo "server did not start"; cat "$work/server.log"; exit 1
}

rss() { awk '/VmRSS/ {print $2 " kB"}' /proc/$server/status; }
heap() { # live Go heap after the last GC, from expvar's memstats
	curl -s "http://127.0.0.1:${DEBUG_PORT:-18081}/debug/vars" |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["memstats"]["HeapAlloc"]//1024, "kB")'
}

sippstats() { # last line of a SIPp -trace_stat file: successful and failed calls
	python3 - "$1" <<'EOP'
import csv, sys
rows = list(csv.reader(open(sys.argv[1]), delimiter=';'))
h, last = rows[0], rows[-1]
g = lambda k: last[h.index(k)]
ok, failed = int(g('SuccessfulCall(C)')), int(g('FailedCall(C)'))
total = ok + failed
print(f"calls: {total} successful: {ok} failed: {failed} ({100.0*failed/max(total,1):.3f}%)")
EOP
}

lines() { # [[line]] tables of DNs $1+1 .. $1+$2, password p<DN>, busy_trigger $3 if given
	for i in $(seq "$2"); do
		printf '[[line]]\ndn = "%d"\npassword = "p%d"\n' $(($1+i)) $(($1+i))
		[ -z "${3:-}" ] || printf 'busy_trigger = %d\n' "$3"
	done
}

accounts() { # SIPp injection rows of lines $1+1 .. $1+$2: user;password;auth
	echo SEQUENTIAL
	for i in $(seq "$2"); do echo "$(($1+i));p$(($1+i));[authentication username=$(($1+i)) password=p$(($1+i))]"; done
}

loadcalls() { # the load's calls: from outside, 9<caller line>, to the callee lines
	echo SEQUENTIAL
	for i in $(seq $LINES); do echo "9$((2000+i));$((3000+i));"; done
}

register() { # $1 = injection file in $work, $2 = SIPp's port: each of LINES lines registers once
	(cd "$work" && sipp 127.0.0.1:$SIP_PORT -sf "$here/register_load.xml" -inf "$1" -p "$2" -m $LINES -r 100 -nostdin -timeout 20 >/dev/null)
}

case "${1:-}" in
calls)
	rate=${2:?rate}; secs=${3:-60}
	gen() { loadtrunk; lines 2000 $LINES 100; lines 3000 $LINES 100; }
	config gen
	start
	accounts 2000 $LINES > "$work/callers.csv"
	accounts 3000 $LINES > "$work/callees.csv"
	loadcalls > "$work/calls.csv"
	register callers.csv $UAC_PORT
	register callees.csv $UAS_PORT
	total=$((rate*secs))
	(cd "$work" && exec sipp 127.0.0.1:$SIP_PORT -sf "$root/test/interop/sipp/uas.xml" -p $UAS_PORT -nostdin -timeout $((secs+60)) >/dev/null 2>&1) &
	sleep 0.5
	echo "== $total calls at $rate/s, 500 ms each"
	cpu0=$(awk '{print $14+$15}' /proc/$server/stat)
	t0=$(date +%s%N)
	(cd "$work" && sipp 127.0.0.1:$SIP_PORT -sf "$here/uac_load.xml" -inf calls.csv -p $UAC_PORT \
		-r "$rate" -m "$total" -d 500 -l $((rate*5)) -nostdin -timeout $((secs+60)) \
		-trace_stat -stf uac_stats.csv -fd 1 -trace_rtt -rtt_freq 1000 >/dev/null 2>&1) || true
	cpu1=$(awk '{print $14+$15}' /proc/$server/stat)
	t1=$(date +%s%N)
	sippstats "$work/uac_stats.csv"
	ms=$(( (t1-t0)/1000000 ))
	echo "elapsed ${ms} ms (target $((secs*1000)) ms + 500 ms call); achieved $(( total*1000/ms )) calls/s"
	if [ -n "${PROFILE:-}" ]; then
		sleep "${PROFILE_AFTER:-0}" # e.g. 40: after SIP transaction timers (32 s) ran out
		curl -s "http://127.0.0.1:${DEBUG_PORT:-18081}/debug/pprof/heap?gc=1" > "$work/heap.pprof"
		curl -s "http://127.0.0.1:${DEBUG_PORT:-18081}/debug/pprof/goroutine?debug=1" | head -40 > "$work/goroutines.txt"
	fi
	echo "server CPU $(( (cpu1-cpu0)*1000/$(getconf CLK_TCK) )) ms = $(( (cpu1-cpu0)*1000*100/$(getconf CLK_TCK)/ms ))% of one core; RSS at end $(rss)"
	echo "server CPU since start (utime+stime) $(awk -v t="$(getconf CLK_TCK)" '{printf "%.2f", ($14+$15)/t}' /proc/$server/stat) s"
	if [ -n "${RECOVERY:-}" ]; then
		# Overload control: what was refused 503 at once, and whether the
		# server serves again as soon as the load stops (a few calls 2 s
		# after it, each must succeed; RSS then).
		curl -s "http://127.0.0.1:${HTTP_PORT:-18080}/metrics" |
			grep -E '^callbackd_sip_(overload_rejected_total|overload_episodes_total|overload_total|messages_total\{direction="out",kind="503"\})' || true
		sleep 2
		(cd "$work" && sipp 127.0.0.1:$SIP_PORT -sf "$here/uac_load.xml" -inf calls.csv -p $UAC_PORT \
			-r 20 -m 40 -d 500 -nostdin -timeout 30 -trace_stat -stf after_stats.csv -fd 1 >/dev/null 2>&1) || true
		echo "after the load: $(sippstats "$work/after_stats.csv"); RSS $(rss)"
	fi
	;;
offers)
	# Each call hears the whole offer (the prompt twice, about 11 s), so
	# about 11*RATE announcements play at once.
	rate=${2:?rate}; secs=${3:-30}
	gen() {
		loadtrunk
		printf '[callback]\nexternal = true\n' # the offer to outside callers (F30)
		lines 2000 $LINES 100
		lines 3000 $LINES
	}
	config gen
	start
	accounts 2000 $LINES > "$work/callers.csv"
	loadcalls > "$work/calls.csv"
	register callers.csv $UAC_PORT
	total=$((rate*secs))
	echo "== $total calls at $rate/s to logged-out lines, each hearing the offer"
	cpu0=$(awk '{print $14+$15}' /proc/$server/stat)
	t0=$(date +%s%N)
	(cd "$work" && sipp 127.0.0.1:$SIP_PORT -sf "$here/uac_offer_load.xml" -inf calls.csv -p $UAC_PORT \
		-r "$rate" -m "$total" -l $((rate*20)) -nostdin -timeout $((secs+90)) \
		-trace_stat -stf uac_stats.csv -fd 1 >/dev/null 2>&1) || true
	cpu1=$(awk '{print $14+$15}' /proc/$server/stat)
	t1=$(date +%s%N)
	sippstats "$work/uac_stats.csv"
	ms=$(( (t1-t0)/1000000 ))
	m=$(curl -s "http://127.0.0.1:${HTTP_PORT:-18080}/metrics")
	sent=$(echo "$m" | awk '/^callbackd_rtp_packets_sent_total/ {print $2}')
	late=$(echo "$m" | awk '/^callbackd_rtp_packets_late_total/ {print $2}')
	echo "elapsed ${ms} ms; RTP packets sent $sent, late (> 5 ms) $late"
	echo "server CPU $(( (cpu1-cpu0)*1000/$(getconf CLK_TCK) )) ms = $(( (cpu1-cpu0)*1000*100/$(getconf CLK_TCK)/ms ))% of one core; RSS at end $(rss)"
	;;
register)
	count=${2:?count}; rate=${3:-1000}
	gen() { lines 100000 $count; }
	config gen
	start
	echo "RSS with $count lines configured, none registered: $(rss)"
	accounts 100000 $count > "$work/users.csv"
	start_ns=$(date +%s%N)
	(cd "$work" && sipp 127.0.0.1:$SIP_PORT -sf "$here/register_load.xml" -inf users.csv -p $UAC_PORT \
		-r "$rate" -m "$count" -l 2000 -nostdin -timeout 300 -trace_stat -stf reg_stats.csv -fd 1 >/dev/null 2>&1) || true
	end_ns=$(date +%s%N)
	sippstats "$work/reg_stats.csv" | sed 's/calls/registrations/'
	echo "elapsed $(( (end_ns-start_ns)/1000000 )) ms => $(( count*1000000000/(end_ns-start_ns) )) REGISTER transactions/s (each with a 401 round trip)"
	echo "RSS with $count devices registered, right after: $(rss)"
	# The REGISTER transactions stay 32 s (RFC 3261 Timer J); after that,
	# force a GC (pprof's gc=1) so RSS shows what the bindings keep.
	sleep 35
	curl -s -o /dev/null "http://127.0.0.1:${DEBUG_PORT:-18081}/debug/pprof/heap?gc=1"
	echo "RSS with $count devices registered, after the transactions ended: $(rss); Go heap in use: $(heap)"
	;;
restore)
	count=${2:?count}
	config true
	(cd "$root" && go run ./bench/seedrequests -n "$count" -db "$work/data/callbackd.db" -config "$work/lines.toml")
	cat "$work/lines.toml" >> "$work/callbackd.toml"
	sed -i 's/level = ".*"/level = "info"/' "$work/callbackd.toml"
	t0=$(date +%s%N)
	(cd "$work" && exec ./callbackd -config callbackd.toml 2> server.log) &
	server=$!
	until grep -q "call back requests restored" "$work/server.log" 2>/dev/null; do
		kill -0 $server 2>/dev/null || { cat "$work/server.log"; exit 1; }
		sleep 0.02
	done
	t1=$(date +%s%N)
	grep -o 'call back requests restored.*' "$work/server.log"
	echo "start to serving (SIP up, requests restored) with $count stored requests: $(( (t1-t0)/1000000 )) ms"
	sleep 2 # the heap left by the restore is returned to the OS once serving
	echo "RSS with $count open requests: $(rss)"
	;;
*)
	sed -n 2,12p "$0"; exit 2;;
esac
kill $server; wait $server 2>/dev/null || true

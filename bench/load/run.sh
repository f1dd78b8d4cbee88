#!/usr/bin/env bash
# Load runs of callbackd with SIPp on loopback. Bounded: every SIPp run has a
# fixed call count (-m) and a timeout; every process started is stopped by
# its pid at the end.
#
#   bench/load/run.sh calls RATE [SECONDS]   # SIPp uac -> callbackd -> SIPp uas, 500 ms calls
#                                            # RECOVERY=1: then the 503s refused, and 40 calls after the load
#   bench/load/run.sh side RATE[,RATE...] [SECONDS]  # the same load against Kamailio, then callbackd, per rate
#   bench/load/run.sh register COUNT RATE    # COUNT devices REGISTER with digest auth, then RSS
#   bench/load/run.sh restore COUNT          # start with COUNT stored Call Back requests: time, RSS
#   bench/load/run.sh restarts COUNT ROUNDS [BIN...]  # the same store, restarted ROUNDS times by each
#                                            # binary in turn (default: this tree's): time, CPU, RSS
#   bench/load/run.sh refusals COUNT         # the load caller against a SIPp callee answering 503:
#                                            # each counted refused (not failed) and ACKed
#   bench/load/run.sh notify N [K]           # B's BYE -> A's "has become available" MESSAGE, N open requests, K cycles
#   bench/load/run.sh offers RATE [SECONDS]  # calls to logged-out lines: the offer's announcement (183 + RTP, ~11 s each)
#
# Prints SIPp's counters (successful / failed calls), INVITE -> 200 as the
# caller sees it (p50/p99, SIPp -trace_rtt, 1 ms resolution), the server's
# CPU (utime+stime of /proc/PID/stat over the run) and its RSS at the end.
# BIN=path runs that callbackd binary instead of building one from this tree
# (bench/load/compare.sh uses it to load two revisions the same way).
# KEEP=1 keeps the work folder (config, store, logs, SIPp files; PROFILE=1
# keeps it too); otherwise it is removed at the end.
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
need() { # fail loudly, before anything starts, when a tool is missing
	for t in "$@"; do
		command -v "$t" >/dev/null 2>&1 || { echo "run.sh: $t is not installed" >&2; exit 1; }
	done
}
need sipp python3 curl ss awk timeout
work=$(mktemp -d /tmp/callbackd-load.XXXXXX)
cleanup() { # every process started here is a job of this shell: stop them by pid
	kill $(jobs -p) 2>/dev/null || true
	wait 2>/dev/null || true
}
leave() {
	cleanup
	if [ -n "${KEEP:-}${PROFILE:-}" ]; then echo "work dir: $work (kept)"; else rm -rf "$work"; fi
}
trap leave EXIT

SIP_PORT=${SIP_PORT:-15060}
UAS_PORT=${UAS_PORT:-15070}
UAC_PORT=${UAC_PORT:-15080}
# caller lines 2001.. and callee lines 3001.., each busy_trigger 100; side
# mode: 100 each, so the busy trigger never decides (issue 14's rig)
if [ "${1:-}" = side ]; then LINES=${LINES:-100}; else LINES=${LINES:-10}; fi
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
${OVERLOAD_DELAY:+overload_delay = \"$OVERLOAD_DELAY\"}
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

listening() { # wait for SIP_PORT to be bound by $1 (pid; name $2, log $3); fail if it exits first
	for _ in $(seq 100); do
		ss -lun | grep -q ":$SIP_PORT " && return
		kill -0 "$1" 2>/dev/null || break
		sleep 0.1
	done
	echo "$2 did not start"; cat "$3"; exit 1
}

start() { # level=warn hides the "SIP listening" line: wait for the port
	(cd "$work" && exec ./callbackd -config callbackd.toml 2> server.log) &
	server=$!
	listening $server callbackd "$work/server.log"
}

stop() { kill "$1"; wait "$1" 2>/dev/null || true; }

# Kamailio (bench/load/kamailio.cfg) in the foreground (-DD: the process
# started here is its main process; its workers are its children), on the
# same port as callbackd, relaying to the SIPp uas. Its shared memory
# (KAM_SHM MB) holds the transactions: with 256 MB, 2000 calls/s run out
# of it ("new_t(): out of mem") and fail calls.
kamailio_start() {
	if ! command -v kamailio >/dev/null 2>&1; then
		[ "$(id -u)" -eq 0 ] || { echo "run.sh: kamailio is not installed: as root, apt-get install kamailio" >&2; exit 1; }
		echo "--- installing kamailio (Debian)"
		export DEBIAN_FRONTEND=noninteractive
		apt-get install -y --no-install-recommends kamailio >/dev/null ||
			{ apt-get update >/dev/null && apt-get install -y --no-install-recommends kamailio >/dev/null; }
	fi
	kamailio -DD -E -f "$here/kamailio.cfg" -l "udp:127.0.0.1:$SIP_PORT" -A "UAS_URI=\"sip:127.0.0.1:$UAS_PORT\"" \
		-m "${KAM_SHM:-1024}" -M 8 -w "$work" > "$work/kamailio.log" 2>&1 &
	server=$!
	listening $server kamailio "$work/kamailio.log"
	sleep 0.5 # its workers fork after the socket is bound
}

kids() { ps -o pid= --ppid "$1" || true; } # ps fails when there is none

cputicks() { # utime+stime of $1 and its children (Kamailio's workers)
	{ cat /proc/$1/stat; kids "$1" | while read -r p; do cat /proc/$p/stat 2>/dev/null || true; done; } |
		awk '{t += $14+$15} END {print t}'
}
memory() { # RSS of $1; for a process with workers, the sum of their PSS (shared memory once)
	local k
	k=$(kids "$1" | tr -d ' ')
	if [ -z "$k" ]; then
		awk '/VmRSS/ {printf "%d MB", $2/1024}' /proc/$1/status
	else
		for p in $1 $k; do cat /proc/$p/smaps_rollup; done |
			awk '/^Pss:/ {t += $2; n++} END {printf "%d MB (PSS of %d processes)", t/1024, n}'
	fi
}
heap() { # live Go heap after the last GC, from expvar's memstats
	curl -s "http://127.0.0.1:${DEBUG_PORT:-18081}/debug/vars" |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["memstats"]["HeapAlloc"]//1024, "kB")'
}

sippstats() { # last line of a SIPp -trace_stat file: successful, refused (503) and failed calls
	python3 - "$1" <<'EOP'
import csv, sys
rows = list(csv.reader(open(sys.argv[1]), delimiter=';'))
h, last = rows[0], rows[-1]
g = lambda k: last[h.index(k)] if k in h else '0'
# The scenarios count a 503 of overload control as "refused" and end the
# call there, which SIPp counts successful: a refusal is neither.
refused = int(g('refused(C)') or 0)
ok, failed = int(g('SuccessfulCall(C)')) - refused, int(g('FailedCall(C)'))
total = ok + refused + failed
why = ', '.join(f"{k[6:-3]} {last[i]}" for i, k in enumerate(h)
                if k.startswith('Failed') and k.endswith('(C)') and k != 'FailedCall(C)' and last[i] not in ('', '0'))
print(f"calls: {total} successful: {ok} refused: {refused} ({100.0*refused/max(total,1):.3f}%) failed: {failed} ({100.0*failed/max(total,1):.3f}%)" + (f": {why}" if why else ""))
EOP
}

rtt() { # p50 and p99 of the SIPp -trace_rtt files in $1 (rtd of the 200: INVITE -> 200)
	python3 - "$1" <<'EOP'
import csv, glob, sys
files = glob.glob(sys.argv[1] + '/*_rtt.csv')
v = sorted(float(r[1]) for f in files for r in list(csv.reader(open(f), delimiter=';'))[1:] if r)
q = lambda p: v[min(len(v)-1, int(p*len(v)))] if v else float('nan')
print(f"INVITE -> 200: p50 {q(0.50):.0f} ms p99 {q(0.99):.0f} ms ({len(v)} calls)")
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

callbackd_calls() { # a fresh callbackd (empty store), its lines registered: sets server
	rm -rf "$work/data"
	gen() { loadtrunk; lines 2000 $LINES 100; lines 3000 $LINES 100; }
	config gen
	start
	accounts 2000 $LINES > "$work/callers.csv"
	accounts 3000 $LINES > "$work/callees.csv"
	register callers.csv $UAC_PORT
	register callees.csv $UAS_PORT
}

# loadrun NAME RATE SECONDS: RATE x SECONDS calls of 500 ms from the SIPp
# uac through the server ($server) to a SIPp uas, in a folder of their own.
# Prints the counts, INVITE -> 200, the server's CPU over the run and its
# memory at the end, and appends a row to $work/table.md.
loadrun() {
	local name=$1 rate=$2 secs=$3 dir total rf uas sampler cpu0 cpu1 t0 t1 ms cpums pct load stats lat
	dir=$(mktemp -d "$work/run-$name-$rate.XXXX")
	loadcalls > "$dir/calls.csv"
	total=$((rate*secs))
	rf=100 # SIPp writes its rtt file every rf calls and drops the rest at exit
	while [ $((total % rf)) -ne 0 ]; do rf=$((rf/10)); done
	(cd "$dir" && exec sipp 127.0.0.1:$SIP_PORT -sf "$root/test/interop/sipp/uas.xml" -p $UAS_PORT -nostdin -timeout $((secs+60)) >/dev/null 2>&1) &
	uas=$!
	sleep 0.5
	load=$(uptime | sed 's/.*load average: //')
	echo "== $name: $total calls at $rate/s, 500 ms each; box load before: $load"
	cpu0=$(cputicks $server)
	t0=$(date +%s%N)
	{ sleep "$secs.5"; cputicks $server > "$dir/cpu-window"; } & # CPU while the calls are placed and held
	sampler=$!
	# A call whose answer never comes waits forever in SIPp (a 100 Trying
	# stops its INVITE retransmissions) and SIPp's -timeout then waits for
	# it: -recv_timeout fails such a call after 64*T1 = 32 s (RFC 3261
	# Timer B), and timeout(1) bounds the whole run.
	(cd "$dir" && timeout -k 5 $((secs+90)) sipp 127.0.0.1:$SIP_PORT -sf "$here/uac_load.xml" -inf calls.csv -p $UAC_PORT \
		-r "$rate" -m "$total" -d 500 -l $((rate*5)) -nostdin -timeout $((secs+60)) -recv_timeout 32000 \
		-trace_stat -stf uac_stats.csv -fd 1 -trace_rtt -rtt_freq $rf >/dev/null 2>&1) || true
	cpu1=$(cputicks $server)
	t1=$(date +%s%N)
	wait $sampler
	stop $uas
	stats=$(sippstats "$dir/uac_stats.csv")
	lat=$(rtt "$dir")
	echo "$stats"
	echo "$lat"
	ms=$(( (t1-t0)/1000000 ))
	cpums=$(( (cpu1-cpu0)*1000/$(getconf CLK_TCK) ))
	pct=$(( ($(cat "$dir/cpu-window")-cpu0)*1000*100/$(getconf CLK_TCK)/(secs*1000+500) ))
	echo "elapsed ${ms} ms (target $((secs*1000)) ms + 500 ms call); achieved $(( total*1000/ms )) calls/s"
	echo "server CPU $pct% of one core over the $secs.5 s of load; $cpums ms over the run = $(awk -v c=$cpums -v n=$total 'BEGIN {printf "%.3f", c/n}') ms per call; RSS at end $(memory $server)"
	# | rate | server | calls | refused 503 (%) | failed (%) | INVITE -> 200 p50 / p99 | CPU | CPU per call | RSS at end | box load before |
	python3 - "$rate" "$name" "$stats" "$lat" "$cpums" "$pct" "$total" "$(memory $server)" "$load" >> "$work/table.md" <<'EOP'
import re, sys
rate, name, stats, lat, cpums, pct, total, mem, load = sys.argv[1:]
c = re.search(r'calls: (\d+) successful: (\d+) refused: (\d+) \((\S+)\) failed: (\d+) \((\S+)\)', stats)
l = re.search(r'p50 (\S+) ms p99 (\S+) ms', lat)
print(f"| {int(rate):,}/s | {name} | {int(c[1]):,} | {int(c[3]):,} ({c[4]}) | {int(c[5]):,} ({c[6]}) | {l[1]} / {l[2]} ms | "
      f"{pct} % of a core | {int(cpums)/int(total):.3f} ms | {mem} | {load} |")
EOP
}

table() {
	echo
	echo "| rate | server | calls | refused 503 | failed | INVITE -> 200 p50 / p99 | server CPU while loaded | CPU per call | RSS at end | box load before (1, 5, 15 min) |"
	echo "|---|---|---|---|---|---|---|---|---|---|"
	cat "$work/table.md"
}

seedstore() { # $1 = count: the config's lines, their registrations and $1 stored requests
	config true
	(cd "$root" && go run ./bench/seedrequests -n "$1" -db "$work/data/callbackd.db" -config "$work/lines.toml")
	cat "$work/lines.toml" >> "$work/callbackd.toml"
	sed -i 's/level = ".*"/level = "info"/' "$work/callbackd.toml"
}

startrestored() { # $1 = binary in $work, $2 = its log: starts it, returns once the requests are restored (sets server, t0, t1)
	t0=$(date +%s%N)
	(cd "$work" && exec "./$1" -config callbackd.toml 2> "$2") &
	server=$!
	until grep -q "call back requests restored" "$work/$2" 2>/dev/null; do
		kill -0 $server 2>/dev/null || { cat "$work/$2"; exit 1; }
		sleep 0.01
	done
	t1=$(date +%s%N)
}

case "${1:-}" in
calls)
	rate=${2:?rate}; secs=${3:-60}
	callbackd_calls
	loadrun callbackd "$rate" "$secs"
	if [ -n "${PROFILE:-}" ]; then
		sleep "${PROFILE_AFTER:-0}" # e.g. 40: after SIP transaction timers (32 s) ran out
		curl -s "http://127.0.0.1:${DEBUG_PORT:-18081}/debug/pprof/heap?gc=1" > "$work/heap.pprof"
		curl -s "http://127.0.0.1:${DEBUG_PORT:-18081}/debug/pprof/goroutine?debug=1" | head -40 > "$work/goroutines.txt"
	fi
	echo "server CPU since start (utime+stime) $(awk -v t="$(getconf CLK_TCK)" '{printf "%.2f", ($14+$15)/t}' /proc/$server/stat) s"
	if [ -n "${RECOVERY:-}" ]; then
		# Overload control: what was refused 503 at once, and whether the
		# server serves again as soon as the load stops (40 calls 2 s
		# after it, each must succeed; RSS then).
		curl -s "http://127.0.0.1:${HTTP_PORT:-18080}/metrics" |
			grep -E '^callbackd_sip_(overload_rejected_total|overload_episodes_total|overload_total|messages_total\{direction="out",kind="503"\})' || true
		sleep 2
		dir=$(mktemp -d "$work/after.XXXX")
		loadcalls > "$dir/calls.csv"
		(cd "$dir" && exec sipp 127.0.0.1:$SIP_PORT -sf "$root/test/interop/sipp/uas.xml" -p $UAS_PORT -nostdin -timeout 60 >/dev/null 2>&1) &
		uas=$!
		sleep 0.5
		(cd "$dir" && timeout -k 5 60 sipp 127.0.0.1:$SIP_PORT -sf "$here/uac_load.xml" -inf calls.csv -p $UAC_PORT \
			-r 20 -m 40 -d 500 -nostdin -timeout 30 -recv_timeout 32000 -trace_stat -stf after_stats.csv -fd 1 >/dev/null 2>&1) || true
		stop $uas
		echo "after the load: $(sippstats "$dir/after_stats.csv"); RSS $(memory $server)"
	fi
	;;
side)
	# Per rate, the same SIPp load (options, scenarios, count) against
	# Kamailio, then against callbackd, one after the other on this box.
	rates=${2:?rate[,rate...]}; secs=${3:-30}
	echo "== side by side: $secs s per rate, $LINES caller and $LINES callee lines (busy_trigger 100); $(nproc) CPUs; $(kamailio -v 2>/dev/null | head -1 || echo "kamailio (to be installed)")"
	for rate in ${rates//,/ }; do
		kamailio_start
		loadrun kamailio "$rate" "$secs"
		stop $server
		callbackd_calls
		loadrun callbackd "$rate" "$secs"
		stop $server
	done
	table
	exit 0
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
	echo "server CPU $(( (cpu1-cpu0)*1000/$(getconf CLK_TCK) )) ms = $(( (cpu1-cpu0)*1000*100/$(getconf CLK_TCK)/ms ))% of one core; RSS at end $(memory $server)"
	;;
register)
	count=${2:?count}; rate=${3:-1000}
	gen() { lines 100000 $count; }
	config gen
	start
	echo "RSS with $count lines configured, none registered: $(memory $server)"
	accounts 100000 $count > "$work/users.csv"
	start_ns=$(date +%s%N)
	(cd "$work" && sipp 127.0.0.1:$SIP_PORT -sf "$here/register_load.xml" -inf users.csv -p $UAC_PORT \
		-r "$rate" -m "$count" -l 2000 -nostdin -timeout 300 -trace_stat -stf reg_stats.csv -fd 1 >/dev/null 2>&1) || true
	end_ns=$(date +%s%N)
	sippstats "$work/reg_stats.csv" | sed 's/calls/registrations/'
	echo "elapsed $(( (end_ns-start_ns)/1000000 )) ms => $(( count*1000000000/(end_ns-start_ns) )) REGISTER transactions/s (each with a 401 round trip)"
	echo "RSS with $count devices registered, right after: $(memory $server)"
	# The REGISTER transactions stay 32 s (RFC 3261 Timer J); after that,
	# force a GC (pprof's gc=1) so RSS shows what the bindings keep.
	sleep "${SETTLE:-35}" # SETTLE: shorter for the smoke test (bench/smoke_test.go)
	curl -s -o /dev/null "http://127.0.0.1:${DEBUG_PORT:-18081}/debug/pprof/heap?gc=1"
	echo "RSS with $count devices registered, after the transactions ended: $(memory $server); Go heap in use: $(heap)"
	;;
restarts)
	# One seeded store, started again and again, each binary in turn: the
	# box's drift shows as a spread within one binary, not as a difference
	# between two (a restore run seeds anew, and the fresh file's writeback
	# slows the start after it).
	count=${2:?count}; rounds=${3:-6}; bins=("${@:4}")
	[ ${#bins[@]} -gt 0 ] || bins=("$work/callbackd")
	seedstore "$count"
	sync
	for r in $(seq "$rounds"); do
		for i in "${!bins[@]}"; do
			cp "${bins[$i]}" "$work/try"
			startrestored try try.log
			cpu=$(awk '{print ($14+$15)*10}' /proc/$server/stat)
			sleep 1.5 # the start's heap returned to the OS once serving
			echo "round $r binary $((i+1)) (${bins[$i]}): start to serving $(( (t1-t0)/1000000 )) ms, CPU $cpu ms, RSS $(memory $server), box load $(cut -d' ' -f1 /proc/loadavg)"
			stop $server
		done
	done
	exit 0;;
restore)
	count=${2:?count}
	seedstore "$count"
	startrestored callbackd server.log
	grep -o 'call back requests restored.*' "$work/server.log"
	echo "start to serving (SIP up, requests restored) with $count stored requests: $(( (t1-t0)/1000000 )) ms"
	sleep 2 # the heap left by the restore is returned to the OS once serving
	echo "RSS with $count open requests: $(memory $server); Go heap in use: $(heap)"
	if [ -n "${PROFILE:-}" ]; then # what the heap holds once serving
		curl -s -o "$work/heap.pprof" "http://127.0.0.1:${DEBUG_PORT:-18081}/debug/pprof/heap?gc=1"
		echo "heap profile: $work/heap.pprof (go tool pprof -sample_index=inuse_space $work/callbackd $work/heap.pprof)"
	fi
	;;
refusals)
	# The load scenario's handling of overload control's 503, without a
	# server: a SIPp callee refuses every call and requires its ACK.
	count=${2:?count}
	loadcalls > "$work/calls.csv"
	(cd "$work" && exec sipp -sf "$here/uas_refuse.xml" -p $UAS_PORT -m "$count" -nostdin -timeout 30 \
		-trace_stat -stf uas_stats.csv -fd 1 >/dev/null 2>&1) &
	uas=$!
	sleep 0.5
	(cd "$work" && timeout -k 5 60 sipp 127.0.0.1:$UAS_PORT -sf "$here/uac_load.xml" -inf calls.csv -p $UAC_PORT \
		-r 20 -m "$count" -d 500 -nostdin -timeout 30 -recv_timeout 5000 -trace_stat -stf uac_stats.csv -fd 1 >/dev/null 2>&1) || true
	wait $uas || true
	sippstats "$work/uac_stats.csv"
	echo "refusing callee: $(sippstats "$work/uas_stats.csv" | sed 's/ refused: [^)]*)//; s/successful/ACKed/')"
	exit 0;;
*)
	sed -n '2,/^set -euo/{/^#/p}' "$0"; exit 2;;
esac
kill $server; wait $server 2>/dev/null || true

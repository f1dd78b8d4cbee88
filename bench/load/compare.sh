#!/usr/bin/env bash
# The call load of two revisions, one after the other on the same box:
#
#   bench/load/compare.sh REV_A REV_B [RATE] [SECONDS]   # default 200 calls/s for 30 s
#
# Builds both revisions (git archive into a temporary folder, removed at the
# end), then runs the same `run.sh calls RATE SECONDS` (this tree's SIPp
# scenarios and options, fixed call count) against A, B, and A again, so a
# drift of the box shows as a difference between the two runs of A. Before
# each run it prints the box's load (uptime); each run prints SIPp's
# successful and failed calls, the server's CPU (utime+stime of
# /proc/PID/stat) and its RSS at the end.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
a=${1:?REV_A}; b=${2:?REV_B}; rate=${3:-200}; secs=${4:-30}
tmp=$(mktemp -d /tmp/callbackd-compare.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

build() { # $1 = revision, $2 = name: prints the binary's path
	local rev src
	rev=$(git -C "$root" rev-parse --short "$1^{commit}")
	src="$tmp/src-$2"
	mkdir -p "$src"
	git -C "$root" archive "$rev" | tar -x -C "$src"
	(cd "$src" && go build -o "$tmp/callbackd-$2" ./cmd/callbackd) >&2
	rm -rf "$src"
	echo "$tmp/callbackd-$2"
}

bin_a=$(build "$a" a)
bin_b=$(build "$b" b)
run() { # $1 = label, $2 = revision, $3 = binary
	echo
	echo "=== $1: $2 ($(git -C "$root" rev-parse --short "$2^{commit}"))"
	BIN=$3 "$here/run.sh" calls "$rate" "$secs" > "$tmp/out" 2>&1 || true
	grep -v '^Resolving remote host' "$tmp/out" # run.sh removes its own folder
}
run A "$a" "$bin_a"
run B "$b" "$bin_b"
run "A again" "$a" "$bin_a"

#!/usr/bin/env bash
# Takeovers of a callbackd cluster behind Kamailio's dispatcher (issue 17,
# F35, docs/cluster.md): two instances on 127.0.0.2 and 127.0.0.3 sharing
# a PostgreSQL that the test starts (Debian's postgresql), Kamailio
# (bench/cluster/kamailio.cfg) on 127.0.0.1 in front, SIPp phones creating
# Call Back requests through it continuously. N times (default 20): kill -9
# the active, measure until the standby serves through the dispatcher,
# start the killed one again (it takes the lease back by a handover). Then
# it prints the takeover times (p50, max), the confirmed requests missing
# (must be 0) and, B having registered during the last takeover, the
# callers told and those told twice (must be 0). The run is test/interop's TestF35_B3_ClusterBehindDispatcher, which
# go test ./... runs with 2 takeovers.
#
# The instances' lease is LEASE (default 1s; the test's own default is 2s).
#
#   bench/cluster/run.sh [N]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
n=${1:-20}
uptime
echo "lease ${LEASE:-1s}, $n takeovers"
out=$(CLUSTER_LEASE=${LEASE:-1s} CLUSTER_TAKEOVERS=$n go test -count=1 -timeout 30m -run 'TestF35_B3_ClusterBehindDispatcher$' -v ./test/interop 2>&1) || {
	echo "$out" | tail -200
	exit 1
}
echo "$out" | grep -E '^(takeovers|requests|notifications):? '
uptime

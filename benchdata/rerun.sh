#!/usr/bin/env bash
# Re-runs every benchmark BENCHMARKS.md quotes, on the code checked out,
# into benchdata/final/, then prints benchstat's summary of each file. The
# long end-to-end runs (HAProxy §7, nginx §10) are not here: their commands
# are in their sections. Run it on a quiet machine: about 25 minutes here.
#   bash benchdata/rerun.sh
set -euo pipefail
cd "$(dirname "$0")/.."
out=benchdata/final
mkdir -p "$out"
bs=(go run golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da)

go test -c -o "$out/ld.test" .
run() { # name, benchmark pattern, benchtime, count
	echo "--- $1" >&2
	"$out/ld.test" -test.run '^$' -test.bench "$2" -test.benchtime="$3" -test.count="$4" > "$out/$1.txt"
}
run drainlag          'DrainLag$'          30x      3   # §1, §1c
run drainlag-protocols 'DrainLagProtocols' 40x      1   # §1b
run keepalive         'DrainKeepAlive'     30x      6   # §5
run trigger           'Trigger'            200x     6   # §2
run worker            'WorkerOverhead'     500000x  6   # §3
run settle            'WorkerSettle'       500000x  6   # §3b
run turns             'WorkerTurns'        500000x  6   # §3c
run slowsource        'WorkerSlowSource'   1000x    6   # §3c
run workerio          'WorkerIO'           400x     6   # §3c
run runner            'RunnerCost'         1000x    6   # §4
# §3d: the two loops take turns, 24 rounds.
echo "--- worker-producer-fed" >&2
for _ in $(seq 24); do
	"$out/ld.test" -test.run '^$' -test.bench 'WorkerProducerFed' -test.benchtime=2000000x
done > "$out/worker-producer-fed.txt"
# §8: whole requests, the two implementations taking turns.
echo "--- requestcost" >&2
for _ in 1 2 3 4 5 6; do for impl in net/http lameduck; do
	"$out/ld.test" -test.run '^$' -test.bench "RequestCost/impl=$impl\$" -test.benchtime=20000x -test.cpu 1,2,4,8
done; done | sed 's,impl=net/http,impl=nethttp,' > "$out/requestcost.txt"
echo "--- bookkeeping" >&2
go test -run '^$' -bench 'RequestBookkeeping' -cpu 1,2,4,8 -count 6 ./internal/httpdrain > "$out/bookkeeping.txt"
go test -run '^$' -bench 'IdleClose' -count 6 ./internal/httpdrain > "$out/idleclose.txt"
# §13
echo "--- scale" >&2
"$out/ld.test" -test.run '^$' -test.bench 'Scale' -test.benchtime=20x -scale.stopped > "$out/scale.txt"
# §12 (lameduckgrpc)
echo "--- grpc" >&2
(cd lameduckgrpc && go test -run '^$' -bench 'SpreadReconnects' -benchtime=5x -count=3 .) > "$out/grpc-spread.txt"
(cd lameduckgrpc && go test -run '^$' -bench 'GoAwayOrder' -benchtime=50x -count=3 .) > "$out/grpc-goaway.txt"
# §6 (examples/upgrade, Linux)
(cd examples/upgrade && go test -run '^$' -bench 'UpgradeGap' -benchtime=20x -count=3 .) > "$out/upgradegap.txt"
rm -f "$out/ld.test"

for f in "$out"/*.txt; do
	echo "=== $f"
	if grep -q '/impl=' "$f"; then "${bs[@]}" -col /impl "$f"; else "${bs[@]}" "$f"; fi
done

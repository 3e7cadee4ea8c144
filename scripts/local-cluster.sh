#!/bin/sh
# Starts a three-node girok cluster on this machine (what `make cluster` runs): nodes 1, 2 and 3
# serve on 127.0.0.1:8401, :8402 and :8403 (admin listeners on :9401–:9403), with their data in
# data/cluster/nodeN and their logs in data/cluster/nodeN.log. Ctrl-C stops all three
# gracefully (SIGTERM: the leader hands leadership on first).
#
# To crash one by hand: kill -9 "$(cat data/cluster/node2.pid)"; restart it with the line
# printed for it below.
set -eu

bin=target/release/girok-server
members="1=127.0.0.1:8401,2=127.0.0.1:8402,3=127.0.0.1:8403"
mkdir -p data/cluster
pids=""

stop() {
	trap - INT TERM EXIT
	[ -n "$pids" ] && kill $pids 2>/dev/null || true
	wait
}
trap stop INT TERM EXIT

for id in 1 2 3; do
	cmd="$bin --node-id $id --cluster $members --data-dir data/cluster/node$id --admin-addr 127.0.0.1:940$id"
	$cmd >>"data/cluster/node$id.log" 2>&1 &
	echo $! >"data/cluster/node$id.pid"
	pids="$pids $!"
	echo "node $id: pid $!, 127.0.0.1:840$id, log data/cluster/node$id.log"
	echo "  restart with: $cmd >>data/cluster/node$id.log 2>&1 &"
done
echo "Try: GIROK_ADDR=127.0.0.1:8401,127.0.0.1:8402,127.0.0.1:8403 target/release/girok servers"
echo "Ctrl-C stops the three nodes."
wait

#!/usr/bin/env bash
# Durable dyndns2 updates per second over keep-alive connections, and the
# average number of updates per LMDB commit (the writer's group size).
#
#   bench/dyndns_bench.sh BUILD_DIR
#
# Sets up a throw-away store in a temp dir (one zone, one account, HOSTS hosts
# with update tokens), starts updnsd (1 DNS worker) with HTTP on a free
# loopback port, and runs bench/dyndns_load (BUILD_DIR/bench/updns_dyndns_load)
# against it for every connection count in CONNS, RUNS times each, printing
# the rate, latency and the updates per commit. Commits are counted outside
# the daemon: the difference of LMDB's "Last transaction ID" (mdb_stat -e)
# before and after a run; the writer is the only writer while the load runs
# and nested transactions do not advance it, so the difference is the number
# of group commits. With STRACE=1 one more run per connection count is made
# under `strace -c` and its fdatasync/pwrite counts are printed as a
# cross-check (strace slows the daemon: that run's rate is not a result).
#
# Environment (defaults in brackets):
#   HOSTS [1000]            hosts (and tokens) to create
#   CONNS ["8 64 256"]      connection counts
#   PIPELINE [1]            requests in flight per connection
#   DURATION [15]           measured seconds per run
#   WARMUP [2]              seconds of load before measuring
#   RUNS [3]                runs per connection count (the median is reported)
#   LOAD_THREADS [1]        client event-loop threads
#   STRACE [0]              1: extra strace -c run per connection count
#   PERF [0]                1: extra run per connection count under `perf record`
#                           (cpu-clock, DWARF call graphs; hardware counters are
#                           not needed): daemon CPU per thread and the top
#                           user-space functions (inclusive), saved in the temp dir
#   NICE [0]                niceness of updnsd and the load tool (e.g. -10, needs
#                           root): on a shared machine, keeps other jobs from
#                           taking the CPU from the benchmark
#   BENCH_TMP [${TMPDIR:-/tmp}]  where the store goes; it must be on the disk
#                           you mean to measure (tmpfs makes fsync free)
#   KEEP [0]                1: keep the temp dir (store, config, log, CSV)
set -euo pipefail

if [[ $# -ne 1 || "$1" == -h || "$1" == --help ]]; then
  sed -n '2,37p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
BUILD=$(cd "$1" && pwd)
UPDNSD=$BUILD/server/updnsd
UPDNSCTL=$BUILD/server/updnsctl
LOAD=$BUILD/bench/updns_dyndns_load
for bin in "$UPDNSD" "$UPDNSCTL" "$LOAD"; do
  [[ -x $bin ]] || { echo "dyndns_bench: $bin missing; build with: cmake --build $BUILD --target updnsd updnsctl updns_dyndns_load" >&2; exit 2; }
done
if [[ ${PERF:-0} == 1 ]] && ! command -v perf >/dev/null; then echo "dyndns_bench: PERF=1 needs perf" >&2; exit 2; fi
command -v mdb_stat >/dev/null || { echo "dyndns_bench: mdb_stat (Debian package lmdb-utils) is needed to count commits" >&2; exit 2; }

HOSTS=${HOSTS:-1000}
CONNS=${CONNS:-"8 64 256"}
PIPELINE=${PIPELINE:-1}
DURATION=${DURATION:-15}
WARMUP=${WARMUP:-2}
RUNS=${RUNS:-3}
LOAD_THREADS=${LOAD_THREADS:-1}
STRACE=${STRACE:-0}
PERF=${PERF:-0}
NICE=${NICE:-0}
KEEP=${KEEP:-0}
BENCH_TMP=${BENCH_TMP:-${TMPDIR:-/tmp}}

DIR=$(mktemp -d "$BENCH_TMP/updns-dyndns-bench.XXXXXX")
DAEMON_PID=
cleanup() {
  if [[ -n $DAEMON_PID ]] && kill -0 "$DAEMON_PID" 2>/dev/null; then
    kill -TERM "$DAEMON_PID" 2>/dev/null || true
    wait "$DAEMON_PID" 2>/dev/null || true
  fi
  if [[ $KEEP == 1 ]]; then echo "kept $DIR"; else rm -rf "$DIR"; fi
}
trap cleanup EXIT

free_port() {
  python3 - <<'EOF'
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()
EOF
}
DNS_PORT=$(free_port)
HTTP_PORT=$(free_port)
while [[ $HTTP_PORT == "$DNS_PORT" ]]; do HTTP_PORT=$(free_port); done

ZONE=bench.example
cat >"$DIR/zone" <<EOF
\$ORIGIN $ZONE.
\$TTL 3600
@   IN SOA ns1 hostmaster 1 3600 900 1209600 300
    IN NS  ns1
ns1 IN A   192.0.2.1
EOF
cat >"$DIR/updns.yaml" <<EOF
server:
  listen: ["127.0.0.1@$DNS_PORT"]
  workers: 1
storage:
  path: $DIR/db
  map_size: 1GiB
http:
  listen: ["127.0.0.1:$HTTP_PORT"]
  max_connections: 4096
accounts:
  host_limit: $HOSTS
zones:
  - name: $ZONE
EOF
CTL=("$UPDNSCTL" --config "$DIR/updns.yaml")

echo "== machine"
echo "cpus: $(nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
echo "store: $DIR/db on $(df -T "$DIR" | awk 'NR==2 {print $2 " (" $1 ")"}')"
# What one synchronous 4 KiB write costs on that disk: a commit cannot be
# cheaper than this (LMDB syncs the data pages, then writes the meta page
# through an O_DSYNC descriptor).
sync_line=$(dd if=/dev/zero of="$DIR/dsync.test" bs=4k count=200 oflag=dsync 2>&1 | tail -1)
rm -f "$DIR/dsync.test"
echo "dd 200 x 4 KiB oflag=dsync: $sync_line"

echo "== setup: zone, account, $HOSTS hosts, tokens"
"${CTL[@]}" zone import "$ZONE" "$DIR/zone" >/dev/null
echo "bench-password" | "${CTL[@]}" account add bench --email bench@example.org --host-limit "$HOSTS" >/dev/null
t0=$(date +%s.%N)
for ((i = 0; i < HOSTS; ++i)); do
  "${CTL[@]}" host add "h$i.$ZONE" --account bench >/dev/null
done
t1=$(date +%s.%N)
echo "updnsctl host add x $HOSTS: $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f s (%.1f ms each)", b-a, (b-a)*1000/'"$HOSTS"'}')"
"${CTL[@]}" token create-missing --account bench --csv "$DIR/spdyn_update_token.csv" 2>/dev/null
echo "tokens: $(($(wc -l <"$DIR/spdyn_update_token.csv") - 1)) in $DIR/spdyn_update_token.csv"

nice -n "$NICE" "$UPDNSD" --config "$DIR/updns.yaml" 2>"$DIR/updnsd.log" &
DAEMON_PID=$!
for ((i = 0; i < 100; ++i)); do
  if curl -s -o /dev/null "http://127.0.0.1:$HTTP_PORT/" 2>/dev/null; then break; fi
  kill -0 "$DAEMON_PID" 2>/dev/null || { echo "updnsd died:"; cat "$DIR/updnsd.log"; exit 1; }
  sleep 0.1
done
echo "updnsd pid $DAEMON_PID, http 127.0.0.1:$HTTP_PORT, dns 127.0.0.1@$DNS_PORT"

last_txnid() { mdb_stat -e "$DIR/db" | awk -F': ' '/Last transaction ID/ {print $2}'; }
# utime+stime of the daemon (all threads), in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$DAEMON_PID/stat"; }
TICKS=$(getconf CLK_TCK)
# Share of wall time in which some runnable task waited for a CPU (PSI,
# /proc/pressure/cpu "some" total, microseconds): other work on the machine
# competing with the daemon and the client. Empty when PSI is off.
cpu_stall_us() { awk -F'total=' '/^some/ {print $2}' /proc/pressure/cpu 2>/dev/null || true; }
# Per thread, CPU ticks as "tid:ticks ..." in ascending tid = creation order
# (at 6d96813: main, 2 password-check threads, writer, http loop, DNS worker;
# later versions start more threads before the writer). The writer and the
# http loop are the two busy ones: the http loop is the busier at high load.
thread_ticks() {
  for t in /proc/"$DAEMON_PID"/task/*; do
    awk -v tid="${t##*/}" '{printf "%s:%d\n", tid, $14 + $15}' "$t/stat"
  done | sort -n -t: -k1 | tr '\n' ' '
}

seed=$((RANDOM * 2))
median() { sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

# One load run; sets RUN_RATE RUN_TOTAL RUN_COMMITS RUN_OK RUN_P50 RUN_P99 RUN_CPU
# (daemon CPU, % of one core) RUN_STALL (CPU pressure, %) RUN_LINE.
run_load() {
  local conns=$1
  seed=$((seed + 1))
  local before after ticks_before ticks_after out t_start t_end
  before=$(last_txnid)
  ticks_before=$(cpu_ticks)
  stall_before=$(cpu_stall_us)
  THREADS_BEFORE=$(thread_ticks)
  t_start=$(date +%s.%N)
  out=$(nice -n "$NICE" "$LOAD" --port "$HTTP_PORT" --csv "$DIR/spdyn_update_token.csv" -c "$conns" \
    -p "$PIPELINE" -d "$DURATION" -w "$WARMUP" -t "$LOAD_THREADS" --seed "$seed" --quiet) || true
  t_end=$(date +%s.%N)
  ticks_after=$(cpu_ticks)
  stall_after=$(cpu_stall_us)
  THREADS_AFTER=$(thread_ticks)
  after=$(last_txnid)
  RUN_LINE=$(grep '^RESULT' <<<"$out" || echo "RESULT failed")
  field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$RUN_LINE"; }
  RUN_RATE=$(field rate)
  RUN_TOTAL=$(field total)
  RUN_OK=$(field ok)
  RUN_P50=$(field p50_ms)
  RUN_P99=$(field p99_ms)
  RUN_COMMITS=$((after - before))
  RUN_STALL=-
  if [[ -n $stall_before && -n $stall_after ]]; then
    RUN_STALL=$(awk -v a="$stall_before" -v b="$stall_after" -v s="$t_start" -v e="$t_end" \
      'BEGIN {printf "%.0f", (b - a) / 1e6 / (e - s) * 100}')
  fi
  RUN_CPU=$(awk -v a="$ticks_before" -v b="$ticks_after" -v s="$t_start" -v e="$t_end" -v hz="$TICKS" \
    'BEGIN {printf "%.0f", (b - a) / hz / (e - s) * 100}')
}

printf '\n== load: %s s measured after %s s warm-up, %s in flight per connection, %s run(s) each, nice %s\n' \
  "$DURATION" "$WARMUP" "$PIPELINE" "$RUNS" "$NICE"
printf '%-6s %-4s %10s %9s %8s %10s %8s %8s %8s %7s %3s\n' conns run updates/s requests commits upd/commit p50_ms p99_ms daemon% stall% ok
SUMMARY=()
for conns in $CONNS; do
  rates=() batches=() p50s=() p99s=() all_ok=1
  for ((run = 1; run <= RUNS; ++run)); do
    run_load "$conns"
    batch=$(awk -v t="$RUN_TOTAL" -v c="$RUN_COMMITS" 'BEGIN {printf "%.1f", c ? t / c : 0}')
    printf '%-6s %-4s %10s %9s %8s %10s %8s %8s %8s %7s %3s\n' "$conns" "$run" "$RUN_RATE" "$RUN_TOTAL" \
      "$RUN_COMMITS" "$batch" "$RUN_P50" "$RUN_P99" "$RUN_CPU" "$RUN_STALL" "$RUN_OK"
    [[ $RUN_OK == 1 ]] || { all_ok=0; echo "   $RUN_LINE"; }
    rates+=("$RUN_RATE") batches+=("$batch") p50s+=("$RUN_P50") p99s+=("$RUN_P99")
  done
  echo "   daemon threads (tid:cpu ticks) before: $THREADS_BEFORE"
  echo "   daemon threads (tid:cpu ticks) after:  $THREADS_AFTER"
  SUMMARY+=("$(printf '%-6s %12s %12s %9s %9s %4s' "$conns" \
    "$(printf '%s\n' "${rates[@]}" | median)" "$(printf '%s\n' "${batches[@]}" | median)" \
    "$(printf '%s\n' "${p50s[@]}" | median)" "$(printf '%s\n' "${p99s[@]}" | median)" "$all_ok")")
  if [[ $STRACE == 1 ]]; then
    # Cross-check of the commit count (the rate of this run is not a result).
    strace -f -c -e trace=fdatasync,fsync,msync,pwrite64,pwritev,writev -o "$DIR/strace.$conns" \
      -p "$DAEMON_PID" 2>/dev/null &
    strace_pid=$!
    sleep 1
    run_load "$conns"
    kill -INT "$strace_pid" 2>/dev/null || true
    wait "$strace_pid" 2>/dev/null || true
    echo "   strace run: $RUN_TOTAL requests, $RUN_COMMITS commits (txnid), rate $RUN_RATE/s under strace; syscalls:"
    awk '$NF ~ /^(fdatasync|fsync|msync|pwrite64|pwritev|writev)$/ {printf "     %-10s %s calls\n", $NF, $4}' \
      "$DIR/strace.$conns"
  fi
  if [[ $PERF == 1 ]]; then
    # Profile of one more run (its rate is not a result: perf costs CPU).
    perf record -q -e cpu-clock -F 499 --call-graph dwarf,16384 -p "$DAEMON_PID" \
      -o "$DIR/perf.$conns" -- sleep "$((${DURATION%.*} + ${WARMUP%.*}))" >/dev/null 2>&1 &
    perf_pid=$!
    run_load "$conns"
    wait "$perf_pid" || true
    echo "   perf run: rate $RUN_RATE/s under perf; daemon samples per thread (tid, creation order):"
    perf report -i "$DIR/perf.$conns" --no-children --sort pid --stdio 2>/dev/null |
      grep -E '^ +[0-9.]+%' | sed 's/^/     /'
    echo "   top functions, inclusive (children) share of daemon samples:"
    perf report -i "$DIR/perf.$conns" --children --sort sym --stdio -g none --percent-limit 2 2>/dev/null |
      grep -E '^ +[0-9.]+%' | grep -v -E '0x[0-9a-f]{8,}|clone3|start_thread' | head -40 |
      sed 's/^/     /'
  fi
done

printf '\n== medians of %s run(s)\n' "$RUNS"
printf '%-6s %12s %12s %9s %9s %4s\n' conns updates/s upd/commit p50_ms p99_ms ok
printf '%s\n' "${SUMMARY[@]}"

kill -TERM "$DAEMON_PID"
wait "$DAEMON_PID" || true
DAEMON_PID=
if grep -q 'writer:' "$DIR/updnsd.log"; then
  echo "writer errors in the daemon log:"
  grep 'writer:' "$DIR/updnsd.log" | head
fi

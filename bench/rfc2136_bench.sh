#!/usr/bin/env bash
# Durable RFC 2136 updates per second with TSIG: updns against Knot DNS on
# the same machine, in one run, as a ratio.
#
#   bench/rfc2136_bench.sh BUILD_DIR
#
# Both servers get the same zone (dyn.example with HOSTS hosts), the same
# TSIG key (hmac-sha256) and the same dnsperf -u load: single-record
# replace updates ("delete hostI A" + "add hostI 60 A addr", one UPDATE
# each, random hosts). Knot DNS runs with one UDP worker, journal-content:
# changes and journal-db-mode: robust (its journal is synced before the
# answer); updnsd with workers: 1 (an update is answered after its group
# commit is fsync'd). Both are pinned to CPU SERVER_CPU with taskset, and
# dnsperf to CLIENT_CPU. Both stay up for the whole script and the runs
# alternate (knot, updns, knot, updns, ...) so that both see the same
# background load; medians of RUNS runs are printed, with the rcodes, the
# server's CPU time per completed update and updns's writer group size
# (GET /metrics: updns_writer_requests_total / updns_writer_commits_total).
#
# Environment (defaults in brackets):
#   DURATION [10]        seconds of load per run (dnsperf -l)
#   RUNS [3]             runs per server
#   HOSTS [10000]        hosts in the zone
#   UPDATES [100000]     updates in the dnsperf input (it loops over them)
#   CLIENTS [4]          dnsperf -c (UDP sockets)
#   OUTSTANDING [64]     dnsperf -q (updates in flight)
#   SERVER_CPU [1]       CPU both servers are pinned to
#   CLIENT_CPU [0]       CPU dnsperf is pinned to
#   NICE [0]             niceness of both servers and dnsperf (e.g. -10, needs
#                        root): on a shared machine, keeps other jobs from
#                        taking the CPUs from the benchmark
#   STRACE [0]           1: one more run per server under `strace -f -c`:
#                        fsync/fdatasync/pwrite calls per update (strace
#                        slows the servers: those rates are not results)
#   BENCH_TMP [${TMPDIR:-/tmp}]  where the stores go: the disk to measure
#                        (tmpfs makes fsync free)
#   KEEP [0]             1: keep the temp dir (stores, configs, logs)
#
# Needs: knotd (knot), dnsperf, dig (bind9-dnsutils), curl, python3,
# taskset; strace for STRACE=1.
set -euo pipefail

if [[ $# -ne 1 || "$1" == -h || "$1" == --help ]]; then
  sed -n '2,40p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
BUILD=$(cd "$1" && pwd)
UPDNSD=$BUILD/server/updnsd
[[ -x $UPDNSD ]] || { echo "rfc2136_bench: $UPDNSD missing; build with: cmake --build $BUILD --target updnsd" >&2; exit 2; }
for tool in knotd dnsperf dig curl python3 taskset; do
  command -v "$tool" >/dev/null || { echo "rfc2136_bench: $tool is needed (scripts/install-deps.sh)" >&2; exit 2; }
done

DURATION=${DURATION:-10}
RUNS=${RUNS:-3}
HOSTS=${HOSTS:-10000}
UPDATES=${UPDATES:-100000}
CLIENTS=${CLIENTS:-4}
OUTSTANDING=${OUTSTANDING:-64}
SERVER_CPU=${SERVER_CPU:-1}
CLIENT_CPU=${CLIENT_CPU:-0}
NICE=${NICE:-0}
STRACE=${STRACE:-0}
KEEP=${KEEP:-0}
BENCH_TMP=${BENCH_TMP:-${TMPDIR:-/tmp}}
if [[ $STRACE == 1 ]] && ! command -v strace >/dev/null; then echo "rfc2136_bench: STRACE=1 needs strace" >&2; exit 2; fi

DIR=$(mktemp -d "$BENCH_TMP/updns-rfc2136-bench.XXXXXX")
KNOT_PID= UPDNS_PID=
stop() {
  local pid=$1
  if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
}
cleanup() {
  stop "$KNOT_PID"
  stop "$UPDNS_PID"
  if [[ $KEEP == 1 ]]; then echo "kept $DIR"; else rm -rf "$DIR"; fi
}
trap cleanup EXIT

free_port() {
  python3 - <<'EOF'
import socket
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 0))
port = u.getsockname()[1]
t = socket.socket(); t.bind(("127.0.0.1", port)); print(port)
EOF
}
KNOT_PORT=$(free_port)
UPDNS_PORT=$(free_port)
HTTP_PORT=$(free_port)

ZONE=dyn.example
SECRET=$(head -c 32 /dev/urandom | base64)

# The zone and the updates (as /work/shared/lab genzone.py / genupdates.py:
# replace the A record of a random host; deterministic).
python3 - "$ZONE" "$HOSTS" "$UPDATES" "$DIR" <<'EOF'
import random, sys
origin, hosts, n, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
with open(f"{out}/zone.db", "w") as z:
    z.write(f"$ORIGIN {origin}.\n$TTL 60\n")
    z.write("@ 3600 IN SOA ns1 hostmaster 2026112901 7200 3600 1209600 60\n")
    z.write("@ 3600 IN NS ns1\nns1 3600 IN A 192.0.2.1\n")
    for i in range(hosts):
        z.write(f"host{i} IN A 10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}\n")
r = random.Random(7)
with open(f"{out}/updates.txt", "w") as f:
    for k in range(n):
        i = r.randrange(hosts)
        f.write(f"{origin}\ndelete host{i} A\nadd host{i} 60 A 10.{k >> 16 & 255}.{k >> 8 & 255}.{k & 255}\nsend\n")
EOF

echo "== machine"
echo "cpus: $(nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "stores: $DIR on $(df -T "$DIR" | awk 'NR==2 {print $2 " (" $1 ")"}')"
sync_line=$(dd if=/dev/zero of="$DIR/dsync.test" bs=4k count=200 oflag=dsync 2>&1 | tail -1)
rm -f "$DIR/dsync.test"
echo "dd 200 x 4 KiB oflag=dsync: $sync_line"
echo "knotd: $(knotd --version | head -1); dnsperf $(dnsperf -h 2>&1 | awk '/^Version/ {print $2; exit}')"

# --- Knot DNS
mkdir -p "$DIR/knot"
cat >"$DIR/knot/knot.conf" <<EOF
server:
    rundir: $DIR/knot
    listen: 127.0.0.1@$KNOT_PORT
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
log:
  - target: stderr
    any: warning
database:
    storage: $DIR/knot
    journal-db-mode: robust
key:
  - id: upd
    algorithm: hmac-sha256
    secret: $SECRET
acl:
  - id: upd
    key: upd
    action: update
template:
  - id: default
    storage: $DIR/knot
    zonefile-load: whole
    journal-content: changes
    zonefile-sync: -1
zone:
  - domain: $ZONE
    file: $DIR/knot/zone.db
    acl: upd
EOF
cp "$DIR/zone.db" "$DIR/knot/zone.db"
nice -n "$NICE" taskset -c "$SERVER_CPU" knotd -c "$DIR/knot/knot.conf" >"$DIR/knot/log" 2>&1 &
KNOT_PID=$!

# --- updnsd
mkdir -p "$DIR/updns"
cat >"$DIR/updns/updns.yaml" <<EOF
server:
  listen: ["127.0.0.1@$UPDNS_PORT"]
  workers: 1
storage:
  path: $DIR/updns/db
  map_size: 4GiB
http:
  listen: ["127.0.0.1:$HTTP_PORT"]
keys:
  - name: upd
    algorithm: hmac-sha256
    secret: $SECRET
zones:
  - name: $ZONE
    file: $DIR/zone.db
    update:
      - key: upd
        types: [A]
EOF
nice -n "$NICE" taskset -c "$SERVER_CPU" "$UPDNSD" --config "$DIR/updns/updns.yaml" 2>"$DIR/updns/log" &
UPDNS_PID=$!

wait_answers() {  # PORT PID NAME
  for ((i = 0; i < 600; ++i)); do
    if dig +short +time=1 +tries=1 -p "$1" @127.0.0.1 host1.$ZONE A 2>/dev/null | grep -q '^10\.0\.0\.1$'; then return 0; fi
    kill -0 "$2" 2>/dev/null || { echo "$3 died:" >&2; cat "$DIR/$3/log" >&2; exit 1; }
    sleep 0.1
  done
  echo "$3 did not answer within 60 s" >&2
  exit 1
}
wait_answers "$KNOT_PORT" "$KNOT_PID" knot
wait_answers "$UPDNS_PORT" "$UPDNS_PID" updns
echo "knotd pid $KNOT_PID on 127.0.0.1@$KNOT_PORT; updnsd pid $UPDNS_PID on 127.0.0.1@$UPDNS_PORT (metrics on :$HTTP_PORT); both on CPU $SERVER_CPU, dnsperf on CPU $CLIENT_CPU"

TICKS=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }  # utime+stime, all threads
metric() { curl -s --max-time 5 "http://127.0.0.1:$HTTP_PORT/metrics" | awk -v n="$1" '$1 == n {print $2}'; }
# Microseconds in which some runnable task waited for a CPU (PSI "some"
# total): other work competing with the servers. Empty without PSI.
cpu_stall_us() { awk -F'total=' '/^some/ {print $2}' /proc/pressure/cpu 2>/dev/null || true; }
median() { sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

# One dnsperf run against server $1 (knot|updns); sets RUN_RATE RUN_DONE
# RUN_LOST RUN_RCODES RUN_CPU_US (server CPU µs per completed update)
# RUN_LAT_MS RUN_STALL (CPU pressure, % of wall time) and, for updns,
# RUN_BATCH (updates per commit).
run_perf() {
  local name=$1 port pid t0 t1 r0 r1 c0 c1 out
  if [[ $name == knot ]]; then port=$KNOT_PORT pid=$KNOT_PID; else port=$UPDNS_PORT pid=$UPDNS_PID; fi
  RUN_BATCH=-
  if [[ $name == updns ]]; then r0=$(metric updns_writer_requests_total); c0=$(metric updns_writer_commits_total); fi
  t0=$(cpu_ticks "$pid")
  s0=$(cpu_stall_us) w0=$(date +%s.%N)
  out=$(nice -n "$NICE" taskset -c "$CLIENT_CPU" dnsperf -u -s 127.0.0.1 -p "$port" -d "$DIR/updates.txt" -l "$DURATION" \
    -c "$CLIENTS" -q "$OUTSTANDING" -t 2 -y "hmac-sha256:upd:$SECRET" 2>&1) || true
  t1=$(cpu_ticks "$pid")
  s1=$(cpu_stall_us) w1=$(date +%s.%N)
  RUN_STALL=-
  if [[ -n $s0 && -n $s1 ]]; then
    RUN_STALL=$(awk -v a="$s0" -v b="$s1" -v s="$w0" -v e="$w1" 'BEGIN {printf "%.0f", (b - a) / 1e6 / (e - s) * 100}')
  fi
  echo "$out" >"$DIR/$name/perf.$RUN_TAG"
  if [[ $name == updns ]]; then
    r1=$(metric updns_writer_requests_total); c1=$(metric updns_writer_commits_total)
    RUN_BATCH=$(awk -v a="$r0" -v b="$r1" -v c="$c0" -v d="$c1" 'BEGIN {printf "%.1f", (d > c) ? (b - a) / (d - c) : 0}')
  fi
  RUN_RATE=$(awk '/(Updates|Queries) per second:/ {printf "%.0f", $4}' <<<"$out")
  RUN_DONE=$(awk '/(Updates|Queries) completed:/ {print $3}' <<<"$out")
  RUN_LOST=$(awk '/(Updates|Queries) lost:/ {print $3}' <<<"$out")
  RUN_RCODES=$(grep -i 'Response codes' <<<"$out" | sed 's/.*codes: *//')
  RUN_LAT_MS=$(awk '/Average Latency/ {printf "%.1f", $4 * 1000}' <<<"$out")
  RUN_CPU_US=$(awk -v a="$t0" -v b="$t1" -v hz="$TICKS" -v n="${RUN_DONE:-0}" \
    'BEGIN {printf "%.1f", n ? (b - a) / hz / n * 1e6 : 0}')
  [[ -n $RUN_RATE ]] || { echo "dnsperf failed against $name:"; echo "$out"; exit 1; }
}

printf '\n== %s runs of %s s per server, dnsperf -c %s -q %s, alternating, nice %s\n' "$RUNS" "$DURATION" "$CLIENTS" "$OUTSTANDING" "$NICE"
printf '%-6s %-3s %10s %9s %6s %8s %12s %9s %7s  %s\n' server run updates/s completed lost lat_ms cpu_us/upd upd/commit stall% rcodes
knot_rates=() updns_rates=() knot_cpu=() updns_cpu=() batches=()
for ((run = 1; run <= RUNS; ++run)); do
  for name in knot updns; do
    RUN_TAG=$run
    run_perf "$name"
    printf '%-6s %-3s %10s %9s %6s %8s %12s %9s %7s  %s\n' "$name" "$run" "$RUN_RATE" "$RUN_DONE" "$RUN_LOST" \
      "$RUN_LAT_MS" "$RUN_CPU_US" "$RUN_BATCH" "$RUN_STALL" "$RUN_RCODES"
    if [[ $name == knot ]]; then knot_rates+=("$RUN_RATE") knot_cpu+=("$RUN_CPU_US")
    else updns_rates+=("$RUN_RATE") updns_cpu+=("$RUN_CPU_US") batches+=("$RUN_BATCH"); fi
  done
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"

K=$(printf '%s\n' "${knot_rates[@]}" | median)
U=$(printf '%s\n' "${updns_rates[@]}" | median)
printf '\n== medians of %s runs\n' "$RUNS"
printf 'knot   %10s updates/s  %8s µs server CPU per update\n' "$K" "$(printf '%s\n' "${knot_cpu[@]}" | median)"
printf 'updns  %10s updates/s  %8s µs server CPU per update  %s updates per commit\n' "$U" \
  "$(printf '%s\n' "${updns_cpu[@]}" | median)" "$(printf '%s\n' "${batches[@]}" | median)"
awk -v u="$U" -v k="$K" 'BEGIN {printf "ratio updns/knot: %.2f (goal >= 10)\n", k ? u / k : 0}'
echo "serials after: knot $(dig +short -p "$KNOT_PORT" @127.0.0.1 $ZONE SOA | awk '{print $3}'), updns $(dig +short -p "$UPDNS_PORT" @127.0.0.1 $ZONE SOA | awk '{print $3}')"

if [[ $STRACE == 1 ]]; then
  printf '\n== one more run per server under strace -f -c (rates slowed by strace: not results)\n'
  for name in knot updns; do
    if [[ $name == knot ]]; then pid=$KNOT_PID; else pid=$UPDNS_PID; fi
    strace -f -c -e trace=fsync,fdatasync,msync,pwrite64,pwritev,write,sendmmsg,recvmmsg,sendmsg,recvmsg,sendto,recvfrom \
      -o "$DIR/$name/strace" -p "$pid" 2>/dev/null &
    spid=$!
    sleep 1
    RUN_TAG=strace
    run_perf "$name"
    kill -INT "$spid" 2>/dev/null || true
    wait "$spid" 2>/dev/null || true
    echo "$name: $RUN_DONE updates completed ($RUN_RATE/s under strace), upd/commit $RUN_BATCH; syscalls per update:"
    awk -v n="$RUN_DONE" '$NF ~ /^[a-z0-9_]+$/ && $4 ~ /^[0-9]+$/ && $NF != "syscall" {printf "  %-10s %9s calls  %6.3f per update\n", $NF, $4, $4 / n}' \
      "$DIR/$name/strace"
  done
fi

for name in knot updns; do
  if grep -iE 'error|warning' "$DIR/$name/log" | grep -qv 'mail.smtp is not set'; then
    echo "$name log warnings/errors (first 5):"
    grep -iE 'error|warning' "$DIR/$name/log" | grep -v 'mail.smtp is not set' | head -5
  fi
done

#!/usr/bin/env bash
# DWRTC against the PeerJS server, side by side, in one run.
#
#   tests/bench/run.sh [--quick]
#
# Builds (build-bench/, -j2), starts the pinned PeerJS server (npm `peer`
# from package.json, in node_modules/) and DWRTC nginx nodes (stock nginx with
# the built module, each its own temporary prefix, loopback ports,
# worker_processes 1), drives them all with the same client
# (tests/bench/loadgen) and prints one markdown table with the machine, the
# date, the versions and the DWRTC/PeerJS ratios. See docs/performance.md
# for what every number means.
#
# Everything listens on 127.0.0.1; every load is bounded in count and time.
# Raw results (JSON lines) and the table are kept in $OUT (default: a new
# directory under /tmp, printed at the end).
#
# Environment:
#   BUILD_DIR  build directory (default: <repo>/build-bench)
#   JOBS       parallel build jobs (default: 2)
#   SECS       seconds per latency/throughput window (default: 10)
#   OUT        directory for results (default: mktemp)
#   REPEAT     runs of each latency/throughput measurement (default: 1); the
#              table takes the one least disturbed by other processes
#   SKIP_BUILD=1  use what is in BUILD_DIR as it is
#   ONLY=idle  only the idle-session memory runs (PeerJS, DWRTC with the
#              defaults and with request_pool_size 1k), then the table
#   ONLY=latency  only the relay latency runs at $RATE msg/s (PeerJS, DWRTC
#              same node and two nodes), then the table
#   ONLY=calls only the call set-up times in Chromium (call_setup.mjs:
#              DWRTC across two nodes, the PeerJS server, the PeerJS client
#              on two DWRTC nodes), then the table
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build-bench}
JOBS=${JOBS:-2}
SECS=${SECS:-10}
REPEAT=${REPEAT:-1}
ONLY=${ONLY:-}
QUICK=0
[ "${1:-}" = "--quick" ] && QUICK=1

# Sizes of the runs. --quick is a smoke run of the whole script.
PAIRS=100        # sender/receiver pairs for latency and throughput
RATE=1000        # latency: messages per second, all pairs together
WINDOW=16        # throughput: outstanding messages per pair
SIZE=256         # body padding bytes per message
ACCEPT=10000     # accept rate: sessions opened
IDLE=10000,18000 # idle sessions on one worker: checkpoints
IDLE_BIG=50000   # idle sessions on one node, from several client processes
COLD_NODES=20    # fresh nginx nodes per cold round
COLD_ROUNDS=3
CORE_COLD=200    # cold samples in the in-process dhtcore bench
SCALE=100,300,1000  # DHT scale: network sizes (dhtcore nodes, many processes)
SCALE_PROBES=200
SCALE_CHURN_SECS=20
CALLS=40         # call set-up: calls per kind
if [ "$QUICK" = 1 ]; then
    CALLS=5
    SECS=2 ACCEPT=2000 IDLE=1000,2000 IDLE_BIG=5000 COLD_NODES=4 COLD_ROUNDS=1 CORE_COLD=20
    SCALE=30,60 SCALE_PROBES=20 SCALE_CHURN_SECS=5
fi

OUT=${OUT:-$(mktemp -d /tmp/dwrtc-bench.XXXXXX)}
mkdir -p "$OUT"
RESULTS=$OUT/results.jsonl
: >"$RESULTS"
WORK=$(mktemp -d /tmp/dwrtc-bench-run.XXXXXX)

log() { printf '== %s\n' "$*" >&2; }

# want PART: whether this run measures PART (idle, latency, or everything
# else: all)
want() { [ -z "$ONLY" ] || [ "$ONLY" = "$1" ]; }
case "$ONLY" in
    ""|idle|latency|calls) ;;
    *) echo "ONLY=$ONLY: only ONLY=idle, ONLY=latency and ONLY=calls are known" >&2
       exit 2 ;;
esac

# ---------------------------------------------------------------- cleanup

PIDS=()    # processes this script started (PeerJS, nginx masters)
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

forget_pid() {
    local keep=() p
    for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
    PIDS=("${keep[@]}")
}

# Stops one process we started and waits (bounded) for it to go.
stop_pid() {
    local pid=$1 sig=${2:-TERM}
    kill -"$sig" "$pid" 2>/dev/null || true
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    forget_pid "$pid"
}

# ---------------------------------------------------------------- build

if [ "${SKIP_BUILD:-0}" != 1 ]; then
    log "build ($BUILD_DIR, -j$JOBS)"
    cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    cmake --build "$BUILD_DIR" -j "$JOBS" >"$OUT/build.log" 2>&1 ||
        { tail -30 "$OUT/build.log" >&2; exit 1; }
fi
LOADGEN=$BUILD_DIR/tests/bench/loadgen
BENCH_CORE=$BUILD_DIR/tests/bench/bench_dhtcore
BENCH_SCALE=$BUILD_DIR/tests/bench/bench_dht_scale
MODULE=$BUILD_DIR/module/ngx_http_dwrtc_module.so
[ -x "$LOADGEN" ] || { echo "no loadgen in $BUILD_DIR" >&2; exit 1; }
[ -d "$ROOT/node_modules/peer" ] || (cd "$ROOT" && npm ci --no-audit --no-fund)

# Servers and clients hold one descriptor per session: the soft limit goes
# up to the hard one (raising the hard one needs CAP_SYS_RESOURCE).
ulimit -n "$(ulimit -Hn)"
NOFILE=$(ulimit -n)
[ "$NOFILE" = unlimited ] && NOFILE=1048576

# $IDLE_BIG sessions: one process (a worker, a client) takes at most 80% of
# its descriptor limit; more sessions take more worker processes (one
# node, the kernel spreading connections over them with reuseport) and
# more client processes, each with source addresses of its own.
PER_PROC=$((NOFILE * 8 / 10))
BIG_PROCS=$(((IDLE_BIG + PER_PROC - 1) / PER_PROC))

# ---------------------------------------------------------------- ports

# One block of 200 loopback ports below the ephemeral range, free on both
# TCP and UDP.
pick_base() {
    local base used
    used=$(ss -Htuan 2>/dev/null | awk '{print $5}' | sed 's/.*://' | sort -u)
    for _ in $(seq 50); do
        base=$((20000 + (RANDOM % 60) * 200))
        if ! printf '%s\n' "$used" |
            awk -v b="$base" '$1 >= b && $1 < b + 200 {f=1} END {exit !f}'; then
            echo "$base"
            return
        fi
    done
    echo "no free port block" >&2
    exit 1
}
BASE=$(pick_base)
PJ_PORT=$BASE
DHT_A=$((BASE + 10))                                  # node A: fixed
DHT_RANGE="$((BASE + 11))-$((BASE + 79))"            # every other node
LINK_RANGE="$((BASE + 140))-$((BASE + 199))"
http_port() { echo $((BASE + 1 + $1)); }              # node index -> port

wait_port() { # port: wait (bounded) until something listens on it
    for _ in $(seq 200); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    return 1
}

# ---------------------------------------------------------------- servers

start_peerjs() {
    node "$ROOT/tests/bench/peerjs-server.mjs" "$PJ_PORT" >"$WORK/peerjs.log" 2>&1 &
    PJ_PID=$!
    PIDS+=("$PJ_PID")
    wait_port "$PJ_PORT" || { cat "$WORK/peerjs.log" >&2; exit 1; }
}

# start_node INDEX [BOOTSTRAP_DHT_PORT] -> sets NODE_MASTER, NODE_WORKER
# Node 0 takes DHT port $DHT_A; the others take the first free port of
# $DHT_RANGE and join through node 0.
start_node() {
    local i=$1 prefix=$WORK/node$1 port dht boot=""
    port=$(http_port "$i")
    if [ "$i" = 0 ]; then dht=$DHT_A; else
        dht=$DHT_RANGE
        boot="dwrtc_bootstrap 127.0.0.1:$DHT_A;"
    fi
    rm -rf "$prefix"
    mkdir -p "$prefix/logs"
    cat >"$prefix/nginx.conf" <<EOF
load_module $MODULE;
worker_processes ${NODE_WORKERS:-1};
worker_rlimit_nofile $NOFILE;
pid $prefix/nginx.pid;
error_log $prefix/logs/error.log info;
events {
    worker_connections $NOFILE;
    multi_accept on;
}
http {
    access_log off;
    client_body_temp_path $prefix/client_body;
    proxy_temp_path $prefix/proxy;
    fastcgi_temp_path $prefix/fastcgi;
    uwsgi_temp_path $prefix/uwsgi;
    scgi_temp_path $prefix/scgi;

    dwrtc_dht_port $dht;
    dwrtc_link_port $LINK_RANGE;
    dwrtc_bind_address 127.0.0.1;
    dwrtc_public_address 127.0.0.1;
    $boot
    # Every node is on 127.0.0.1: OpenDHT's per-IP limit would throttle them.
    dwrtc_dht_rate_limit off off;
    # The bench pushes one session far past a browser's rate.
    dwrtc_rate off;
    dwrtc_max_sessions 100000;
    dwrtc_allowed_origins *;
    ${NODE_HTTP_EXTRA:-}

    server {
        listen 127.0.0.1:$port backlog=4096${NODE_LISTEN_EXTRA:-};
        location /signal {
            dwrtc_signal;
        }
        location /peerjs/ {
            dwrtc_peerjs;
        }
    }
}
EOF
    nginx -p "$prefix" -c "$prefix/nginx.conf" -e "$prefix/logs/error.log" \
        -g 'daemon off;' >"$prefix/logs/stdout.log" 2>&1 &
    NODE_MASTER=$!
    PIDS+=("$NODE_MASTER")
    wait_port "$port" || { tail -20 "$prefix/logs/error.log" >&2; exit 1; }
    # NODE_WORKER: its worker, or with NODE_WORKERS=N its N workers (a
    # comma list)
    local n=${NODE_WORKERS:-1}
    NODE_WORKER=""
    for _ in $(seq 100); do
        NODE_WORKER=$(pgrep -P "$NODE_MASTER" | head -"$n" | paste -sd, || true)
        [ "$(echo "$NODE_WORKER" | tr , '\n' | grep -c .)" -ge "$n" ] && break
        sleep 0.05
    done
    # A node is routable once its record is in the DHT (the core logs it).
    for _ in $(seq 200); do
        [ "$(grep -c "published its record" "$prefix/logs/error.log" \
            2>/dev/null)" -ge "$n" ] && break
        sleep 0.05
    done
}

node_url() { echo "ws://127.0.0.1:$(http_port "$1")/signal"; }
peerjs_url() { echo "ws://127.0.0.1:$(http_port "$1")/peerjs/"; }

# Notes printed under the table: a worker that died during a run.
check_alive() { # WHAT PID...
    local what=$1 pid
    shift
    for pid in "$@"; do
        kill -0 "$pid" 2>/dev/null ||
            echo "worker $pid died during $what" | tee -a "$OUT/notes.txt" >&2
    done
}

# ---------------------------------------------------------------- loadgen

# run_lg LABEL ARGS... : one loadgen run; its JSON line goes to $RESULTS.
run_lg() {
    local label=$1
    shift
    log "$label: loadgen $*"
    timeout 900 "$LOADGEN" --label "$label" --size "$SIZE" "$@" \
        2>>"$OUT/loadgen.stderr" | tee -a "$RESULTS" >&2 || true
}

msgs_suite() { # LABEL PROTO URL_A URL_B PIDS [LOADGEN-ARGS...]
    local label=$1 proto=$2 a=$3 b=$4 pids=$5 r
    shift 5
    for r in $(seq "$REPEAT"); do
        run_lg "$label" --proto "$proto" --mode latency --url-a "$a" \
            --url-b "$b" --pairs "$PAIRS" --rate "$RATE" --seconds "$SECS" \
            --server-pid "$pids" "$@"
        want all || continue
        run_lg "$label" --proto "$proto" --mode throughput --url-a "$a" \
            --url-b "$b" --pairs "$PAIRS" --window "$WINDOW" --seconds "$SECS" \
            --server-pid "$pids" "$@"
    done
}

# ---------------------------------------------------------------- runs

log "results in $OUT"
cut -d' ' -f1-3 /proc/loadavg >"$OUT/loadavg.txt"

log "PeerJS server $(jq -r .version "$ROOT/node_modules/peer/package.json")"
PJ_URL="ws://127.0.0.1:$PJ_PORT/"
if want latency; then
    start_peerjs
    msgs_suite peerjs peerjs "$PJ_URL" "$PJ_URL" "$PJ_PID"
    if want all; then
        run_lg peerjs --proto peerjs --mode accept --url-a "$PJ_URL" \
            --sessions "$ACCEPT" --concurrency 100 --seconds 120 --src-ips 4 \
            --server-pid "$PJ_PID"
    fi
    stop_pid "$PJ_PID"
fi
if want idle; then
    # $IDLE_BIG too when one process can hold them; PeerJS is one process.
    PJ_IDLE=$IDLE
    if [ "$BIG_PROCS" = 1 ]; then
        PJ_IDLE=$IDLE,$IDLE_BIG
    else
        echo "$IDLE_BIG idle sessions: one process holds at most $NOFILE descriptors here (hard RLIMIT_NOFILE; raising it needs CAP_SYS_RESOURCE), so DWRTC held them on $BIG_PROCS workers of one node, opened by $BIG_PROCS client processes; PeerJS, one Node.js process, could not be measured there" >>"$OUT/notes.txt"
    fi
    start_peerjs # a fresh process for the memory baseline
    sleep 1
    run_lg peerjs --proto peerjs --mode idle --url-a "$PJ_URL" \
        --sessions "$PJ_IDLE" --concurrency 100 --settle 3 --src-ips 4 \
        --server-pid "$PJ_PID"
    stop_pid "$PJ_PID"
fi

HAVE_MODULE=0
[ -f "$MODULE" ] && HAVE_MODULE=1
if [ "$HAVE_MODULE" = 1 ]; then
    log "DWRTC nodes (nginx $(nginx -v 2>&1 | sed 's|.*/||'))"
    if want latency; then
        start_node 0
        A_MASTER=$NODE_MASTER A_WORKER=$NODE_WORKER
        start_node 1
        B_MASTER=$NODE_MASTER B_WORKER=$NODE_WORKER
        msgs_suite dwrtc-same dwrtc "$(node_url 0)" "$(node_url 0)" "$A_WORKER"
        msgs_suite dwrtc-cross dwrtc "$(node_url 0)" "$(node_url 1)" \
            "$A_WORKER,$B_WORKER"
        # The PeerJS dialect of the same nodes (dwrtc_peerjs), driven by the
        # same PeerJS client load as the PeerJS server, with the ids the
        # node gives out, as a PeerJS app without a chosen id gets them.
        msgs_suite dwrtc-peerjs-same peerjs "$(peerjs_url 0)" "$(peerjs_url 0)" \
            "$A_WORKER" --peerjs-ids server
        msgs_suite dwrtc-peerjs-cross peerjs "$(peerjs_url 0)" "$(peerjs_url 1)" \
            "$A_WORKER,$B_WORKER" --peerjs-ids server
        if want all; then
            run_lg dwrtc-same --proto dwrtc --mode accept \
                --url-a "$(node_url 0)" --sessions "$ACCEPT" \
                --concurrency 100 --seconds 120 --src-ips 4 \
                --server-pid "$A_WORKER"
        fi
        check_alive "the message and accept runs" "$A_WORKER" "$B_WORKER"
        stop_pid "$B_MASTER" QUIT
    fi

    if want idle; then
        # Idle sessions on a fresh node (its worker's RSS only), and the
        # same with nginx's request pool in 1 KB blocks, once an operator's
        # setting for nodes that hold many sessions (module/README.md).
        idle_node() { # LABEL INDEX SESSIONS WORKERS
            local label=$1 i=$2 k=$3 w=$4 listen=""
            [ "$w" -gt 1 ] && listen=" reuseport"
            NODE_WORKERS=$w NODE_LISTEN_EXTRA=$listen start_node "$i"
            run_lg "$label" --proto dwrtc --mode idle --url-a "$(node_url "$i")" \
                --sessions "$k" --concurrency 100 --settle 3 --src-ips 4 \
                --procs "$w" --server-pid "$NODE_WORKER"
            check_alive "the idle-session run ($label, $w workers)" \
                ${NODE_WORKER//,/ }
            stop_pid "$NODE_MASTER" QUIT
        }
        for extra in "" "request_pool_size 1k;"; do
            label=dwrtc-same
            [ -n "$extra" ] && label=dwrtc-pool1k
            if [ "$BIG_PROCS" = 1 ]; then
                NODE_HTTP_EXTRA=$extra idle_node "$label" 2 "$IDLE,$IDLE_BIG" 1
            else
                NODE_HTTP_EXTRA=$extra idle_node "$label" 2 "$IDLE" 1
                NODE_HTTP_EXTRA=$extra idle_node "$label" 3 "$IDLE_BIG" \
                    "$BIG_PROCS"
            fi
        done
        jq -nc --argjson k "$IDLE_BIG" --argjson w "$BIG_PROCS" \
            --argjson n "$NOFILE" \
            '{bench: "idle_setup", sessions: $k, workers: $w, nofile: $n}' \
            >>"$RESULTS"
    fi

    # First message to a cold node: rounds of fresh nginx nodes that node A
    # never talked to.
    want all || COLD_ROUNDS=0
    for round in $(seq "$COLD_ROUNDS"); do
        urls=() masters=()
        for j in $(seq "$COLD_NODES"); do
            start_node $((10 + j))
            urls+=("$(node_url $((10 + j)))")
            masters+=("$NODE_MASTER")
        done
        run_lg "dwrtc-cold-$round" --proto dwrtc --mode cold \
            --url-a "$(node_url 0)" --url-b "$(IFS=,; echo "${urls[*]}")" \
            --seconds 300
        for m in "${masters[@]}"; do kill -QUIT "$m" 2>/dev/null || true; done
        for m in "${masters[@]}"; do stop_pid "$m" QUIT; done
    done
    if want latency; then
        check_alive "the cold-node runs" "$A_WORKER"
        stop_pid "$A_MASTER" QUIT
    fi
    if want calls; then
        log "call set-up in Chromium: $CALLS calls per kind"
        DWRTC_MODULE=$MODULE DWRTC_REPO=$ROOT timeout 900 \
            node "$ROOT/tests/bench/call_setup.mjs" --calls "$CALLS" \
            --out "$RESULTS" >/dev/null 2>>"$OUT/call_setup.stderr" ||
            echo "the call set-up run failed (call_setup.stderr)" >>"$OUT/notes.txt"
    fi
    grep -h '\[alert\]\|\[crit\]\|\[emerg\]' "$WORK"/node*/logs/error.log \
        >"$OUT/nginx-alerts.log" 2>/dev/null || true
else
    log "no module at $MODULE: DWRTC nginx runs skipped"
fi

cut -d' ' -f1-3 /proc/loadavg >>"$OUT/loadavg.txt"

if ! want all; then
    log "ONLY=$ONLY: dhtcore benches skipped"
elif [ -x "$BENCH_CORE" ]; then
    log "dhtcore in-process bench"
    for r in $(seq "$REPEAT"); do
        timeout 900 "$BENCH_CORE" --seconds "$SECS" --cold 0 \
            2>>"$OUT/bench_dhtcore.stderr" | tee -a "$RESULTS" >&2 || true
    done
    # First message to fresh nodes: batches leave after use, as in a live
    # network; then a steady network where every fresh node stays.
    timeout 900 "$BENCH_CORE" --only-cold 1 --cold "$CORE_COLD" \
        2>>"$OUT/bench_dhtcore.stderr" | grep dhtcore_cold |
        tee -a "$RESULTS" >&2 || true
    timeout 900 "$BENCH_CORE" --only-cold 1 --cold-keep 1 \
        --cold "$((CORE_COLD < 100 ? CORE_COLD : 100))" \
        2>>"$OUT/bench_dhtcore.stderr" | grep dhtcore_cold |
        tee -a "$RESULTS" >&2 || true
    log "DHT scale: $SCALE nodes"
    timeout 1800 "$BENCH_SCALE" --sizes "$SCALE" --probes "$SCALE_PROBES" \
        --churn 0.2 --churn-seconds "$SCALE_CHURN_SECS" --churn-rate 50 \
        2>>"$OUT/bench_dht_scale.stderr" | tee -a "$RESULTS" >&2 || true
else
    log "no bench_dhtcore: dhtcore's C interface is not built yet"
fi

# ---------------------------------------------------------------- table

[ -s "$OUT/nginx-alerts.log" ] &&
    echo "nginx logged $(wc -l <"$OUT/nginx-alerts.log") alert/crit/emerg lines (nginx-alerts.log)" >>"$OUT/notes.txt"
"$ROOT/tests/bench/report.sh" "$RESULTS" "$OUT/notes.txt" | tee "$OUT/table.md"
log "raw results: $RESULTS; table: $OUT/table.md"

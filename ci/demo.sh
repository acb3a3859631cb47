#!/bin/sh
# The main job: a local DWRTC network of three nginx nodes on loopback, each
# serving the demo (web/). Installs what is missing, builds, starts the nodes
# from config-examples/local-3-node/, prints the demo URLs and runs until
# Ctrl-C, which stops all three cleanly (nginx -s quit, then waits).
#
#   ci/demo.sh              install, build, run until Ctrl-C
#   ci/demo.sh --no-build   run with what is built already
#   ci/demo.sh --check      start, check every node is up and published, stop
#
# Environment: BUILD (build directory, default build/). Runtime files (each
# node's nginx.conf, error.log, pid) are in $BUILD/demo/node{1,2,3}/.
set -eu

cd "$(dirname "$0")/.."
REPO=$(pwd)
BUILD=${BUILD:-$REPO/build}
RUN=$BUILD/demo
MODULE=$BUILD/module/ngx_http_dwrtc_module.so
NGINX=${NGINX:-nginx}
PORTS="8081 8082 8083"

MODE=run
case "${1:-}" in
    "") ;;
    --no-build) MODE=nobuild ;;
    --check) MODE=check ;;
    *) echo "usage: $0 [--no-build | --check]" >&2; exit 2 ;;
esac

if [ "$MODE" = run ]; then
    ./ci/install-deps.sh
    echo "demo: building in $BUILD"
    cmake -S . -B "$BUILD" >/dev/null
    cmake --build "$BUILD" -j "$(nproc)"
fi
[ -f "$MODULE" ] || { echo "demo: $MODULE is missing; build first" >&2; exit 1; }
command -v "$NGINX" >/dev/null 2>&1 || NGINX=/usr/sbin/nginx

# Stops every node that runs: nginx -s quit, then waits for the master to
# exit (open browser sessions get worker_shutdown_timeout, set below).
stop_nodes() {
    for i in 1 2 3; do
        prefix=$RUN/node$i
        [ -f "$prefix/nginx.pid" ] || continue
        "$NGINX" -p "$prefix" -c "$prefix/nginx.conf" -e "$prefix/error.log" \
            -s quit 2>/dev/null || true
    done
    for i in 1 2 3; do
        pidfile=$RUN/node$i/nginx.pid
        n=0
        while [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile" 2>/dev/null || echo 0)" 2>/dev/null
        do
            n=$((n + 1))
            if [ $n -gt 150 ]; then
                echo "demo: node $i did not stop in 30 s, killing it" >&2
                master=$(cat "$pidfile")
                pkill -KILL -P "$master" 2>/dev/null || true   # its workers
                kill -KILL "$master" 2>/dev/null || true
                rm -f "$pidfile"
                break
            fi
            sleep 0.2
        done
    done
}

# Writes node $1's nginx.conf: the example with this checkout's module and
# web/ paths, and runtime files in the node's own directory (so no root
# paths are needed), then starts it.
start_node() {
    i=$1
    prefix=$RUN/node$i
    mkdir -p "$prefix/tmp"
    # As root, workers run as root too, so they can read web/ wherever the
    # checkout lives (nginx's default user, nobody, often cannot).
    user=""
    [ "$(id -u)" -eq 0 ] && user="user root;"
    sed -e "s#/usr/lib/nginx/modules/ngx_http_dwrtc_module.so#$MODULE#" \
        -e "s#/usr/share/dwrtc/web#$REPO/web#" \
        -e "/^load_module /a\\
# added by ci/demo.sh: runtime files in $prefix\\
pid $prefix/nginx.pid;\\
error_log $prefix/error.log info;\\
worker_shutdown_timeout 5s;\\
$user" \
        -e "/^http {/a\\
    # added by ci/demo.sh: runtime files in $prefix\\
    access_log $prefix/access.log;\\
    client_body_temp_path $prefix/tmp/client_body;\\
    proxy_temp_path $prefix/tmp/proxy;\\
    fastcgi_temp_path $prefix/tmp/fastcgi;\\
    uwsgi_temp_path $prefix/tmp/uwsgi;\\
    scgi_temp_path $prefix/tmp/scgi;" \
        "config-examples/local-3-node/node$i.conf" > "$prefix/nginx.conf"
    : > "$prefix/error.log"
    if ! "$NGINX" -p "$prefix" -c "$prefix/nginx.conf" -e "$prefix/error.log"; then
        echo "demo: node $i did not start (is port 808$i taken?);" \
             "the end of $prefix/error.log:" >&2
        tail -n 5 "$prefix/error.log" >&2
        return 1
    fi
}

# Waits (bounded) until every worker of node $1 has put its record in the
# DHT, so the other nodes can find it.
wait_published() {
    i=$1
    log=$RUN/node$i/error.log
    n=0
    while :; do
        started=$(grep -c "dwrtc: node [0-9a-f]* started" "$log" 2>/dev/null || true)
        published=$(grep -c "dwrtc: node [0-9a-f]* published its record" "$log" \
                    2>/dev/null || true)
        [ "${started:-0}" -gt 0 ] && [ "${published:-0}" -ge "$started" ] && return 0
        if grep -q "dwrtc: node did not start" "$log" 2>/dev/null; then
            echo "demo: node $i could not start its DHT node:" >&2
            grep "dwrtc:" "$log" | tail -n 3 >&2
            return 1
        fi
        n=$((n + 1))
        if [ $n -gt 300 ]; then
            echo "demo: node $i did not publish itself in 60 s; see $log" >&2
            return 1
        fi
        sleep 0.2
    done
}

# Leftovers of an earlier run that was killed hard.
stop_nodes
rm -rf "$RUN"
mkdir -p "$RUN"

trap 'trap - EXIT; echo; echo "demo: stopping the three nodes"; stop_nodes;
      echo "demo: stopped"; exit 0' INT TERM
trap 'stop_nodes' EXIT

for i in 1 2 3; do
    start_node "$i"
done
for i in 1 2 3; do
    wait_published "$i"
done

if grep -E "\[(alert|crit|emerg)\]" "$RUN"/node*/error.log; then
    echo "demo: a node logged an alert (above)" >&2
    exit 1
fi

echo
echo "A local DWRTC network of three nginx nodes is running:"
i=1
for p in $PORTS; do
    id=$(sed -n 's/.*dwrtc: node \([0-9a-f]*\) started.*/\1/p' \
         "$RUN/node$i/error.log" | head -n 1)
    echo "  node $i (DHT node $id): http://127.0.0.1:$p/   signaling ws://127.0.0.1:$p/signal"
    i=$((i + 1))
done
echo
echo "Open node 1 in a browser and start a call, then open the link it shows"
echo "on node 3 (another tab or window): the call is signaled across servers."
echo "Logs: $RUN/node*/error.log"

if [ "$MODE" = check ]; then
    for p in $PORTS; do
        curl -fsS -o /dev/null "http://127.0.0.1:$p/dwrtc.js"
    done
    echo "demo: check passed"
    exit 0
fi

echo "Press Ctrl-C to stop."
while :; do
    sleep 1 &
    wait $! || true
done

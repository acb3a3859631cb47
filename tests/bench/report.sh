#!/usr/bin/env bash
# Renders the JSON lines of tests/bench/run.sh as one markdown table.
#
#   tests/bench/report.sh results.jsonl [notes.txt]
set -euo pipefail

RESULTS=$1
NOTES=${2:-}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)

# get LABEL BENCH FIELD [JQ-FILTER]: the field of the matching line; of
# repeated runs (REPEAT=N), the one least disturbed by other processes
# (lowest other_busy_cores), and of equally quiet ones the last, when every
# server's caches (and Node.js's JIT) are warm.
get() {
    jq -rs --arg l "$1" --arg b "$2" --arg f "$3" \
        "[.[] | select((.label // \"\") == \$l and .bench == \$b) ${4:-}]
         | reverse | sort_by(.other_busy_cores // 0) | map(.[\$f])
         | map(select(. != null)) | first // empty" "$RESULTS"
}

# Every cold sample of every round (or of the rounds whose label matches
# $2), then a percentile over them.
cold_pct() { # Q [LABEL-REGEX] -> milliseconds
    jq -rs --argjson q "$1" --arg l "${2:-.}" '
        [.[] | select(.bench == "cold" and (.label | test($l)))
         | .cold_samples_us[]] | sort
        | if length == 0 then empty else
            .[([((length * $q) | ceil) - 1, 0] | max)] / 1000 end' \
        "$RESULTS"
}
cold_count() { # [LABEL-REGEX]
    jq -rs --arg l "${1:-.}" '[.[] | select(.bench == "cold" and (.label | test($l)))
        | .cold_samples_us[]] | length' "$RESULTS"
}

fmt() { # number formatting: empty stays "n/a"
    local v=${1:-} d=${2:-0}
    if [ -z "$v" ]; then echo "n/a"; else printf "%.${d}f" "$v"; fi
}
ratio() { # a / b with 2 decimals, or n/a
    if [ -z "${1:-}" ] || [ -z "${2:-}" ]; then echo "n/a"; return; fi
    awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "n/a"; else printf "%.2f", a / b }'
}

row() { # NAME PEERJS SAME CROSS DIGITS [noratio]
    local p=$2 s=$3 c=$4 d=${5:-0} rs rc
    rs=$(ratio "$s" "$p") rc=$(ratio "$c" "$p")
    [ "${6:-}" = noratio ] && rs=n/a rc=n/a
    printf '| %s | %s | %s | %s | %s | %s |\n' "$1" "$(fmt "$p" "$d")" \
        "$(fmt "$s" "$d")" "$(fmt "$c" "$d")" "$rs" "$rc"
}

cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)
mem=$(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)
rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo "?")
dirty=$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null | head -1)
[ -n "$dirty" ] && rev="$rev+uncommitted"

echo "### DWRTC vs PeerJS server: $(date -u '+%Y-%m-%d %H:%M UTC')"
echo
echo "- machine: $cpu, $(nproc) cores, $mem, Linux $(uname -r); clients and servers share the cores"
echo "- versions: DWRTC $rev, nginx $(nginx -v 2>&1 | sed 's|.*/||'), PeerJS server (npm peer) $(jq -r .version "$ROOT/node_modules/peer/package.json"), Node.js $(node -v), OpenDHT $(pkg-config --modversion opendht 2>/dev/null || echo ?), libwebsockets $(pkg-config --modversion libwebsockets 2>/dev/null || echo ?)"
pairs=$(get peerjs latency pairs)
rate=$(get peerjs latency rate)
window=$(get peerjs throughput window)
size=$(get peerjs latency size)
echo "- load average (1, 5, 15 min) before / after the server comparison: $(awk 'NR == 1 {a = $0} NR == 2 {b = $0} END {print (a ? a : "?") " / " (b ? b : "?")}' "$(dirname "$RESULTS")/loadavg.txt" 2>/dev/null)"
echo "- load: ${pairs:-?} sender/receiver pairs, ${size:-?}-byte bodies; latency at ${rate:-?} msg/s in total; saturation with ${window:-?} messages outstanding per pair; one worker per node"
echo
echo "| metric | PeerJS | DWRTC same node | DWRTC two nodes | same / PeerJS | two / PeerJS |"
echo "| --- | ---: | ---: | ---: | ---: | ---: |"
for q in p50 p99 p999; do
    name=$q
    [ "$q" = p999 ] && name=p99.9
    row "relay latency $name (µs)" "$(get peerjs latency ${q}_us)" \
        "$(get dwrtc-same latency ${q}_us)" "$(get dwrtc-cross latency ${q}_us)" 1
done
# the same messages, timed to the kernel's receive timestamp on the
# receiving client's socket: without the client's own wake-up
for q in p50 p99 p999; do
    name=$q
    [ "$q" = p999 ] && name=p99.9
    [ -n "$(get peerjs latency rx_${q}_us)" ] || continue
    row "relay latency to the receiving socket $name (µs)" \
        "$(get peerjs latency rx_${q}_us)" "$(get dwrtc-same latency rx_${q}_us)" \
        "$(get dwrtc-cross latency rx_${q}_us)" 1
done
row "saturation throughput (msg/s)" "$(get peerjs throughput msgs_per_s)" \
    "$(get dwrtc-same throughput msgs_per_s)" \
    "$(get dwrtc-cross throughput msgs_per_s)"
row "server CPU per relayed message at saturation (µs)" \
    "$(get peerjs throughput server_cpu_us_per_msg)" \
    "$(get dwrtc-same throughput server_cpu_us_per_msg)" \
    "$(get dwrtc-cross throughput server_cpu_us_per_msg)" 2
row "latency p50 at saturation (µs)" "$(get peerjs throughput p50_us)" \
    "$(get dwrtc-same throughput p50_us)" "$(get dwrtc-cross throughput p50_us)" 0
row "server CPU per relayed message at ${rate:-?} msg/s (µs)" \
    "$(get peerjs latency server_cpu_us_per_msg)" \
    "$(get dwrtc-same latency server_cpu_us_per_msg)" \
    "$(get dwrtc-cross latency server_cpu_us_per_msg)" 1
row "other processes' CPU during the ${rate:-?} msg/s run (cores)" \
    "$(get peerjs latency other_busy_cores)" \
    "$(get dwrtc-same latency other_busy_cores)" \
    "$(get dwrtc-cross latency other_busy_cores)" 2 noratio
row "other processes' CPU during the saturation run (cores)" \
    "$(get peerjs throughput other_busy_cores)" \
    "$(get dwrtc-same throughput other_busy_cores)" \
    "$(get dwrtc-cross throughput other_busy_cores)" 2 noratio
row "connection accept rate (sessions/s)" "$(get peerjs accept accepts_per_s)" \
    "$(get dwrtc-same accept accepts_per_s)" ""
row "server CPU per accepted session (µs)" \
    "$(get peerjs accept server_cpu_us_per_accept)" \
    "$(get dwrtc-same accept server_cpu_us_per_accept)" "" 1
for k in $(jq -rs '[.[] | select(.bench == "idle") | .sessions] | unique | .[]' "$RESULTS"); do
    sel="| select(.sessions == $k)"
    # sessions that one process could not hold went to several workers
    workers=$(get "" idle_setup workers "$sel")
    on=""
    [ "${workers:-1}" -gt 1 ] && on=" on $workers workers"
    row "memory per idle session, $k sessions$on (bytes)" \
        "$(get peerjs idle bytes_per_session "$sel")" \
        "$(get dwrtc-same idle bytes_per_session "$sel")" ""
    small=$(get dwrtc-pool1k idle bytes_per_session "$sel")
    [ -n "$small" ] &&
        row "memory per idle session, $k sessions$on, request_pool_size 1k (bytes)" \
            "$(get peerjs idle bytes_per_session "$sel")" "$small" ""
done
n1=$(cold_count 'cold-1$')
if [ "${n1:-0}" -gt 0 ]; then
    printf '| first message to a cold node, nginx, first round: %s fresh nodes, none has left yet: p50 / p99 (ms) | n/a | | %s / %s | | |\n' \
        "$n1" "$(fmt "$(cold_pct 0.5 'cold-1$')" 2)" "$(fmt "$(cold_pct 0.99 'cold-1$')" 2)"
fi
n=$(cold_count)
if [ "${n:-0}" -gt "${n1:-0}" ]; then
    printf '| first message to a cold node, nginx, all rounds: %s fresh nodes, earlier rounds gone: p50 / p99 (ms) | n/a | | %s / %s | | |\n' \
        "$n" "$(fmt "$(cold_pct 0.5)" 2)" "$(fmt "$(cold_pct 0.99)" 2)"
fi
for keep in true false; do
    sel="| select(.keep == $keep)"
    cc=$(get "" dhtcore_cold samples "$sel")
    [ -n "$cc" ] || continue
    what="nodes stay"
    [ "$keep" = false ] && what="batches of 10 leave after use"
    ms() { awk -v v="${1:-0}" 'BEGIN {printf "%.2f", v / 1000}'; }
    printf '| first message to a cold node, dhtcore in-process, %s fresh nodes (%s): p50 / p99 (ms) | n/a | | %s / %s | | |\n' \
        "$cc" "$what" "$(ms "$(get "" dhtcore_cold cold_p50_us "$sel")")" \
        "$(ms "$(get "" dhtcore_cold cold_p99_us "$sel")")"
done
if [ -n "$(get "" dhtcore_latency p50_us)" ]; then
    printf '| dhtcore in-process, two nodes: one-way p50 / p99 (µs), msg/s, process CPU per msg (µs) | n/a | | %s / %s, %s, %s | | |\n' \
        "$(fmt "$(get "" dhtcore_latency p50_us)" 1)" \
        "$(fmt "$(get "" dhtcore_latency p99_us)" 1)" \
        "$(fmt "$(get "" dhtcore_throughput msgs_per_s)" 0)" \
        "$(fmt "$(get "" dhtcore_throughput process_cpu_us_per_msg)" 1)"
fi
echo
echo "Ratios below 1 favour DWRTC for latency, CPU and memory; above 1 for throughput and accept rate."

# The PeerJS dialect (dwrtc_peerjs) beside the PeerJS server and beside
# DWRTC's own protocol on the same nodes: the issue's goal is a PeerJS
# message costing at most 1.1x a native one.
if [ -n "$(get dwrtc-peerjs-same latency p50_us)" ]; then
    echo
    echo "The PeerJS protocol on DWRTC nodes (\`dwrtc_peerjs\`, ids the node gives out), same PeerJS client load:"
    echo
    echo "| metric | PeerJS server | DWRTC PeerJS, same node | DWRTC PeerJS, two nodes | same / PeerJS server | two / PeerJS server | same / DWRTC native | two / DWRTC native |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    pjrow() { # NAME BENCH FIELD DIGITS [noratio]
        local p s c ns nc r=(n/a n/a n/a n/a)
        p=$(get peerjs "$2" "$3") s=$(get dwrtc-peerjs-same "$2" "$3")
        c=$(get dwrtc-peerjs-cross "$2" "$3")
        ns=$(get dwrtc-same "$2" "$3") nc=$(get dwrtc-cross "$2" "$3")
        [ "${5:-}" = noratio ] ||
            r=("$(ratio "$s" "$p")" "$(ratio "$c" "$p")" \
               "$(ratio "$s" "$ns")" "$(ratio "$c" "$nc")")
        printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$1" \
            "$(fmt "$p" "$4")" "$(fmt "$s" "$4")" "$(fmt "$c" "$4")" "${r[@]}"
    }
    pjrow "relay latency p50 (µs)" latency p50_us 1
    pjrow "relay latency p99 (µs)" latency p99_us 1
    pjrow "relay latency p99.9 (µs)" latency p999_us 1
    pjrow "server CPU per relayed message at ${rate:-?} msg/s (µs)" latency server_cpu_us_per_msg 1
    [ -n "$(get dwrtc-peerjs-same throughput msgs_per_s)" ] && {
        pjrow "saturation throughput (msg/s)" throughput msgs_per_s 0
        pjrow "server CPU per relayed message at saturation (µs)" throughput server_cpu_us_per_msg 2
    }
    pjrow "other processes' CPU during the ${rate:-?} msg/s run (cores)" latency other_busy_cores 2 noratio
fi

if [ -n "$(jq -rs '[.[] | select(.bench == "call_setup")] | first // empty' "$RESULTS")" ]; then
    echo
    echo "Call set-up in headless Chromium, fake camera 320x240, one call at a time; total: call() to the caller's first remote video frame; signaling: the caller's offer set to the answer's arrival:"
    echo
    echo "| calls | pages on | calls timed | total p50 / p99 (ms) | signaling p50 / p99 (ms) | total p50 / PeerJS server's |"
    echo "| --- | --- | ---: | ---: | ---: | ---: |"
    pj=$(get "" call_setup total_p50_ms '| select(.kind == "peerjs-1to1")')
    for kind in dwrtc-1to1 dwrtc-peerjs-1to1 peerjs-1to1 dwrtc-group4; do
        sel="| select(.kind == \"$kind\")"
        n=$(get "" call_setup calls "$sel")
        [ -n "$n" ] || continue
        case $kind in
            dwrtc-1to1) what="DWRTC (dwrtc.js), 1:1"; on="2 nodes" ;;
            dwrtc-peerjs-1to1) what="PeerJS client on DWRTC (dwrtc_peerjs), 1:1"; on="2 nodes" ;;
            peerjs-1to1) what="PeerJS client on the PeerJS server, 1:1"; on="1 server" ;;
            dwrtc-group4) what="DWRTC group call of 4"; on="3 nodes" ;;
        esac
        t50=$(get "" call_setup total_p50_ms "$sel")
        printf '| %s | %s | %s | %s / %s | %s / %s | %s |\n' "$what" "$on" "$n" \
            "$(fmt "$t50" 1)" "$(fmt "$(get "" call_setup total_p99_ms "$sel")" 1)" \
            "$(fmt "$(get "" call_setup signaling_p50_ms "$sel")" 1)" \
            "$(fmt "$(get "" call_setup signaling_p99_ms "$sel")" 1)" \
            "$(ratio "$t50" "$pj")"
    done
fi

sizes=$(jq -rs '[.[] | select(.bench == "dht_scale_first") | .nodes] | unique | .[]' "$RESULTS")
if [ -n "$sizes" ]; then
    echo
    echo "DHT scale (dhtcore nodes in several processes on loopback; a probe node that joined last sends to sessions on distinct nodes; then 20% of the nodes are replaced while it sends 50 msg/s):"
    echo
    echo "| nodes | processes | build (s) | first message p50 / p99 (ms) | warm p50 / p99 (ms) | churn: replaced | delivered | churn latency p50 / p99 (ms) |"
    echo "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    for n in $sizes; do
        sel="| select(.nodes == $n)"
        printf '| %s | %s | %s | %s / %s | %s / %s | %s | %s%% (%s of %s) | %s / %s |\n' \
            "$(get "" dht_scale_first ready_nodes "$sel")" \
            "$(get "" dht_scale_first procs "$sel")" \
            "$(fmt "$(get "" dht_scale_first build_s "$sel")" 1)" \
            "$(fmt "$(get "" dht_scale_first cold_p50_ms "$sel")" 2)" \
            "$(fmt "$(get "" dht_scale_first cold_p99_ms "$sel")" 2)" \
            "$(fmt "$(get "" dht_scale_first warm_p50_ms "$sel")" 2)" \
            "$(fmt "$(get "" dht_scale_first warm_p99_ms "$sel")" 2)" \
            "$(get "" dht_scale_churn replaced "$sel")" \
            "$(fmt "$(get "" dht_scale_churn delivery_pct "$sel")" 2)" \
            "$(get "" dht_scale_churn delivered "$sel")" \
            "$(get "" dht_scale_churn sent "$sel")" \
            "$(fmt "$(get "" dht_scale_churn p50_ms "$sel")" 2)" \
            "$(fmt "$(get "" dht_scale_churn p99_ms "$sel")" 2)"
    done
fi

if [ -n "$NOTES" ] && [ -s "$NOTES" ]; then
    echo
    sed 's/^/- note: /' "$NOTES"
fi

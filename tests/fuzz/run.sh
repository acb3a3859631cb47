#!/bin/sh
# Runs every fuzz target (dhtcore's parsers and the module's frame scanner)
# long: by default 10 million executions each, in libFuzzer's fork mode
# with one worker per core (at most two), going on after a crash so that
# one run counts them all. Each target keeps
# its corpus between runs in the build tree, starting from the committed
# seeds (tests/fuzz/corpus/<target>/, which this never writes to); crashing
# inputs land beside it. Prints, per target: executions, crashes (and
# timeouts, out-of-memory), and the corpus size with what this run added.
#
#   tests/fuzz/run.sh [executions] [build-dir]
#
# Without a build dir it configures and builds build-fuzz/ in the source
# tree (no nginx module); with one it builds the fuzz targets there.
# FUZZ_WORKERS sets the number of workers. Exits 1 if anything crashed.
set -eu

src=$(cd "$(dirname "$0")/../.." && pwd)
runs=${1:-10000000}
build=${2:-$src/build-fuzz}
mkdir -p "$build"
build=$(cd "$build" && pwd)
dhtcore_targets="client_message link_frame node_record host_port id_records peerjs_message link_codec"
targets="$dhtcore_targets frame_scanner"

cores=$(nproc 2>/dev/null || echo 1)
workers=${FUZZ_WORKERS:-$(( cores < 2 ? cores : 2 ))}

if [ ! -f "$build/CMakeCache.txt" ]; then
    cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DDWRTC_BUILD_MODULE=OFF >/dev/null
fi
build_targets=""
for t in $dhtcore_targets; do
    build_targets="$build_targets fuzz_$t"
done
# shellcheck disable=SC2086
cmake --build "$build" -j"$workers" --target $build_targets >/dev/null
# The module's frame-header scanner is plain C without nginx: built here,
# with the same sanitizers as the dhtcore targets.
mkdir -p "$build/tests/fuzz"
clang -O1 -g -fsanitize=fuzzer,address,undefined -I "$src/module" \
    "$src/module/tests/frame_fuzz.c" "$src/module/ngx_http_dwrtc_frame.c" \
    -o "$build/tests/fuzz/fuzz_frame_scanner"

max_len() {
    case $1 in
        client_message|link_frame|peerjs_message|link_codec) echo 8192 ;;
        node_record|id_records) echo 4096 ;;
        host_port) echo 256 ;;
        frame_scanner) echo 4096 ;;
    esac
}

count_files() {
    find "$1" -maxdepth 1 -type f 2>/dev/null | wc -l
}

failed=0
report=""
for t in $targets; do
    dir="$build/tests/fuzz/long/$t"
    mkdir -p "$dir/corpus" "$dir/artifacts"
    before=$(count_files "$dir/corpus")
    seeds=$(count_files "$src/tests/fuzz/corpus/$t")
    echo "fuzz_$t: $runs executions, $workers workers (log: $dir/log)"
    # Fork mode exits non-zero when a worker crashed; the figures say so.
    "$build/tests/fuzz/fuzz_$t" -fork="$workers" -runs="$runs" \
        -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
        -max_len="$(max_len "$t")" -timeout=10 \
        -artifact_prefix="$dir/artifacts/" \
        "$dir/corpus" "$src/tests/fuzz/corpus/$t" >"$dir/log" 2>&1 || true
    # The last status line: "#N: cov: .. corp: .. oom/timeout/crash: o/t/c .."
    status=$(grep -E '^#[0-9]+: cov:' "$dir/log" | tail -n 1)
    execs=$(echo "$status" | sed -n 's/^#\([0-9]*\):.*/\1/p')
    otc=$(echo "$status" | sed -n 's/.*oom\/timeout\/crash: \([0-9]*\/[0-9]*\/[0-9]*\).*/\1/p')
    crashes=${otc##*/}
    timeouts=$(echo "$otc" | cut -d/ -f2)
    ooms=${otc%%/*}
    after=$(count_files "$dir/corpus")
    saved=$(find "$dir/artifacts" -maxdepth 1 -type f | wc -l)
    if [ -z "$execs" ]; then
        echo "fuzz_$t: no status line in $dir/log" >&2
        failed=1
        execs="?" crashes="?" timeouts="?" ooms="?"
    elif [ "$crashes" != 0 ] || [ "$timeouts" != 0 ] || [ "$ooms" != 0 ]; then
        failed=1
    fi
    report="$report$(printf '%-20s %12s %8s %8s %5s %7s %6s %6s' "fuzz_$t" "$execs" \
        "$crashes" "$timeouts" "$ooms" "$after" "+$((after - before))" "$saved")
"
done

echo
printf '%-20s %12s %8s %8s %5s %7s %6s %6s\n' target executions crashes \
    timeouts ooms corpus new saved
printf '%s' "$report"
echo "corpus: files in $build/tests/fuzz/long/<target>/corpus (seeds not"
echo "counted); saved: inputs that crashed, in long/<target>/artifacts/"
exit "$failed"

#!/bin/sh
# Runs every DWRTC test: installs what is missing, builds, then builds
# nginx (from Debian's sources, cached in build-nginx-asan/), dhtcore and the
# module with AddressSanitizer and UndefinedBehaviorSanitizer and runs
# dhtcore's suites and the module's and nginx integration tests under them
# (docs/sanitizers.md), then every suite of the normal build with ctest
# (among them nginx_versions: the module built for nginx 1.22.1 and 1.26.3
# from source with --with-compat, in nginx builds of their own), then the
# Debian 13 job (ci/debian13.sh: the README's set-up, the package and the
# suites in a Debian 13 root made with debootstrap). Says how long each
# part took.
#
# Caches that outlive a checkout live in DWRTC_CACHE (default
# /var/cache/dwrtc): the Debian 13 root, its OpenDHT packages, nginx builds.
set -eu

cd "$(dirname "$0")/.."
JOBS=${JOBS:-$(nproc)}
# The suites of in-process nodes (unit, dhtcore, multinode, fuzz) take
# their ports from the system and mostly wait on timers, so two run side
# by side; those that start nginx or browsers run one at a time.
TEST_JOBS=${TEST_JOBS:-2}
IN_PROCESS='unit|dhtcore|multinode|fuzz'
CACHE=${DWRTC_CACHE:-/var/cache/dwrtc}

timings=""
part_name=""
part_start=0
# Ends the part that runs (printing its time) and starts the next one.
part() {
    now=$(date +%s)
    if [ -n "$part_name" ]; then
        line="$part_name: $((now - part_start)) s"
        echo "== $line"
        timings="$timings
    $line"
    fi
    part_name=$1
    part_start=$now
    if [ -n "$1" ]; then
        echo "== $1 =="
    fi
}

part "dependencies"
./ci/install-deps.sh

part "build (RelWithDebInfo)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DDWRTC_NGINX_VERSIONS_CACHE="$CACHE/nginx-versions"
cmake --build build -j "$JOBS"

part "nginx with ASan+UBSan, from Debian's sources"
./ci/nginx-asan.sh build-nginx-asan

part "sanitizer build of dhtcore and the module"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DDWRTC_SANITIZE=ON \
      -DDWRTC_BUILD_MODULE=ON \
      -DNGINX_SRC="$PWD/build-nginx-asan/src" \
      -DNGINX_BINARY="$PWD/build-nginx-asan/nginx/objs/nginx"
cmake --build build-asan -j "$JOBS"

part "dhtcore suites under ASan+UBSan"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build-asan --output-on-failure -j "$TEST_JOBS" \
          -LE 'module|integration|web|faults'

# Every nginx process of these tests writes its sanitizer reports to a file
# (tests/sanitize/run-checked.sh), and a test fails on any report it does
# not know. The browser tests (web) and the fault tests on network
# namespaces (faults: their figures are about timing) stay with the normal
# build.
part "module and nginx integration suites under ASan+UBSan"
ctest --test-dir build-asan --output-on-failure -j 1 -L 'module|integration' \
      -LE web

part "all suites"
ctest --test-dir build --output-on-failure -j "$TEST_JOBS" -L "$IN_PROCESS"
ctest --test-dir build --output-on-failure -j 1 -LE "$IN_PROCESS"

part "Debian 13 (ci/debian13.sh)"
DWRTC_CACHE=$CACHE ./ci/debian13.sh

part ""
echo "== how long each part took:$timings"

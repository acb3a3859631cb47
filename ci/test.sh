#!/bin/sh
# Runs every DWRTC test: installs what is missing, builds, then builds
# nginx (from Debian's sources, cached in build-nginx-asan/), dhtcore and the
# module with AddressSanitizer and UndefinedBehaviorSanitizer and runs
# dhtcore's suites and the module's and nginx integration tests under them
# (docs/sanitizers.md), then every suite of the normal build with ctest.
set -eu

cd "$(dirname "$0")/.."
JOBS=${JOBS:-$(nproc)}

./ci/install-deps.sh

echo "== build (RelWithDebInfo) =="
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build -j "$JOBS"

echo "== nginx with ASan+UBSan, from Debian's sources =="
./ci/nginx-asan.sh build-nginx-asan

echo "== sanitizer build of dhtcore and the module =="
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DDWRTC_SANITIZE=ON \
      -DDWRTC_BUILD_MODULE=ON \
      -DNGINX_SRC="$PWD/build-nginx-asan/src" \
      -DNGINX_BINARY="$PWD/build-nginx-asan/nginx/objs/nginx"
cmake --build build-asan -j "$JOBS"

echo "== dhtcore suites under ASan+UBSan =="
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build-asan --output-on-failure -j 1 \
          -LE 'module|integration|web|faults'

# Every nginx process of these tests writes its sanitizer reports to a file
# (tests/sanitize/run-checked.sh), and a test fails on any report it does
# not know. The browser tests (web) and the fault tests on network
# namespaces (faults: their figures are about timing) stay with the normal
# build.
echo "== module and nginx integration suites under ASan+UBSan =="
ctest --test-dir build-asan --output-on-failure -j 1 -L 'module|integration' \
      -LE web

echo "== all suites =="
ctest --test-dir build --output-on-failure -j 1

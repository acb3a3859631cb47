#!/bin/sh
# Runs every DWRTC test: installs what is missing, builds, runs the whole
# suite with ctest, then builds dhtcore again with AddressSanitizer and
# UndefinedBehaviorSanitizer and runs its suites under them.
set -eu

cd "$(dirname "$0")/.."
JOBS=${JOBS:-$(nproc)}

./ci/install-deps.sh

echo "== build (RelWithDebInfo) =="
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build -j "$JOBS"

echo "== sanitizer build of dhtcore =="
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DDWRTC_SANITIZE=ON \
      -DDWRTC_BUILD_MODULE=OFF
cmake --build build-asan -j "$JOBS"

echo "== dhtcore suites under ASan+UBSan =="
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build-asan --output-on-failure -j 1

echo "== all suites =="
ctest --test-dir build --output-on-failure -j 1

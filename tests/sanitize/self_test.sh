#!/bin/bash
# The sanitizer checks of the nginx tests can fail: run-checked.sh fails a
# run when a forked child of a sanitized process overflows a buffer, leaks
# or hits undefined behaviour (while the parent exits 0, as an nginx master
# does), and passes a clean one; check-reports.mjs knows a known leak only
# with exactly its stack.
#
# usage: self_test.sh SANITIZER_PROBE WORK_DIR

set -uo pipefail

probe=${1:?usage: $0 SANITIZER_PROBE WORK_DIR}
work=${2:?usage: $0 SANITIZER_PROBE WORK_DIR}
here=$(dirname "$(realpath "$0")")
rm -rf "$work"
mkdir -p "$work"
fails=0

expect() {   # OUTCOME(pass|fail) TEXT_IN_OUTPUT -- COMMAND...
    local want=$1 text=$2
    shift 3
    local out rc
    out=$("$@" 2>&1)
    rc=$?
    if { [ "$want" = pass ] && [ $rc -ne 0 ]; } \
            || { [ "$want" = fail ] && [ $rc -eq 0 ]; }; then
        echo "FAIL: expected $want: $*"
        echo "$out" | sed 's/^/    /'
        fails=$((fails + 1))
    elif [ -n "$text" ] && ! grep -q -- "$text" <<<"$out"; then
        echo "FAIL: output of $* lacks \"$text\""
        echo "$out" | sed 's/^/    /'
        fails=$((fails + 1))
    else
        echo "ok: $want: $* ${text:+(\"$text\")}"
    fi
}

run() {
    bash "$here/run-checked.sh" "$work/$1" "$probe" "$1"
}

expect pass "no sanitizer report" -- run clean
expect fail "heap-buffer-overflow" -- run overflow
expect fail "Direct leak of 64 byte" -- run leak
expect fail "__ubsan_handle_add_overflow" -- run ub

# The known leak of `nginx -t`, and the same allocation from the module.
cat > "$work/known.report" <<'REPORT'
=================================================================
==nginx==100==ERROR: LeakSanitizer: detected memory leaks

Direct leak of 1024 byte(s) in 1 object(s) allocated from:
    #0 0x7f27bbeb7ffd in __interceptor_posix_memalign ../../../../src/libsanitizer/asan/asan_malloc_linux.cpp:145
    #1 0x5610d633d4ba in ngx_memalign src/os/unix/ngx_alloc.c:57
    #2 0x5610d623d2a6 in ngx_create_pool src/core/ngx_palloc.c:23
    #3 0x5610d6232b6f in main src/core/nginx.c:253
    #4 0x7f27bae45249 in __libc_start_call_main ../sysdeps/nptl/libc_start_call_main.h:58

SUMMARY: AddressSanitizer: 1024 byte(s) leaked in 1 allocation(s).
REPORT
sed -e 's/in main src\/core\/nginx.c:253/in ngx_http_dwrtc_session_start ngx_http_dwrtc_session.c:99/' \
    "$work/known.report" > "$work/module.report"
expect pass "no unknown report" -- \
    node "$here/check-reports.mjs" "$here/known-reports" "$work/known.report"
expect fail "ngx_http_dwrtc_session_start" -- \
    node "$here/check-reports.mjs" "$here/known-reports" "$work/module.report"

if [ $fails -ne 0 ]; then
    echo "$fails check(s) failed"
    exit 1
fi
echo "all checks passed"

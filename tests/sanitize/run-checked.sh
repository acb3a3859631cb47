#!/bin/bash
# Runs a test under the sanitizers' report files and fails it if any
# sanitized process it started reported something.
#
# usage: run-checked.sh REPORT_DIR COMMAND [ARGS...]
#
# For nginx built with AddressSanitizer and UBSan (ci/nginx-asan.sh) and the
# module built with them: every nginx process (master, each forked worker,
# `nginx -t`, `nginx -s`) writes its reports, LeakSanitizer's at exit
# included, to a file of its own, REPORT_DIR/report.nginx.<pid>, not to the
# error log of a test node (which the harness would remove). The test
# fails, with the reports shown, when
#
#   - COMMAND fails;
#   - a report file holds a report check-reports.mjs does not know (the
#     known ones, each with its reason, are in known-reports; undefined
#     behaviour of nginx's own code that is known is in ubsan.supp);
#   - a node's error log holds a UBSan message, or says a process "exited
#     on signal" (a crash that no sanitizer caught, a SIGKILL included).
#
# Nodes' prefixes (tests/lib/nginx.mjs makes them in $TMPDIR) go to
# REPORT_DIR/tmp and are kept for those checks (DWRTC_KEEP_TMP); they are
# removed when the test passed, kept for reading when it failed.

set -uo pipefail

if [ $# -lt 2 ]; then
    echo "usage: $0 REPORT_DIR COMMAND [ARGS...]" >&2
    exit 2
fi
dir=$1
shift
here=$(dirname "$(realpath "$0")")

rm -rf "$dir"
mkdir -p "$dir/tmp"
# workers may run as another user than the test (nginx's default, nobody)
chmod 1777 "$dir" "$dir/tmp"

# Where reports go. gcc links ASan and UBSan as two runtimes; the report
# file of both is set from the log_path that comes last (UBSAN_OPTIONS'), so
# both get the same. UBSan's own one-line message still goes to stderr (a
# worker's is its error log): halt_on_error and abort_on_error make the
# process abort after it, and ASan then writes the abort, with the stack of
# the undefined behaviour, to the report file (handle_abort).
# handle_sigill: a trap gets a report with its stack too, as SIGSEGV does.
# exitcode=0: a leak found at exit is reported but leaves the exit status
# alone (`nginx -s quit` has a known one, and the test would fail on the
# status before this script reads the report); an ASan error still ends
# the process, with abort() (abort_on_error), so a worker's shows as a crash.
log="log_path=$dir/report:log_exe_name=1"
# DWRTC_ASAN_OPTIONS_EXTRA: more options for one test (see
# tests/integration/CMakeLists.txt).
export ASAN_OPTIONS="$log:detect_leaks=1:exitcode=0:abort_on_error=1:handle_abort=1:handle_sigill=1${DWRTC_ASAN_OPTIONS_EXTRA:+:$DWRTC_ASAN_OPTIONS_EXTRA}"
export UBSAN_OPTIONS="$log:print_stacktrace=1:report_error_type=1:halt_on_error=1:abort_on_error=1:suppressions=$here/ubsan.supp"
export TMPDIR=$dir/tmp
export DWRTC_KEEP_TMP=1

"$@"
rc=$?

failed=0
if [ $rc -ne 0 ]; then
    echo "run-checked: the test failed (exit status $rc)"
    failed=1
fi

mapfile -t reports < <(find "$dir" -maxdepth 1 -type f -name 'report.*' -size +0 | sort)
if [ ${#reports[@]} -gt 0 ]; then
    echo "run-checked: ${#reports[@]} sanitizer report file(s) in $dir"
    if ! node "$here/check-reports.mjs" "$here/known-reports" "${reports[@]}"; then
        failed=1
    fi
fi

ub=$(grep -H -A 12 'runtime error:' "$dir"/tmp/*/error.log 2>/dev/null)
if [ -n "$ub" ]; then
    echo "run-checked: UBSan messages in nodes' error logs:"
    echo "$ub"
    failed=1
fi

crashes=$(grep -H 'exited on signal' "$dir"/tmp/*/error.log 2>/dev/null)
if [ -n "$crashes" ]; then
    echo "run-checked: nginx processes died of a signal:"
    echo "$crashes"
    failed=1
fi

if [ $failed -ne 0 ]; then
    echo "run-checked: nodes' prefixes kept in $dir/tmp"
    exit 1
fi
rm -rf "$dir/tmp"
echo "run-checked: no sanitizer report, no crash"

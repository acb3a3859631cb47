#!/bin/bash
# The module exports exactly what nginx's loader needs and nothing of
# dhtcore, C++ or the libraries it links (module/ngx_http_dwrtc_module.map).
#
# usage: module_symbols.sh MODULE_SO
set -euo pipefail

so=$1
want=$'ngx_http_dwrtc_module\nngx_module_names\nngx_module_order\nngx_modules'
got=$(nm -D --defined-only "$so" | awk '{ print $3 }' | sed 's/@.*//' | sort -u)

if [ "$got" != "$want" ]; then
    echo "module_symbols: $so exports $(printf '%s\n' "$got" | wc -l) symbols," \
         "expected the 4 that nginx's loader reads:" >&2
    diff <(printf '%s\n' "$want") <(printf '%s\n' "$got") | head -40 >&2 || true
    exit 1
fi
echo "module_symbols: $so exports only: $(printf '%s ' $got)"
echo "1 passed, 0 failed"

#!/bin/bash
# Configures a copy of an nginx source tree for building the DWRTC module.
#
# usage: nginx-configure.sh NGINX_SRC BUILD_DIR MODULE_DIR [configure args...]
#
# Copies NGINX_SRC to BUILD_DIR and runs nginx's configure there with
# --add-dynamic-module=MODULE_DIR. A Debian nginx-dev tree
# (/usr/share/nginx/src) carries conf_flags, the flags the packaged nginx was
# built with; they make the module binary-compatible with /usr/sbin/nginx.
# Any other tree is configured with --with-compat plus the extra arguments.
# DWRTC_CORE_INCLUDE and DWRTC_CORE_LIBS must be set (module/config).

set -euo pipefail

if [ $# -lt 3 ]; then
    echo "usage: $0 NGINX_SRC BUILD_DIR MODULE_DIR [configure args...]" >&2
    exit 2
fi

src=$1
build=$2
module=$3
shift 3

if [ -x "$src/configure" ]; then
    configure=./configure
elif [ -x "$src/auto/configure" ]; then
    configure=./auto/configure
else
    echo "$0: $src is not an nginx source tree (no configure)" >&2
    exit 1
fi

rm -rf "$build"
mkdir -p "$build"
cp -a "$src"/. "$build"/
cd "$build"

flags=()
if [ -f conf_flags ]; then
    # shellcheck disable=SC1091
    . ./conf_flags
    flags=("${NGX_CONF_FLAGS[@]}")
else
    flags=(--with-compat)
fi

echo "nginx-configure.sh: $configure ${flags[*]} $* --add-dynamic-module=$module"
"$configure" "${flags[@]}" "$@" --add-dynamic-module="$module" > configure.log 2>&1 || {
    cat configure.log >&2
    exit 1
}
tail -n 3 configure.log

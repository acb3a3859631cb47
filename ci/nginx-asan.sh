#!/bin/bash
# Builds nginx itself with AddressSanitizer and UndefinedBehaviorSanitizer,
# from Debian's own source package of the installed nginx, so the DWRTC
# module can be built with the same sanitizers and tested inside it.
#
# usage: ci/nginx-asan.sh [OUT]          (default OUT: build-nginx-asan/)
#
# What it does, each step skipped when its result is already there:
#
#   1. adds Debian's source repositories (deb-src) to apt, in a file of its
#      own (/etc/apt/sources.list.d/dwrtc-deb-src.sources), and runs
#      apt-get update once if apt knows no nginx source package;
#   2. `apt-get source` of nginx: the installed package's version when the
#      mirror still has it, else the newest source of the same upstream
#      release (the security archive drops a version when the next comes);
#      Debian's patches are applied by dpkg-source;
#   3. configures it with the arguments of the packaged nginx (`nginx -V`),
#      minus the dynamic modules (GeoIP, image filter, Perl, XSLT, mail,
#      stream: they need libraries or are never loaded here) and with the
#      compiler flags replaced by -O1 and the sanitizers, then `make`.
#
# Result:
#   OUT/src               the patched source tree, with a conf_flags file in
#                         the form Debian's nginx-dev ships: build the module
#                         against it with -DNGINX_SRC=OUT/src and its
#                         signature and compiler flags match the binary
#   OUT/nginx/objs/nginx  the sanitized nginx (-DNGINX_BINARY=...)
#
# A second run with the same nginx version and flags only checks the stamp
# (OUT/stamp); remove OUT to build again. Takes about a minute on 2 cores.
set -euo pipefail

cd "$(dirname "$0")/.."
OUT=$(realpath -m "${1:-build-nginx-asan}")
JOBS=${JOBS:-$(nproc)}
SYSTEM_NGINX=${SYSTEM_NGINX:-/usr/sbin/nginx}

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo

# The sanitizers of dhtcore's DWRTC_SANITIZE build (CMakeLists.txt), with
# UBSan left recoverable in nginx's own code: a report is written and the
# process goes on, so one run collects every report, and a known report of
# nginx itself can be suppressed by name (tests/sanitize/ubsan.supp).
# _FORTIFY_SOURCE is dropped: its checked string functions hide accesses
# from ASan's interceptors.
CC_OPT="-g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fPIC"
LD_OPT="-fsanitize=address,undefined -fPIC -Wl,-z,relro -Wl,-z,now"

if [ ! -x "$SYSTEM_NGINX" ]; then
    echo "$0: $SYSTEM_NGINX is missing (Debian: apt-get install nginx)" >&2
    exit 1
fi
installed=$(dpkg-query -W -f='${Version}' nginx)
upstream=${installed%-*}

# Debian's configure arguments, from the packaged binary.
args=$("$SYSTEM_NGINX" -V 2>&1 | sed -n 's/^configure arguments: //p')
eval "set -- $args"
flags=()
for a in "$@"; do
    case $a in
        --with-cc-opt=* | --with-ld-opt=*) ;;           # replaced below
        --with-*=dynamic | --add-dynamic-module=*) ;;    # not built here
        --add-module=*) ;;                               # third-party
        *) flags+=("$a") ;;
    esac
done
flags+=("--with-cc-opt=$CC_OPT" "--with-ld-opt=$LD_OPT")

stamp_text="nginx $installed (upstream $upstream)
$(printf '%s\n' "${flags[@]}")"
if [ -x "$OUT/nginx/objs/nginx" ] && [ -f "$OUT/src/conf_flags" ] \
        && [ "$(cat "$OUT/stamp" 2>/dev/null)" = "$stamp_text" ]; then
    echo "nginx-asan: $OUT/nginx/objs/nginx is up to date ($(head -n 1 "$OUT/stamp"))"
    exit 0
fi

# 1. deb-src entries, of the mirrors and suites the system's own deb
#    entries use (their stanzas, as deb-src): no host name of our own.
srclist=/etc/apt/sources.list.d/dwrtc-deb-src.sources
stanzas=$(
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -r "$f" ] && [ "$f" != "$srclist" ] || continue
        awk 'BEGIN { RS = ""; FS = "\n" }
             {
                 deb = 0; out = ""
                 for (i = 1; i <= NF; i++) {
                     line = $i
                     if (line ~ /^Types:/) {
                         if (line ~ /[ \t]deb([ \t]|$)/) deb = 1
                         line = "Types: deb-src"
                     }
                     out = out line "\n"
                 }
                 if (deb) printf "%s\n", out
             }' "$f"
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -r "$f" ] || continue
        # one-line entries as stanzas: deb [opts] URI SUITE COMPONENTS...
        sed -n 's/^[[:space:]]*deb[[:space:]]\{1,\}\(\[[^]]*\][[:space:]]\{1,\}\)\{0,1\}\([^[:space:]]*\)[[:space:]]\{1,\}\([^[:space:]]*\)[[:space:]]*\(.*\)$/Types: deb-src\nURIs: \2\nSuites: \3\nComponents: \4\n/p' "$f"
    done
)
if [ -z "$stanzas" ]; then
    echo "nginx-asan: no deb entries in apt's sources to take deb-src entries from" >&2
    exit 1
fi
want="# Written by DWRTC's ci/nginx-asan.sh: Debian's source packages, for
# apt-get source nginx (the sanitizer build of nginx), from the mirrors
# of this system's own entries. Safe to remove.
$stanzas"
if [ "$(cat "$srclist" 2>/dev/null)" != "$want" ]; then
    echo "nginx-asan: writing $srclist"
    printf '%s\n' "$want" | $SUDO tee "$srclist" >/dev/null
    $SUDO apt-get update -qq
elif ! apt-cache showsrc nginx 2>/dev/null | grep -q '^Version:'; then
    $SUDO apt-get update -qq
fi

# 2. The source package: the installed version, else the same upstream.
versions=$(apt-cache showsrc nginx | sed -n 's/^Version: //p' | sort -u \
           | while read -r v; do
                 [ "${v%-*}" = "$upstream" ] && echo "$v"
             done | sort -r -V)
candidates=$installed
for v in $versions; do
    [ "$v" = "$installed" ] || candidates="$candidates $v"
done

dl=$OUT/dl
rm -rf "$dl" "$OUT/src" "$OUT/nginx"
mkdir -p "$dl"
got=""
for v in $candidates; do
    echo "nginx-asan: apt-get source nginx=$v"
    # (as root apt warns that _apt cannot write the directory: harmless)
    (cd "$dl" && apt-get source --download-only -qq "nginx=$v") 2>&1 \
        | grep -v 'unsandboxed as root' || true
    if [ -f "$dl/nginx_$v.dsc" ]; then
        got=$v
        break
    fi
    echo "nginx-asan: nginx $v is not on the mirror"
done
if [ -z "$got" ]; then
    echo "$0: no source package of nginx $upstream on the mirror" \
         "(apt-cache showsrc nginx lists: ${versions:-none})" >&2
    exit 1
fi
[ "$got" = "$installed" ] || \
    echo "nginx-asan: building nginx $got (installed: $installed, same upstream)"
# (apt has checked the files against the signed index; dpkg-source cannot
# check the .dsc's own signature without debian-keyring, and says so)
dpkg-source -x "$dl/nginx_$got.dsc" "$OUT/src" > "$dl/dpkg-source.log" 2>&1 || {
    cat "$dl/dpkg-source.log" >&2
    exit 1
}

# The configure arguments, as Debian's nginx-dev writes them: the module's
# build (module/nginx-configure.sh) reads this file.
{
    echo "# nginx $got from Debian's source package, for the sanitizer build"
    echo "# (written by ci/nginx-asan.sh)"
    printf 'NGX_CONF_FLAGS=('
    printf ' %q' "${flags[@]}"
    printf ' )\n'
} > "$OUT/src/conf_flags"

# 3. Configure and build a copy (the source tree stays clean for the
# module's build, which copies it).
cp -a "$OUT/src" "$OUT/nginx"
cd "$OUT/nginx"
echo "nginx-asan: configure ${flags[*]}"
./configure "${flags[@]}" > configure.log 2>&1 || {
    cat configure.log >&2
    exit 1
}
echo "nginx-asan: make (-j $JOBS)"
start=$(date +%s)
make -j "$JOBS" -f objs/Makefile > make.log 2>&1 || {
    tail -n 50 make.log >&2
    exit 1
}
echo "nginx-asan: built $OUT/nginx/objs/nginx in $(( $(date +%s) - start )) s"
"$OUT/nginx/objs/nginx" -v

printf '%s\n' "$stamp_text" > "$OUT/stamp"

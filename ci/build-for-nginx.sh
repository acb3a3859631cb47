#!/bin/bash
# Builds the DWRTC module for an nginx that is not Debian's packaged one:
# nginx.org's packages, the official container image, a self-built nginx.
# nginx's documented way to build a dynamic module for a binary you did not
# build: the same version's source, ./configure --with-compat
# --add-dynamic-module=..., make modules.
#
# usage: ci/build-for-nginx.sh [options] VERSION | SOURCE_DIR | TARBALL
#        ci/build-for-nginx.sh [options] --nginx BINARY [SOURCE_DIR | TARBALL]
#
#   VERSION      e.g. 1.26.3: the source is taken from the Debian mirror
#                apt already uses when one of its suites has that version
#                (the orig tarball, checked against the signed index); any
#                other version: download it from nginx.org and pass the file
#   SOURCE_DIR   an unpacked nginx source tree (a release tarball's, or a
#                git checkout with auto/configure)
#   TARBALL      nginx-VERSION.tar.gz as nginx.org publishes it
#   --nginx BIN  the nginx binary the module is for: its version (and, when
#                no source is given, the source) come from `BIN -V`; it must
#                be built --with-compat; the module is loaded into it with
#                `BIN -t` at the end
#   --work DIR   where sources, the build and the modules go (default:
#                $DWRTC_FOR_NGINX_WORK, else build/for-nginx in the repository)
#   -- ARGS      more arguments for nginx's configure (after --with-compat)
#
# A source tree with a conf_flags file (NGX_CONF_FLAGS=( ... ), the form of
# Debian's nginx-dev) is configured with those arguments instead of
# --with-compat: the way to a module for an nginx built without it.
#
# Progress goes to stderr; the last line on stdout is the module's path,
# DIR/nginx-VERSION/ngx_http_dwrtc_module.so (DIR/nginx-VERSION-flags-HASH/
# for a conf_flags tree), so that
#
#   so=$(ci/build-for-nginx.sh --nginx /usr/sbin/nginx)
#
# works. dhtcore is built once (DIR/cmake, the project's CMake build with
# -DNGINX_SRC and -DNGINX_CONFIGURE_ARGS); each nginx version then only
# configures nginx and compiles the module. A module that is newer than the
# project's sources is not built again. Needs what `ci/install-deps.sh
# --build` installs (nginx's configure also wants PCRE and zlib headers).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
WORK=${DWRTC_FOR_NGINX_WORK:-$REPO/build/for-nginx}
JOBS=${JOBS:-$(nproc)}
SUITES=${DWRTC_DEBIAN_SUITES:-"bookworm trixie forky sid"}
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

say() { echo "build-for-nginx: $*" >&2; }
die() { echo "build-for-nginx: error: $*" >&2; exit 1; }
usage() { sed -n '9,24s/^# \{0,1\}//p' "$0" >&2; exit 2; }

binary=""
what=""
extra=()
while [ $# -gt 0 ]; do
    case $1 in
        --nginx) binary=${2:?--nginx needs a path}; shift 2 ;;
        --nginx=*) binary=${1#*=}; shift ;;
        --work) WORK=${2:?--work needs a directory}; shift 2 ;;
        --work=*) WORK=${1#*=}; shift ;;
        -h | --help) usage ;;
        --) shift; extra=("$@"); break ;;
        -*) echo "build-for-nginx: unknown option $1" >&2; usage ;;
        *) [ -z "$what" ] || usage; what=$1; shift ;;
    esac
done
[ -n "$what" ] || [ -n "$binary" ] || usage
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)

# --- the binary: version and configure arguments ----------------------------

want=""
if [ -n "$binary" ]; then
    [ -x "$binary" ] || die "$binary is not an executable"
    info=$("$binary" -V 2>&1) || die "$binary -V failed: $info"
    want=$(sed -n 's|^nginx version: [^/]*/\([0-9.]*\).*|\1|p' <<<"$info")
    [ -n "$want" ] || die "cannot read the version from \`$binary -V\`: $info"
    args=$(sed -n 's/^configure arguments: //p' <<<"$info")
    say "$binary is nginx $want"
    # Without --with-compat only the binary's own arguments make a module
    # it loads: a tree with them in conf_flags (nginx-configure.sh reads
    # it, as Debian's nginx-dev ships it) is taken, nothing else.
    case " $args " in
        *" --with-compat "*) ;;
        *)
            [ -f "$what/conf_flags" ] || die "$binary was built without --with-compat (see \`$binary -V\`).
A module loads into such an nginx only when it is built from the same
version's source with the same configure arguments as the binary. Either
rebuild nginx with --with-compat (nginx.org's and Debian's packages have
it), or put the binary's configure arguments (without --add-module,
--add-dynamic-module and --with-...=dynamic) into a file conf_flags at the
top of a copy of nginx $want's source, as Debian's nginx-dev does:
    NGX_CONF_FLAGS=( --with-http_ssl_module ... )
and pass that tree: $0 --nginx $binary /path/to/nginx-$want"
            say "$binary was built without --with-compat: configuring with $what/conf_flags"
            ;;
    esac
    [ -n "$what" ] || what=$want
fi

# --- the source tree ---------------------------------------------------------

tree_version() {   # TREE: the version in its src/core/nginx.h
    sed -n 's/^#define NGINX_VERSION *"\([0-9.]*\)".*/\1/p' "$1/src/core/nginx.h"
}

unpack() {   # TARBALL: unpacks into WORK/src/, prints the tree
    local top
    top=$(tar -tzf "$1" | sed -n 1p) || die "$1 is not a tar.gz"
    top=${top%%/*}
    case $top in nginx-[0-9]*) ;; *) die "$1 does not hold an nginx-VERSION/ tree" ;; esac
    mkdir -p "$WORK/src"
    if [ ! -f "$WORK/src/$top/src/core/nginx.h" ] \
            || [ "$1" -nt "$WORK/src/$top/src/core/nginx.h" ]; then
        rm -rf "${WORK:?}/src/$top"
        tar -xzf "$1" -C "$WORK/src"
        touch "$WORK/src/$top/src/core/nginx.h"
    fi
    echo "$WORK/src/$top"
}

# The orig tarball of nginx VERSION from a suite of the Debian mirror, its
# sha256 checked against the Sources index, whose own sha256 is checked
# against the suite's InRelease, signed by a key of debian-archive-keyring.
from_debian() {   # VERSION: prints the tarball, or nothing
    local v=$1 mirror dir tmp s line sha file
    mirror=$("$REPO/ci/lib/debian-mirror.sh") || return 0
    dir=$WORK/dl
    mkdir -p "$dir"
    tmp=$(mktemp -d "$WORK/dl/index.XXXXXX")
    local read=""
    for s in $SUITES; do
        curl -fsS -o "$tmp/InRelease" "$mirror/dists/$s/InRelease" 2>/dev/null || continue
        read="$read $s"
        if ! gpgv --keyring "$KEYRING" "$tmp/InRelease" >/dev/null 2>&1; then
            say "$s: InRelease does not verify with $KEYRING, skipped"
            continue
        fi
        line=$(awk '/^SHA256:/ { on = 1; next } /^[A-Za-z]/ { on = 0 }
                    on && $3 == "main/source/Sources.xz" { print $1; exit }' \
                   "$tmp/InRelease")
        [ -n "$line" ] || continue
        curl -fsS -o "$tmp/Sources.xz" "$mirror/dists/$s/main/source/Sources.xz" \
            || continue
        [ "$(sha256sum < "$tmp/Sources.xz" | cut -d' ' -f1)" = "$line" ] || {
            say "$s: Sources.xz does not match its InRelease, skipped"
            continue
        }
        # "sha size nginx_V.orig.tar.gz" of the nginx source package
        read -r sha _ file < <(xzcat "$tmp/Sources.xz" | awk -v f="nginx_$v.orig.tar.gz" '
            BEGIN { RS = ""; FS = "\n" }
            $1 == "Package: nginx" {
                on = 0
                for (i = 2; i <= NF; i++) {
                    if ($i ~ /^Checksums-Sha256:/) { on = 1; continue }
                    if ($i !~ /^ /) on = 0
                    split($i, a, " ")
                    if (on && a[3] == f) { print a[1], a[2], a[3]; exit }
                }
            }') || true
        [ -n "${file:-}" ] || continue
        say "nginx $v is in Debian's $s: $mirror/pool/main/n/nginx/$file"
        if curl -fsS -o "$tmp/$file" "$mirror/pool/main/n/nginx/$file" \
                && [ "$(sha256sum < "$tmp/$file" | cut -d' ' -f1)" = "$sha" ]; then
            mv "$tmp/$file" "$dir/nginx-$v.tar.gz"
            echo "$sha  nginx-$v.tar.gz" > "$dir/nginx-$v.tar.gz.sha256"
            rm -rf "$tmp"
            echo "$dir/nginx-$v.tar.gz"
            return 0
        fi
        say "$s: $file could not be downloaded or does not match the index"
        file=""
    done
    rm -rf "$tmp"
    [ -n "$read" ] || say "no suite's index could be read from $mirror (no network?)"
}

if [ -d "$what" ]; then
    tree=$(cd "$what" && pwd)
elif [ -f "$what" ]; then
    tree=$(unpack "$what")
elif [[ $what =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
    tarball=$WORK/dl/nginx-$what.tar.gz
    if [ -f "$tarball" ] && [ -f "$tarball.sha256" ] \
            && (cd "$WORK/dl" && sha256sum --quiet -c "nginx-$what.tar.gz.sha256"); then
        say "nginx $what: $tarball (downloaded before)"
    else
        say "nginx $what: looking in the Debian mirror's source indexes ($SUITES)"
        tarball=$(from_debian "$what")
        [ -n "$tarball" ] || die "nginx $what's source is not on the Debian mirror.
Download it from nginx.org and pass the file (or its unpacked tree):
    curl -fO https://nginx.org/download/nginx-$what.tar.gz
    curl -fO https://nginx.org/download/nginx-$what.tar.gz.asc   # gpg --verify
    $0 ${binary:+--nginx $binary }nginx-$what.tar.gz"
    fi
    tree=$(unpack "$tarball")
else
    die "$what is not a version (1.26.3), an nginx source tree or a tarball"
fi

[ -f "$tree/src/core/nginx.h" ] || die "$tree is not an nginx source tree"
version=$(tree_version "$tree")
[ -n "$version" ] || die "no NGINX_VERSION in $tree/src/core/nginx.h"
if [ -n "$want" ] && [ "$version" != "$want" ]; then
    die "$tree is nginx $version, but $binary is nginx $want: a module loads
only into the version it was built for; use nginx $want's source"
fi
say "nginx $version source: $tree"

# --- dhtcore and the module ----------------------------------------------------

out=$WORK/nginx-$version
how="--with-compat ${extra[*]}"
if [ -f "$tree/conf_flags" ]; then
    how="$tree/conf_flags ${extra[*]}"
    out=$out-flags-$(sha256sum < "$tree/conf_flags" | cut -c1-8)
fi
so=$out/ngx_http_dwrtc_module.so
stamp="$tree
$how"
mkdir -p "$out"
newer=""
if [ -f "$so" ] && [ "$(cat "$out/stamp" 2>/dev/null)" = "$stamp" ]; then
    newer=$(find "$REPO/module" "$REPO/dhtcore" "$REPO/CMakeLists.txt" "$0" \
                 "$tree/src/core/nginx.h" -newer "$so" -print -quit)
fi
if [ -f "$so" ] && [ "$(cat "$out/stamp" 2>/dev/null)" = "$stamp" ] && [ -z "$newer" ]; then
    say "$so is up to date"
else
    # One CMake build (one dhtcore) serves every version, one at a time.
    exec 9> "$WORK/cmake.lock"
    flock 9
    start=$(date +%s)
    # a build made from another checkout (a cache kept across clones)
    if ! grep -qxF "CMAKE_HOME_DIRECTORY:INTERNAL=$REPO" "$WORK/cmake/CMakeCache.txt" 2>/dev/null; then
        rm -rf "${WORK:?}/cmake"
    fi
    say "configuring (dhtcore in $WORK/cmake, nginx $version $how)"
    cmake -S "$REPO" -B "$WORK/cmake" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
          -DDWRTC_BUILD_TESTS=OFF -DDWRTC_SANITIZE=OFF \
          -DNGINX_SRC="$tree" -DNGINX_CONFIGURE_ARGS="${extra[*]}" \
          > "$out/cmake.log" 2>&1 || { cat "$out/cmake.log" >&2; die "cmake failed"; }
    say "building (make modules; nginx's own -Werror applies to the module)"
    cmake --build "$WORK/cmake" --target ngx_http_dwrtc_module -j "$JOBS" \
          > "$out/build.log" 2>&1 || { tail -n 60 "$out/build.log" >&2; die "build failed (log: $out/build.log)"; }
    if grep -E '^[^ ]+:[0-9]+:([0-9]+:)? warning:' "$out/build.log" >&2; then
        say "the build above gave warnings (log: $out/build.log)"
    fi
    cp "$WORK/cmake/module/ngx_http_dwrtc_module.so" "$so.tmp"
    mv "$so.tmp" "$so"
    printf '%s\n' "$stamp" > "$out/stamp"
    flock -u 9
    say "built for nginx $version in $(( $(date +%s) - start )) s"
fi

# --- the module loads into the binary -------------------------------------------

if [ -n "$binary" ]; then
    prefix=$(mktemp -d "${TMPDIR:-/tmp}/dwrtc-build-for-nginx.XXXXXX")
    trap 'rm -rf "$prefix"' EXIT
    cat > "$prefix/nginx.conf" <<CONF
load_module $so;
error_log $prefix/error.log;
pid $prefix/nginx.pid;
events { }
CONF
    if ! check=$("$binary" -t -p "$prefix" -c "$prefix/nginx.conf" -e "$prefix/error.log" 2>&1); then
        echo "$check" >&2
        die "the module does not load into $binary (see docs/troubleshooting.md)"
    fi
    say "$binary -t loads it: ok"
fi

echo "$so"

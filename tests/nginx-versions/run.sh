#!/bin/bash
# The module for nginx versions other than Debian's packaged one, as an
# operator of nginx.org's packages (or the official image, or a self-built
# nginx) makes it with ci/build-for-nginx.sh.
#
# usage: tests/nginx-versions/run.sh REPO CACHE [DEBIAN_MODULE]
#
# For each nginx version whose source the Debian mirror has (Debian's orig
# tarballs are nginx.org's release tarballs: 1.22.1 in bookworm, 1.26.3 in
# trixie):
#
#   1. ci/build-for-nginx.sh takes the tarball from the mirror (checked
#      against the signed index) and builds the module --with-compat;
#   2. an nginx binary is built from the same tarball the way nginx.org
#      builds its packages and its container image (--with-compat and their
#      module set), into CACHE/nginx-VERSION/;
#   3. ci/build-for-nginx.sh --nginx BINARY loads the module into it
#      (nginx -t), and two nodes of that binary relay messages both ways
#      (relay.test.mjs, on tests/lib/nginx.mjs and tests/lib/client.mjs).
#
# Then the mistakes, each with nginx's own message at nginx -t: a module
# for 1.22.1 in nginx 1.26.3 ("version 1022001 instead of 1026003"), a
# --with-compat module in an nginx built without --with-compat ("is not
# binary compatible", and ci/build-for-nginx.sh refuses such a binary, but
# builds one that loads from a tree with the binary's arguments in
# conf_flags), and a source of another version than the binary's. DEBIAN_MODULE, the module
# built against Debian's nginx-dev (Debian's flags include --with-compat),
# is loaded into the nginx.org-style 1.22.1 too.
#
# DWRTC_NGINX_VERSIONS="1.22.1 /src/nginx-1.31.4 nginx-1.30.4.tar.gz" runs
# the same for other versions (oldest first): versions the Debian mirror
# has, source trees or tarballs (docs/nginx-versions.md).
#
# Last, the README's commands for any other nginx (the ```sh blocks marked
# <!-- nginx-versions-step -->) run as written.
#
# Everything built is kept in CACHE (tarballs, nginx binaries, dhtcore, the
# modules); a second run only rebuilds what changed. Each part says how
# long it took.
set -euo pipefail

REPO=$(cd "${1:?usage: $0 REPO CACHE [DEBIAN_MODULE]}" && pwd)
mkdir -p "${2:?usage: $0 REPO CACHE [DEBIAN_MODULE]}"
CACHE=$(cd "$2" && pwd)
DEBIAN_MODULE=${3:-}
JOBS=${JOBS:-$(nproc)}
NODE=${NODE:-node}
# versions, source trees or tarballs, oldest first
VERSIONS=${DWRTC_NGINX_VERSIONS:-"1.22.1 1.26.3"}
BUILD=("$REPO/ci/build-for-nginx.sh" --work "$CACHE/for-nginx")

t0=$(date +%s)
part_start=$t0
part() {   # ends the part that ran since the last call
    local now
    now=$(date +%s)
    echo "== nginx-versions: $1: $(( now - part_start )) s"
    part_start=$now
}
fail() { echo "FAIL: $*" >&2; exit 1; }

# nginx.org's configure arguments (its packages' and its image's `nginx -V`),
# with every path in the scratch prefix and no user or group.
nginx_org_flags() {   # VERSION
    local flags=(--with-compat --with-file-aio --with-threads
        --with-http_addition_module --with-http_auth_request_module
        --with-http_dav_module --with-http_flv_module
        --with-http_gunzip_module --with-http_gzip_static_module
        --with-http_mp4_module --with-http_random_index_module
        --with-http_realip_module --with-http_secure_link_module
        --with-http_slice_module --with-http_ssl_module
        --with-http_stub_status_module --with-http_sub_module
        --with-http_v2_module
        --with-mail --with-mail_ssl_module --with-stream
        --with-stream_realip_module --with-stream_ssl_module
        --with-stream_ssl_preread_module
        "--with-cc-opt=-g -O2 -fstack-protector-strong -Wformat -Werror=format-security -Wp,-D_FORTIFY_SOURCE=2 -fPIC"
        "--with-ld-opt=-Wl,-z,relro -Wl,-z,now -Wl,--as-needed -pie")
    # HTTP/3 came with 1.25.0
    if [ "$(printf '%s\n' 1.25.0 "$1" | sort -V | head -n 1)" = 1.25.0 ]; then
        flags+=(--with-http_v3_module)
    fi
    printf '%s\n' "${flags[@]}"
}

# Builds nginx VERSION from TREE with FLAGS... into DIR (kept while the
# flags and the tree are the same); the binary is DIR/objs/nginx.
build_nginx() {   # TREE DIR FLAGS...
    local tree=$1 dir=$2
    shift 2
    local stamp
    stamp=$(printf '%s\n' "$(sha256sum "$tree/src/core/nginx.h" | cut -d' ' -f1) $tree" "$@")
    if [ -x "$dir/objs/nginx" ] && [ "$(cat "$dir/stamp" 2>/dev/null)" = "$stamp" ]; then
        echo "$dir/objs/nginx is up to date"
        return
    fi
    rm -rf "$dir"
    cp -a "$tree" "$dir"
    # a release tarball has ./configure, a git checkout auto/configure
    local configure=./configure
    [ -x "$dir/configure" ] || configure=./auto/configure
    (cd "$dir" && $configure --prefix="$dir/prefix" "$@" > configure.log 2>&1) || {
        cat "$dir/configure.log" >&2
        fail "nginx's configure in $dir"
    }
    make -C "$dir" -j "$JOBS" > "$dir/make.log" 2>&1 || {
        tail -n 40 "$dir/make.log" >&2
        fail "building nginx in $dir"
    }
    printf '%s\n' "$stamp" > "$dir/stamp"
}

# nginx -t with only a load_module line: prints nginx's output, returns its
# status.
load_test() {   # NGINX MODULE
    local prefix status=0
    prefix=$(mktemp -d "${TMPDIR:-/tmp}/dwrtc-nginx-versions.XXXXXX")
    printf 'load_module %s;\nerror_log %s/error.log;\npid %s/nginx.pid;\nevents { }\n' \
        "$2" "$prefix" "$prefix" > "$prefix/nginx.conf"
    "$1" -t -p "$prefix" -c "$prefix/nginx.conf" -e "$prefix/error.log" 2>&1 || status=$?
    rm -rf "$prefix"
    return $status
}

expect_refused() {   # WHAT EXPECTED_REGEX NGINX MODULE
    local out
    if out=$(load_test "$3" "$4"); then
        echo "$out" >&2
        fail "$1: nginx -t passed"
    fi
    echo "$out"
    grep -Eq "$2" <<<"$out" || fail "$1: nginx -t did not say /$2/"
    echo "ok: $1"
}

declare -A so binary tree
done_versions=()
for item in $VERSIONS; do
    echo "== nginx $item"
    module=$("${BUILD[@]}" "$item")
    v=$(basename "$(dirname "$module")")     # WORK/nginx-VERSION/...so
    v=${v#nginx-}
    so[$v]=$module
    tree[$v]=$CACHE/for-nginx/src/nginx-$v
    [ -d "$item" ] && tree[$v]=$(cd "$item" && pwd)
    done_versions+=("$v")
    part "module for nginx $v (ci/build-for-nginx.sh $item)"

    mapfile -t flags < <(nginx_org_flags "$v")
    build_nginx "${tree[$v]}" "$CACHE/nginx-$v" "${flags[@]}"
    binary[$v]=$CACHE/nginx-$v/objs/nginx
    "${binary[$v]}" -V 2>&1 | sed -n '1p;$p'
    part "nginx $v built as nginx.org builds it"

    # what an operator runs: the version and the source from the binary
    got=$("${BUILD[@]}" --nginx "${binary[$v]}" "$item")
    [ "$got" = "${so[$v]}" ] || fail "--nginx built $got, not ${so[$v]}"
    DWRTC_NGINX=${binary[$v]} DWRTC_MODULE=${so[$v]} DWRTC_REPO=$REPO \
        "$NODE" --test --test-reporter=spec "$REPO/tests/nginx-versions/relay.test.mjs"
    part "nginx $v loads the module, two nodes relay both ways"
done

echo "== mistakes, as nginx -t reports them"
first=${done_versions[0]}
last=${done_versions[-1]}
vnum() { awk -F. '{ printf "%d%03d%03d", $1, $2, $3 }' <<<"$1"; }
if [ "$first" != "$last" ]; then
    expect_refused "a module for nginx $first in nginx $last" \
        "\[emerg\] module \".*ngx_http_dwrtc_module.so\" version $(vnum "$first") instead of $(vnum "$last")" \
        "${binary[$last]}" "${so[$first]}"
    if out=$("${BUILD[@]}" --nginx "${binary[$last]}" "${tree[$first]}" 2>&1); then
        echo "$out" >&2
        fail "ci/build-for-nginx.sh built nginx $first's source for nginx $last"
    fi
    grep -q "is nginx $first, but .* is nginx $last" <<<"$out" \
        || { echo "$out" >&2; fail "ci/build-for-nginx.sh did not name both versions"; }
    echo "ok: ci/build-for-nginx.sh refuses nginx $first's source for nginx $last"
fi

# nginx built with configure's defaults, as one builds it by hand
build_nginx "${tree[$first]}" "$CACHE/nginx-$first-plain"
plain=$CACHE/nginx-$first-plain/objs/nginx
part "nginx $first built without --with-compat"
expect_refused "a --with-compat module in nginx $first built without it" \
    "\[emerg\] module \".*ngx_http_dwrtc_module.so\" is not binary compatible" \
    "$plain" "${so[$first]}"
if out=$("${BUILD[@]}" --nginx "$plain" 2>&1); then
    echo "$out" >&2
    fail "ci/build-for-nginx.sh took an nginx built without --with-compat"
fi
grep -q "was built without --with-compat" <<<"$out" \
    || { echo "$out" >&2; fail "ci/build-for-nginx.sh did not say why it refused"; }
echo "ok: ci/build-for-nginx.sh refuses an nginx built without --with-compat"
# the way out it names: the binary's configure arguments (none here) in
# conf_flags of a copy of the source
flagged=$CACHE/nginx-$first-plain-src
if [ ! -f "$flagged/conf_flags" ]; then
    rm -rf "$flagged"
    cp -a "${tree[$first]}" "$flagged"
    echo 'NGX_CONF_FLAGS=( )' > "$flagged/conf_flags"
fi
"${BUILD[@]}" --nginx "$plain" "$flagged" > /dev/null
echo "ok: a module built with its configure arguments (conf_flags) loads into it"

if [ -n "$DEBIAN_MODULE" ] && [ -n "${binary[1.22.1]:-}" ]; then
    out=$(load_test "${binary[1.22.1]}" "$DEBIAN_MODULE") || {
        echo "$out" >&2
        fail "the module built for Debian's nginx 1.22.1 does not load into nginx.org's 1.22.1"
    }
    echo "ok: the module built for Debian's nginx 1.22.1 loads into nginx.org's 1.22.1 too"
fi
part "mistakes"

# The README's commands for any other nginx: every ```sh block right after a
# `<!-- nginx-versions-step -->` line runs as written, with bash -e in the
# repository (their builds go to this test's cache).
steps=$(awk '/^<!-- nginx-versions-step -->$/ { mark = 1; next }
             mark && /^```sh$/ { on = 1; mark = 0; n++; next }
             on && /^```$/ { on = 0; next }
             on { print n "\t" $0 }
             !on && !/^[[:space:]]*$/ { mark = 0 }' "$REPO/README.md")
if [ -z "$steps" ]; then
    echo "README.md has no block marked <!-- nginx-versions-step -->: none run"
else
    # shellcheck disable=SC2013  # block numbers, one word each
    for n in $(cut -f1 <<<"$steps" | sort -un); do
        block=$(awk -F'\t' -v n="$n" '$1 == n { sub(/^[^\t]*\t/, ""); print }' <<<"$steps")
        echo "== README step $n:"
        echo "$block"
        (cd "$REPO" && DWRTC_FOR_NGINX_WORK=$CACHE/for-nginx bash -e -c "$block") \
            || fail "README step $n"
    done
    part "the README's commands for any other nginx"
fi
echo "== nginx-versions: all parts: $(( $(date +%s) - t0 )) s"

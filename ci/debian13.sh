#!/bin/bash
# The Debian 13 (trixie) job: what an operator on a fresh Debian 13 does,
# in roots made with debootstrap from the Debian mirror this machine's apt
# uses (ci/lib/debian-mirror.sh), run on this Debian 12 machine.
#
#   ci/debian13.sh [--fresh]     --fresh: make the cached root again
#
#   1. source    the README's build from source, as written: install-deps
#                --build, cmake, build, install, enable; nginx -t
#   2. package   ci/build-package.sh makes the Debian 13 package; in a root
#                with nothing installed, `apt install ./...deb` brings
#                trixie's nginx 1.26 (and no OpenDHT package: it is linked
#                in); the example site, nginx -t, nginx starts, a WebSocket
#                handshake gets its welcome
#   3. releases  the Debian 13 node of step 2 and a Debian 12 node (this
#                machine's build/ in /usr/sbin/nginx 1.22) relay to each
#                other both ways (tests/debian13/across_releases.test.mjs)
#   4. suites    in the root of step 1: install-deps --integration, and
#                dhtcore's unit and multi-node suites (OpenDHT 3.0) and the
#                module and nginx integration suites (trixie's nginx) with
#                ctest; no browser suites
#
# Caches, in DWRTC_CACHE (default /var/cache/dwrtc):
#   trixie-root/         the debootstrap --variant=minbase root, never written
#                        by a job: every job runs in an overlay of it (a copy
#                        where overlayfs is not allowed). Made again when
#                        older than DWRTC_ROOT_DAYS days (7), or --fresh.
#   opendht-trixie/      ci/build-opendht.sh's .debs (its own cache)
#   trixie-apt/          downloaded .debs (apt's archives), trixie-npm/ npm's
#
# Needs root (debootstrap, chroot, mounts), this machine's build/ (it builds
# it when missing) and Node.js with node_modules/ (ci/install-deps.sh).
# Logs of every step go to build-debian13/ in the checkout; a failing step
# prints the tail of its log. Every mount and every process in the roots is
# gone when the script ends, whichever way it ends.
set -euo pipefail

cd "$(dirname "$0")/.."
REPO=$(pwd)

FRESH=""
case "${1:-}" in
    "") ;;
    --fresh) FRESH=1 ;;
    *) echo "usage: $0 [--fresh]" >&2; exit 2 ;;
esac

if [ "$(id -u)" -ne 0 ]; then
    echo "ci/debian13.sh: needs root (debootstrap, chroot, mounts)" >&2
    exit 1
fi

CACHE=${DWRTC_CACHE:-/var/cache/dwrtc}
BASE=$CACHE/trixie-root
DAYS=${DWRTC_ROOT_DAYS:-7}
JOBS=${JOBS:-$(nproc)}
LOGS=$REPO/build-debian13
mkdir -p "$CACHE" "$CACHE/opendht-trixie" "$CACHE/trixie-apt" "$CACHE/trixie-npm" "$LOGS"
rm -f "$LOGS"/*.log
WORK=$(mktemp -d /var/tmp/dwrtc-debian13.XXXXXX)
chmod 755 "$WORK"
ROOTS=()
RUN_PID=""

# --- clean up on every exit --------------------------------------------------

kill_root_processes() {
    local root=$1 pid link
    for pid in /proc/[0-9]*; do
        link=$(readlink "$pid/root" 2>/dev/null) || continue
        case $link in
            "$root"|"$root"/*) kill -9 "${pid#/proc/}" 2>/dev/null || true ;;
        esac
    done
}

# The processes a step started on this machine (the test of step 3 and
# the nginx it starts outside the roots), children first.
descendants() {
    local c
    for c in $(ps -o pid= --ppid "$1"); do
        descendants "$c"
        echo "$c"
    done
}

kill_tree() {
    local pids
    pids="$(descendants "$1") $1"
    # shellcheck disable=SC2086
    kill -TERM $pids 2>/dev/null || true
    sleep 1
    # shellcheck disable=SC2086
    kill -KILL $pids 2>/dev/null || true
}

# Mount points at or under $1, deepest first.
mounts_under() {
    awk '{ print $2 }' /proc/mounts | grep -e "^$1\$" -e "^$1/" | sort -r || true
}

cleanup() {
    local status=$? root m
    trap - EXIT INT TERM
    [ -n "$RUN_PID" ] && kill_tree "$RUN_PID"
    for root in "${ROOTS[@]}"; do
        kill_root_processes "$root"
    done
    sleep 0.3
    for m in $(mounts_under "$WORK") $(mounts_under "$BASE.new"); do
        umount "$m" 2>/dev/null || umount -l "$m" || true
    done
    if [ -n "$(mounts_under "$WORK")" ]; then
        # never rm -rf through a bind mount of /dev or /sys
        echo "ci/debian13.sh: mounts left under $WORK, not removing it:" >&2
        mounts_under "$WORK" >&2
        [ "$status" -eq 0 ] && status=1
    else
        rm -rf --one-file-system "$WORK"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- timing and logs ---------------------------------------------------------

T0=$(date +%s)
TIMES=""
step_start=0

begin() {
    step_start=$(date +%s)
    echo "== debian13: $*"
}

done_step() {
    local secs=$(( $(date +%s) - step_start ))
    TIMES="$TIMES$(printf '%-66s %5d s' "$1" "$secs")"$'\n'
    echo "   $1: $secs s"
}

# run LOG COMMAND...: the command's output to build-debian13/LOG.log; on
# failure, its tail and the path.
# (In the background and waited for, so that an interrupt is handled at
# once: cleanup ends the step's processes.)
RUN_PID=""
run() {
    local log=$LOGS/$1.log rc
    shift
    set +e
    (set -e; "$@") >> "$log" 2>&1 &
    RUN_PID=$!
    wait "$RUN_PID"
    rc=$?
    RUN_PID=""
    set -e
    if [ "$rc" -ne 0 ]; then
        echo "ci/debian13.sh: FAILED: $*" >&2
        echo "--- last lines of $log:" >&2
        tail -n 60 "$log" >&2
        exit 1
    fi
}

# --- the cached root ---------------------------------------------------------

MIRROR=$(ci/lib/debian-mirror.sh)

root_is_fresh() {
    [ -f "$BASE.stamp" ] && [ -x "$BASE/usr/bin/apt-get" ] \
        && [ -z "$(find "$BASE.stamp" -mtime "+$DAYS")" ]
}

make_base() {
    if ! command -v debootstrap >/dev/null 2>&1; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap
    fi
    rm -rf --one-file-system "$BASE.new"
    debootstrap --variant=minbase trixie "$BASE.new" "$MIRROR"
    # A chroot has no init to talk to, and its services would start on this
    # machine's network: deny every service action, as Debian's container
    # images do. nginx is started by the steps below.
    printf '#!/bin/sh\nexit 101\n' > "$BASE.new/usr/sbin/policy-rc.d"
    chmod 755 "$BASE.new/usr/sbin/policy-rc.d"
    rm -rf --one-file-system "$BASE"
    mv "$BASE.new" "$BASE"
    date -u '+%Y-%m-%d %H:%M:%S UTC' > "$BASE.stamp"
}

begin "the Debian 13 root ($BASE)"
if [ -n "$FRESH" ] || ! root_is_fresh; then
    run root make_base
    done_step "debootstrap a minbase trixie root"
else
    done_step "debootstrap root: cached since $(cat "$BASE.stamp")"
fi

# new_root NAME: a throwaway root over the cached one, with /proc, /sys,
# /dev, the caches, resolv.conf and hosts in place; its path in NEW_ROOT.
OVERLAY=""
NEW_ROOT=""
new_root() {
    local name=$1 r=$WORK/$1
    mkdir -p "$r/upper" "$r/work" "$r/root"
    if [ "$OVERLAY" != no ] && mount -t overlay overlay \
            -o "lowerdir=$BASE,upperdir=$r/upper,workdir=$r/work" "$r/root" 2>/dev/null; then
        OVERLAY=yes
    else
        OVERLAY=no
        cp -a "$BASE/." "$r/root/"
    fi
    ROOTS+=("$r/root")
    r=$r/root
    mount -t proc proc "$r/proc"
    mount --rbind /sys "$r/sys" && mount --make-rslave "$r/sys"
    mount --rbind /dev "$r/dev" && mount --make-rslave "$r/dev"
    mkdir -p "$r/var/cache/dwrtc/opendht-trixie" "$r/root/.npm"
    mount --bind "$CACHE/opendht-trixie" "$r/var/cache/dwrtc/opendht-trixie"
    mount --bind "$CACHE/trixie-apt" "$r/var/cache/apt/archives"
    mount --bind "$CACHE/trixie-npm" "$r/root/.npm"
    cp /etc/resolv.conf /etc/hosts "$r/etc/"
    # The certificate authorities this machine adds to Debian's (a TLS
    # inspecting proxy on the way to npm's registry, say): the root's
    # ca-certificates takes them in when it is installed.
    if [ -d /usr/local/share/ca-certificates ]; then
        mkdir -p "$r/usr/local/share/ca-certificates"
        cp -a /usr/local/share/ca-certificates/. "$r/usr/local/share/ca-certificates/"
    fi
    # The root is thrown away: dpkg need not sync every file it unpacks.
    echo force-unsafe-io > "$r/etc/dpkg/dpkg.cfg.d/dwrtc-ci-unsafe-io"
    NEW_ROOT=$r
}

# inroot ROOT COMMAND: runs a shell command in ROOT, in the checkout's copy
# (/root/dwrtc), as root in a login-like environment.
inroot() {
    local r=$1
    shift
    chroot "$r" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        JOBS="$JOBS" ${NODE_EXTRA_CA_CERTS:+NODE_EXTRA_CA_CERTS="$NODE_EXTRA_CA_CERTS"} \
        /bin/sh -ec "cd /root/dwrtc; $*"
}

# The checkout as the build sees it (what git tracks and what it would,
# as in ci/build-package.sh), into ROOT/root/dwrtc.
copy_checkout() {
    mkdir -p "$1/root/dwrtc"
    git -C "$REPO" ls-files --cached --others --exclude-standard \
        | grep -v -e '^node_modules$' -e '^build[^/]*$' \
        | while IFS= read -r f; do [ -e "$REPO/$f" ] && printf '%s\n' "$f"; done \
        | tar -C "$REPO" -cf - --no-recursion -T - | tar -C "$1/root/dwrtc" -xf -
}

# --- 1. the README's build from source ---------------------------------------

begin "1. build from source as the README says"
new_root source
SRC_ROOT=$NEW_ROOT
copy_checkout "$SRC_ROOT"
done_step "1. a throwaway root (overlay: $OVERLAY) with the checkout"

begin "1. ci/install-deps.sh --build"
run source-deps inroot "$SRC_ROOT" ci/install-deps.sh --build
done_step "1. ci/install-deps.sh --build (OpenDHT from ci/build-opendht.sh)"

begin "1. cmake, build, install"
run source-build inroot "$SRC_ROOT" '
    cmake -S . -B build -DCMAKE_INSTALL_PREFIX=/usr -DDWRTC_BUILD_TESTS=OFF
    cmake --build build -j"$JOBS"
    cmake --install build
    ln -sf /usr/share/nginx/modules-available/mod-http-dwrtc.conf \
           /etc/nginx/modules-enabled/50-mod-http-dwrtc.conf
    cp /usr/share/dwrtc/examples/dwrtc-http /etc/nginx/conf.d/dwrtc.conf
    cp /usr/share/dwrtc/examples/dwrtc-site /etc/nginx/sites-available/dwrtc
    ln -sf /etc/nginx/sites-available/dwrtc /etc/nginx/sites-enabled/dwrtc
    nginx -t'
done_step "1. cmake, build, install, enable, nginx -t"

# --- 2. the package ----------------------------------------------------------

begin "2. ci/build-package.sh"
new_root package
PKG_ROOT=$NEW_ROOT
copy_checkout "$PKG_ROOT"
run package-build inroot "$PKG_ROOT" ci/build-package.sh
DEB=$(ls "$PKG_ROOT"/root/dwrtc/build/package/libnginx-mod-http-dwrtc_*.deb)
cp "$DEB" "$WORK/"
DEB=$WORK/$(basename "$DEB")
echo "   $(basename "$DEB"): $(dpkg-deb -f "$DEB" Depends)"
done_step "2. ci/build-package.sh (deps, OpenDHT from the cache, build)"

begin "2. apt install the package into a root with nothing installed"
new_root operator
OP_ROOT=$NEW_ROOT
mkdir -p "$OP_ROOT/root/dwrtc"
cp "$DEB" "$OP_ROOT/root/dwrtc/"
run package-install inroot "$OP_ROOT" "
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt install -y ./$(basename "$DEB")
    if dpkg-query -W 'libopendht*' 2>/dev/null | grep .; then
        echo 'an OpenDHT package was installed' >&2; exit 1
    fi
    nginx -v
    cp /usr/share/dwrtc/examples/dwrtc-http /etc/nginx/conf.d/dwrtc.conf
    cp /usr/share/dwrtc/examples/dwrtc-site /etc/nginx/sites-available/dwrtc
    ln -sf /etc/nginx/sites-available/dwrtc /etc/nginx/sites-enabled/dwrtc
    nginx -t"
done_step "2. apt install ./$(basename "$DEB"), nginx -t"

# A free port for the root's nginx (it shares this machine's network), from
# 18080 or from $1 on.
free_port() {
    local p
    for p in $(seq "${1:-18080}" 18180); do
        if ! ss -Htln "sport = :$p" | grep -q .; then
            echo "$p"
            return
        fi
    done
    echo "ci/debian13.sh: no free port in 18080-18180" >&2
    exit 1
}

begin "2. start the package's nginx, WebSocket handshake"
PORT=$(free_port)
STATUS_PORT=$(free_port $((PORT + 1)))
run package-start inroot "$OP_ROOT" "
    sed -i 's/listen 80/listen $PORT/; s/listen \[::\]:80/listen [::]:$PORT/' \
        /etc/nginx/sites-enabled/default /etc/nginx/sites-available/dwrtc
    # the example site's status server
    sed -i 's/listen 127.0.0.1:9422;/listen 127.0.0.1:$STATUS_PORT;/' \
        /etc/nginx/sites-available/dwrtc
    # the operator's names (README step 2): this machine's loopback
    sed -i 's/^dwrtc_public_address .*/dwrtc_public_address 127.0.0.1;/' \
        /etc/nginx/conf.d/dwrtc.conf
    sed -i 's/server_name call.example.com;/server_name 127.0.0.1;/' \
        /etc/nginx/sites-available/dwrtc
    sed -i 's|^error_log /var/log/nginx/error.log;|error_log /var/log/nginx/error.log notice;|' \
        /etc/nginx/nginx.conf
    nginx -t
    nginx
    for i in \$(seq 50); do grep -q 'dwrtc: node .* started' /var/log/nginx/error.log && break; sleep 0.1; done
    grep 'dwrtc: node' /var/log/nginx/error.log"
run package-start node --input-type=module -e "
    import { openSession, SESSION_ID } from '$REPO/tests/lib/client.mjs';
    const s = await openSession('ws://127.0.0.1:$PORT/call/signal');
    if (!SESSION_ID.test(s.id)) throw new Error('no session id in the welcome: ' + s.id);
    console.log('welcome: ' + JSON.stringify(s.welcome));
    await s.close();"
tail -n 1 "$LOGS/package-start.log" | sed 's/^/   /'
run package-start inroot "$OP_ROOT" 'nginx -s quit; for i in $(seq 100); do [ -e /run/nginx.pid ] || exit 0; sleep 0.1; done; exit 1'
done_step "2. trixie's nginx with the package: started, welcome"

# --- 3. a Debian 13 node and a Debian 12 node --------------------------------

begin "3. Debian 13 node and Debian 12 node relay both ways"
# this machine's build/ (ci/test.sh made it; up to date, or made here)
if [ ! -f "$REPO/build/CMakeCache.txt" ]; then
    run host-build cmake -S "$REPO" -B "$REPO/build"
fi
run host-build cmake --build "$REPO/build" -j "$JOBS" --target ngx_http_dwrtc_module
SHARED=$WORK/shared
mkdir -p "$SHARED" "$OP_ROOT$SHARED"
mount --bind "$SHARED" "$OP_ROOT$SHARED"
run releases env DWRTC_TRIXIE_ROOT="$OP_ROOT" TMPDIR="$SHARED" \
    DWRTC_MODULE="$REPO/build/module/ngx_http_dwrtc_module.so" \
    node --test --test-reporter=spec tests/debian13/across_releases.test.mjs
grep -e '^# Debian 12' -e '✔' "$LOGS/releases.log" | sed 's/^/   /' || true
done_step "3. Debian 13 node <-> Debian 12 node"

# --- 4. the suites against OpenDHT 3.0 and trixie's nginx --------------------

begin "4. ci/install-deps.sh --integration"
run suites-deps inroot "$SRC_ROOT" ci/install-deps.sh --integration
done_step "4. ci/install-deps.sh --integration (no browser)"

begin "4. build the suites"
run suites-build inroot "$SRC_ROOT" '
    cmake -S . -B build -DDWRTC_BUILD_TESTS=ON
    cmake --build build -j"$JOBS"'
done_step "4. build with the suites"

begin "4. ctest: unit, dhtcore, multinode, module, integration"
# In-process nodes two at a time, nginx one at a time (as ci/test.sh).
run suites-ctest inroot "$SRC_ROOT" \
    "ctest --test-dir build --output-on-failure -j 2 -L 'unit|dhtcore|multinode' -LE 'web|sanitize' &&
     ctest --test-dir build --output-on-failure -j 1 -L 'module|integration' -LE 'unit|dhtcore|multinode|web|sanitize'"
grep -E 'tests passed|Total Test time' "$LOGS/suites-ctest.log" | sed 's/^/   /'
done_step "4. ctest (OpenDHT 3.0, nginx 1.26)"

TOTAL=$(( $(date +%s) - T0 ))
echo "== debian13: passed in $TOTAL s (logs: $LOGS/)"
printf '%s' "$TIMES"
printf '%-58s %5d s\n' "total" "$TOTAL"

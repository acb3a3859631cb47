#!/bin/sh
# Installs what DWRTC needs on Debian 12 (bookworm) or Debian 13 (trixie):
# Debian packages with apt-get, and for the tests Node.js tools with npm.
# Safe to run again; quick when everything is already there.
#
#   ci/install-deps.sh --build        building the module: compiler, CMake, the
#                                     libraries, nginx-dev (what an operator
#                                     who builds from source needs)
#   ci/install-deps.sh --package      --build, plus the Debian packaging tools
#                                     of ci/build-package.sh
#   ci/install-deps.sh --integration  --package, plus what the unit,
#                                     multi-node, module and nginx integration
#                                     suites need: nginx, GoogleTest, clang,
#                                     Node.js with the npm test tools; no
#                                     browser (ci/debian13.sh uses it)
#   ci/install-deps.sh [--test]       everything ci/test.sh and ci/demo.sh
#                                     need: the above and the browsers of
#                                     the web tests, Chromium and Firefox ESR
#
# The release is read from /etc/os-release. The package lists are the same
# on both but for two: clang's runtime (libclang-rt-14-dev on Debian 12,
# libclang-rt-19-dev on Debian 13), and OpenDHT, which Debian 13 does not
# have: there ci/build-opendht.sh builds it from Debian's own source package
# (cached; docs/platforms.md) and its libopendht3t64 and libopendht-dev are
# installed with apt. Other distributions are refused with a message.
#
# It never starts, stops or restarts a service, nginx included. Debian's
# maintainer scripts start a service they install (nginx's postinst starts
# the system nginx on port 80) and restart one they upgrade; for the time of
# the apt-get a policy-rc.d that denies every action (exit 101) keeps every
# service as it was, for invoke-rc.d and deb-systemd-invoke alike. A
# policy-rc.d already in place (container images have one) is left alone.
# An nginx installed here is enabled but not started
# (`systemctl start nginx` starts it); one that runs keeps running.
set -eu

cd "$(dirname "$0")/.."

MODE=test
case "${1:-}" in
    ""|--test) MODE=test ;;
    --build) MODE=build ;;
    --package) MODE=package ;;
    --integration) MODE=integration ;;
    *) echo "usage: $0 [--build | --package | --integration | --test]" >&2; exit 2 ;;
esac

ID=unknown VERSION_CODENAME="" PRETTY_NAME=""
[ -r /etc/os-release ] && . /etc/os-release
case "$ID:$VERSION_CODENAME" in
    debian:bookworm)
        CLANG_RT=libclang-rt-14-dev
        OPENDHT_FROM=debian ;;
    debian:trixie)
        CLANG_RT=libclang-rt-19-dev
        OPENDHT_FROM=source ;;
    *)
        echo "ci/install-deps.sh: ${PRETTY_NAME:-this system} is not one DWRTC" \
             "installs for: Debian 12 (bookworm) and Debian 13 (trixie) are." >&2
        echo "Elsewhere install by hand what this script lists (a C and C++17" \
             "compiler, CMake, pkg-config, OpenDHT, libwebsockets, jansson, wslay," \
             "OpenSSL, PCRE2, zlib and your nginx's source tree), and build the" \
             "module against the nginx you run (README.md)." >&2
        exit 1 ;;
esac

# libpcre2-dev: Debian's nginx (1.22 and 1.26) is built with PCRE2 and
# nginx-dev depends on it; the module is configured the same way.
BUILD_PACKAGES="
    build-essential cmake pkg-config
    libwebsockets-dev libjansson-dev libwslay-dev
    libssl-dev libpcre2-dev zlib1g-dev
    nginx-dev
"
[ "$OPENDHT_FROM" = debian ] && BUILD_PACKAGES="$BUILD_PACKAGES libopendht-dev"
PACKAGE_PACKAGES="
    debhelper dpkg-dev fakeroot
"
INTEGRATION_PACKAGES="
    nginx git
    libgtest-dev clang $CLANG_RT
    nodejs npm
    openssl iproute2 procps curl
    prometheus
"
# firefox-esr: the web tests run in it too, over WebDriver BiDi (Debian 12's
# security updates and Debian 13 carry an ESR that speaks it)
BROWSER_PACKAGES="
    chromium firefox-esr
"

case $MODE in
    build) PACKAGES=$BUILD_PACKAGES ;;
    package) PACKAGES="$BUILD_PACKAGES $PACKAGE_PACKAGES" ;;
    integration) PACKAGES="$BUILD_PACKAGES $PACKAGE_PACKAGES $INTEGRATION_PACKAGES" ;;
    test) PACKAGES="$BUILD_PACKAGES $PACKAGE_PACKAGES $INTEGRATION_PACKAGES $BROWSER_PACKAGES" ;;
esac

missing=""
for p in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
        missing="$missing $p"
    fi
done

# nodejs may come from another repository that bundles npm; accept any npm.
if command -v npm >/dev/null 2>&1; then
    missing=$(echo "$missing" | sed 's/\bnpm\b//')
fi
if command -v node >/dev/null 2>&1; then
    missing=$(echo "$missing" | sed 's/\bnodejs\b//')
fi
missing=$(echo "$missing" | xargs)

# OpenDHT where Debian has none: any libopendht-dev will do (ours, or a
# Debian package of a later release).
opendht=""
if [ "$OPENDHT_FROM" = source ] \
   && ! dpkg-query -W -f='${Status}' libopendht-dev 2>/dev/null | grep -q "ok installed"; then
    opendht=1
fi

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
policy=/usr/sbin/policy-rc.d
ours=""
if [ -n "$missing$opendht" ] && [ ! -e $policy ]; then
    printf '#!/bin/sh\n# ci/install-deps.sh: no service actions during its apt-get\nexit 101\n' \
        | $SUDO tee $policy >/dev/null
    $SUDO chmod 755 $policy
    ours=1
    trap '$SUDO rm -f $policy' EXIT
    trap 'exit 1' INT TERM
fi

if [ -n "$missing" ]; then
    echo "ci/install-deps.sh: installing $missing"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
fi

if [ -n "$opendht" ]; then
    echo "ci/install-deps.sh: $PRETTY_NAME has no OpenDHT; building Debian's" \
         "source package (ci/build-opendht.sh)"
    debs=$(./ci/build-opendht.sh | tee /dev/stderr | tail -n 2)
    # apt-get wants a path with a slash to take a file for a package name
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $debs
fi

if [ -n "$ours" ]; then
    $SUDO rm -f $policy
    trap - EXIT INT TERM
fi

if [ -n "$missing$opendht" ]; then
    # An nginx that ran on throughout an upgrade of its package still runs
    # the old binary; say so, and leave the restart to its operator.
    if [ -r /run/nginx.pid ]; then
        exe=$(readlink "/proc/$(cat /run/nginx.pid)/exe" 2>/dev/null || true)
        case $exe in
            *"(deleted)") echo "ci/install-deps.sh: nginx was upgraded and still runs" \
                "the old binary; restart it when it suits you (systemctl restart nginx)" ;;
        esac
    fi
fi

if [ "$MODE" = test ] || [ "$MODE" = integration ]; then
    if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
        echo "ci/install-deps.sh: installing Node.js test tools (npm ci)"
        # puppeteer-core drives Debian's firefox-esr: never fetch a browser
        PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error
    fi
fi

echo "ci/install-deps.sh: the $MODE dependencies are present"

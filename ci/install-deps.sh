#!/bin/sh
# Installs what DWRTC needs on a Debian 12 machine: Debian packages with
# apt-get, and for the tests Node.js tools with npm. Safe to run again; quick
# when everything is already there.
#
#   ci/install-deps.sh --build     building the module: compiler, CMake, the
#                                  libraries, nginx-dev (what an operator who
#                                  builds from source needs)
#   ci/install-deps.sh --package   --build, plus the Debian packaging tools
#                                  of ci/build-package.sh
#   ci/install-deps.sh [--test]    everything ci/test.sh and ci/demo.sh need:
#                                  the above, nginx, GoogleTest, clang,
#                                  Node.js with the npm test tools, Chromium
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
    *) echo "usage: $0 [--build | --package | --test]" >&2; exit 2 ;;
esac

BUILD_PACKAGES="
    build-essential cmake pkg-config
    libopendht-dev libwebsockets-dev libjansson-dev libwslay-dev
    libssl-dev libpcre3-dev zlib1g-dev
    nginx-dev
"
PACKAGE_PACKAGES="
    debhelper dpkg-dev fakeroot
"
TEST_PACKAGES="
    nginx git
    libgtest-dev clang libclang-rt-14-dev
    nodejs npm
    chromium
    openssl iproute2 procps curl
    prometheus
"

case $MODE in
    build) PACKAGES=$BUILD_PACKAGES ;;
    package) PACKAGES="$BUILD_PACKAGES $PACKAGE_PACKAGES" ;;
    test) PACKAGES="$BUILD_PACKAGES $PACKAGE_PACKAGES $TEST_PACKAGES" ;;
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

if [ -n "$missing" ]; then
    echo "ci/install-deps.sh: installing $missing"
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO=sudo
    policy=/usr/sbin/policy-rc.d
    ours=""
    if [ ! -e $policy ]; then
        printf '#!/bin/sh\n# ci/install-deps.sh: no service actions during its apt-get\nexit 101\n' \
            | $SUDO tee $policy >/dev/null
        $SUDO chmod 755 $policy
        ours=1
        trap '$SUDO rm -f $policy' EXIT
        trap 'exit 1' INT TERM
    fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
    if [ -n "$ours" ]; then
        $SUDO rm -f $policy
        trap - EXIT INT TERM
    fi
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

if [ "$MODE" = test ]; then
    if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
        echo "ci/install-deps.sh: installing Node.js test tools (npm ci)"
        npm ci --no-audit --no-fund --loglevel=error
    fi
fi

echo "ci/install-deps.sh: the $MODE dependencies are present"

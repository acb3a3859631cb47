#!/bin/sh
# Installs everything DWRTC needs to build, test and run its demo on a
# Debian 12 machine: Debian packages with apt-get, Node.js test tools with
# npm. Safe to run again; quick when everything is already there.
set -eu

cd "$(dirname "$0")/.."

PACKAGES="
    build-essential cmake pkg-config git
    libopendht-dev libwebsockets-dev libjansson-dev libwslay-dev
    libssl-dev libpcre3-dev zlib1g-dev
    libgtest-dev clang libclang-rt-14-dev
    nginx nginx-dev
    nodejs npm
    chromium
    openssl iproute2 procps curl
    prometheus
"

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
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
fi

# Debian starts the packaged nginx on port 80 when it installs it; DWRTC
# runs its own nginx instances, so that one is not needed.
if [ -f /run/nginx.pid ] && [ "${DWRTC_KEEP_SYSTEM_NGINX:-}" = "" ] \
        && [ -n "$missing" ]; then
    nginx -s quit 2>/dev/null || true
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    echo "ci/install-deps.sh: installing Node.js test tools (npm ci)"
    npm ci --no-audit --no-fund --loglevel=error
fi

echo "ci/install-deps.sh: all dependencies present"

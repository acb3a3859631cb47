#!/bin/sh
# Builds OpenDHT for a Debian release that has no libopendht-dev (Debian 13,
# trixie), from Debian's own source package, the way a local backport is
# made, and keeps the .debs in a cache directory.
#
#   ci/build-opendht.sh [OUTDIR]   default OUTDIR: $DWRTC_OPENDHT_CACHE, or
#                                  /var/cache/dwrtc/opendht-<release>
#
# The last two lines printed are the paths of libopendht3t64 and
# libopendht-dev, for `apt-get install ./...deb` (ci/install-deps.sh does
# that). A second run with the same recipe (this script) reuses the .debs.
#
# The source is Debian's opendht 3.0.1-1.1 from unstable, taken from the
# pool of the mirror this machine's apt already uses (ci/lib/debian-mirror.sh).
# unstable's index names 3.0.1-1.2, whose .dsc is not on the mirror, so this
# script pins the sha256 of the three files it takes (the orig tarball's is
# the one the index gives) and refuses anything else. The packaging is
# Debian's, with three changes:
#
#   - a changelog entry for the version 3.0.1-1.1~dwrtc<release>+1, which
#     sorts below 3.0.1-1.1, so a Debian package of OpenDHT supersedes it;
#   - libopendht-dev also ships libopendht.a: an archive of the shared
#     library's own objects (compiled -fPIC), so that the DWRTC package can
#     link OpenDHT in (-DDWRTC_OPENDHT_STATIC=ON) and the operator installs
#     one package that needs only the release's own libraries
#     (docs/platforms.md says why);
#   - DEB_BUILD_OPTIONS="nocheck noddebs parallel=N": OpenDHT's own test
#     suite is not run (DWRTC's suites run against the result), and no
#     debug symbol packages are made.
#
# It installs what the build needs with apt-get (curl, dpkg-dev and the
# source package's Build-Depends): run it as root or with sudo. Build log:
# OUTDIR/build.log.
set -eu

cd "$(dirname "$0")/.."
REPO=$(pwd)

SOURCE=opendht
SOURCE_VERSION=3.0.1-1.1
UPSTREAM_VERSION=3.0.1
# sha256 of the files taken from the mirror's pool/main/o/opendht/
PINS="
4cfa9c9f4304bad64696b7dbca65a9c60f4a93a4dee638044a8c01354cf0f344  opendht_3.0.1-1.1.dsc
2dad6d781b208f86a0314edff21be63642e923596d4e03bd64a9d70ebfb6e6ab  opendht_3.0.1-1.1.debian.tar.xz
d6718a90eca2b3f3a9f16713a4ebe6fae00361a67fabe03c3bc162d00492126d  opendht_3.0.1.orig.tar.gz
"

. /etc/os-release
RELEASE=${VERSION_ID:-${VERSION_CODENAME:-unknown}}
LOCAL_SUFFIX="~dwrtc${RELEASE}+1"
VERSION=$SOURCE_VERSION$LOCAL_SUFFIX
ARCH=$(dpkg --print-architecture)

OUT=${1:-${DWRTC_OPENDHT_CACHE:-/var/cache/dwrtc/opendht-${VERSION_CODENAME:-$RELEASE}}}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

LIB_DEB=$OUT/libopendht3t64_${VERSION}_$ARCH.deb
DEV_DEB=$OUT/libopendht-dev_${VERSION}_$ARCH.deb
RECIPE=$(sha256sum "$REPO/ci/build-opendht.sh" | cut -d' ' -f1)

if [ -f "$LIB_DEB" ] && [ -f "$DEV_DEB" ] \
   && [ "$(cat "$OUT/recipe" 2>/dev/null)" = "$RECIPE" ]; then
    echo "ci/build-opendht.sh: OpenDHT $VERSION is in $OUT (built before)"
    echo "$LIB_DEB"
    echo "$DEV_DEB"
    exit 0
fi

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
apt_install() {
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
        --no-install-recommends "$@"
}

start=$(date +%s)
need=""
for tool in curl:curl dpkg-source:dpkg-dev; do
    command -v "${tool%%:*}" >/dev/null 2>&1 || need="$need ${tool#*:}"
done
if [ -n "$need" ]; then
    echo "ci/build-opendht.sh: installing$need"
    $SUDO apt-get update -qq
    # shellcheck disable=SC2086
    apt_install ca-certificates $need > "$OUT/tools.log" 2>&1 || {
        cat "$OUT/tools.log" >&2
        exit 1
    }
fi

MIRROR=$("$REPO/ci/lib/debian-mirror.sh")
WORK=$OUT/work
rm -rf "$WORK"
mkdir -p "$WORK"
echo "ci/build-opendht.sh: fetching $SOURCE $SOURCE_VERSION from the mirror's pool"
printf '%s\n' "$PINS" | while read -r sum file; do
    [ -n "$file" ] || continue
    curl -fsS --retry 3 -o "$WORK/$file" "$MIRROR/pool/main/o/$SOURCE/$file"
done
(cd "$WORK" && printf '%s\n' "$PINS" | grep . | sha256sum -c --quiet -) || {
    echo "ci/build-opendht.sh: the files from the mirror are not the pinned ones" >&2
    exit 1
}

# dpkg-source checks the tarballs against the .dsc too.
(cd "$WORK" && dpkg-source -x "${SOURCE}_$SOURCE_VERSION.dsc" src) > "$WORK/unpack.log" 2>&1 || {
    cat "$WORK/unpack.log" >&2
    exit 1
}
SRC=$WORK/src

# The local backport's changelog entry (dch --local style, written here so
# that no devscripts are needed).
{
    cat <<EOF
$SOURCE ($VERSION) ${VERSION_CODENAME:-UNRELEASED}; urgency=medium

  * Local build for DWRTC (ci/build-opendht.sh): Debian's $SOURCE
    $SOURCE_VERSION from unstable, built on Debian $RELEASE, which has no
    OpenDHT. libopendht-dev also ships libopendht.a, an archive of the
    shared library's objects (compiled -fPIC).

 -- DWRTC maintainers <maintainers@users.noreply.b-seed-71796800.example>  Sun, 06 Dec 2026 12:00:00 +0000

EOF
    cat "$SRC/debian/changelog"
} > "$SRC/debian/changelog.new"
mv "$SRC/debian/changelog.new" "$SRC/debian/changelog"

cat >> "$SRC/debian/rules" <<'EOF'

# DWRTC local build: libopendht.a from the shared library's own objects
# (all -fPIC), so that a module can link OpenDHT in.
execute_after_dh_auto_install: dwrtc-static-archive
dwrtc-static-archive:
	ar rcsD debian/tmp/usr/lib/$(DEB_HOST_MULTIARCH)/libopendht.a \
	    $$(find obj-$(DEB_BUILD_GNU_TYPE)/CMakeFiles/opendht.dir -name '*.o' | LC_ALL=C sort)
.PHONY: dwrtc-static-archive
EOF
echo 'usr/lib/*/libopendht.a' >> "$SRC/debian/libopendht-dev.install"

echo "ci/build-opendht.sh: installing the build dependencies of $SOURCE"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get build-dep -y -qq \
    --no-install-recommends "$SRC" > "$WORK/build-deps.log" 2>&1 || {
    tail -n 30 "$WORK/build-deps.log" >&2
    echo "ci/build-opendht.sh: apt-get build-dep failed (log: $WORK/build-deps.log)" >&2
    exit 1
}
deps_done=$(date +%s)

JOBS=${JOBS:-$(nproc)}
echo "ci/build-opendht.sh: building $SOURCE $VERSION (log: $OUT/build.log)"
(cd "$SRC" && DEB_BUILD_OPTIONS="nocheck noddebs parallel=$JOBS" \
    dpkg-buildpackage -B -uc -us) > "$OUT/build.log" 2>&1 || {
    tail -n 40 "$OUT/build.log" >&2
    echo "ci/build-opendht.sh: dpkg-buildpackage failed; the whole log is" \
         "$OUT/build.log" >&2
    exit 1
}
rm -f "$OUT"/*.deb "$OUT"/*.ddeb
mv "$WORK"/*.deb "$OUT"/
rm -rf "$WORK"
[ -f "$LIB_DEB" ] && [ -f "$DEV_DEB" ] || {
    echo "ci/build-opendht.sh: the build made no $LIB_DEB and $DEV_DEB" >&2
    exit 1
}
dpkg-deb -c "$DEV_DEB" | grep '/libopendht\.a$' >/dev/null || {
    echo "ci/build-opendht.sh: $DEV_DEB holds no libopendht.a" >&2
    exit 1
}
echo "$RECIPE" > "$OUT/recipe"
end=$(date +%s)
echo "ci/build-opendht.sh: built in $((end - start)) s" \
     "(build dependencies $((deps_done - start)) s, dpkg-buildpackage $((end - deps_done)) s)"
echo "$LIB_DEB"
echo "$DEV_DEB"

#!/bin/sh
# Builds the Debian package libnginx-mod-http-dwrtc from this checkout
# (debian/: CMake builds dhtcore and the module, dh_nginx registers it).
#
#   ci/build-package.sh [OUTDIR]       default OUTDIR: build/package
#
# Installs the build dependencies first (ci/install-deps.sh --package;
# DWRTC_NO_DEPS=1 skips that). The sources (the files git knows, or the
# checkout without build directories and node_modules) are copied to
# OUTDIR/src/dwrtc-VERSION/, and dpkg-buildpackage builds there, so the
# checkout gets no debian/ build files and nothing is written beside it.
# The .deb lands in OUTDIR/ and its path is the last line printed. When the
# copied sources are the same as those of the .deb already in OUTDIR, that
# .deb is kept (so the package test reuses the build).
#
# VERSION is DWRTC_VERSION of dhtcore/include/dwrtc/dwrtc.h; debian/changelog
# must name it (a new version wants a changelog entry).
set -eu

cd "$(dirname "$0")/.."
REPO=$(pwd)
OUT=${1:-$REPO/build/package}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

VERSION=$(sed -n 's/^#define DWRTC_VERSION "\([0-9.]*\)".*/\1/p' \
          dhtcore/include/dwrtc/dwrtc.h)
CHANGELOG=$(sed -n '1s/^[^ ]* (\([^)]*\)).*/\1/p' debian/changelog)
if [ "$VERSION" != "$CHANGELOG" ]; then
    echo "ci/build-package.sh: dwrtc.h says version $VERSION, debian/changelog" \
         "says $CHANGELOG; add a changelog entry for $VERSION" >&2
    exit 1
fi

if [ -z "${DWRTC_NO_DEPS:-}" ]; then
    ./ci/install-deps.sh --package
fi

ARCH=$(dpkg --print-architecture)
DEB=$OUT/libnginx-mod-http-dwrtc_${VERSION}_$ARCH.deb
SRC=$OUT/src/dwrtc-$VERSION
NEW=$OUT/src/.new

# The sources to build: what git tracks and what it would (untracked but
# not ignored), as they are in the work tree.
rm -rf "$NEW"
mkdir -p "$NEW"
if git -C "$REPO" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git -C "$REPO" ls-files --cached --others --exclude-standard \
        | grep -v -e '^node_modules$' -e '^build[^/]*$' \
        | while IFS= read -r f; do [ -e "$REPO/$f" ] && printf '%s\n' "$f"; done \
        | tar -C "$REPO" -cf - --no-recursion -T - | tar -C "$NEW" -xf -
else
    tar -C "$REPO" --exclude='./build*' --exclude=./node_modules --exclude=./.git \
        -cf - . | tar -C "$NEW" -xf -
fi

if [ -f "$DEB" ] && [ -d "$SRC" ] && diff -r "$SRC" "$NEW" >/dev/null 2>&1; then
    rm -rf "$NEW"
    echo "ci/build-package.sh: $DEB is up to date with the sources"
    echo "$DEB"
    exit 0
fi

rm -rf "$SRC" "$OUT"/*-dbgsym_* "$OUT"/src/*.deb "$OUT"/src/*.ddeb "$OUT"/src/*.buildinfo \
       "$OUT"/src/*.changes "$DEB"
mv "$NEW" "$SRC"
# dpkg-buildpackage writes into the tree; keep a pristine copy to compare.
rm -rf "$OUT/src/.built"
cp -a "$SRC" "$OUT/src/.built"

JOBS=${JOBS:-$(nproc)}
echo "ci/build-package.sh: building libnginx-mod-http-dwrtc $VERSION in $SRC"
start=$(date +%s)
(cd "$OUT/src/.built" && dpkg-buildpackage -b -uc -us -j"$JOBS") \
    > "$OUT/build.log" 2>&1 || {
    tail -n 40 "$OUT/build.log" >&2
    echo "ci/build-package.sh: dpkg-buildpackage failed; the whole log is" \
         "$OUT/build.log" >&2
    exit 1
}
rm -rf "$OUT/src/.built"
mv "$OUT"/src/libnginx-mod-http-dwrtc_"${VERSION}"_"$ARCH".deb "$DEB"
for f in "$OUT"/src/*-dbgsym_*.deb "$OUT"/src/*.ddeb; do
    [ -e "$f" ] && mv "$f" "$OUT/"
done
echo "ci/build-package.sh: built in $(( $(date +%s) - start )) s (log: $OUT/build.log)"
dpkg-deb -c "$DEB"
echo "$DEB"

#!/bin/sh
# Prints the Debian mirror this machine's apt uses (the first "deb" URI of
# the main archive, not the security one), with no trailing slash, so that
# the project's scripts take sources from the mirror the operator already
# trusts and never name a host of their own.
#
#   ci/lib/debian-mirror.sh            prints e.g. http://MIRROR/debian
#
# It reads deb822 files (/etc/apt/sources.list.d/*.sources: "Types: deb",
# "URIs:") and one-line files (sources.list, *.list: "deb URI SUITE ..."),
# in the order apt reads them. DWRTC_DEBIAN_MIRROR, when set, wins.
set -eu

if [ -n "${DWRTC_DEBIAN_MIRROR:-}" ]; then
    printf '%s\n' "${DWRTC_DEBIAN_MIRROR%/}"
    exit 0
fi

found=$(
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -r "$f" ] || continue
        # deb [options] URI SUITE COMPONENTS
        sed -n 's/^[[:space:]]*deb[[:space:]]\{1,\}\(\[[^]]*\][[:space:]]\{1,\}\)\{0,1\}\([^[:space:]]*\)[[:space:]]\{1,\}\([^[:space:]]*\).*/\2 \3/p' "$f"
    done
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -r "$f" ] || continue
        # One stanza per paragraph: print "URI SUITE" pairs of deb stanzas.
        awk 'BEGIN { RS = ""; FS = "\n" }
             {
                 types = ""; uris = ""; suites = ""
                 for (i = 1; i <= NF; i++) {
                     if ($i ~ /^Types:/) types = $i
                     if ($i ~ /^URIs:/) { uris = $i; sub(/^URIs:[ \t]*/, "", uris) }
                     if ($i ~ /^Suites:/) { suites = $i; sub(/^Suites:[ \t]*/, "", suites) }
                 }
                 if (types ~ /[ \t]deb([ \t]|$)/) {
                     split(uris, u, /[ \t]+/); split(suites, s, /[ \t]+/)
                     print u[1], s[1]
                 }
             }' "$f"
    done
)

# The main archive: a suite that is not -security.
mirror=$(printf '%s\n' "$found" | awk '$1 != "" && $2 !~ /-security$|\/updates$/ { print $1; exit }')
if [ -z "$mirror" ]; then
    echo "ci/lib/debian-mirror.sh: no Debian mirror found in apt's sources" \
         "(/etc/apt/sources.list, /etc/apt/sources.list.d/); set DWRTC_DEBIAN_MIRROR" >&2
    exit 1
fi
printf '%s\n' "${mirror%/}"

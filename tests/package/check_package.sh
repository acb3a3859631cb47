#!/bin/sh
# Builds (or reuses) the package and checks it as an operator's machine
# would see it:
#
#   - its files are where Debian's layout wants them: the module in
#     /usr/lib/nginx/modules/, mod-http-dwrtc.conf in
#     /usr/share/nginx/modules-available/, the demo and dwrtc.js in
#     /usr/share/dwrtc/web/, the example snippets in /usr/share/dwrtc/examples/,
#     the directive reference as the man page ngx_http_dwrtc_module(5), and
#     every example the shipped docs name in
#     /usr/share/doc/libnginx-mod-http-dwrtc/examples/;
#   - it depends on the nginx ABI of the nginx-dev it was built with and on
#     the runtime libraries;
#   - its postinst links the snippet from modules-enabled/ as Debian's own
#     module packages do (run on a scratch /etc/nginx, dpkg-trigger stubbed);
#   - unpacked into a scratch root (dpkg -x), nginx -t passes with a Debian
#     style nginx.conf that includes modules-enabled/*.conf, the example
#     http snippet in conf.d/ and the example site in sites-enabled/, every
#     path rewritten into the scratch root.
#
# usage: check_package.sh REPO OUTDIR [NGINX]
set -eu

REPO=$1
OUT=$2
NGINX=${3:-/usr/sbin/nginx}

fail() { echo "check_package: FAIL: $*" >&2; exit 1; }

for tool in dpkg-buildpackage dh dh_nginx; do
    command -v $tool >/dev/null 2>&1 \
        || fail "$tool is missing (ci/install-deps.sh --package installs it)"
done

DEB=$(DWRTC_NO_DEPS=1 "$REPO/ci/build-package.sh" "$OUT" | tail -n 1)
[ -f "$DEB" ] || fail "ci/build-package.sh did not name a .deb (got: $DEB)"
echo "check_package: $DEB"

S=$(mktemp -d "${TMPDIR:-/tmp}/dwrtc-package.XXXXXX")
trap 'rm -rf "$S"' EXIT

# --- the file list
dpkg-deb -c "$DEB" | awk '{print $NF}' | sed 's#^\./#/#' > "$S/files"
for f in /usr/lib/nginx/modules/ngx_http_dwrtc_module.so \
         /usr/share/nginx/modules-available/mod-http-dwrtc.conf \
         /usr/share/dwrtc/web/index.html /usr/share/dwrtc/web/dwrtc.js \
         /usr/share/dwrtc/web/dwrtc-e2e.js \
         /usr/share/dwrtc/web/demo.js /usr/share/dwrtc/web/demo.css \
         /usr/share/dwrtc/examples/dwrtc-http /usr/share/dwrtc/examples/dwrtc-site \
         /usr/share/doc/libnginx-mod-http-dwrtc/copyright \
         /usr/share/man/man5/ngx_http_dwrtc_module.5.gz; do
    grep -qx "$f" "$S/files" || fail "$f is not in the package"
done
# nothing outside the places above (no /etc: the package enables itself
# through a link its postinst makes, as Debian's module packages do)
stray=$(grep -v -e '/$' \
             -e '^/usr/lib/nginx/modules/' -e '^/usr/share/nginx/modules-available/' \
             -e '^/usr/share/dwrtc/' -e '^/usr/share/doc/libnginx-mod-http-dwrtc/' \
             -e '^/usr/share/man/man5/ngx_http_dwrtc_module\.5\.gz$' \
             "$S/files" || true)
[ -z "$stray" ] || fail "files outside Debian's module layout: $stray"
echo "check_package: the files are in Debian's layout"

# --- Depends: the nginx ABI and the runtime libraries
depends=$(dpkg-deb -f "$DEB" Depends)
abi=$(sed -n 's/^nginx:abi=//p' /usr/share/nginx/src/debian/libnginx-mod.abisubstvars)
[ -n "$abi" ] || fail "no nginx:abi in nginx-dev's libnginx-mod.abisubstvars"
# OpenDHT is a dependency, or linked in where the release has none (the
# Debian 13 package says so in Static-Built-Using; docs/platforms.md).
libs="libwebsockets libjansson libwslay libssl libstdc++"
if dpkg-deb -f "$DEB" Static-Built-Using | grep -q '^opendht '; then
    case ", $depends," in
        *", libopendht"*) fail "OpenDHT is linked in and a dependency: $depends" ;;
    esac
else
    libs="libopendht $libs"
fi
for d in "$abi" $libs; do
    case ", $depends," in
        *", $d"[,\ ]*|*", $d"[0-9]*) ;;
        *) fail "Depends lacks $d: $depends" ;;
    esac
done
echo "check_package: Depends: $depends"

# --- the directive reference and the examples the docs name
dpkg-deb -x "$DEB" "$S/unpacked"
man=$S/unpacked/usr/share/man/man5/ngx_http_dwrtc_module.5.gz
out=$(zcat "$man" | LC_ALL=C.UTF-8 groff -man -Tutf8 -ww 2>&1 >/dev/null) \
    && [ -z "$out" ] || fail "the man page does not render cleanly: $out"
directives=$(sed -n 's/^    { ngx_string("\(dwrtc_[a-z_]*\)"),$/\1/p' \
                 "$REPO/module/ngx_http_dwrtc_module.c")
[ -n "$directives" ] || fail "no directives found in module/ngx_http_dwrtc_module.c"
for directive in $directives; do
    zcat "$man" | grep -Eq "^\.SS (.*, )?$directive(,.*)?\$" \
        || fail "the man page has no entry for $directive"
done
echo "check_package: man ngx_http_dwrtc_module: every directive of the module"
doc=$S/unpacked/usr/share/doc/libnginx-mod-http-dwrtc
# every config-examples/PATH the shipped docs (and the man page) name is in
# examples/ (docs over 4 KB are compressed by dh_compress)
named=$(for f in "$doc"/*.md* "$man"; do zcat -f "$f"; done \
        | grep -o 'config-examples/[A-Za-z0-9_./-]*' | sed 's/[.]*$//' | sort -u)
[ -n "$named" ] || fail "the shipped docs name no config-examples/ file"
for ref in $named; do
    path=$doc/examples/${ref#config-examples/}
    [ -e "$path" ] || [ -e "$path.gz" ] || fail "$ref is named in the docs but not in $doc/examples/"
done
for f in one-node.conf beside-existing-site.conf tls.conf private-network-auth.conf \
         local-3-node/node1.conf local-3-node/node2.conf local-3-node/node3.conf \
         debian/dwrtc-http debian/dwrtc-site; do
    [ -f "$doc/examples/$f" ] || fail "examples/$f is not in the package"
done
echo "check_package: every example the docs name is in $doc/examples/:" $named

# --- the maintainer scripts register the module in modules-enabled/
dpkg-deb -e "$DEB" "$S/control"
mkdir -p "$S/etc/nginx/modules-enabled" "$S/etc/nginx/conf.d" \
         "$S/etc/nginx/sites-available" "$S/etc/nginx/sites-enabled" "$S/stub"
printf '#!/bin/sh\necho "$*" >> "%s/triggers"\n' "$S" > "$S/stub/dpkg-trigger"
chmod +x "$S/stub/dpkg-trigger"
for script in postinst prerm postrm; do
    sed -e "s#/etc/nginx/#$S/etc/nginx/#g" \
        -e "s#/usr/share/nginx/modules-available/#$S/usr/share/nginx/modules-available/#g" \
        "$S/control/$script" > "$S/$script"
    if grep -qE '(^|[[:space:]"])/(etc|usr|var|run)/' "$S/$script"; then
        fail "$script names a path outside the scratch root after rewriting"
    fi
done
PATH="$S/stub:$PATH" sh -e "$S/postinst" configure
link=$S/etc/nginx/modules-enabled/50-mod-http-dwrtc.conf
[ -L "$link" ] || fail "postinst made no modules-enabled/50-mod-http-dwrtc.conf"
[ "$(readlink "$link")" = "$S/usr/share/nginx/modules-available/mod-http-dwrtc.conf" ] \
    || fail "modules-enabled link points to $(readlink "$link")"
grep -q "nginx-reload" "$S/triggers" || fail "postinst did not trigger nginx-reload"
echo "check_package: postinst enables the module: 50-mod-http-dwrtc.conf -> modules-available/"

# --- unpacked into the scratch root, nginx -t passes
dpkg-deb -x "$DEB" "$S"
conf=$S/usr/share/nginx/modules-available/mod-http-dwrtc.conf
grep -qx 'load_module modules/ngx_http_dwrtc_module.so;' "$conf" \
    || fail "unexpected mod-http-dwrtc.conf: $(cat "$conf")"
sed -i "s#load_module modules/#load_module $S/usr/lib/nginx/modules/#" "$conf"
cp "$S/usr/share/dwrtc/examples/dwrtc-http" "$S/etc/nginx/conf.d/dwrtc.conf"
sed "s#/usr/share/dwrtc/#$S/usr/share/dwrtc/#g" "$S/usr/share/dwrtc/examples/dwrtc-site" \
    > "$S/etc/nginx/sites-available/dwrtc"
ln -s "$S/etc/nginx/sites-available/dwrtc" "$S/etc/nginx/sites-enabled/dwrtc"
mkdir -p "$S/var"
# Debian's nginx.conf in what matters here: modules-enabled at the top,
# conf.d and sites-enabled inside http.
cat > "$S/etc/nginx/nginx.conf" <<CONF
pid $S/var/nginx.pid;
error_log $S/var/error.log;
include $S/etc/nginx/modules-enabled/*.conf;

events {
    worker_connections 768;
}

http {
    include /etc/nginx/mime.types;
    access_log $S/var/access.log;
    client_body_temp_path $S/var/body;
    proxy_temp_path $S/var/proxy;
    fastcgi_temp_path $S/var/fastcgi;
    uwsgi_temp_path $S/var/uwsgi;
    scgi_temp_path $S/var/scgi;

    include $S/etc/nginx/conf.d/*.conf;
    include $S/etc/nginx/sites-enabled/*;
}
CONF
if ! out=$("$NGINX" -t -p "$S/var" -e "$S/var/error.log" -c "$S/etc/nginx/nginx.conf" 2>&1); then
    echo "$out" >&2
    fail "nginx -t failed with the package's snippets"
fi
echo "$out" | sed 's/^/    /'
echo "$out" | grep -q "test is successful" || fail "nginx -t did not say the test is successful"
if echo "$out" | grep -E '\[(emerg|alert|crit)\]'; then
    fail "nginx -t logged an emergency, alert or critical line"
fi
echo "check_package: nginx -t passes with modules-enabled/50-mod-http-dwrtc.conf," \
     "conf.d/dwrtc.conf and sites-enabled/dwrtc"
echo "check_package: PASS"

#!/bin/bash
# The built module loads into nginx with load_module, and a configuration
# using every dwrtc_* directive passes `nginx -t`.
#
# usage: module_loads.sh NGINX_BINARY MODULE_SO

set -euo pipefail

nginx=${1:?usage: $0 NGINX_BINARY MODULE_SO}
module=${2:?usage: $0 NGINX_BINARY MODULE_SO}

prefix=$(mktemp -d "${TMPDIR:-/tmp}/dwrtc-module-loads.XXXXXX")
trap 'rm -rf "$prefix"' EXIT
mkdir -p "$prefix/logs" "$prefix/conf" "$prefix/tmp"

# a private network's key, as the README says to make one; "key" is
# relative to the configuration's directory, as nginx takes it
key=0123456789abcdef0123456789abcdef-do-not-log
(umask 077 && echo "$key" > "$prefix/conf/network.key")

cat > "$prefix/conf/nginx.conf" <<CONF
load_module $module;

error_log $prefix/logs/error.log info;
pid $prefix/logs/nginx.pid;

events {
    worker_connections 64;
}

http {
    access_log off;
    client_body_temp_path $prefix/tmp/body;
    proxy_temp_path $prefix/tmp/proxy;
    fastcgi_temp_path $prefix/tmp/fastcgi;
    uwsgi_temp_path $prefix/tmp/uwsgi;
    scgi_temp_path $prefix/tmp/scgi;

    dwrtc_dht_port 4222-4229;
    dwrtc_link_port 4230-4237;
    dwrtc_bootstrap 127.0.0.1:4300 [::1]:4301;
    dwrtc_public_address 127.0.0.1;
    dwrtc_bind_address 127.0.0.1;
    dwrtc_dht_rate_limit off 100000;
    dwrtc_network_key network.key;
    dwrtc_link_handshake_timeout 3s;
    dwrtc_link_idle_timeout 5m;
    dwrtc_link_max_unproven 32;
    dwrtc_link_retry_delay 500ms;
    dwrtc_link_ack_timeout 2s;
    dwrtc_publish_wait 5s;
    dwrtc_queue_limit 256;
    dwrtc_claim_clock_skew 30s;
    dwrtc_claims 6r/m 3;
    dwrtc_link_claims 4096 500;
    dwrtc_lookup_claim_checks 32;

    dwrtc_max_message_size 64k;
    dwrtc_rate 50 burst=200;
    dwrtc_max_sessions 10000;
    dwrtc_ping_interval 30s;

    server {
        listen 127.0.0.1:18080;

        location /signal {
            dwrtc_signal;
            dwrtc_allowed_origins https://a.example http://127.0.0.1:18080;
            dwrtc_session_user \$remote_user;
            dwrtc_ice_servers stun:stun.example.org:3478;
            dwrtc_ice_servers turn:turn.example.org:3478
                              username=alice credential=secret;
            dwrtc_ice_servers turns:turn.example.org:5349
                              secret=shared name=dwrtc ttl=1h;
        }

        location /other {
            dwrtc_rate off;
            dwrtc_ping_interval off;
            dwrtc_allowed_origins *;
            dwrtc_ice_servers off;
            return 204;
        }
    }
}
CONF

echo "== $nginx -t -p $prefix -c conf/nginx.conf"
out=$("$nginx" -t -p "$prefix" -c conf/nginx.conf 2>&1)
echo "$out"
if grep -q "$key" <<<"$out" "$prefix/logs/error.log"; then
    echo "the network key was logged" >&2
    exit 1
fi

# A configuration error must be reported, not crash or pass.
cat > "$prefix/conf/bad.conf" <<CONF
load_module $module;
error_log $prefix/logs/error.log;
pid $prefix/logs/nginx.pid;
events { }
http {
    access_log off;
    client_body_temp_path $prefix/tmp/body;
    dwrtc_dht_port 5000-4000;
    server { listen 127.0.0.1:18080; location / { dwrtc_signal; } }
}
CONF

if out=$("$nginx" -t -p "$prefix" -c conf/bad.conf 2>&1); then
    echo "bad configuration passed nginx -t:" >&2
    echo "$out" >&2
    exit 1
fi
echo "$out" | grep -q 'invalid port range "5000-4000"' || {
    echo "unexpected error for a bad port range:" >&2
    echo "$out" >&2
    exit 1
}
echo "bad port range rejected: ok"

# Mistakes an operator makes, as nginx -t reports them: LEVEL (emerg: the
# configuration is refused; warn: it passes, with the warning), the lines of
# the main context, of events, of http, and the message expected.
expect_test() {   # LEVEL MAIN EVENTS HTTP EXPECTED_MESSAGE
    cat > "$prefix/conf/bad.conf" <<CONF
load_module $module;
error_log $prefix/logs/error.log;
pid $prefix/logs/nginx.pid;
$2
events { $3 }
http {
    access_log off;
    client_body_temp_path $prefix/tmp/body;
    $4
    server { listen 127.0.0.1:18080; location / { dwrtc_signal; } }
}
CONF
    if out=$("$nginx" -t -p "$prefix" -c conf/bad.conf 2>&1); then
        passed=1
    else
        passed=0
    fi
    if [ "$1" = emerg ] && [ "$passed" = 1 ]; then
        echo "bad configuration ($2 $4) passed nginx -t:" >&2
        echo "$out" >&2
        exit 1
    fi
    if [ "$1" = warn ] && [ "$passed" = 0 ]; then
        echo "configuration ($2 $4) was refused, a warning was expected:" >&2
        echo "$out" >&2
        exit 1
    fi
    if ! grep -q "\[$1\].*$5" <<<"$out"; then
        echo "expected [$1] \"$5\" for $2 $4, got:" >&2
        echo "$out" >&2
        exit 1
    fi
    echo "$1: $2 $3 $4: ok"
}

# A directive refused at nginx -t, without showing the network key: for
# dwrtc_network_key, a file it cannot read and a key shorter than 16 bytes
# (white space at its end does not count).
expect_refused() {   # DIRECTIVE_LINES EXPECTED_MESSAGE
    expect_test emerg "" "" "$1" "$2"
    if grep -q "short-key-" <<<"$out"; then
        echo "the network key was shown for $1:" >&2
        echo "$out" >&2
        exit 1
    fi
}

printf 'short-key-12345 \n\n' > "$prefix/conf/short.key"
chmod 600 "$prefix/conf/short.key"

expect_refused "dwrtc_network_key missing.key;" \
    'open() ".*/conf/missing.key" failed'
expect_refused "dwrtc_network_key short.key;" \
    'the key in ".*/conf/short.key" is 15 bytes long, it must be at least 16'
expect_refused "dwrtc_network_key $prefix/conf;" 'is not a file'
expect_refused "dwrtc_link_handshake_timeout 0;" \
    '"dwrtc_link_handshake_timeout" must be more than 0'
expect_refused "dwrtc_link_idle_timeout 0;" \
    '"dwrtc_link_idle_timeout" must be at least 1s'
expect_refused "dwrtc_link_retry_delay 0;" \
    '"dwrtc_link_retry_delay" must be more than 0'
expect_refused "dwrtc_link_ack_timeout 50ms;" \
    '"dwrtc_link_ack_timeout" must be at least 100ms'
expect_refused "dwrtc_queue_limit 0;" \
    '"dwrtc_queue_limit" must be from 1 to 1000000'
expect_refused "dwrtc_publish_wait 2m;" \
    '"dwrtc_publish_wait" must be at most 1m'
expect_refused "dwrtc_link_max_unproven 0;" \
    '"dwrtc_link_max_unproven" must be at least 1'
expect_refused "dwrtc_claim_clock_skew 10m;" \
    '"dwrtc_claim_clock_skew" must be from 1s to 5m'
expect_refused "dwrtc_claims 0 3;" \
    '"dwrtc_claims" rate must be from 1 to 6000 claims a minute, not "0"'
expect_refused "dwrtc_claims 6/s 3;" \
    '"dwrtc_claims" rate must be from 1 to 6000 claims a minute'
expect_refused "dwrtc_claims 6 0;" \
    '"dwrtc_claims" refusals must be from 1 to 1000'
expect_refused "dwrtc_link_claims 0 500;" \
    '"dwrtc_link_claims" senders must be from 1 to 1000000'
expect_refused "dwrtc_link_claims 4096 0;" \
    '"dwrtc_link_claims" checks must be from 1 to 100000'
expect_refused "dwrtc_lookup_claim_checks 0;" \
    '"dwrtc_lookup_claim_checks" must be from 1 to 100000'

expect_test emerg "" "" "dwrtc_public_address https://node.example/;" \
    '"dwrtc_public_address" takes the host name or IP address other nodes'
expect_test emerg "" "" "dwrtc_public_address node.example:4230;" \
    '"dwrtc_public_address" takes a host name or IP address without a port'
expect_test warn "" "" "dwrtc_public_address no-such-host.invalid;" \
    '"dwrtc_public_address" "no-such-host.invalid" does not resolve here'
expect_test emerg "" "" "dwrtc_bind_address not-an-ip;" \
    '"dwrtc_bind_address" must be an IP address of this host'
expect_test warn "" "" "dwrtc_bootstrap no-such-host.invalid:4222;" \
    '"dwrtc_bootstrap" "no-such-host.invalid:4222": host not found'
expect_test emerg "" "" "dwrtc_allowed_origins example.com;" \
    '"example.com" is not an origin: "dwrtc_allowed_origins" takes origins'
expect_test emerg "" "" "dwrtc_allowed_origins https://example.com/app;" \
    '"https://example.com/app" is not an origin'
expect_test emerg "worker_processes 3;" "" "dwrtc_dht_port 4222-4223;" \
    '"dwrtc_dht_port 4222-4223" has 2 ports for 3 workers'
expect_test warn "worker_processes 2;" "" "dwrtc_link_port 4230-4232;" \
    '"dwrtc_link_port 4230-4232" has 3 ports for 2 workers: during a reload'
expect_test warn "" "worker_connections 64;" \
    "server { listen 127.0.0.1:18081; location / { dwrtc_signal; dwrtc_max_sessions 100; } }" \
    '"dwrtc_max_sessions 100" is not below "worker_connections 64"'

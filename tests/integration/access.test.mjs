// Who may open a session: nginx's own access checks in front of a
// dwrtc_signal location decide, before the handshake is answered. A
// refused request gets the check's status and never becomes a session (no
// welcome, so no TURN credentials; no "session ... open" line); an accepted
// one keeps what dwrtc_session_user said about it, in $dwrtc_session_user
// and in its error log line.
//
// One nginx serves every case: /signal behind auth_request (the auth
// subrequest goes to a second server block of the same nginx, which
// answers 204 with X-User for the good token and 401 otherwise),
// /allowlist behind allow/deny, /one-per-address behind limit_conn, and
// /named, whose session user is a request header (empty, or too long).

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { startNode, freeTcpPort, waitUntil } from '../lib/nginx.mjs';
import { openSession, rawRequest, handshakeRequest, terminateSessions,
         DEFAULT_WAIT } from '../lib/client.mjs';

const TOKEN = `good-${randomBytes(8).toString('hex')}`;
const USER = 'alice';
const TURN_SECRET = 'turn-shared-secret';
const OTHER = '127.0.0.2';   // a second client address on loopback

// no fixed length: session ids will grow
const ID = '[0-9a-f-]+';

describe('access checks in front of dwrtc_signal', () => {
    let node, workers, authPort;

    before(async () => {
        authPort = await freeTcpPort();
        node = await startNode({
            name: 'access',
            http: `
                log_format dwrtc '$remote_addr "$request" $status '
                                 'user="$dwrtc_session_user" session=$dwrtc_session_id';
                limit_conn_zone $binary_remote_addr zone=dwrtc_per_address:1m;

                # the auth server: the token in the original request's URI
                map $http_x_original_uri $access_user {
                    "~[?&]token=${TOKEN}(&|$)"  ${USER};
                    default                     "";
                }
                server {
                    listen 127.0.0.1:${authPort};
                    location = /check {
                        if ($access_user = "") {
                            return 401;
                        }
                        add_header X-User $access_user;
                        return 204;
                    }
                }`,
            signal: `
                auth_request /auth;
                auth_request_set $dwrtc_user $upstream_http_x_user;
                dwrtc_session_user $dwrtc_user;
                dwrtc_ice_servers turn:turn.example.test:3478 secret=${TURN_SECRET} ttl=1h;`,
            server: `
                access_log access-dwrtc.log dwrtc;

                location = /auth {
                    internal;
                    proxy_pass http://127.0.0.1:${authPort}/check;
                    proxy_pass_request_body off;
                    proxy_set_header Content-Length "";
                    proxy_set_header Upgrade "";
                    proxy_set_header X-Original-URI $request_uri;
                }

                location /allowlist {
                    allow ${OTHER};
                    deny all;
                    dwrtc_signal;
                }

                location /one-per-address {
                    limit_conn dwrtc_per_address 1;
                    dwrtc_signal;
                }

                location /named {
                    dwrtc_session_user $http_x_test_user;
                    dwrtc_signal;
                }`,
        });
        workers = node.workerPids();
    });

    after(() => {
        terminateSessions();
        return node?.stop();
    });

    /** Lines of the signal server's access log (format dwrtc above). */
    function accessLog() {
        try {
            return readFileSync(join(node.prefix, 'access-dwrtc.log'), 'utf8')
                .split('\n').filter(Boolean);
        } catch {
            return [];
        }
    }

    /**
     * Waits for the access log line matching re (written when a request
     * ends, or for a session when its handshake is done).
     */
    function waitAccessLine(re, what) {
        return waitUntil(() => accessLog().find((l) => re.test(l)),
                         { what: `the access log line of ${what}`,
                           detail: () => `access log:\n${accessLog().join('\n')}` });
    }

    /** The "session ... open" lines of the error log. */
    function openLines() {
        return node.logLines().filter((l) => new RegExp(`^dwrtc: session ${ID} open`).test(l.text));
    }

    /**
     * A handshake request that is to be refused: { status, body } (the
     * whole body, by its Content-Length).
     */
    async function refused(path, { localAddress } = {}) {
        const res = await rawRequest(node.httpPort, handshakeRequest({ port: node.httpPort, path }),
                                     { localAddress });
        try {
            const length = Number(res.headers['content-length'] ?? 0);
            let body = res.rest;
            if (res.status !== 101 && body.length < length) {
                body = await new Promise((resolve, reject) => {
                    const timer = setTimeout(() => reject(new Error(
                        `the body of ${path}'s ${res.status} did not arrive`)), DEFAULT_WAIT);
                    res.socket.on('data', (d) => {
                        body = Buffer.concat([body, d]);
                        if (body.length >= length) {
                            clearTimeout(timer);
                            resolve(body);
                        }
                    });
                    res.socket.on('close', () => { clearTimeout(timer); resolve(body); });
                });
            }
            return { status: res.status, body: body.toString() };
        } finally {
            res.socket.destroy();
        }
    }

    const requestRe = (path) => path.replace(/[?]/g, '\\?');

    it('auth_request: no token or a bad one gets 401 and no session', async () => {
        for (const path of ['/signal', '/signal?token=bad']) {
            const r = await refused(path);
            assert.equal(r.status, 401, `${path}: ${r.body}`);
            assert.doesNotMatch(r.body, /WebSocketIdMessage|iceServers|credential/,
                                'a refused request gets no welcome and no TURN credentials');
            const line = await waitAccessLine(
                new RegExp(`"GET ${requestRe(path)} HTTP/1.1" 401 `), path);
            assert.match(line, /user="-" session=-$/, 'no session, no user');
        }
        // the refused requests have ended: none of them opened a session
        assert.deepEqual(openLines().filter((l) => l.line.includes('request: "GET /signal')), [],
                         'a refused request logged a "session ... open" line');
    });

    it('auth_request: a good token gets 101, a welcome with TURN credentials, '
       + 'and its user in both logs', async () => {
        const url = node.wsUrl(`/signal?token=${TOKEN}`);
        const before = Math.floor(Date.now() / 1000);
        const a = await openSession(url, { label: 'a' });
        const after = Math.ceil(Date.now() / 1000);
        assert.match(a.id, new RegExp(`^${ID}$`));

        const turn = a.welcome.iceServers?.find((s) => s.urls.some((u) => u.startsWith('turn:')));
        assert.ok(turn, `the welcome has a TURN server: ${JSON.stringify(a.welcome)}`);
        assert.deepEqual(turn.urls, ['turn:turn.example.test:3478']);
        const m = /^(\d+):(.+)$/.exec(turn.username);
        assert.ok(m, `TURN username "${turn.username}" is "<expiry>:<name>"`);
        assert.equal(m[2], a.id, 'the TURN name is the session id');
        assert.ok(Number(m[1]) >= before + 3600 - 1 && Number(m[1]) <= after + 3600 + 1,
                  `expiry ${m[1]} is an hour after the welcome`);
        assert.equal(turn.credential,
                     createHmac('sha1', TURN_SECRET).update(turn.username).digest('base64'));

        // the error log names the session and its user
        const open = await waitUntil(() => openLines().find((l) => l.text.includes(a.id)),
                                     { what: `the "session ${a.id} open" line`,
                                       detail: () => node.describe() });
        assert.match(open.text, new RegExp(`^dwrtc: session ${a.id} open, user "${USER}"`));
        assert.equal(open.level, 'info');

        // and the session works
        const b = await openSession(url, { label: 'b' });
        await a.deliver(b, 'past the auth server');
        await Promise.all([a.close(), b.close()]);

        // the access log line, written when the handshake was done
        const line = await waitAccessLine(new RegExp(`session=${a.id}$`), `session ${a.id}`);
        assert.match(line, new RegExp(`^127\\.0\\.0\\.1 "GET /signal\\?token=${TOKEN} HTTP/1.1" `
                                      + `101 user="${USER}" session=${a.id}$`));
    });

    it('allow/deny: a denied address gets 403 and no session, an allowed one a session',
       async () => {
        const r = await refused('/allowlist');
        assert.equal(r.status, 403);
        assert.doesNotMatch(r.body, /WebSocketIdMessage/);
        const line = await waitAccessLine(/^127\.0\.0\.1 "GET \/allowlist HTTP\/1.1" 403 /,
                                          'the denied request');
        assert.match(line, /user="-" session=-$/);

        const ok = await openSession(node.wsUrl('/allowlist'),
                                     { localAddress: OTHER, label: 'allowed' });
        await ok.ping();
        await ok.close();
        await waitAccessLine(new RegExp(`^127\\.0\\.0\\.2 "GET /allowlist HTTP/1.1" 101 `
                                        + `user="-" session=${ok.id}$`), 'the allowed session');

        // only the allowed address opened a session there
        const upgraded = accessLog().filter((l) => / "GET \/allowlist HTTP\/1.1" 101 /.test(l));
        assert.equal(upgraded.length, 1, upgraded.join('\n'));
        assert.ok(upgraded[0].startsWith(`${OTHER} `), upgraded[0]);
    });

    it('limit_conn 1 per address: a second concurrent session gets 503, the first works on',
       async () => {
        const url = node.wsUrl('/one-per-address');
        const first = await openSession(url, { label: 'first' });
        const opensBefore = openLines().length;

        const r = await refused('/one-per-address');
        assert.equal(r.status, 503);
        assert.doesNotMatch(r.body, /WebSocketIdMessage/);
        const line = await waitAccessLine(/^127\.0\.0\.1 "GET \/one-per-address HTTP\/1.1" 503 /,
                                          'the second session of one address');
        assert.match(line, /user="-" session=-$/);
        assert.equal(openLines().length, opensBefore, 'the refused request opened a session');

        // the first is undisturbed; another address has its own limit
        await first.ping();
        const other = await openSession(url, { localAddress: OTHER, label: 'other address' });
        await first.deliver(other, 'one each');
        await other.deliver(first, 'one each, back');

        // when the first ends, its address may open a session again
        await first.close();
        const again = await waitUntil(() => openSession(url, { label: 'again' }).catch((err) => {
            if (/answered 503/.test(err.message)) {
                return null;   // the first request is still being finished
            }
            throw err;
        }), { what: 'a new session from 127.0.0.1 after the first closed' });
        await again.deliver(other, 'room again');
        await Promise.all([other.close(), again.close()]);
    });

    it('dwrtc_session_user: an empty value gives no user, a long one is cut to 256 bytes',
       async () => {
        const url = node.wsUrl('/named');
        const none = await openSession(url, { label: 'no user' });
        const long = await openSession(url, { label: 'long user',
                                              headers: { 'X-Test-User': 'u'.repeat(300) } });
        await none.deliver(long, 'named or not');
        await Promise.all([none.close(), long.close()]);

        const lineOf = (s) => waitAccessLine(new RegExp(`session=${s.id}$`), s.label);
        assert.match(await lineOf(none), / 101 user="-" session=/);
        assert.match(await lineOf(long), new RegExp(` 101 user="${'u'.repeat(256)}" session=`));

        // Only a session with a user gets an info line when it opens.
        const opened = (s) => openLines().find((l) => l.text.includes(s.id))?.text;
        assert.equal(opened(none), undefined, 'a session without a user logged an info line');
        assert.match(opened(long), new RegExp(`open, user "${'u'.repeat(256)}" while`));
        assert.ok(node.logLines().some((l) => l.level === 'info' && l.text.startsWith(
            'dwrtc: dwrtc_session_user value of 300 bytes cut to 256')), 'the cut is logged');
    });

    it('keeps the worker and logs no [alert], [crit] or [emerg]', async () => {
        assert.deepEqual(node.workerPids(), workers, 'the worker pid changed: a worker died');
        await node.quit();
        node.assertNoAlerts();
    });
});

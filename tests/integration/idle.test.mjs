// An idle session keeps no HTTP request: once the handshake is done (the
// 101 response out, the bytes behind it read) its access log line is
// written, with the request's variables, and the request is freed as nginx
// frees an idle keepalive connection's (module/ngx_http_dwrtc_session.c,
// ngx_http_dwrtc_session_upgraded()). What is left is the connection, its
// pool and the session in it. Here:
//
// - the access log line is there while the session is still open, once,
//   with $status 101, $dwrtc_session_id and $dwrtc_session_user;
// - the debug log says "request released", and stub_status counts the
//   sessions as before, as "Writing" (requests being served) until they
//   end;
// - a location with limit_conn keeps the request to the end (limit_conn
//   counts a session until its request's pool goes), and still logs at
//   the handshake;
// - a released session's error log lines name the session and server;
// - every way a released session ends still ends it: the close handshake
//   (then the lingering close), the client's FIN, a ping left unanswered.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { get } from 'node:http';

import { startNode, waitUntil } from '../lib/nginx.mjs';
import { openSession, openSessions, rawUpgrade, frame, closePayload, OP,
         terminateSessions } from '../lib/client.mjs';

describe('idle sessions release their request', () => {
    let node, workers;

    before(async () => {
        const logs = 'error_log error.log info;\nerror_log debug.log debug;';
        node = await startNode({
            name: 'idle',
            http: `
                log_format dwrtc '$status $request_time $bytes_sent '
                                 'session=$dwrtc_session_id user="$dwrtc_session_user"';
                limit_conn_zone $binary_remote_addr zone=idle_per_address:1m;`,
            signal: 'dwrtc_rate off;',
            server: `
                access_log access-dwrtc.log dwrtc;
                ${logs}

                location = /stub {
                    stub_status;
                }

                location /named {
                    dwrtc_signal;
                    dwrtc_session_user $http_x_test_user;
                    dwrtc_rate 1 burst=1;
                }

                location /counted {
                    limit_conn idle_per_address 100;
                    dwrtc_signal;
                }

                location /ping {
                    dwrtc_signal;
                    dwrtc_ping_interval 1s;
                }`,
        });
        workers = node.workerPids();
    });

    after(() => {
        terminateSessions();
        return node?.stop();
    });

    function read(file) {
        try {
            return readFileSync(join(node.prefix, file), 'latin1');
        } catch {
            return '';
        }
    }

    const accessLines = () => read('access-dwrtc.log').split('\n').filter(Boolean);
    const linesOf = (id) => accessLines().filter((l) => l.includes(`session=${id} `));
    const debugHas = (text) => read('debug.log').includes(text);

    /** Waits until the debug log holds text. */
    function waitDebug(text, what = text) {
        return waitUntil(() => debugHas(text), { what });
    }

    /** stub_status figures: { active, reading, writing, waiting }. */
    function stubStatus() {
        return new Promise((resolve, reject) => {
            get({ host: '127.0.0.1', port: node.httpPort, path: '/stub' }, (res) => {
                let body = '';
                res.on('data', (d) => { body += d; });
                res.on('end', () => {
                    const m = /Active connections: (\d+)[\s\S]*Reading: (\d+) Writing: (\d+) Waiting: (\d+)/
                        .exec(body);
                    if (!m) {
                        reject(new Error(`unexpected stub_status answer: ${body}`));
                        return;
                    }
                    const [active, reading, writing, waiting] = m.slice(1).map(Number);
                    resolve({ active, reading, writing, waiting });
                });
            }).on('error', reject);
        });
    }

    it('writes the access log line when the handshake is done, once, and the session goes on',
       async () => {
        const a = await openSession(node.wsUrl('/named'),
                                    { label: 'alice', headers: { 'X-Test-User': 'alice' } });
        const b = await openSession(node.wsUrl('/named'), { label: 'no user' });

        // both still open: their lines are there already
        const line = await waitUntil(() => linesOf(a.id)[0],
                                     { what: `the access log line of ${a.id}` });
        assert.match(line, new RegExp(`^101 \\d+\\.\\d{3} (\\d+) session=${a.id} user="alice"$`));
        const sent = Number(/^101 \S+ (\d+)/.exec(line)[1]);
        assert.ok(sent > 129, `$bytes_sent ${sent} counts the 101 response`);
        assert.match(await waitUntil(() => linesOf(b.id)[0], { what: 'the line of b' }),
                     new RegExp(`^101 \\S+ \\d+ session=${b.id} user="-"$`));
        await waitDebug(`dwrtc: session ${a.id}: request released`);

        // the sessions work on without their requests
        await a.deliver(b, 'after the release');
        await b.deliver(a, 'and back');
        await a.ping();
        assert.equal(a.closedWith, null);

        await Promise.all([a.close(), b.close()]);
        await waitDebug(`dwrtc: session ${a.id} closed`);
        await waitDebug(`dwrtc: session ${b.id} closed`);
        assert.equal(linesOf(a.id).length, 1, `one line per session:\n${linesOf(a.id).join('\n')}`);
        assert.equal(linesOf(b.id).length, 1);

        // how long it lasted is in the error log: at info for a session with a user
        const closed = node.logLines().find((l) => l.text.startsWith(`dwrtc: session ${a.id} closed`));
        assert.ok(closed, 'the close line of alice');
        assert.equal(closed.level, 'info');
        assert.match(closed.text, new RegExp(`^dwrtc: session ${a.id} closed after \\d+ ms, `
                                             + '\\d+ bytes sent, user "alice" while serving dwrtc session'));
        assert.ok(!node.logLines().some((l) => l.text.startsWith(`dwrtc: session ${b.id} closed`)),
                  'a session without a user has a debug line only');
    });

    it('stub_status counts released sessions as writing until they end', async () => {
        const base = await stubStatus();
        const sessions = await openSessions(node.wsUrl(), 5, { label: 'idle' });
        for (const s of sessions) {
            await waitDebug(`dwrtc: session ${s.id}: request released`);
        }
        const st = await stubStatus();
        const seen = JSON.stringify({ base, st });
        assert.equal(st.active - base.active, 5, seen);
        assert.equal(st.writing - base.writing, 5, seen);
        assert.equal(st.waiting, base.waiting, seen);
        await Promise.all(sessions.map((s) => s.close()));
        for (const s of sessions) {
            await waitDebug(`dwrtc: session ${s.id} closed`);
        }
        const end = await stubStatus();
        assert.equal(end.writing, base.writing, JSON.stringify({ base, end }));
    });

    it('frees the large header buffers of a handshake with long headers', async () => {
        // over client_header_buffer_size (1k): nginx reads the headers into
        // large_client_header_buffers, which the release frees too
        const headers = { Cookie: `session=${'c'.repeat(3000)}`, 'X-Test-User': 'carol' };
        const big = await openSession(node.wsUrl('/named'), { label: 'long headers', headers });
        const peer = await openSession(node.wsUrl(), { label: 'peer' });
        await waitDebug(`dwrtc: session ${big.id}: request released`);
        assert.match(await waitUntil(() => linesOf(big.id)[0], { what: 'the line of big' }),
                     / user="carol"$/);
        await big.deliver(peer, 'headers gone');
        await peer.deliver(big, 'still here');
        await Promise.all([big.close(), peer.close()]);
        await waitDebug(`dwrtc: session ${big.id} closed`);
    });

    it('limit_conn: a session keeps its request to the end, and is logged at the handshake',
       async () => {
        const c = await openSession(node.wsUrl('/counted'), { label: 'counted' });
        await waitDebug(`dwrtc: session ${c.id} keeps its request: pool cleanup`);
        await waitUntil(() => linesOf(c.id)[0], { what: 'the line of the counted session' });
        await c.deliver(c, 'to myself');
        await c.close();
        await waitDebug(`dwrtc: session ${c.id} closed`);
        assert.ok(!debugHas(`dwrtc: session ${c.id}: request released`));
        assert.equal(linesOf(c.id).length, 1, 'logged once, at the handshake');
    });

    it('names the session in the error log lines of a released session', async () => {
        const fast = await openSession(node.wsUrl('/named'), { label: 'fast' });
        await waitDebug(`dwrtc: session ${fast.id}: request released`);
        for (let i = 0; i < 5; i++) {
            fast.to(fast, String(i));
        }
        await fast.waitError('rate limited');
        const l = await waitUntil(() => node.logLines().find(
            (x) => x.text.startsWith('dwrtc: client exceeds dwrtc_rate')
                   && x.text.includes(fast.id)), { what: 'the rate limit line' });
        assert.equal(l.level, 'info');
        assert.match(l.text, new RegExp(`while serving dwrtc session, client: 127\\.0\\.0\\.1, `
                                        + `server: \\S*, session: ${fast.id}$`));
        await fast.close();
    });

    it('ends released sessions: close handshake, client FIN, unanswered pings', async () => {
        const peer = await openSession(node.wsUrl(), { label: 'peer' });

        // our close frame answers the client's; then the server closes TCP
        const closing = await rawUpgrade(node.httpPort);
        await waitDebug(`dwrtc: session ${closing.id}: request released`);
        closing.write(frame({ opcode: OP.CLOSE, payload: closePayload(1000) }));
        assert.equal((await closing.waitClose()).code, 1000);
        await closing.waitEnd();
        await waitDebug(`dwrtc: session ${closing.id} closed`);

        // a client that goes away without a close frame
        const gone = await rawUpgrade(node.httpPort);
        await waitDebug(`dwrtc: session ${gone.id}: request released`);
        gone.destroy();
        await waitDebug(`dwrtc: session ${gone.id} closed`);
        peer.to(gone.id, 'anyone there?');
        await peer.waitError('not found');

        // a client that never answers pings: closed without a close frame
        const silent = await rawUpgrade(node.httpPort, { path: '/ping' });
        await waitDebug(`dwrtc: session ${silent.id}: request released`);
        await silent.waitFrame((f) => f.opcode === OP.PING, { what: 'a ping' });
        await silent.waitEnd();
        await waitDebug(`dwrtc: session ${silent.id} closed`);
        assert.ok(node.logLines().some((l) => l.level === 'info'
            && l.text.startsWith('dwrtc: client did not answer ping')
            && l.text.includes(silent.id)), 'the ping timeout is logged with the session');

        await peer.close();
        await waitUntil(async () => {
            const s = await stubStatus();
            return s.active === 1 && s.writing === 1;
        }, { what: 'only the status request left in stub_status' });
    });

    it('keeps the worker and logs no [alert], [crit] or [emerg]', async () => {
        assert.deepEqual(node.workerPids(), workers, 'the worker pid changed: a worker died');
        await node.quit();
        node.assertNoAlerts();
    });
});

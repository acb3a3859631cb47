// The WebSocket opening handshake at a dwrtc_signal location (RFC 6455,
// section 4): what gets 101, what gets refused and with which status.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { startNode } from '../lib/nginx.mjs';
import { openSession, rawRequest, rawUpgrade, handshakeRequest, terminateSessions, SESSION_ID }
    from '../lib/client.mjs';

const ALLOWED = 'https://app.example';

describe('the WebSocket handshake at dwrtc_signal', () => {
    let node, workers;

    before(async () => {
        node = await startNode({ name: 'handshake',
                                 signal: `dwrtc_allowed_origins ${ALLOWED} http://127.0.0.1;` });
        workers = node.workerPids();
    });

    after(() => {
        terminateSessions();
        return node?.stop();
    });

    /** Status of a hand-made handshake request (see handshakeRequest). */
    async function statusOf(opts) {
        const res = await rawRequest(node.httpPort,
                                     handshakeRequest({ port: node.httpPort, ...opts }));
        res.socket.destroy();
        return res;
    }

    it('answers a valid handshake with 101, the right Sec-WebSocket-Accept and a welcome',
       async () => {
        // rawUpgrade checks the status and the accept value
        const raw = await rawUpgrade(node.httpPort);
        assert.match(raw.response.headers.upgrade, /^websocket$/i);
        assert.match(raw.response.headers.connection, /upgrade/i);
        assert.equal(raw.response.headers['sec-websocket-extensions'], undefined,
                     'no extension was asked for, none may be accepted');
        assert.match(raw.id, SESSION_ID);
        raw.destroy();
    });

    it('accepts header names and tokens in any case', async () => {
        const res = await rawRequest(node.httpPort,
            handshakeRequest({ port: node.httpPort,
                               headers: { Upgrade: null, Connection: null,
                                          upgrade: 'WebSocket',
                                          connection: 'keep-alive, UPGRADE' } }));
        res.socket.destroy();
        assert.equal(res.status, 101);
    });

    it('refuses a handshake without Sec-WebSocket-Key with 400', async () => {
        assert.equal((await statusOf({ headers: { 'Sec-WebSocket-Key': null } })).status, 400);
    });

    it('refuses a Sec-WebSocket-Key that is not 16 bytes in base64 with 400', async () => {
        for (const key of ['short', Buffer.alloc(15).toString('base64'),
                           Buffer.alloc(17).toString('base64'), '!!!!!!!!!!!!!!!!!!!!!!=='])
        {
            assert.equal((await statusOf({ key })).status, 400, `key ${key}`);
        }
    });

    it('answers a plain GET with 426 Upgrade Required (or 400)', async () => {
        const res = await rawRequest(node.httpPort,
            `GET /signal HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
        res.socket.destroy();
        assert.ok([426, 400].includes(res.status), `status ${res.status}`);
        if (res.status === 426) {
            assert.match(res.headers.upgrade ?? '', /websocket/i,
                         '426 must say which protocol to upgrade to');
        }
    });

    it('refuses another WebSocket version with 400 or 426, naming version 13', async () => {
        const res = await statusOf({ headers: { 'Sec-WebSocket-Version': '8' } });
        assert.ok([400, 426].includes(res.status), `status ${res.status}`);
        assert.equal(res.headers['sec-websocket-version'], '13');
    });

    it('refuses a handshake that is not a GET, or not HTTP/1.1, with 400', async () => {
        assert.equal((await statusOf({ method: 'POST' })).status, 400);
        assert.equal((await statusOf({ version: 'HTTP/1.0' })).status, 400);
    });

    it('refuses "Upgrade" other than websocket, or "Connection" without upgrade, with 400',
       async () => {
        assert.equal((await statusOf({ headers: { Upgrade: 'h2c' } })).status, 400);
        assert.equal((await statusOf({ headers: { Connection: 'keep-alive' } })).status, 400);
    });

    it('refuses an Origin not in dwrtc_allowed_origins with 403', async () => {
        for (const origin of ['https://evil.example', 'https://app.example.evil',
                              'http://app.example', 'null']) {
            assert.equal((await statusOf({ headers: { Origin: origin } })).status, 403,
                         `origin ${origin}`);
        }
    });

    it('accepts an Origin in dwrtc_allowed_origins', async () => {
        const s = await openSession(node.wsUrl(), { origin: ALLOWED });
        const t = await openSession(node.wsUrl(), { origin: 'http://127.0.0.1' });
        await s.deliver(t, 'same network, two allowed origins');
        await Promise.all([s.close(), t.close()]);
    });

    it('keeps the worker and logs no [alert], [crit] or [emerg]', async () => {
        assert.deepEqual(node.workerPids(), workers, 'the worker pid changed: a worker died');
        await node.quit();
        node.assertNoAlerts();
    });
});

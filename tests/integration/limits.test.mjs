// The limit directives: a client over a limit is told so (or refused), the
// others are not disturbed, and the worker lives on.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { startNode, waitUntil } from '../lib/nginx.mjs';
import { openSession, openSessions, rawRequest, rawUpgrade, handshakeRequest, OP,
         terminateSessions } from '../lib/client.mjs';

describe('limits', () => {
    let node, workers;

    before(async () => {
        node = await startNode({
            name: 'limits',
            signal: 'dwrtc_rate off;',
            server: `
                location /slow {
                    dwrtc_signal;
                    dwrtc_rate 1 burst=5;
                }
                location /ping {
                    dwrtc_signal;
                    dwrtc_ping_interval 1s;
                }
                location /few {
                    dwrtc_signal;
                    dwrtc_rate off;
                    dwrtc_max_sessions 4;
                }`,
        });
        workers = node.workerPids();
    });

    after(() => {
        terminateSessions();
        return node?.stop();
    });

    it('answers messages over dwrtc_rate with "rate limited" and keeps the session', async () => {
        const fast = await openSession(node.wsUrl('/slow'), { label: 'fast' });
        const peer = await openSession(node.wsUrl(), { label: 'peer' });
        for (let i = 0; i < 30; i++) {
            fast.to(peer, String(i));
        }
        const e = await fast.waitError('rate limited');
        assert.equal(e.type, 'WebSocketErrorMessage');
        // the burst got through, in order, and not everything did
        const first = await peer.collect(5, (m) => m.senderSessionId === fast.id,
                                         { what: 'the burst' });
        assert.deepEqual(first.map((m) => m.messageBody), ['0', '1', '2', '3', '4']);
        await fast.ping();
        assert.equal(fast.closedWith, null, 'a fast client is slowed down, not dropped');
        // others are not limited by it
        await peer.deliver(fast, 'you are still here');
        await Promise.all([fast.close(), peer.close()]);
    });

    it('refuses handshakes over dwrtc_max_sessions with 503 and accepts again after a close',
       async () => {
        const sessions = await openSessions(node.wsUrl('/few'), 4);
        const res = await rawRequest(node.httpPort,
                                     handshakeRequest({ port: node.httpPort, path: '/few' }));
        res.socket.destroy();
        assert.equal(res.status, 503);
        await sessions[0].close();
        const again = await openSession(node.wsUrl('/few'));
        await again.deliver(sessions[1], 'room for one more');
        await Promise.all([again, ...sessions.slice(1)].map((s) => s.close()));
    });

    it('pings every dwrtc_ping_interval and drops a session that never answers', async () => {
        const raw = await rawUpgrade(node.httpPort, { path: '/ping' });
        const ping = await raw.waitFrame((f) => f.opcode === OP.PING,
                                         { timeout: 30_000, what: "the server's ping" });
        assert.ok(ping.fin);
        // no pong: the server gives up on the connection
        await raw.waitEnd({ timeout: 30_000 });
        raw.destroy();
        const peer = await openSession(node.wsUrl());
        peer.to(raw.id, 'gone?');
        assert.equal((await peer.waitError('not found')).recipientSessionId, raw.id);
        await peer.close();
    });

    it('keeps a session that answers the pings', async () => {
        const s = await openSession(node.wsUrl('/ping'));   // ws answers pings
        let pings = 0;
        s.ws.on('ping', () => { pings++; });
        await waitUntil(() => pings >= 3, { timeout: 60_000, what: 'three server pings' });
        assert.equal(s.closedWith, null);
        const peer = await openSession(node.wsUrl());
        await peer.deliver(s, 'still connected');
        await Promise.all([s.close(), peer.close()]);
    });

    it('closes a session that does not read with 1008 and tells the senders of what it '
       + 'could not take', async () => {
        const slow = await rawUpgrade(node.httpPort);
        slow.socket.pause();   // reads nothing more: the kernel buffers fill, then the node's
        const sender = await openSession(node.wsUrl(), { label: 'sender' });
        const body = 'x'.repeat(16 * 1024);
        const total = 2000;    // 32 MiB: more than the socket buffers and the 4 MiB output limit
        let answered = 0;
        const notFound = sender.waitFor((m) => m.error === 'not found'
                                        && m.recipientSessionId === slow.id,
                                        { timeout: 60_000, what: '"not found" for the slow session' });
        for (let i = 0; i < total; i++) {
            sender.to(slow.id, body);
            if (i % 100 === 99) {
                await sender.ping();   // keep the sender's own socket flowing
            }
        }
        await notFound;
        await waitUntil(() => node.logLines().some((l) => /does not read its messages .*1008/
                                                   .test(l.text)),
                        { what: 'the 1008 log line' });
        await sender.ping();   // what the node answered is in the inbox by now
        answered = 1 + sender.inbox.queue.filter((m) => m.error === 'not found').length;
        console.log(`# ${total} messages of 16 KiB to a session that reads nothing: `
                    + `closed with 1008, ${answered} answered "not found"`);
        slow.destroy();
        await sender.close();
    });

    it('keeps the worker and logs no [alert], [crit] or [emerg]', async () => {
        assert.deepEqual(node.workerPids(), workers, 'the worker pid changed: a worker died');
        await node.quit();
        node.assertNoAlerts();
    });
});

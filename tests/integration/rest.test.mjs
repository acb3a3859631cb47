// Sessions at rest keep no libwslay context: a session whose bytes so far
// end at a message boundary, with nothing queued, frees it, and a fresh one
// takes over when the client sends again, a message is delivered or a ping
// is due (module/ngx_http_dwrtc_session.c, ngx_http_dwrtc_ws_release()).
// Here clients rest at every point where a fresh context would lose state
// (inside a fragmented message, a frame header, a payload): the context
// must be kept there, freed after, and nothing may be lost either way.
// The worker's debug log says when a context is freed.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { startNode, waitUntil } from '../lib/nginx.mjs';
import { openSession, rawUpgrade, frame, OP, terminateSessions } from '../lib/client.mjs';

const MAX = 1024;   // dwrtc_max_message_size below

describe('sessions at rest', () => {
    let node, workers, bob;

    before(async () => {
        const logs = 'error_log error.log info;\nerror_log debug.log debug;';
        node = await startNode({
            name: 'rest',
            signal: `dwrtc_max_message_size ${MAX};\ndwrtc_rate off;\n${logs}`,
            server: `
                location /ping {
                    dwrtc_signal;
                    dwrtc_rate off;
                    dwrtc_ping_interval 1s;
                    ${logs}
                }`,
        });
        workers = node.workerPids();
        bob = await openSession(node.wsUrl(), { label: 'bob' });
    });

    after(() => {
        terminateSessions();
        return node?.stop();
    });

    /** How often the session's context was freed so far. */
    function freed(id) {
        const log = readFileSync(join(node.prefix, 'debug.log'), 'latin1');
        return log.split(`dwrtc: session ${id} at rest, context freed`).length - 1;
    }

    /** The connection number (the *N of the log lines) of a session. */
    function connectionOf(id) {
        const log = readFileSync(join(node.prefix, 'debug.log'), 'latin1');
        const m = log.match(new RegExp(`\\*(\\d+) dwrtc: session ${id} at rest`));
        assert.ok(m, `no log line names the connection of ${id}`);
        return m[1];
    }

    /**
     * Bytes the worker has read from connection number conn so far, and
     * whether the session's turn that read them is over (its "turn done"
     * line comes after the last read).
     */
    function readState(conn, id) {
        const log = readFileSync(join(node.prefix, 'debug.log'), 'latin1');
        let total = 0;
        let last = -1;
        for (const m of log.matchAll(new RegExp(`\\*${conn} recv: fd:\\d+ (\\d+) of`, 'g'))) {
            total += Number(m[1]);
            last = m.index;
        }
        const done = last >= 0 && log.indexOf(`dwrtc: session ${id}: turn done`, last) >= 0;
        return { total, done };
    }

    /**
     * Writes buf and waits until the worker has read all of it and finished
     * with it: the moment a client that then pauses leaves the session at
     * rest.
     */
    async function writeAndSettle(raw, buf) {
        const conn = connectionOf(raw.id);
        const before = readState(conn, raw.id).total;
        raw.write(buf);
        await waitUntil(() => {
            const { total, done } = readState(conn, raw.id);
            return total >= before + buf.length && done;
        }, { what: `the worker to read ${buf.length} bytes from ${raw.id} and finish` });
    }

    /** A raw session whose context was freed after its welcome. */
    async function restingSession() {
        const raw = await rawUpgrade(node.httpPort);
        raw.socket.setNoDelay(true);
        await waitUntil(() => freed(raw.id) >= 1,
                        { what: `the context of ${raw.id} to be freed after the welcome` });
        return raw;
    }

    function message(body, type = 'rest') {
        return Buffer.from(JSON.stringify({ type, recipientSessionId: bob.id,
                                            messageBody: body }));
    }

    async function assertDelivered(raw, body, type = 'rest') {
        const m = await bob.waitFor((m) => m.type === type && m.messageBody === body,
                                    { what: `${JSON.stringify(body)} from ${raw.id}` });
        assert.equal(m.senderSessionId, raw.id);
    }

    it('frees the context after the welcome, and sends, receives and pings after',
       async () => {
        const raw = await restingSession();
        raw.write(frame({ opcode: OP.TEXT, payload: message('after a rest') }));
        await assertDelivered(raw, 'after a rest');
        await waitUntil(() => freed(raw.id) >= 2, { what: 'the context freed again' });

        bob.to(raw.id, 'to a resting session');
        const m = await raw.waitMessage((m) => m.messageBody === 'to a resting session');
        assert.equal(m.senderSessionId, bob.id);
        await waitUntil(() => freed(raw.id) >= 3, { what: 'the context freed again' });

        raw.write(frame({ opcode: OP.PING, payload: 'still there?' }));
        const pong = await raw.waitFrame((f) => f.opcode === OP.PONG, { what: 'a pong' });
        assert.equal(pong.payload.toString(), 'still there?');
        raw.destroy();
    });

    it('keeps the context while a fragmented message goes on, pings between included',
       async () => {
        const raw = await restingSession();
        const bytes = message('one message in three fragments, with rests');
        const n0 = freed(raw.id);

        await writeAndSettle(raw, frame({ fin: false, opcode: OP.TEXT,
                                          payload: bytes.subarray(0, 12) }));
        await writeAndSettle(raw, frame({ opcode: OP.PING, payload: 'between' }));
        await raw.waitFrame((f) => f.opcode === OP.PONG, { what: 'a pong' });
        await writeAndSettle(raw, frame({ fin: false, opcode: OP.CONT,
                                          payload: bytes.subarray(12, 30) }));
        // an empty fragment: the message length alone cannot tell it goes on
        await writeAndSettle(raw, frame({ fin: false, opcode: OP.CONT, payload: '' }));
        assert.equal(freed(raw.id), n0, 'context freed inside a fragmented message');

        raw.write(frame({ opcode: OP.CONT, payload: bytes.subarray(30) }));
        await assertDelivered(raw, 'one message in three fragments, with rests');
        await waitUntil(() => freed(raw.id) > n0, { what: 'the context freed after it' });
        raw.destroy();
    });

    it('keeps the context while a frame header or a payload is half read', async () => {
        const raw = await restingSession();
        const f = frame({ opcode: OP.TEXT, payload: message('x'.repeat(300)) });
        const n0 = freed(raw.id);

        // 2 header bytes, 2 of the 16-bit length, 4 of the mask key
        for (const [from, to] of [[0, 1], [1, 3], [3, 6], [6, 100], [100, 200]]) {
            await writeAndSettle(raw, f.subarray(from, to));
            assert.equal(freed(raw.id), n0, `context freed after ${to} of ${f.length} bytes`);
        }

        raw.write(f.subarray(200));
        await assertDelivered(raw, 'x'.repeat(300));
        await waitUntil(() => freed(raw.id) > n0, { what: 'the context freed after it' });
        raw.destroy();
    });

    it('takes two messages in one read and one message cut after its frame', async () => {
        const raw = await restingSession();
        const a = frame({ opcode: OP.TEXT, payload: message('first of two') });
        const b = frame({ opcode: OP.TEXT, payload: message('second of two') });
        await writeAndSettle(raw, Buffer.concat([a, b.subarray(0, 5)]));
        await assertDelivered(raw, 'first of two');
        raw.write(b.subarray(5));
        await assertDelivered(raw, 'second of two');
        raw.destroy();
    });

    it('still closes with 1009 on a message over dwrtc_max_message_size after a rest',
       async () => {
        const raw = await restingSession();
        raw.write(frame({ opcode: OP.TEXT, length: MAX + 1 }).subarray(0, 8));
        assert.equal((await raw.waitClose()).code, 1009);
        await raw.waitEnd();
        raw.destroy();
    });

    it('pings a session at rest every interval, and it stays open', async () => {
        const s = await openSession(node.wsUrl('/ping'), { label: 'pinged' });
        const n0 = freed(s.id);
        // each ping (every second) makes a context, and its pong lets it go
        await waitUntil(() => freed(s.id) >= n0 + 2,
                        { what: 'two pings, each with its context freed after', timeout: 5000 });
        await s.deliver(bob, 'after pings');
        await s.close();
    });

    it('did not disturb the worker, and logged nothing at [alert], [crit] or [emerg]',
       async () => {
        await bob.ping();
        assert.deepEqual(node.workerPids(), workers, 'the worker pid changed: a worker died');
        await bob.close();
        await node.quit();
        node.assertNoAlerts();
    });
});

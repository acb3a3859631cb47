// RFC 6455 framing at a dwrtc_signal location of a real nginx: every
// violation gets its close code, legal but unusual framing works, and
// nothing a client sends disturbs other sessions or the worker.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { startNode } from '../lib/nginx.mjs';
import { openSession, rawUpgrade, frame, closePayload, OP, terminateSessions } from '../lib/client.mjs';

const MAX = 1024;   // dwrtc_max_message_size below

describe('WebSocket framing at dwrtc_signal', () => {
    let node, workers, alice, bob;

    before(async () => {
        node = await startNode({ name: 'framing',
                                 signal: `dwrtc_max_message_size ${MAX}; dwrtc_rate off;` });
        workers = node.workerPids();
        // bystanders: they talk before and after all the abuse below
        alice = await openSession(node.wsUrl(), { label: 'alice' });
        bob = await openSession(node.wsUrl(), { label: 'bob' });
        await alice.deliver(bob, 'before');
    });

    after(() => {
        terminateSessions();
        return node?.stop();
    });

    /** Opens a raw session, sends the frames, returns the server's close. */
    async function closeCodeFor(...frames) {
        const raw = await rawUpgrade(node.httpPort);
        try {
            for (const f of frames) {
                raw.write(f);
            }
            const close = await raw.waitClose();
            // after its close frame the server ends the connection
            await raw.waitEnd();
            return close.code;
        } finally {
            raw.destroy();
        }
    }

    it('closes with 1002 on an unmasked client frame', async () => {
        assert.equal(await closeCodeFor(frame({ opcode: OP.TEXT, payload: '{}', mask: false })),
                     1002);
    });

    it('closes with 1007 on a text message that is not UTF-8', async () => {
        assert.equal(await closeCodeFor(frame({ opcode: OP.TEXT,
                                                payload: Buffer.from([0x7b, 0xc3, 0x28, 0x7d]) })),
                     1007);
        // an overlong encoding of "/" and a lone surrogate are not UTF-8 either
        assert.equal(await closeCodeFor(frame({ opcode: OP.TEXT,
                                                payload: Buffer.from([0xc0, 0xaf]) })), 1007);
        assert.equal(await closeCodeFor(frame({ opcode: OP.TEXT,
                                                payload: Buffer.from([0xed, 0xa0, 0x80]) })),
                     1007);
    });

    it('closes with 1007 on invalid UTF-8 across fragments', async () => {
        // "€" is e2 82 ac; here its last byte is replaced by "("
        assert.equal(await closeCodeFor(
            frame({ fin: false, opcode: OP.TEXT, payload: Buffer.from([0x22, 0xe2, 0x82]) }),
            frame({ opcode: OP.CONT, payload: Buffer.from([0x28, 0x22]) })), 1007);
    });

    it('closes with 1009 on a declared length over dwrtc_max_message_size, '
       + 'before the payload is sent', async () => {
        // header only: the server must decide from the declared length
        assert.equal(await closeCodeFor(frame({ opcode: OP.TEXT, length: MAX + 1 })
            .subarray(0, 8)), 1009);
        // a 64-bit length of 1 TiB
        assert.equal(await closeCodeFor(frame({ opcode: OP.TEXT, length: 2 ** 40 })
            .subarray(0, 14)), 1009);
    });

    it('closes with 1009 when fragments add up to more than dwrtc_max_message_size', async () => {
        const part = 'x'.repeat(MAX / 2 + 10);
        assert.equal(await closeCodeFor(
            frame({ fin: false, opcode: OP.TEXT, payload: part }),
            frame({ fin: false, opcode: OP.CONT, payload: part }),
            frame({ opcode: OP.CONT, payload: part })), 1009);
    });

    it('accepts a message of exactly dwrtc_max_message_size', async () => {
        const raw = await rawUpgrade(node.httpPort);
        const envelope = JSON.stringify({ type: 'big', recipientSessionId: bob.id, messageBody: '' });
        const body = 'y'.repeat(MAX - envelope.length - 16);
        const text = JSON.stringify({ type: 'big', recipientSessionId: bob.id, messageBody: body });
        const padded = text.slice(0, -1) + ' '.repeat(MAX - text.length) + '}';
        assert.equal(Buffer.byteLength(padded), MAX);
        raw.write(frame({ opcode: OP.TEXT, payload: padded }));
        const m = await bob.waitFor((m) => m.type === 'big', { what: 'the largest message' });
        assert.equal(m.messageBody, body);
        assert.equal(m.senderSessionId, raw.id);
        raw.destroy();
    });

    it('closes with 1003 on a binary frame', async () => {
        assert.equal(await closeCodeFor(frame({ opcode: OP.BINARY, payload: '{}' })), 1003);
    });

    it('closes with 1002 on reserved bits (no extension was negotiated)', async () => {
        for (const rsv of [1, 2, 4]) {
            assert.equal(await closeCodeFor(frame({ rsv, opcode: OP.TEXT, payload: '{}' })), 1002,
                         `rsv bits ${rsv}`);
        }
    });

    it('closes with 1002 on a reserved opcode', async () => {
        for (const opcode of [0x3, 0x7, 0xb, 0xf]) {
            assert.equal(await closeCodeFor(frame({ opcode, payload: 'x' })), 1002,
                         `opcode ${opcode}`);
        }
    });

    it('closes with 1002 on a fragmented or over-long control frame', async () => {
        assert.equal(await closeCodeFor(frame({ fin: false, opcode: OP.PING, payload: 'x' })),
                     1002);
        assert.equal(await closeCodeFor(frame({ opcode: OP.PING, payload: 'p'.repeat(126) })),
                     1002);
    });

    it('closes with 1002 on a continuation without a start, or a new message inside one',
       async () => {
        assert.equal(await closeCodeFor(frame({ opcode: OP.CONT, payload: '{}' })), 1002);
        assert.equal(await closeCodeFor(
            frame({ fin: false, opcode: OP.TEXT, payload: '{' }),
            frame({ opcode: OP.TEXT, payload: '{}' })), 1002);
    });

    it('reassembles a fragmented message with a ping in between and answers the ping',
       async () => {
        const raw = await rawUpgrade(node.httpPort);
        const text = JSON.stringify({ type: 'pieces', recipientSessionId: bob.id,
                                      messageBody: 'one message — in three fragments' });
        const cut = [0, 10, 40, text.length];
        const bytes = Buffer.from(text);
        raw.write(frame({ fin: false, opcode: OP.TEXT, payload: bytes.subarray(cut[0], cut[1]) }));
        raw.write(frame({ opcode: OP.PING, payload: 'are you there' }));
        raw.write(frame({ fin: false, opcode: OP.CONT, payload: bytes.subarray(cut[1], cut[2]) }));
        raw.write(frame({ opcode: OP.PING, payload: '' }));
        raw.write(frame({ opcode: OP.CONT, payload: bytes.subarray(cut[2]) }));
        const pong = await raw.waitFrame((f) => f.opcode === OP.PONG, { what: 'a pong' });
        assert.equal(pong.payload.toString(), 'are you there');
        assert.ok(pong.fin, 'a pong is one frame');
        assert.equal((await raw.waitFrame((f) => f.opcode === OP.PONG, { what: 'a 2nd pong' }))
            .payload.length, 0);
        const m = await bob.waitFor((m) => m.type === 'pieces', { what: 'the reassembled message' });
        assert.deepEqual(m, { type: 'pieces', senderSessionId: raw.id, recipientSessionId: bob.id,
                              messageBody: 'one message — in three fragments' });
        raw.destroy();
    });

    it('answers a close frame with a close frame and ends the connection', async () => {
        const raw = await rawUpgrade(node.httpPort);
        raw.write(frame({ opcode: OP.CLOSE, payload: closePayload(1000, 'bye') }));
        const close = await raw.waitClose();
        assert.equal(close.code, 1000);
        await raw.waitEnd();
        // its session is gone: messages to it are "not found"
        alice.to(raw.id, 'hello?');
        assert.equal((await alice.waitError('not found')).recipientSessionId, raw.id);
    });

    it('closes with 1002 on a close frame with an invalid code', async () => {
        // 1005 and 1006 must never be sent; 999 is out of range
        for (const code of [999, 1005, 1006]) {
            assert.equal(await closeCodeFor(frame({ opcode: OP.CLOSE,
                                                    payload: closePayload(code) })), 1002,
                         `close code ${code}`);
        }
    });

    it('did not disturb other sessions or the worker', async () => {
        await alice.deliver(bob, 'after');
        await bob.deliver(alice, 'after too');
        await alice.ping();
        assert.deepEqual(node.workerPids(), workers, 'the worker pid changed: a worker died');
    });

    it('logs client mistakes below [error], and nothing at [alert], [crit] or [emerg]',
       async () => {
        const loud = node.logLines().filter((l) => ['error', 'crit', 'alert', 'emerg']
            .includes(l.level));
        assert.deepEqual(loud.map((l) => l.line), []);
        await alice.close();
        await bob.close();
        await node.quit();
        node.assertNoAlerts();
    });
});

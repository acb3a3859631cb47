// Three real nginx nodes on loopback, each its own DWRTC node, and browser-
// like WebSocket sessions on them: what the client protocol promises.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';

import { startNetwork } from '../lib/nginx.mjs';
import { openSession, nodeOf, randomSessionId, terminateSessions } from '../lib/client.mjs';

// The first message to a node not yet known costs a DHT lookup.
const ROUTE_WAIT = 60_000;

// Bodies that test "complete": quotes, escapes, non-ASCII, U+0000, sizes.
function body(seq) {
    const extras = ['', '"quoted" \\ back\\slash', 'naïve – ünïcödé 🎉', 'nul\u0000byte',
                    '{"sdp":"v=0\\r\\no=- 1 2 IN IP4 127.0.0.1\\r\\n"}', 'x'.repeat(seq % 1500)];
    return JSON.stringify({ seq, extra: extras[seq % extras.length],
                            noise: randomBytes(seq % 32).toString('base64') });
}

describe('a network of three nginx nodes', () => {
    let net;
    let n1, n2, n3;

    before(async () => {
        // dwrtc_rate off and a session's hold budget above the burst: the
        // burst below is the point, not the limits (budgets.test.mjs has those)
        net = await startNetwork(3, { name: 'route', signal: 'dwrtc_rate off;',
                                      http: 'dwrtc_session_hold 1024 4m;' });
        [n1, n2, n3] = net.nodes;
    });

    after(() => {
        terminateSessions();
        return net?.stop();
    });

    it('welcomes every session with an id that names its node', async () => {
        for (const node of net.nodes) {
            const s = await openSession(node.wsUrl());
            const ids = node.currentNodes().map((n) => n.nodeId);
            assert.ok(ids.includes(nodeOf(s.id)),
                      `session ${s.id} should start with its node's id (${ids.join(', ')})`);
            await s.close();
        }
    });

    it('delivers a 1,000-message burst to each cold node complete and in order', async () => {
        // a ring: each node's session sends to the next node's, all at once,
        // before any node has looked the others up
        const [a, b, c] = await Promise.all(net.nodes.map((n) => openSession(n.wsUrl())));
        const pairs = [[a, b], [b, c], [c, a]];
        const N = 1000;
        const sent = new Map();
        for (const [from, to] of pairs) {
            const bodies = [];
            for (let i = 0; i < N; i++) {
                bodies.push(body(i));
                from.to(to, bodies[i], 'burst');
            }
            sent.set(to, bodies);
        }
        await Promise.all(pairs.map(async ([from, to]) => {
            const got = await from.unlessErrorFor(to.id, to.collect(
                N, (m) => m.type === 'burst',
                { timeout: ROUTE_WAIT, what: `burst from ${from.label}` }));
            const bodies = sent.get(to);
            for (let i = 0; i < N; i++) {
                assert.deepEqual(got[i], {
                    type: 'burst', senderSessionId: from.id, recipientSessionId: to.id,
                    messageBody: bodies[i],
                }, `message ${i} from ${from.label} to ${to.label}`);
            }
        }));
        // no sender got an error back
        for (const s of [a, b, c]) {
            assert.equal(s.inbox.queue.length, 0,
                         `${s.label} has unexpected messages: ${JSON.stringify(s.inbox.queue[0])}`);
        }
        await Promise.all([a, b, c].map((s) => s.close()));
    });

    it('delivers messages between sessions of one node in order', async () => {
        const [a, b] = await Promise.all([openSession(n2.wsUrl()), openSession(n2.wsUrl())]);
        const N = 200;
        const bodies = Array.from({ length: N }, (_, i) => body(i));
        for (let i = 0; i < N; i++) {
            a.to(b, bodies[i], 'local');
            b.to(a, bodies[i], 'local');
        }
        for (const [from, to] of [[a, b], [b, a]]) {
            const got = await to.collect(N, (m) => m.type === 'local', { what: 'local messages' });
            got.forEach((m, i) => assert.deepEqual(m, {
                type: 'local', senderSessionId: from.id, recipientSessionId: to.id,
                messageBody: bodies[i],
            }, `local message ${i} to ${to.label}`));
        }
        await Promise.all([a.close(), b.close()]);
    });

    it('stamps the sender: a client-supplied senderSessionId is ignored', async () => {
        const a = await openSession(n1.wsUrl());
        const local = await openSession(n1.wsUrl());
        const remote = await openSession(n3.wsUrl());
        const victim = await openSession(n2.wsUrl());
        for (const to of [local, remote]) {
            a.send({ type: 'forged', recipientSessionId: to.id, messageBody: 'who am I',
                     senderSessionId: victim.id });
            // and with the field first, in case a parser keeps the first
            a.sendText(`{"senderSessionId":"${victim.id}","type":"forged2",`
                       + `"recipientSessionId":"${to.id}","messageBody":"who am I"}`);
            for (const type of ['forged', 'forged2']) {
                const m = await a.unlessErrorFor(to.id, to.waitFor(
                    (m) => m.type === type, { timeout: ROUTE_WAIT, what: `the ${type} message` }));
                assert.deepEqual(m, { type, senderSessionId: a.id, recipientSessionId: to.id,
                                      messageBody: 'who am I' });
            }
        }
        await Promise.all([a, local, remote, victim].map((s) => s.close()));
    });

    it('answers "not found" for an unknown session on this node and on another node', async () => {
        const a = await openSession(n1.wsUrl());
        const b = await openSession(n2.wsUrl());
        // same node ids, other random bits: the node is real, the session is not
        const unknownHere = randomSessionId(nodeOf(a.id));
        const unknownThere = randomSessionId(nodeOf(b.id));
        for (const r of [unknownHere, unknownThere]) {
            a.to(r, 'anyone?');
            const e = await a.waitError('not found', { timeout: ROUTE_WAIT,
                                                       what: `"not found" for ${r}` });
            assert.deepEqual(e, { type: 'WebSocketErrorMessage', error: 'not found',
                                  recipientSessionId: r });
        }
        await Promise.all([a.close(), b.close()]);
    });

    it('answers "unreachable", not "not found", for a session on a node whose record '
       + 'never appears', async () => {
        // The node may be one that has just started: only a node can say
        // that a session does not exist.
        const a = await openSession(n3.wsUrl());
        const r = randomSessionId();
        const sent = Date.now();
        a.to(r, 'anyone?');
        const e = await a.waitFor((m) => m.type === 'WebSocketErrorMessage',
                                  { timeout: ROUTE_WAIT, what: `the answer for ${r} (no such node)` });
        assert.deepEqual(e, { type: 'WebSocketErrorMessage', error: 'unreachable',
                              recipientSessionId: r });
        assert.ok(Date.now() - sent >= 5000, 'the answer comes after dwrtc_lookup_wait (5 s)');
        // the session is still usable afterwards
        const b = await openSession(n1.wsUrl());
        await a.deliver(b, 'still here', { timeout: ROUTE_WAIT });
        await Promise.all([a.close(), b.close()]);
    });

    it('answers "not found" for a session that closed, on this node and on another', async () => {
        const a = await openSession(n1.wsUrl());
        for (const node of [n1, n2]) {
            const gone = await openSession(node.wsUrl());
            await a.deliver(gone, 'before', { timeout: ROUTE_WAIT });
            await gone.close();
            a.to(gone, 'after');
            const e = await a.waitError('not found', { timeout: ROUTE_WAIT,
                                                       what: `"not found" for closed ${gone.id}` });
            assert.equal(e.recipientSessionId, gone.id);
        }
        await a.close();
    });

    it('answers invalid messages with "invalid message: ..." and keeps the session', async () => {
        const a = await openSession(n1.wsUrl());
        const b = await openSession(n2.wsUrl());
        const R = b.id;
        const cases = [
            ['not JSON', 'hello', /JSON/i],
            ['truncated JSON', '{"type":"x","recipientSessionId":', /JSON/i],
            ['a JSON array', '[1,2,3]', /object/i],
            ['a JSON string', '"text"', /object/i],
            ['no type', { recipientSessionId: R, messageBody: 'x' }, /type/],
            ['a numeric type', { type: 7, recipientSessionId: R, messageBody: 'x' }, /type/],
            ['an empty type', { type: '', recipientSessionId: R, messageBody: 'x' }, /type/],
            ['a type reserved for the node',
             { type: 'WebSocketIdMessage', recipientSessionId: R, messageBody: 'x' }, /reserved/],
            ['a reserved error type',
             { type: 'WebSocketErrorMessage', recipientSessionId: R, messageBody: 'x' }, /reserved/],
            ['no recipient', { type: 'x', messageBody: 'x' }, /recipientSessionId/],
            ['a recipient that is not a session id',
             { type: 'x', recipientSessionId: 'bob', messageBody: 'x' }, /recipientSessionId/],
            ['a numeric recipient', { type: 'x', recipientSessionId: 42, messageBody: 'x' },
             /recipientSessionId/],
            ['no body', { type: 'x', recipientSessionId: R }, /messageBody/],
            ['an object body', { type: 'x', recipientSessionId: R, messageBody: { sdp: 1 } },
             /messageBody/],
            ['a duplicated key',
             `{"type":"x","type":"y","recipientSessionId":"${R}","messageBody":"x"}`,
             /duplicate/i],
        ];
        for (const [what, msg, why] of cases) {
            if (typeof msg === 'string') {
                a.sendText(msg);
            } else {
                a.send(msg);
            }
            const e = await a.waitFor((m) => m.type === 'WebSocketErrorMessage',
                                      { what: `the error for ${what}` });
            assert.match(e.error ?? '', /^invalid message: /, `error for ${what}`);
            assert.match(e.error, why, `error for ${what} says why`);
        }
        // the session lives on: a valid message still goes through, both ways
        await a.deliver(b, 'valid after all that', { timeout: ROUTE_WAIT });
        await b.deliver(a, 'reply', { timeout: ROUTE_WAIT });
        // and the recipient never saw the invalid ones
        assert.equal(b.inbox.queue.length, 0,
                     `unexpected message at the recipient: ${JSON.stringify(b.inbox.queue[0])}`);
        await Promise.all([a.close(), b.close()]);
    });

    it('keeps every worker alive and stops cleanly: nginx -s quit leaves no process '
       + 'and no [alert], [crit] or [emerg]', async () => {
        for (const node of net.nodes) {
            assert.equal(node.workerPids().length, 1, `${node.name} lost its worker`);
            assert.deepEqual(node.workerPids(), [...node.nodes().keys()],
                             `${node.name}: the worker that started the node still runs`);
        }
        await Promise.all(net.nodes.map((node) => node.quit()));
        net.assertNoAlerts();
    });
});

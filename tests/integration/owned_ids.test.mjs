// Key-owned ids through real nginx nodes: dwrtc.js (in Node.js, on `ws`)
// owns an id by a WebCrypto key, keeps it across reconnects and nodes, and
// gets what was sent to it while it was away, in order. The unchanged
// original client's node-assigned ids work beside them.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';

import { startNetwork, NginxNode } from '../lib/nginx.mjs';
import { openSession, terminateSessions, SESSION_ID, until } from '../lib/client.mjs';
import { DwrtcClient, ErrorCode, generateIdentity, isOwnedId, ownedIdOf }
    from '../../web/dwrtc.js';

const WAIT = 30_000;

// A dwrtc.js client that records every message and error it gets.
function keyClient(identity) {
    const client = new DwrtcClient({ WebSocket, identity, backoff: { initial: 100 } });
    client.got = [];
    client.errors = [];
    client.addEventListener('message', (e) => client.got.push(e.detail));
    client.addEventListener('error', (e) => client.errors.push(e.detail.error));
    return client;
}

describe('key-owned ids on three nginx nodes', () => {
    let net;
    let n1, n2, n3;
    const clients = [];

    before(async () => {
        net = await startNetwork(3, { name: 'owned', signal: 'dwrtc_rate off;',
                                      http: 'dwrtc_hold 64 20s;',
                                      server: 'location = /status { dwrtc_status; }' });
        [n1, n2, n3] = net.nodes;
    });

    after(async () => {
        for (const c of clients) {
            c.close();
        }
        terminateSessions();
        await net?.stop();
    });

    it('owns the id its key gives, and is reached by it from another node', async () => {
        const key = await generateIdentity();
        const alice = keyClient(key);
        clients.push(alice);
        const id = await alice.connect(n1.wsUrl());
        assert.equal(id, await ownedIdOf(key));
        assert.ok(isOwnedId(id), id);
        assert.equal(alice.id, id);
        assert.match(alice.nodeId, /^[0-9a-f]{32}$/);

        // The original client's session: a node-assigned id, as ever.
        const bob = await openSession(n3.wsUrl());
        assert.match(bob.id, SESSION_ID);
        bob.to(id, 'hello alice');
        await until(() => alice.got.length === 1, 'the message to alice');
        assert.equal(alice.got[0].messageBody, 'hello alice');
        assert.equal(alice.got[0].recipientSessionId, id);
        assert.equal(alice.got[0].senderSessionId, bob.id);

        // Her answer comes from her owned id, proven by her key to node 3.
        alice.send('test', bob.id, 'hi bob');
        const answer = await bob.waitFrom(id, { timeout: WAIT });
        assert.equal(answer.messageBody, 'hi bob');
        alice.close();
        await bob.close();
    });

    it('keeps its id across a reconnect to another node, and gets what waited, in order',
       async () => {
        const key = await generateIdentity();
        const first = keyClient(key);
        clients.push(first);
        const id = await first.connect(n1.wsUrl());
        const bob = await openSession(n3.wsUrl());
        bob.to(id, 'before');
        await until(() => first.got.length === 1, 'the first message');

        first.close();
        const sent = [];
        for (let i = 0; i < 10; i++) {
            sent.push(`away ${i}`);
            bob.to(id, sent[i]);
        }
        await new Promise((r) => setTimeout(r, 500));

        const again = keyClient(key);
        clients.push(again);
        const back = await again.connect(n2.wsUrl());
        const openedAt = Date.now();
        assert.equal(back, id, 'the same id on another node');
        await until(() => again.got.length >= sent.length,
                    () => `the held messages (got ${JSON.stringify(again.got)}, bob got `
                          + `${JSON.stringify(bob.inbox.queue)})`);
        const firstDelivery = Date.now() - openedAt;
        console.log(`reconnect to another node: first held message ${firstDelivery} ms `
                    + 'after the welcome');
        await new Promise((r) => setTimeout(r, 300));
        assert.deepEqual(again.got.map((m) => m.messageBody), sent, 'each once, in order');
        assert.ok(!bob.inbox.queue.some((m) => m.type === 'WebSocketErrorMessage'),
                  `bob was told of no failure: ${JSON.stringify(bob.inbox.queue)}`);
        again.close();
        await bob.close();
    });

    it('keeps its id across a reconnect to the same node', async () => {
        const key = await generateIdentity();
        const first = keyClient(key);
        clients.push(first);
        const id = await first.connect(n2.wsUrl());
        const carol = await openSession(n2.wsUrl());
        carol.to(id, 'one');
        await until(() => first.got.length === 1, 'the first message');
        first.close();
        carol.to(id, 'two');
        carol.to(id, 'three');
        const again = keyClient(key);
        clients.push(again);
        assert.equal(await again.connect(n2.wsUrl()), id);
        await until(() => again.got.length >= 2, 'the held messages');
        assert.deepEqual(again.got.map((m) => m.messageBody), ['two', 'three']);
        again.close();
        await carol.close();
    });

    it('tells a sender "not back in time" when the id stays away', async () => {
        const key = await generateIdentity();
        const gone = keyClient(key);
        clients.push(gone);
        const id = await gone.connect(n1.wsUrl());
        const dave = await openSession(n3.wsUrl());
        dave.to(id, 'hi');
        await until(() => gone.got.length === 1, 'the first message');
        gone.close();
        dave.to(id, 'are you there?');
        const error = await dave.waitError(ErrorCode.NOT_BACK_IN_TIME, { timeout: 40_000 });
        assert.equal(error.recipientSessionId, id);
        await dave.close();
    });

    it('refuses a claim that does not hold, and the session goes on as itself', async () => {
        const s = await openSession(n1.wsUrl());
        assert.match(s.welcome.challenge, /^[0-9a-f]{32}$/);
        assert.equal(typeof s.welcome.time, 'number');
        const mallory = await generateIdentity();
        const raw = Buffer.from(await crypto.subtle.exportKey('raw', mallory.publicKey));
        s.send({ type: 'WebSocketClaimMessage', key: raw.toString('hex'), time: s.welcome.time,
                 signature: '00'.repeat(64) });
        const refused = await s.waitError(/^claim refused: /);
        assert.equal(refused.error, 'claim refused: the signature does not hold');
        const other = await openSession(n2.wsUrl());
        await s.deliver(other, 'still me');
        await s.close();
        await other.close();
    });

    it('closes a session whose claims keep being refused, with 1008 and one log line',
       async () => {
        const claimsRefused = async () => {
            const st = await (await fetch(n2.httpUrl('/status'))).json();
            return st.workers.reduce((n, w) => n + w.bounds.claims_refused, 0);
        };
        const refusedBefore = await claimsRefused();
        const s = await openSession(n2.wsUrl());
        const mallory = await generateIdentity();
        const raw = Buffer.from(await crypto.subtle.exportKey('raw', mallory.publicKey));
        const bad = { type: 'WebSocketClaimMessage', key: raw.toString('hex'),
                      time: s.welcome.time, signature: '00'.repeat(64) };
        // Two refusals in a row: the session stays (dwrtc_claims 6 3).
        s.send(bad);
        s.send(bad);
        await s.waitError(/^claim refused: /);
        await s.waitError(/^claim refused: /);
        // A claim dated a day ahead is refused as well, and is the third:
        // the close says why (its error may not be written before it).
        s.send({ ...bad, time: s.welcome.time + 86_400_000 });
        const closed = await s.closed;
        assert.deepEqual(closed, { code: 1008, reason: 'claims refused' });
        await until(() => n2.errorLog().includes('claims were refused too often'),
                    'the log line');
        assert.equal(n2.errorLog().split('claims were refused too often').length - 1, 1);
        // The status page counts each refusal (its counters are written
        // every quarter second).
        await until(async () => await claimsRefused() === refusedBefore + 3,
                    'bounds.claims_refused to count the three');
    });

    it('lets a newer session take the id over and tells the older one', async () => {
        const key = await generateIdentity();
        const older = keyClient(key);
        const newer = keyClient(key);
        clients.push(older, newer);
        const id = await older.connect(n3.wsUrl());
        assert.equal(await newer.connect(n3.wsUrl()), id);
        await until(() => older.errors.includes(ErrorCode.TAKEN_OVER), 'the older one is told');
        const erin = await openSession(n1.wsUrl());
        erin.to(id, 'to the newer one');
        await until(() => newer.got.length === 1, 'the message to the newer session');
        assert.equal(older.got.length, 0);
        older.close();
        newer.close();
        await erin.close();
    });

    it('logs nothing at [alert], [crit] or [emerg]', () => {
        net.assertNoAlerts();
    });
});

describe('dwrtc_hold', () => {
    for (const [value, expect] of [
        ['0 10s', /"dwrtc_hold" messages must be from 1 to 100000/],
        ['10 50ms', /"dwrtc_hold" time must be from 100ms to 1h/],
        ['10', /takes MESSAGES TIME, or off/],
    ]) {
        it(`refuses "dwrtc_hold ${value}" at nginx -t`, () => {
            const node = new NginxNode({ name: 'hold', httpPort: 1, dhtPorts: [1, 1],
                                         linkPorts: [2, 2], http: `dwrtc_hold ${value};` });
            const t = node.configTest();
            assert.ok(!t.ok, 'nginx -t should fail');
            assert.match(t.output, expect);
        });
    }

    it('takes "off" and "16 5s"', () => {
        for (const value of ['off', '16 5s']) {
            const node = new NginxNode({ name: 'hold', httpPort: 1, dhtPorts: [1, 1],
                                         linkPorts: [2, 2], http: `dwrtc_hold ${value};` });
            const t = node.configTest();
            assert.ok(t.ok, t.output);
        }
    });
});

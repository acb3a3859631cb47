// End-to-end encryption of messages between key-owned ids (dwrtc.js's e2e
// option), through real nginx nodes: dwrtc.js in Node.js, on `ws` wrapped
// so that the test sees every frame a client's socket sends and receives,
// which is all that the nodes relay. The plain text is in no frame, only in
// the 'message' event; a changed bit, a replayed message and a key
// announcement that does not hold are refused by the receiver and never
// delivered; a new instance of a client (a reload) has a salt of its own.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';

import { startNetwork, REPO } from '../lib/nginx.mjs';
import { openSession, terminateSessions, until } from '../lib/client.mjs';
import { DwrtcClient, ErrorCode, generateIdentity, ownedIdOf } from '../../web/dwrtc.js';

const WAIT = 30_000;
const DWRTC_JS = fileURLToPath(new URL('../../web/dwrtc.js', import.meta.url));
const run = promisify(execFile);
const KEY_TYPE = 'DwrtcE2eKey';
const MESSAGE_TYPE = 'DwrtcE2eMessage';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// A WebSocket class that records what its sockets send and receive, and
// lets a test change an outgoing frame (`wire.tamper`) or send a raw one
// past dwrtc.js (`wire.raw`).
function recordingSocket(wire) {
    return class RecordingSocket extends WebSocket {
        constructor(url) {
            super(url);
            wire.socket = this;
            this.addEventListener('message', (e) => wire.received.push(String(e.data)));
        }

        send(data) {
            const out = wire.tamper ? wire.tamper(data) : data;
            wire.sent.push(out);
            super.send(out);
        }
    };
}

// A dwrtc.js client on a recording socket, with what it got and was told.
function client(identity, options = {}) {
    const wire = { sent: [], received: [], tamper: null, socket: null };
    const c = new DwrtcClient({ WebSocket: recordingSocket(wire), identity,
                                backoff: { initial: 100 }, ...options });
    c.wire = wire;
    wire.raw = (msg) => WebSocket.prototype.send.call(wire.socket, JSON.stringify(msg));
    c.got = [];
    c.errors = [];
    c.addEventListener('message', (e) => c.got.push(e.detail));
    c.addEventListener('error', (e) => c.errors.push(e.detail));
    return c;
}

const parsed = (frames) => frames.map((f) => JSON.parse(f));
const ofType = (frames, type) => parsed(frames).filter((m) => m.type === type);

describe('end-to-end encryption between key-owned ids, on two nginx nodes', () => {
    let net;
    let n1, n2;
    const clients = [];

    // Two e2e clients on different nodes that have keyed each other.
    async function pair(options = {}) {
        const a = client(await generateIdentity(), { e2e: true, ...options });
        const b = client(await generateIdentity(), { e2e: true, ...options });
        clients.push(a, b);
        await Promise.all([a.connect(n1.wsUrl()), b.connect(n2.wsUrl())]);
        a.send('hello', b.id, 'first');
        await until(() => b.got.length === 1, 'the first message');
        return [a, b];
    }

    before(async () => {
        net = await startNetwork(2, { name: 'e2e', signal: 'dwrtc_rate off;',
                                      http: 'dwrtc_hold 64 20s;' });
        [n1, n2] = net.nodes;
    });

    after(async () => {
        for (const c of clients) {
            c.close();
        }
        terminateSessions();
        await net?.stop();
    });

    it('relays ciphertext: the plain text and its type are only in the message event',
       async () => {
        const [alice, bob] = await pair();
        const secret = 'the plans are under the mat 7c1f';
        alice.send('chat', bob.id, secret);
        bob.send('chat', alice.id, { reply: 'got it 93ab' });
        await until(() => bob.got.length === 2 && alice.got.length === 1, 'both messages');

        assert.deepEqual(bob.got[1], { type: 'chat', senderSessionId: alice.id,
                                       recipientSessionId: bob.id, messageBody: secret,
                                       encrypted: true });
        assert.equal(alice.got[0].messageBody, '{"reply":"got it 93ab"}');
        assert.equal(alice.got[0].encrypted, true);

        // what went through the nodes, both ways
        const frames = [...alice.wire.sent, ...alice.wire.received,
                        ...bob.wire.sent, ...bob.wire.received];
        for (const text of [secret, 'got it 93ab', 'first', '"chat"', '"hello"']) {
            assert.ok(!frames.some((f) => f.includes(text)), `${text} is in no frame`);
        }
        const toBob = ofType(alice.wire.sent, MESSAGE_TYPE);
        assert.equal(toBob.length, 2, 'two messages went to bob, each as ciphertext');
        const atBob = ofType(bob.wire.received, MESSAGE_TYPE);
        assert.deepEqual(atBob.map((m) => m.messageBody), toBob.map((m) => m.messageBody),
                         'bob received the ciphertext alice sent, unchanged');
        for (const m of toBob) {
            const envelope = JSON.parse(m.messageBody);
            assert.deepEqual(Object.keys(envelope).sort(), ['ct', 'from', 'n', 'to', 'v']);
            assert.match(envelope.from, /^[0-9a-f]{32}$/);
            assert.match(envelope.to, /^[0-9a-f]{32}$/);
            assert.match(envelope.ct, /^[A-Za-z0-9+/]+=*$/);
        }
        // every message of an instance has its own counter
        const counters = toBob.map((m) => JSON.parse(m.messageBody).n);
        assert.deepEqual(counters, [0, 1]);
        // the keys were exchanged as signed announcements
        assert.deepEqual(ofType(alice.wire.sent, KEY_TYPE).map((m) => JSON.parse(m.messageBody).op),
                         ['request']);
        assert.deepEqual(ofType(bob.wire.sent, KEY_TYPE).map((m) => JSON.parse(m.messageBody).op),
                         ['response']);
        assert.deepEqual(alice.errors, []);
        assert.deepEqual(bob.errors, []);
    });

    it('refuses a message with a flipped bit, does not deliver it, and takes the next one',
       async () => {
        const [alice, bob] = await pair();
        alice.wire.tamper = (data) => {
            const msg = JSON.parse(data);
            if (msg.type !== MESSAGE_TYPE) {
                return data;
            }
            alice.wire.tamper = null;       // this frame only
            const envelope = JSON.parse(msg.messageBody);
            const ct = Buffer.from(envelope.ct, 'base64');
            ct[3] ^= 0x10;
            envelope.ct = ct.toString('base64');
            return JSON.stringify({ ...msg, messageBody: JSON.stringify(envelope) });
        };
        alice.send('chat', bob.id, 'altered on the way');
        alice.send('chat', bob.id, 'arrives as sent');
        await until(() => bob.got.length === 2, 'the good message');
        assert.equal(bob.got[1].messageBody, 'arrives as sent');
        assert.ok(!bob.got.some((m) => m.messageBody === 'altered on the way'));
        assert.equal(bob.errors.length, 1, JSON.stringify(bob.errors));
        const [refused] = bob.errors;
        assert.equal(refused.error, ErrorCode.E2E_REFUSED);
        assert.equal(refused.senderSessionId, alice.id);
        assert.match(refused.reason, /does not decrypt/);
        assert.equal(refused.message.type, MESSAGE_TYPE, 'the refused frame comes with it');
    });

    it('refuses a replayed message', async () => {
        const [alice, bob] = await pair();
        alice.send('pay', bob.id, '10 coins');
        await until(() => bob.got.length === 2, 'the message');
        const [sent] = ofType(alice.wire.sent, MESSAGE_TYPE).slice(-1);
        alice.wire.raw({ type: sent.type, recipientSessionId: sent.recipientSessionId,
                         messageBody: sent.messageBody });
        await until(() => bob.errors.length === 1, 'the replay to be refused');
        assert.equal(bob.errors[0].error, ErrorCode.E2E_REFUSED);
        assert.equal(bob.errors[0].reason, 'replayed');
        alice.send('pay', bob.id, 'and 1 more');
        await until(() => bob.got.length === 3, 'the next message');
        assert.deepEqual(bob.got.map((m) => m.messageBody), ['first', '10 coins', 'and 1 more'],
                         'the replayed one was not delivered');
    });

    it('refuses key announcements whose key is not the sender\'s or whose signature does '
       + 'not hold', async () => {
        const victim = client(await generateIdentity(), { e2e: true });
        // mallory owns an id, speaks no e2e, and sends announcements by hand
        const malloryKey = await generateIdentity();
        const mallory = client(malloryKey);
        const eve = await generateIdentity();
        clients.push(victim, mallory);
        await Promise.all([victim.connect(n1.wsUrl()), mallory.connect(n2.wsUrl())]);

        const hex = (b) => Buffer.from(b).toString('hex');
        const raw = async (pair) => hex(await crypto.subtle.exportKey('raw', pair.publicKey));
        const ecdh = await crypto.subtle.generateKey({ name: 'ECDH', namedCurve: 'P-256' },
                                                     false, ['deriveBits']);
        const ecdhHex = await raw(ecdh);
        const salt = hex(crypto.getRandomValues(new Uint8Array(16)));
        const sign = async (signer, id) => hex(await crypto.subtle.sign(
            { name: 'ECDSA', hash: 'SHA-256' }, signer.privateKey,
            new TextEncoder().encode(`dwrtc-e2e-key-v1\n${id}\n${ecdhHex}\n${salt}\n`)));
        const announce = (key, signature) => mallory.send(KEY_TYPE, victim.id, JSON.stringify(
            { v: 1, op: 'request', key, ecdh: ecdhHex, salt, signature }));

        // eve's key, rightly signed by eve: but it does not give mallory's id
        announce(await raw(eve), await sign(eve, await ownedIdOf(eve)));
        // mallory's key, signed by eve
        announce(await raw(malloryKey), await sign(eve, mallory.id));
        // and the real thing, so that the test sees the refusals were not for nothing
        announce(await raw(malloryKey), await sign(malloryKey, mallory.id));

        await until(() => mallory.got.length === 1, 'an answer to the good announcement');
        assert.deepEqual(victim.errors.map((e) => [e.error, e.senderSessionId, e.reason]), [
            [ErrorCode.E2E_REFUSED, mallory.id,
             'key announcement refused: its key does not give the sender\'s id'],
            [ErrorCode.E2E_REFUSED, mallory.id,
             'key announcement refused: its signature does not hold'],
        ]);
        assert.deepEqual(ofType(victim.wire.sent, KEY_TYPE).map((m) => JSON.parse(m.messageBody).op),
                         ['response'], 'only the good announcement was answered');
        assert.equal(mallory.got[0].type, KEY_TYPE);
        assert.ok(!victim.got.length, 'nothing was delivered to the victim\'s app');
    });

    it('gives a new instance of a client (a reload) a salt of its own, and what was sent '
       + 'to the old one arrives at the new one', async () => {
        const key = await generateIdentity();
        const alice = client(key, { e2e: true });
        const bob = client(await generateIdentity(), { e2e: true });
        clients.push(alice, bob);
        await Promise.all([alice.connect(n1.wsUrl()), bob.connect(n2.wsUrl())]);
        alice.send('hello', bob.id, 'from the first instance');
        await until(() => bob.got.length === 1, 'the first instance\'s message');
        const aliceId = alice.id;
        alice.close();

        const again = client(key, { e2e: true });
        clients.push(again);
        assert.equal(await again.connect(n1.wsUrl()), aliceId, 'the same id');
        // bob knows only the first instance's keys: his message is for it
        bob.send('chat', again.id, 'sent to the old instance');
        await until(() => again.got.length === 1, 'the message, sent again under the new keys');
        assert.equal(again.got[0].messageBody, 'sent to the old instance');
        assert.equal(again.got[0].encrypted, true);
        assert.deepEqual(again.errors, []);
        assert.deepEqual(bob.errors, []);

        const announced = (c) => ofType(c.wire.sent, KEY_TYPE).map((m) => JSON.parse(m.messageBody));
        const [one] = announced(alice);
        const [two] = announced(again);
        assert.equal(one.op, 'request');
        assert.equal(two.op, 'rekey', 'the new instance asked for what it could not read');
        assert.equal(one.key, two.key, 'the same identity key');
        assert.notEqual(one.salt, two.salt, 'each instance has its own salt');
        assert.notEqual(one.ecdh, two.ecdh, 'and its own ECDH key');
        // bob's message to alice's id went twice: under the old instance's
        // salt, then again under the new one's, with a new counter
        const toAlice = ofType(bob.wire.sent, MESSAGE_TYPE).map((m) => JSON.parse(m.messageBody));
        assert.deepEqual(toAlice.map((e) => e.to), [one.salt, two.salt]);
        assert.ok(toAlice[1].n > toAlice[0].n, 'a nonce is never used twice');
        // and what alice's instances sent bob: each under its own salt
        const fromAlice = ofType(bob.wire.received, MESSAGE_TYPE)
            .map((m) => JSON.parse(m.messageBody).from);
        assert.deepEqual(fromAlice, [one.salt]);
    });

    it('fails a message to a key-owned peer that speaks no e2e with "no e2e key"', async () => {
        const sender = client(await generateIdentity(), { e2e: true, e2eKeyTimeout: 1000 });
        const plain = client(await generateIdentity());
        clients.push(sender, plain);
        await Promise.all([sender.connect(n1.wsUrl()), plain.connect(n2.wsUrl())]);
        sender.send('chat', plain.id, 'never in plaintext');
        sender.send('chat', plain.id, 'nor this');
        await until(() => sender.errors.length === 1, 'the error');
        assert.equal(sender.errors[0].error, ErrorCode.E2E_NO_KEY);
        assert.equal(sender.errors[0].recipientSessionId, plain.id);
        assert.equal(sender.errors[0].count, 2);
        assert.match(sender.errors[0].reason, /no answer within 1000 ms/);
        // the peer saw the key request as a message, and nothing else
        assert.deepEqual(plain.got.map((m) => m.type), [KEY_TYPE]);
        assert.ok(!plain.wire.received.some((f) => f.includes('never in plaintext')));
    });

    it('drops what waits for a key when closed, with no error and no timer left', async () => {
        // in a process of its own, which must exit once its clients are
        // closed: a 35 s key timer left running would keep it alive
        const script = `
            import WebSocket from 'ws';
            import { DwrtcClient, generateIdentity } from ${JSON.stringify(DWRTC_JS)};
            const sender = new DwrtcClient({ WebSocket, identity: await generateIdentity(),
                                             e2e: true });
            const silent = new DwrtcClient({ WebSocket, identity: await generateIdentity() });
            const errors = [];
            sender.addEventListener('error', (e) => errors.push(e.detail.error));
            await sender.connect(${JSON.stringify(n1.wsUrl())});
            const id = await silent.connect(${JSON.stringify(n2.wsUrl())});
            const asked = new Promise((r) => silent.addEventListener('message', r));
            sender.send('chat', id, 'waits for a key that never comes');
            await asked;
            sender.close();
            silent.close();
            setTimeout(() => console.log(JSON.stringify(errors)), 100);
        `;
        const started = Date.now();
        const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script],
                                     { cwd: REPO, timeout: 20_000 });
        assert.ok(Date.now() - started < 10_000, `it exited after ${Date.now() - started} ms`);
        assert.equal(stdout.trim(), '[]', 'no error for what was dropped');
    });

    it('with e2e "require", sends and takes no plaintext; with e2e true, plaintext to and '
       + 'from sessions that own no key', async () => {
        const strict = client(await generateIdentity(), { e2e: 'require' });
        const relaxed = client(await generateIdentity(), { e2e: true });
        clients.push(strict, relaxed);
        await Promise.all([strict.connect(n1.wsUrl()), relaxed.connect(n1.wsUrl())]);
        const plain = await openSession(n2.wsUrl());
        assert.throws(() => strict.send('chat', plain.id, 'hi'), /owns no key.*'require'/);
        assert.throws(() => strict.send(KEY_TYPE, relaxed.id, 'x'), TypeError);
        plain.to(strict.id, 'plain to strict');
        plain.to(relaxed.id, 'plain to relaxed');
        relaxed.send('chat', plain.id, 'plain from relaxed');
        await until(() => relaxed.got.length === 1 && strict.errors.length === 1, 'both');
        assert.equal(relaxed.got[0].messageBody, 'plain to relaxed');
        assert.equal(relaxed.got[0].encrypted, false);
        assert.equal(strict.errors[0].error, ErrorCode.E2E_REFUSED);
        assert.equal(strict.errors[0].reason, 'not encrypted');
        assert.deepEqual(strict.got, []);
        assert.equal((await plain.waitFrom(relaxed.id)).messageBody, 'plain from relaxed');
        assert.throws(() => new DwrtcClient({ WebSocket, e2e: true }), /needs options.identity/);
        await plain.close();
    });

    it('refuses plaintext in the name of a peer that encrypts', async () => {
        const key = await generateIdentity();
        const alice = client(key, { e2e: true });
        const bob = client(await generateIdentity(), { e2e: true });
        clients.push(alice, bob);
        await Promise.all([alice.connect(n1.wsUrl()), bob.connect(n2.wsUrl())]);
        alice.send('hello', bob.id, 'keyed');
        await until(() => bob.got.length === 1, 'alice\'s message');
        const aliceId = alice.id;
        // a session with alice's key that speaks no e2e takes her id over and
        // sends plaintext in her name: what a rogue node could also make up
        const twin = client(key);
        clients.push(twin);
        assert.equal(await twin.connect(n1.wsUrl()), aliceId);
        twin.send('chat', bob.id, 'plaintext in alice\'s name');
        await until(() => bob.errors.length === 1, 'the refusal');
        assert.equal(bob.errors[0].error, ErrorCode.E2E_REFUSED);
        assert.equal(bob.errors[0].senderSessionId, aliceId);
        assert.equal(bob.errors[0].reason, 'not encrypted, from a peer that encrypts');
        assert.deepEqual(bob.got.map((m) => m.messageBody), ['keyed']);
    });

    it('logs nothing at [alert], [crit] or [emerg]', () => {
        net.assertNoAlerts();
    });
});

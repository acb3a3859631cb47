// The node-to-node link port of real nginx nodes, from outside: what a
// stranger, a rogue node and an on-path attacker can and cannot do there
// (link protocol version 2: WebSocket over TLS 1.3, each end proving its
// node id by signing the TLS channel binding).
//
// A stranger on the link port delivers nothing and the worker lives on; a
// node that proved its own id speaks for its own sessions and no one else's;
// an unproven link costs the node a few KiB for a few seconds; a relay on
// the path sees only ciphertext and cannot inject.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect as tcpConnect } from 'node:net';
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';

import { startNode, startNetwork, NginxNode, nodeConfig, MODULE, freeTcpPort, freePortRange,
         waitUntil, withTimeout } from '../lib/nginx.mjs';
import { openSession, terminateSessions, handshakeRequest, nodeOf } from '../lib/client.mjs';
import { LinkIdentity, openLink, verifyHello, frameHeader, textFrame,
         RecordingRelay } from '../lib/link_peer.mjs';

// The first message to a node not yet known costs a DHT lookup.
const ROUTE_WAIT = 60_000;
// How long a refused link may take to be closed by the node.
const CLOSE_WAIT = 10_000;
const KiB = 1024;
const MiB = 1024 * KiB;

// The errors a sender may get instead of a delivery (DESIGN.md).
const DOCUMENTED_ERRORS = ['not found', 'unreachable', 'queue full'];

// Links opened by a test, destroyed when it ends (also on failure).
const openLinks = new Set();

async function link(port, opts) {
    const l = await openLink(port, opts);
    openLinks.add(l);
    return l;
}

function destroyLinks() {
    for (const l of openLinks) {
        l.destroy();
    }
    openLinks.clear();
}

/** A msg frame of link protocol version 2. */
function msg({ node, sender, recipient, type = 'test', body = 'x' }) {
    return { v: 2, t: 'msg', node, sender, recipient, type, body };
}

/** Lines the node logged when it refused (closed) a node link. */
function refusals(node) {
    return node.logLines().filter((l) => l.text.startsWith('dwrtc: closing a node link'));
}

/**
 * Waits for one refusal line matching `why` after the first `seen` ones;
 * returns every refusal line logged after those.
 */
async function waitRefusal(node, seen, why) {
    return waitUntil(() => {
        const fresh = refusals(node).slice(seen);
        return fresh.some((l) => why.test(l.text)) && fresh;
    }, { what: `a refusal line matching ${why} in ${node.name}'s error log`,
         detail: () => node.describe(20) });
}

/**
 * Asserts that `victim` received nothing so far: a message sent to it now
 * by `witness` must be the next (and only) thing it gets. The witness is on
 * another node, so its message reaches the victim's node over a link and is
 * routed on the same thread, after anything the refused link carried.
 */
async function assertReceivedNothing(victim, witness, after) {
    assert.equal(victim.inbox.queue.length, 0,
                 `${victim.label} received ${JSON.stringify(victim.inbox.queue[0])} `
                 + `after ${after}`);
    const body = `witness ${randomBytes(6).toString('hex')}`;
    witness.to(victim, body, 'witness');
    const m = await witness.unlessErrorFor(victim.id, victim.waitFor(() => true, {
        timeout: ROUTE_WAIT, what: `the witness message after ${after}` }));
    assert.deepEqual(m, { type: 'witness', senderSessionId: witness.id,
                          recipientSessionId: victim.id, messageBody: body },
                     `${victim.label} received something other than the witness after ${after}`);
}

/** Resident memory of a process, in bytes (VmRSS). */
function rss(pid) {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'latin1'));
    return Number(m[1]) * KiB;
}

const mib = (bytes) => `${(bytes / MiB).toFixed(1)} MiB`;

describe('a stranger on the link port of a node', () => {
    let net, n1, n2, node1, node2, worker;
    let victim, witness, other;
    const me = new LinkIdentity();
    let refused = 0;        // links the test expects node 1 to refuse, one line each
    let framesSent = 0;     // link frames sent on them

    before(async () => {
        net = await startNetwork(2, { name: 'links' });
        [n1, n2] = net.nodes;
        [node1] = n1.currentNodes();
        [node2] = n2.currentNodes();
        worker = node1.pid;
        // a browser session on node 1 that nothing forged may reach, a
        // session on node 2 whose id a forger would like to use, and a
        // witness on node 2 (see assertReceivedNothing)
        victim = await openSession(n1.wsUrl(), { label: 'victim' });
        other = await openSession(n2.wsUrl(), { label: 'other' });
        witness = await openSession(n2.wsUrl(), { label: 'witness' });
        // node 2 has its link to node 1 up before anything is tried
        await assertReceivedNothing(victim, witness, 'start');
    });

    after(() => {
        destroyLinks();
        terminateSessions();
        return net?.stop();
    });

    it('gets no WebSocket without TLS: a plain upgrade is not answered with 101 and is closed',
       async () => {
        const sock = tcpConnect({ port: node1.linkPort, host: '127.0.0.1' });
        let got = Buffer.alloc(0);
        sock.on('data', (d) => { got = Buffer.concat([got, d]); });
        sock.on('error', () => {});
        const closed = new Promise((resolve) => sock.once('close', resolve));
        await new Promise((resolve, reject) => {
            sock.once('connect', resolve);
            sock.once('error', reject);
        });
        const start = Date.now();
        sock.write(handshakeRequest({ path: '/', port: node1.linkPort,
                                      headers: { 'Sec-WebSocket-Protocol': 'dwrtc-link' } }));
        try {
            await withTimeout(closed, CLOSE_WAIT, 'the node to close a plain TCP upgrade');
        } finally {
            sock.destroy();
        }
        console.log(`# plain TCP upgrade: closed after ${Date.now() - start} ms, `
                    + `${got.length} byte(s) answered`);
        assert.doesNotMatch(got.toString('latin1'), /HTTP\/1\.[01] 101/);
        assert.ok(victim.inbox.queue.length === 0);
    });

    it('closes a link that sends frames before any hello, and delivers none of them',
       async () => {
        const seen = refusals(n1).length;
        const l = await link(node1.linkPort);
        // several frames per message, each message under the 4096 bytes an
        // unproven link may send, so it is the missing hello that counts
        const forged = Array.from({ length: 10 }, (_, i) => msg({
            node: node2.nodeId, sender: other.id, recipient: victim.id, type: 'forged',
            body: `before hello ${i}` }));
        assert.ok(forged.map((f) => JSON.stringify(f)).join('\n').length < 4096);
        for (let i = 0; i < 3; i++) {
            l.sendFrames(forged);
        }
        framesSent += 3 * forged.length;
        refused++;
        const { ms } = await l.waitClosedByNode({ timeout: CLOSE_WAIT });
        console.log(`# frames before a hello: closed after ${ms} ms`);
        await waitRefusal(n1, seen, /a frame before a proven hello/);
        await assertReceivedNothing(victim, witness, 'frames before a hello');
        assert.equal(refusals(n1).length - seen, 1,
                     'one refusal line for the link, not one per frame');
    });

    it("closes a link whose hello names another node's id but carries the stranger's key",
       async () => {
        const seen = refusals(n1).length;
        const l = await link(node1.linkPort);
        // signed correctly, by our key, for node 2's id: the key does not hash to it
        l.sendFrames([me.hello('initiator', l.binding, { node: node2.nodeId }),
                      msg({ node: node2.nodeId, sender: other.id, recipient: victim.id,
                            type: 'forged', body: 'as node 2' })]);
        framesSent += 2;
        refused++;
        const { ms } = await l.waitClosedByNode({ timeout: CLOSE_WAIT });
        console.log(`# hello with another node's id: closed after ${ms} ms`);
        await waitRefusal(n1, seen, new RegExp(`hello for node ${node2.nodeId} that does not `
                                               + 'prove it: its key does not belong'));
        await assertReceivedNothing(victim, witness, "a hello with another node's id");
        assert.equal(refusals(n1).length - seen, 1);
    });

    it('closes a link that replays a hello made for another TLS session, or signs the '
       + 'responder role', async () => {
        const seen = refusals(n1).length;
        const first = await link(node1.linkPort);
        const second = await link(node1.linkPort);
        assert.notDeepEqual(first.binding, second.binding, 'two TLS sessions, two bindings');
        const hello = me.hello('initiator', first.binding);
        second.sendFrames([hello, msg({ node: me.id, sender: me.sessionId(), recipient: victim.id,
                                        type: 'replayed', body: 'replayed' })]);
        framesSent += 2;
        refused++;
        const replay = await second.waitClosedByNode({ timeout: CLOSE_WAIT });
        console.log(`# replayed hello: closed after ${replay.ms} ms`);
        await waitRefusal(n1, seen, /its signature does not hold for this link/);

        // the same hello on the session it was made for is good: the node
        // answers with its own, so the replay failed for its binding alone
        first.sendFrames([hello]);
        const answer = await first.waitHello();
        assert.ok(verifyHello(answer, 'responder', first.binding));
        first.destroy();

        const reflected = await link(node1.linkPort);
        reflected.sendFrames([me.hello('initiator', reflected.binding, { signRole: 'responder' }),
                              msg({ node: me.id, sender: me.sessionId(), recipient: victim.id,
                                    type: 'reflected', body: 'reflected' })]);
        framesSent += 2;
        refused++;
        const wrongRole = await reflected.waitClosedByNode({ timeout: CLOSE_WAIT });
        console.log(`# hello signed as responder: closed after ${wrongRole.ms} ms`);
        await waitUntil(() => refusals(n1).slice(seen)
            .filter((l) => /its signature does not hold for this link/.test(l.text)).length === 2,
                        { what: 'a second "signature does not hold" line',
                          detail: () => n1.describe(20) });
        await assertReceivedNothing(victim, witness, 'a replayed or reflected hello');
        assert.equal(refusals(n1).length - seen, 2);
    });

    it('lets a proven stranger node speak for its own sessions and for no one else',
       async () => {
        const seen = refusals(n1).length;
        const l = await link(node1.linkPort);
        l.sendFrames([me.hello('initiator', l.binding)]);
        const hello = await l.waitHello();
        // the node proves itself the same way: its key names its id, and it
        // signed this session's binding as the responder
        assert.equal(hello.node, node1.nodeId);
        assert.ok(verifyHello(hello, 'responder', l.binding), "the node's hello proves it");
        assert.ok(!verifyHello(hello, 'initiator', l.binding), 'the role is part of the proof');

        // an open network: a node speaks for its own sessions
        const own = me.sessionId();
        l.sendFrames([msg({ node: me.id, sender: own, recipient: victim.id,
                            type: 'from-stranger', body: 'a session of my own' })]);
        const m = await victim.waitFor((m) => m.type === 'from-stranger',
                                       { what: "the stranger node's message" });
        assert.deepEqual(m, { type: 'from-stranger', senderSessionId: own,
                              recipientSessionId: victim.id, messageBody: 'a session of my own' });

        // but not for a session of another node, not even once
        l.sendFrames([msg({ node: me.id, sender: other.id, recipient: victim.id, type: 'forged',
                            body: 'as a session of node 2' }),
                      msg({ node: me.id, sender: own, recipient: victim.id, type: 'after-forged',
                            body: 'after the forgery' })]);
        framesSent += 2;
        refused++;
        const forged = await l.waitClosedByNode({ timeout: CLOSE_WAIT });
        console.log(`# proven stranger speaking for node 2's session: closed ${forged.ms} ms `
                    + 'after its upgrade');
        await waitRefusal(n1, seen, new RegExp(`node ${me.id} sent a message as session `
                                               + `${other.id} of another node`));
        await assertReceivedNothing(victim, witness, "a message as another node's session");

        // nor in the name of another node
        const l2 = await link(node1.linkPort);
        l2.sendFrames([me.hello('initiator', l2.binding)]);
        assert.ok(verifyHello(await l2.waitHello(), 'responder', l2.binding));
        l2.sendFrames([msg({ node: node2.nodeId, sender: other.id, recipient: victim.id,
                             type: 'forged', body: 'in the name of node 2' })]);
        framesSent += 1;
        refused++;
        await l2.waitClosedByNode({ timeout: CLOSE_WAIT });
        await waitRefusal(n1, seen, new RegExp(`node ${me.id} sent a frame in the name of node `
                                               + node2.nodeId));
        await assertReceivedNothing(victim, witness, 'a frame in the name of another node');
        assert.equal(refusals(n1).length - seen, 2);
    });

    it('leaves the worker alive, the network routing, and a few refusal lines and no '
       + '[alert] or [crit] in the log', async () => {
        assert.deepEqual(n1.workerPids(), [worker], 'the worker that started the node still runs');
        const a = await openSession(n1.wsUrl());
        const b = await openSession(n2.wsUrl());
        await a.deliver(b, 'after all that', { timeout: ROUTE_WAIT });
        await b.deliver(a, 'and back', { timeout: ROUTE_WAIT });
        const lines = refusals(n1);
        console.log(`# node 1 logged ${lines.length} refusal line(s) for ${refused} refused `
                    + `link(s) carrying ${framesSent} frame(s):`);
        for (const l of lines) {
            console.log(`#   [${l.level}] ${l.text}`);
        }
        assert.equal(lines.length, refused, 'one line per refused link, not one per frame');
        for (const l of lines) {
            assert.ok(['info', 'warn'].includes(l.level),
                      `refusal logged at ${l.level}: ${l.line}`);
        }
        await Promise.all([a.close(), b.close()]);
        net.assertNoAlerts();
    });
});

describe('a link that has not proven itself', () => {
    let node, info, worker;

    before(async () => {
        node = await startNode({ name: 'unproven' });
        [info] = node.currentNodes();
        worker = info.pid;
    });

    after(() => {
        destroyLinks();
        return node?.stop();
    });

    /**
     * Sends a text frame header declaring `declared` bytes, then payload
     * for as long as the node keeps the connection (up to `cap` bytes).
     * Returns { written: payload bytes the socket took (handed to the
     * kernel), ms: from the header to the node's close }.
     */
    async function flood(l, declared, cap) {
        const sock = l.socket;
        const chunk = Buffer.alloc(64 * KiB, 'x');
        const start = Date.now();
        let written = 0;
        let queued = 0;
        const closed = new Promise((resolve) => sock.once('close', resolve));
        sock.write(frameHeader(declared));
        while (!l.ended && !sock.destroyed && queued < cap) {
            queued += chunk.length;
            const more = sock.write(chunk, (err) => {
                if (!err) {
                    written += chunk.length;
                }
            });
            if (!more) {
                await Promise.race([new Promise((resolve) => sock.once('drain', resolve)), closed]);
            } else {
                await new Promise((resolve) => setImmediate(resolve));
            }
        }
        await withTimeout(closed, CLOSE_WAIT,
                          `the node to close a link announcing ${declared} bytes`);
        return { written, ms: Date.now() - start };
    }

    it('closes links that announce 15 MiB messages at once and holds no memory for them',
       async () => {
        const seen = refusals(node).length;
        const samples = [];
        for (let i = 0; i < 5; i++) {
            samples.push(rss(worker));
            await new Promise((resolve) => setTimeout(resolve, 20));
        }
        const baseline = Math.max(...samples);
        let peak = baseline;
        const sampler = setInterval(() => { peak = Math.max(peak, rss(worker)); }, 10);
        let results;
        try {
            const links = await Promise.all(Array.from({ length: 20 },
                                                       () => link(info.linkPort)));
            results = await Promise.all(links.map((l) => flood(l, 15 * MiB, 16 * MiB)));
        } finally {
            clearInterval(sampler);
        }
        peak = Math.max(peak, rss(worker));
        const written = results.map((r) => r.written);
        console.log(`# 20 links announcing 15 MiB: payload bytes written before the close: `
                    + `min ${Math.min(...written)}, max ${Math.max(...written)}, `
                    + `total ${written.reduce((s, w) => s + w, 0)}`);
        console.log(`# close after the header: ${results.map((r) => r.ms).join(', ')} ms`);
        let afterRss = rss(worker);
        const settled = await waitUntil(() => {
            afterRss = rss(worker);
            return afterRss <= baseline + 8 * MiB;
        }, { timeout: 10_000, what: 'the worker RSS to return near its baseline',
             detail: () => `baseline ${mib(baseline)}, now ${mib(afterRss)}` }).catch((e) => e);
        console.log(`# worker RSS: baseline ${mib(baseline)}, peak ${mib(peak)}, `
                    + `after ${mib(afterRss)}`);
        for (const [i, r] of results.entries()) {
            assert.ok(r.written < 1 * MiB,
                      `link ${i} wrote ${r.written} payload bytes before the node closed it`);
        }
        assert.ok(peak - baseline <= 8 * MiB,
                  `RSS rose by ${mib(peak - baseline)} (baseline ${mib(baseline)})`);
        assert.equal(settled, true, String(settled));
        const lines = await waitRefusal(node, seen,
                                        /a message of more than 4096 bytes before its hello/);
        assert.ok(lines.length <= 20, `${lines.length} refusal lines for 20 links`);
        assert.deepEqual(node.workerPids(), [worker]);
    });

    it('closes a link that announces a 2^40-byte message before 1 MiB of it', async () => {
        const l = await link(info.linkPort);
        const r = await flood(l, 2 ** 40, 4 * MiB);
        console.log(`# link announcing 2^40 bytes: ${r.written} payload bytes written, `
                    + `closed ${r.ms} ms after the header`);
        assert.ok(r.written < 1 * MiB, `wrote ${r.written} payload bytes before the close`);
        assert.deepEqual(node.workerPids(), [worker]);
    });

    it('closes a link that says nothing within the handshake deadline', async () => {
        const seen = refusals(node).length;
        const l = await link(info.linkPort);
        const { ms } = await l.waitClosedByNode({ timeout: 10_000 });
        console.log(`# silent link: closed by the node ${ms} ms after its upgrade`);
        await waitRefusal(node, seen, /no proven hello within 5000 ms/);
        assert.deepEqual(node.workerPids(), [worker]);
        node.assertNoAlerts();
    });
});

describe('a TCP relay on the path between two nodes', () => {
    let a, b, relay, bLink, sa, sb;

    before(async () => {
        a = await NginxNode.create({ name: 'relayA' });
        await a.start();
        // node B listens on 127.0.0.2 and tells others to reach it at
        // 127.0.0.3, where the relay waits
        const httpPort = await freeTcpPort();
        const dhtPorts = await freePortRange(4);
        const linkPorts = await freePortRange(4);
        const conf = nodeConfig({ module: MODULE, prefix: '{{PREFIX}}', workers: 1, httpPort,
                                  dhtPorts, linkPorts, bootstrap: [a.bootstrapAddress()] })
            .replace(/dwrtc_bind_address 127\.0\.0\.1;/, 'dwrtc_bind_address 127.0.0.2;')
            .replace(/dwrtc_public_address 127\.0\.0\.1;/, 'dwrtc_public_address 127.0.0.3;');
        assert.match(conf, /dwrtc_bind_address 127\.0\.0\.2;/);
        assert.match(conf, /dwrtc_public_address 127\.0\.0\.3;/);
        b = new NginxNode({ name: 'relayB', conf, httpPort, dhtPorts, linkPorts });
        await b.start();
        [bLink] = b.currentNodes();
        relay = new RecordingRelay({ listenHost: '127.0.0.3', port: bLink.linkPort,
                                     targetHost: '127.0.0.2' });
        await relay.start();
        await Promise.all([a.waitPublished(), b.waitPublished()]);
        sa = await openSession(a.wsUrl(), { label: 'alice@A' });
        sb = await openSession(b.wsUrl(), { label: 'bob@B' });
    });

    after(async () => {
        terminateSessions();
        await relay?.stop();
        await Promise.all([a?.stop(), b?.stop()]);
    });

    /**
     * Sends from `from` to `to` until a message arrives (bounded). A
     * documented error instead is recorded and the message sent again;
     * returns { message, errors }.
     */
    async function deliverAgain(from, to, type, what) {
        const errors = [];
        const deadline = Date.now() + ROUTE_WAIT;
        for (let i = 0; ; i++) {
            const body = `${what} #${i} ${randomBytes(4).toString('hex')}`;
            const left = Math.max(1, deadline - Date.now());
            const arrived = to.inbox.watch((m) => m.type === type && m.messageBody === body,
                                           { timeout: left, what: `${what} #${i}` });
            const failed = from.inbox.watch((m) => m.type === 'WebSocketErrorMessage'
                                                   && m.recipientSessionId === to.id,
                                            { timeout: 2 ** 31 - 1 });
            from.to(to, body, type);
            try {
                const r = await Promise.race([arrived.promise.then((m) => ({ m })),
                                              failed.promise.then((e) => ({ e }))]);
                if (r.m) {
                    return { message: r.m, errors };
                }
                errors.push(r.e);
                console.log(`# ${what}: the sender got ${JSON.stringify(r.e)}`);
                assert.ok(DOCUMENTED_ERRORS.includes(r.e.error),
                          `undocumented error ${JSON.stringify(r.e)}`);
                assert.ok(i < 3, `${what}: ${errors.length} errors and no delivery`);
            } finally {
                arrived.cancel();
                failed.cancel();
            }
        }
    }

    it('carries a message through the relay as ciphertext only', async () => {
        const marker = `MARKER-${randomBytes(12).toString('hex')}`;
        sa.to(sb, marker, 'marked');
        const m = await sa.unlessErrorFor(sb.id, sb.waitFor((m) => m.type === 'marked', {
            timeout: ROUTE_WAIT, what: 'the marked message' }));
        assert.deepEqual(m, { type: 'marked', senderSessionId: sa.id, recipientSessionId: sb.id,
                              messageBody: marker });
        assert.ok(relay.connections.length >= 1, 'the link from A to B went through the relay');
        const fwd = relay.forwardBytes();
        const back = relay.backBytes();
        console.log(`# relay: ${relay.connections.length} connection(s), ${fwd.length} bytes A->B, `
                    + `${back.length} bytes B->A`);
        assert.equal(fwd[0], 0x16, 'A opens with a TLS handshake record');
        for (const needle of [marker, sb.id, sa.id, nodeOf(sa.id), nodeOf(sb.id), 'marked',
                              'dwrtc-link', 'HTTP/1.1', '"t":"msg"']) {
            assert.ok(!fwd.includes(needle), `the relay saw "${needle}" from A to B in plain text`);
            assert.ok(!back.includes(needle),
                      `the relay saw "${needle}" from B to A in plain text`);
        }
    });

    it('cannot change a record: the link breaks, nothing forged arrives, the next message '
       + 'does', async () => {
        const conn = relay.current();
        assert.equal(conn.closedAt, null, 'the link through the relay is open');
        const received = sb.inbox.count;
        const flipped = relay.armFlip();
        const body = `tampered ${randomBytes(8).toString('hex')}`;
        sa.to(sb, body, 'tampered');
        const flip = await withTimeout(flipped, 15_000, 'the relay to flip a byte of A->B');
        const start = Date.now();
        await withTimeout(conn.closed, CLOSE_WAIT, 'the link through the relay to break');
        console.log(`# flipped byte ${flip.at} of a ${flip.recordLength}-byte record: the link `
                    + `broke ${Date.now() - start} ms later`);
        const { message, errors } = await deliverAgain(sa, sb, 'after-flip', 'after the flip');
        assert.equal(message.senderSessionId, sa.id);
        assert.ok(relay.connections.length >= 2, 'A opened a new link through the relay');
        // whatever arrived meanwhile is what A's session sent, unchanged
        const others = sb.inbox.queue.filter((m) => m.type !== 'after-flip');
        for (const m of others) {
            assert.deepEqual(m, { type: 'tampered', senderSessionId: sa.id,
                                  recipientSessionId: sb.id, messageBody: body },
                             `B delivered ${JSON.stringify(m)}`);
        }
        // an error the sender got before the resend counts as well
        const told = [...errors,
                      ...sa.inbox.queue.filter((m) => m.type === 'WebSocketErrorMessage')];
        for (const e of told) {
            assert.ok(DOCUMENTED_ERRORS.includes(e.error),
                      `undocumented error ${JSON.stringify(e)}`);
        }
        const lost = sb.inbox.queue.every((m) => m.messageBody !== body);
        console.log(`# the message in the flipped record: ${lost ? 'not delivered' : 'delivered'}`
                    + `; sender errors: ${JSON.stringify(told)}; B received `
                    + `${sb.inbox.count - received} message(s)`);
        sa.inbox.queue.length = 0;
        sb.inbox.queue.length = 0;
    });

    it('cannot inject a WebSocket frame in plain text: the link breaks, nothing forged '
       + 'arrives, the next message does', async () => {
        const forged = textFrame(JSON.stringify(msg({ node: nodeOf(sa.id), sender: sa.id,
                                                      recipient: sb.id, type: 'forged',
                                                      body: 'injected' })));
        const conn = relay.inject(forged);
        const start = Date.now();
        await withTimeout(conn.closed, CLOSE_WAIT, 'the link through the relay to break');
        console.log(`# injected a ${forged.length}-byte plain frame: the link broke `
                    + `${Date.now() - start} ms later`);
        const { message } = await deliverAgain(sa, sb, 'after-inject', 'after the injection');
        assert.equal(message.senderSessionId, sa.id);
        assert.deepEqual(sb.inbox.queue, [], 'B delivered nothing else');
        a.assertNoAlerts();
        b.assertNoAlerts();
    });
});

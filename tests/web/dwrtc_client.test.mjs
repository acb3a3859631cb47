// web/dwrtc.js in Node.js: the DwrtcClient connection logic (welcome, send,
// messages, errors, reconnect, failover, backoff) against real nginx DWRTC
// nodes, and against `ws` servers this test controls where a node would have
// to misbehave on cue (close before the welcome, never welcome, come back).
//
// Node.js 20 has no global WebSocket; the client takes the `ws` package's
// constructor through its options, as a browser would use its own.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomSessionId, until } from '../lib/client.mjs';
import WebSocket, { WebSocketServer } from 'ws';

import { DwrtcClient, ErrorCode, signalUrl, nodeIdOf, isSessionId, backoffDelay,
         DEFAULT_BACKOFF } from '../../web/dwrtc.js';
import { startNetwork, freeTcpPort, waitUntil } from '../lib/nginx.mjs';

const WAIT = 30_000;

// ---------------------------------------------------------------------------
// Helpers

/** Resolves with the detail of the next `type` event that matches `pred`. */
function nextEvent(target, type, { pred = () => true, timeout = WAIT, what = type } = {}) {
    return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
            target.removeEventListener(type, on);
            reject(new Error(`timed out after ${timeout} ms waiting for ${what}`));
        }, timeout);
        function on(ev) {
            if (pred(ev.detail)) {
                clearTimeout(timer);
                target.removeEventListener(type, on);
                resolve(ev.detail);
            }
        }
        target.addEventListener(type, on);
    });
}

/** Records the details of every `type` event. */
function record(target, type) {
    const list = [];
    target.addEventListener(type, (ev) => list.push(ev.detail));
    return list;
}

/** A client with `ws` and short waits, closed when the test ends. */
function client(t, options = {}) {
    const c = new DwrtcClient({ WebSocket, backoff: { initial: 50, max: 1000 }, ...options });
    t.after(() => c.close());
    return c;
}

/**
 * A WebSocket server on loopback that this test controls. `behave(ws, n)`
 * runs for the n-th connection (from 1); by default it welcomes.
 */
async function controlledServer(t, behave = welcome) {
    const port = await freeTcpPort();
    const wss = new WebSocketServer({ host: '127.0.0.1', port });
    await new Promise((res) => wss.once('listening', res));
    const server = {
        url: `ws://127.0.0.1:${port}/signal`,
        port,
        connections: [],     // { at, ws }
        behave,
        received: [],
        close: () => new Promise((res) => {
            for (const c of wss.clients) {
                c.terminate();
            }
            wss.close(() => res());
        }),
    };
    wss.on('connection', (ws) => {
        server.connections.push({ at: performance.now(), ws });
        ws.on('message', (data) => server.received.push(JSON.parse(String(data))));
        server.behave(ws, server.connections.length);
    });
    t.after(() => server.close());
    return server;
}

function welcome(ws, _n, extra = {}) {
    ws.send(JSON.stringify({ type: 'WebSocketIdMessage', id: randomSessionId(), ...extra }));
}

// ---------------------------------------------------------------------------
// Pure functions

describe('signal URLs, node ids and backoff', () => {
    it('resolves relative signal URLs against the page, http to ws and https to wss', () => {
        assert.equal(signalUrl('./signal', 'https://example.com/apps/call/?call=x'),
                     'wss://example.com/apps/call/signal');
        assert.equal(signalUrl('./signal', 'http://127.0.0.1:8080/apps/call/index.html'),
                     'ws://127.0.0.1:8080/apps/call/signal');
        assert.equal(signalUrl('/signal', 'http://h:1/a/b/'), 'ws://h:1/signal');
        assert.equal(signalUrl('https://other.example/s#x'), 'wss://other.example/s');
        assert.equal(signalUrl('ws://a.example/signal?x=1'), 'ws://a.example/signal?x=1');
        assert.throws(() => signalUrl('ftp://a.example/signal'), TypeError);
        assert.throws(() => signalUrl('./signal'), TypeError);   // no page to resolve against
    });

    it('names the node by the first 12 hex digits of a session id', () => {
        assert.equal(nodeIdOf('0123abcdef4546789abcdef012345678-0011223344556677'),
                     '0123abcdef4546789abcdef012345678');
        const id = '0123abcdef4546789abcdef012345678-0011223344556677';
        assert.ok(isSessionId(id));
        assert.ok(isSessionId(id.toUpperCase()));
        assert.ok(!isSessionId(id.slice(0, -1)));
        assert.ok(!isSessionId('0123abcd-ef45-4678-9abc-def012345678'));
        assert.ok(!isSessionId(`https://x/?call=${id}`));
    });

    it('waits exponentially longer after each failure, capped, jitter only shortening', () => {
        const b = { initial: 100, max: 1000, factor: 2, jitter: 0.5 };
        const full = [0, 1, 2, 3, 4, 5, 10, 50].map((n) => backoffDelay(n, b, () => 0));
        assert.deepEqual(full, [100, 100, 200, 400, 800, 1000, 1000, 1000]);
        for (let n = 0; n < 12; n++) {
            const cap = backoffDelay(n, b, () => 0);
            const least = backoffDelay(n, b, () => 0.999999);
            assert.ok(least >= cap * (1 - b.jitter) && least <= cap,
                      `failure ${n}: ${least} should be within [${cap / 2}, ${cap}]`);
        }
        // the defaults never make a client wait more than max
        assert.ok(backoffDelay(1000) <= DEFAULT_BACKOFF.max);
    });
});

// ---------------------------------------------------------------------------
// Real nginx DWRTC nodes

describe('DwrtcClient on a network of real nginx nodes', () => {
    let net;
    let n1, n2, n3;

    before(async () => {
        net = await startNetwork(3, {
            name: 'webclient',
            // a location whose rate limit the error test can reach
            server: `location /limited {
                         dwrtc_signal;
                         dwrtc_rate 2 burst=2;
                     }`,
        });
        [n1, n2, n3] = net.nodes;
    });

    after(async () => {
        try {
            net?.assertNoAlerts();
        } finally {
            await net?.stop();
        }
    });

    it('connects, announces its session id and node, and goes idle -> connecting -> open',
       async (t) => {
        const c = client(t);
        assert.equal(c.state, 'idle');
        const states = record(c, 'state');
        const idEvent = nextEvent(c, 'id');
        const id = await c.connect(n1.httpUrl('/signal'));   // http: becomes ws:
        const detail = await idEvent;
        assert.ok(isSessionId(id), `id ${id} should be a session id`);
        assert.equal(detail.id, id);
        assert.equal(c.id, id);
        assert.equal(detail.previousId, null);
        assert.equal(detail.url, n1.wsUrl());
        assert.equal(c.url, n1.wsUrl());
        const nodeIds = n1.currentNodes().map((n) => n.nodeId);
        assert.ok(nodeIds.includes(detail.nodeId),
                  `node id ${detail.nodeId} should be one of ${nodeIds.join(', ')}`);
        assert.equal(c.nodeId, detail.nodeId);
        assert.deepEqual(states.map((s) => [s.previous, s.state]),
                         [['idle', 'connecting'], ['connecting', 'open']]);
        assert.deepEqual(c.iceServers, [], 'no dwrtc_ice_servers: no ICE servers');
    });

    it('delivers messages across nodes as `message` events, bodies as sent', async (t) => {
        const a = client(t);
        const b = client(t);
        const [aId, bId] = await Promise.all([a.connect(n1.wsUrl()), b.connect(n3.wsUrl())]);
        const got = nextEvent(b, 'message', { pred: (m) => m.type === 'chat', what: 'the chat' });
        a.send('chat', bId, 'hello "b" – ü 🎉');
        const m = await got;
        assert.deepEqual(m, { type: 'chat', senderSessionId: aId, recipientSessionId: bId,
                              messageBody: 'hello "b" – ü 🎉' });

        // a body that is not a string is sent as its JSON text
        const back = nextEvent(a, 'message', { pred: (x) => x.type === 'reply' });
        b.send('reply', aId, { n: 1, ok: true });
        assert.equal((await back).messageBody, '{"n":1,"ok":true}');
    });

    it('reports node errors as `error` events: not found, unreachable, invalid message, '
       + 'rate limited',
       async (t) => {
        const a = client(t);
        const b = client(t);
        const [, bId] = await Promise.all([a.connect(n1.wsUrl()), b.connect(n2.wsUrl())]);

        // a session that does not exist on a node that does
        const gone = randomSessionId(nodeIdOf(bId));
        let err = nextEvent(a, 'error');
        a.send('x', gone, 'anyone?');
        assert.deepEqual({ ...(await err), message: undefined },
                         { error: 'not found', recipientSessionId: gone, message: undefined });

        // an id of no node at all: no node can say it does not exist, so
        // after dwrtc_lookup_wait its node is "unreachable"
        const nobody = randomSessionId();
        err = nextEvent(a, 'error');
        a.send('x', nobody, 'anyone?');
        const e2 = await err;
        assert.equal(e2.error, 'unreachable');
        assert.equal(e2.recipientSessionId, nobody);

        // the node's validation (the client only checks that ids are strings)
        err = nextEvent(a, 'error');
        a.send('x', 'not-a-session-id', 'b');
        const e3 = await err;
        assert.match(e3.error, /^invalid message: /);
        assert.equal(e3.message.type, 'WebSocketErrorMessage');
        assert.equal(a.state, 'open', 'the session stays open after a bad message');

        // the rate limit of the /limited location (2 per second, burst 2)
        const r = client(t);
        await r.connect(n1.wsUrl('/limited'));
        err = nextEvent(r, 'error', { pred: (e) => e.error === 'rate limited' });
        for (let i = 0; i < 10; i++) {
            r.send('x', bId, `m${i}`);
        }
        const e4 = await err;
        assert.equal(e4.recipientSessionId, null);
        assert.equal(r.state, 'open');
    });

    it('refuses to send when not connected and reserved or empty types', async (t) => {
        const c = client(t);
        assert.throws(() => c.send('x', randomSessionId(), 'b'), /not connected/);
        await c.connect(n2.wsUrl());
        assert.throws(() => c.send('WebSocketIdMessage', randomSessionId(), 'b'), TypeError);
        assert.throws(() => c.send('', randomSessionId(), 'b'), TypeError);
        assert.throws(() => c.send('x', '', 'b'), TypeError);
        c.close();
        assert.equal(c.state, 'closed');
        assert.equal(c.id, null);
        assert.throws(() => c.send('x', randomSessionId(), 'b'), /not connected/);
    });

    it('fails over past a node that refuses connections', async (t) => {
        const deadPort = await freeTcpPort();   // nothing listens here
        const dead = `ws://127.0.0.1:${deadPort}/signal`;
        const c = client(t);
        const states = record(c, 'state');
        const started = performance.now();
        const id = await c.connect([dead, n2.wsUrl()]);
        console.log(`# failover to the second node took ${Math.round(performance.now() - started)} ms`);
        assert.equal(c.url, n2.wsUrl());
        assert.ok(n2.currentNodes().some((n) => n.nodeId === nodeIdOf(id)));
        const seen = states.map((s) => `${s.state} ${s.url}`);
        assert.deepEqual(seen, [`connecting ${dead}`, `disconnected ${dead}`,
                                `connecting ${n2.wsUrl()}`, `open ${n2.wsUrl()}`]);
        assert.equal(states[1].attempt, 1);
        assert.match(states[1].reason, /closed/);
    });

    // Last: it kills node 3.
    it('reconnects when its node dies: same node first, then the next, with a new id',
       async (t) => {
        // stableAfter 0: the session counts as one that lasted
        const c = client(t, { stableAfter: 0 });
        const peer = client(t);
        const firstId = await c.connect([n3.wsUrl(), n1.wsUrl()]);
        const peerId = await peer.connect(n2.wsUrl());
        const states = record(c, 'state');
        const nextId = nextEvent(c, 'id');
        const killedAt = performance.now();
        n3.kill();
        const d = await nextId;
        console.log(`# new session ${Math.round(performance.now() - killedAt)} ms after the node was killed`);
        assert.equal(d.previousId, firstId);
        assert.notEqual(d.id, firstId);
        assert.equal(d.url, n1.wsUrl());
        assert.ok(n1.currentNodes().some((n) => n.nodeId === d.nodeId));
        const seen = states.map((s) => `${s.state} ${s.url}`);
        // lost: retry the node that worked; refused: fail over to the next
        assert.deepEqual(seen, [`disconnected ${n3.wsUrl()}`, `connecting ${n3.wsUrl()}`,
                                `disconnected ${n3.wsUrl()}`, `connecting ${n1.wsUrl()}`,
                                `open ${n1.wsUrl()}`]);
        assert.equal(states[0].attempt, 0);

        // the new session works: a message reaches it from another node
        const got = nextEvent(c, 'message', { pred: (m) => m.type === 'after' });
        peer.send('after', d.id, 'still here?');
        assert.equal((await got).senderSessionId, peerId);
    });
});

// ---------------------------------------------------------------------------
// Servers that misbehave on cue

describe('DwrtcClient against WebSocket servers that misbehave', () => {
    it('retries with growing, capped waits while a node closes before its welcome',
       async (t) => {
        const srv = await controlledServer(t, (ws, n) => {
            if (n <= 6) {
                ws.close(1011, 'not ready');
            } else {
                welcome(ws);
            }
        });
        const c = client(t, { backoff: { initial: 40, factor: 2, max: 300, jitter: 0 } });
        const lost = record(c, 'state');
        const connected = nextEvent(c, 'id');
        // connect() gives up on the first failure of its only node, so that
        // a page need not hang; the client goes on trying in the background
        const started = performance.now();
        await assert.rejects(c.connect(srv.url), (err) => {
            assert.equal(err.code, ErrorCode.NO_NODE);
            assert.match(err.message, /^no node answered \(ws:.*\): connection closed \(code 1011/);
            return true;
        });
        console.log(`# connect() to a node that closes: rejected after `
                    + `${Math.round(performance.now() - started)} ms`);
        await connected;
        const waits = lost.filter((s) => s.state === 'disconnected').map((s) => s.retryIn);
        assert.deepEqual(waits, [40, 80, 160, 300, 300, 300]);
        const gaps = srv.connections.slice(1)
            .map((x, i) => Math.round(x.at - srv.connections[i].at));
        console.log(`# waits ${waits.join(', ')} ms; measured gaps between attempts ${gaps.join(', ')} ms`);
        gaps.forEach((g, i) => assert.ok(g >= waits[i] - 5,
                                         `attempt ${i + 2} came after ${g} ms, before its wait ${waits[i]} ms`));
        assert.match(lost[1].reason, /code 1011: not ready/);
        assert.equal(srv.connections.length, 7);
    });

    it('fails over when a node accepts but never welcomes, and back when it is lost',
       async (t) => {
        const silent = await controlledServer(t, () => {});
        const good = await controlledServer(t);
        // long enough that a busy machine does not time out the good node
        const c = client(t, { openTimeout: 1000, stableAfter: 0 });
        const states = record(c, 'state');
        await c.connect([silent.url, good.url]);
        assert.equal(c.url, good.url);
        const timeout = states.find((s) => s.state === 'disconnected');
        assert.match(timeout.reason, /no welcome from the node within 1000 ms/);

        // the good node drops the session after a while: retried first
        let next = nextEvent(c, 'id');
        good.connections.at(-1).ws.close(1001, 'going away');
        let d = await next;
        assert.equal(d.url, good.url);
        assert.equal(good.connections.length, 2);

        // now it is gone for good: over to the first node, which welcomes now
        silent.behave = welcome;
        next = nextEvent(c, 'id');
        await good.close();
        d = await next;
        assert.equal(d.url, silent.url);
        assert.equal(c.state, 'open');
    });

    it('counts sessions dropped right after the welcome as failures and moves on',
       async (t) => {
        // flaky welcomes at once and drops every session; steady keeps them
        const flaky = await controlledServer(t, (ws) => {
            welcome(ws);
            setImmediate(() => ws.close(1001, 'going away'));
        });
        const steady = await controlledServer(t, () => {});   // silent at first
        const c = client(t, { backoff: { initial: 30, factor: 2, max: 1000, jitter: 0 },
                              openTimeout: 200, stableAfter: 60_000 });
        const states = record(c, 'state');
        const ids = record(c, 'id');
        await c.connect([flaky.url, steady.url]);
        await waitUntil(() => flaky.connections.length >= 2,
                        { what: 'a second session on the flaky node' });
        steady.behave = welcome;
        await waitUntil(() => states.at(-1)?.state === 'open' && c.url === steady.url
                        && ids.length >= 3, { what: 'a session on the steady node' });
        const lost = states.filter((s) => s.state === 'disconnected');
        // flaky (dropped), steady (silent: timeout), flaky (dropped), steady...
        assert.deepEqual(lost.slice(0, 3).map((s) => s.url), [flaky.url, steady.url, flaky.url]);
        assert.deepEqual(lost.slice(0, 3).map((s) => s.retryIn), [30, 60, 120],
                         'the backoff grows across dropped sessions');
        assert.match(lost[0].reason, /code 1001: going away/);
    });

    it('takes ICE servers from the welcome, else from its options', async (t) => {
        const ice = [{ urls: ['stun:stun.example.test:3478'] },
                     { urls: ['turn:turn.example.test:3478'], username: 'u', credential: 'c' }];
        const withIce = await controlledServer(t, (ws, n) => welcome(ws, n, { iceServers: ice }));
        const without = await controlledServer(t);
        const fallback = [{ urls: 'stun:fallback.example.test' }];
        const a = client(t, { iceServers: fallback });
        const idEvent = nextEvent(a, 'id');
        await a.connect(withIce.url);
        assert.deepEqual(a.iceServers, ice);
        assert.deepEqual((await idEvent).iceServers, ice);
        const b = client(t, { iceServers: fallback });
        await b.connect(without.url);
        assert.deepEqual(b.iceServers, fallback);
    });

    it('sends the wire format, delivers messages in order, reports errors and bad frames',
       async (t) => {
        const srv = await controlledServer(t);
        const c = client(t);
        const id = await c.connect(srv.url);
        const peer = randomSessionId();
        c.send('SignalingMessage', peer, { type: 'offer', sdp: 'v=0' });
        c.send('text', peer, 'plain');
        await waitUntil(() => srv.received.length === 2, { what: 'two messages at the server' });
        assert.deepEqual(srv.received, [
            { type: 'SignalingMessage', recipientSessionId: peer,
              messageBody: '{"type":"offer","sdp":"v=0"}' },
            { type: 'text', recipientSessionId: peer, messageBody: 'plain' },
        ]);

        const ws = srv.connections[0].ws;
        const messages = record(c, 'message');
        const signaling = record(c, 'signaling');
        const errors = record(c, 'error');
        const done = nextEvent(c, 'message', { pred: (m) => m.type === 'last' });
        for (let i = 0; i < 50; i++) {
            ws.send(JSON.stringify({ type: 'seq', senderSessionId: peer, recipientSessionId: id,
                                     messageBody: String(i) }));
        }
        ws.send('this is not JSON');
        ws.send(JSON.stringify({ type: 'WebSocketErrorMessage', error: 'not found',
                                 recipientSessionId: peer }));
        ws.send(JSON.stringify({ type: 'WebSocketSomethingNew', x: 1 }));   // reserved: ignored
        // call signaling is the calls', never the app's 'message'
        ws.send(JSON.stringify({ type: 'SignalingMessage', senderSessionId: peer,
                                 recipientSessionId: id,
                                 messageBody: '{"type":"hangup","reason":"x"}' }));
        ws.send(JSON.stringify({ type: 'last', senderSessionId: peer, recipientSessionId: id,
                                 messageBody: '' }));
        await done;
        assert.deepEqual(messages.filter((m) => m.type === 'seq').map((m) => m.messageBody),
                         Array.from({ length: 50 }, (_, i) => String(i)));
        assert.equal(messages.length, 51);
        assert.ok(!messages.some((m) => m.type === 'SignalingMessage'));
        assert.deepEqual(signaling.map((m) => m.senderSessionId), [peer]);
        assert.equal(errors.length, 2);
        assert.equal(errors[0].error, 'unparsable message from the node');
        assert.deepEqual({ error: errors[1].error, to: errors[1].recipientSessionId },
                         { error: 'not found', to: peer });
    });

    it('signs no claim for a welcome whose time is far from its clock, and one near it',
       async (t) => {
        const identity = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' },
                                                         false, ['sign', 'verify']);
        const claims = (srv) => srv.received.filter((m) => m.type === 'WebSocketClaimMessage');
        // A node that dates its welcome a day ahead wants a claim that would
        // outrank this key's own for a day.
        const ahead = await controlledServer(t, (ws, n) => welcome(ws, n, {
            challenge: '00112233445566778899aabbccddeeff', time: Date.now() + 86_400_000 }));
        const a = client(t, { identity });
        const refused = nextEvent(a, 'error');
        const id = await a.connect(ahead.url);
        const error = (await refused).error;
        assert.match(String(error?.message), /welcome time is 86\d\d\d s ahead of this device/);
        assert.ok(!id.startsWith('k'), `open as the session the node gave, not ${id}`);
        await new Promise((res) => setTimeout(res, 200));
        assert.deepEqual(claims(ahead), [], 'nothing was signed');

        // Within options.claimClockSkew: signed with the node's time.
        const near = await controlledServer(t, (ws, n) => welcome(ws, n, {
            challenge: '00112233445566778899aabbccddeeff', time: Date.now() + 5_000 }));
        const b = client(t, { identity });
        b.connect(near.url).catch(() => {});
        await waitUntil(() => claims(near).length === 1, { what: 'a claim at the node' });
        assert.ok(claims(near)[0].time > Date.now(), 'the node\'s time, a little ahead');
    });

    it('rejects connect() once every node failed, and goes on trying', async (t) => {
        const deadPort = await freeTcpPort();   // nothing listens here
        const dead = `ws://127.0.0.1:${deadPort}/signal`;
        const silent = await controlledServer(t, () => {});
        const c = client(t, { openTimeout: 300, backoff: { initial: 20, max: 20 } });
        const started = performance.now();
        await assert.rejects(c.connect([dead, silent.url]), (err) => {
            assert.equal(err.code, ErrorCode.NO_NODE);
            assert.match(err.message, /^no node answered \(2 nodes\): no welcome .* 300 ms/);
            return true;
        });
        console.log(`# connect() to a dead and a silent node: rejected after `
                    + `${Math.round(performance.now() - started)} ms`);
        // still trying: the silent node welcomes now, and the client is in
        silent.behave = welcome;
        const d = await nextEvent(c, 'id');
        assert.equal(d.url, silent.url);
        assert.equal(c.state, 'open');
    });

    it('stops for good on close(): no more attempts, a pending connect() rejects',
       async (t) => {
        // the node neither welcomes nor closes: connect() is still pending
        const srv = await controlledServer(t, () => {});
        const c = client(t, { openTimeout: 60_000, backoff: { initial: 20, max: 20 } });
        const pending = c.connect(srv.url);
        await until(() => srv.connections.length === 1, 'the attempt');
        c.close();
        await assert.rejects(pending, /client closed/);
        assert.equal(c.state, 'closed');
        const attempts = srv.connections.length;
        await new Promise((res) => setTimeout(res, 200));   // ten retry waits
        assert.equal(srv.connections.length, attempts, 'no attempt after close()');
    });
});

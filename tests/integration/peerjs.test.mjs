// The PeerJS dialect (docs/peerjs.md) on real nginx nodes, driven by plain
// `ws` clients that speak what the unmodified `peerjs` client speaks: the
// server's HTTP (description, /id, /peers, CORS), the WebSocket's texts for
// bad parameters, OPEN, ID-TAKEN, HEARTBEAT and the alive timeout, relaying
// {type, src, dst, payload} on one node and across two, EXPIRE for an id
// found nowhere, bad input dropped as the PeerJS server drops it, and ids
// the client chose, kept unique across two nodes through the DHT.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';

import { NginxNode, freePortRange, startNetwork, startNode, waitUntil } from '../lib/nginx.mjs';
import { Session, SESSION_ID, openSession, randomSessionId, terminateSessions }
    from '../lib/client.mjs';

// The first message to a node not yet known costs a DHT lookup.
const ROUTE_WAIT = 60_000;
// what the PeerJS server gives at {key}/id, and so does the node
const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const EXPIRE_MS = 1000;
const ALIVE_MS = 1500;

const PEERJS = `
location /peerjs/ {
    dwrtc_peerjs;
    dwrtc_peerjs_expire_timeout ${EXPIRE_MS}ms;
}
location /short/ {
    dwrtc_peerjs;
    dwrtc_peerjs_alive_timeout ${ALIVE_MS}ms;
}
location = /status {
    dwrtc_status;
}
location /discover/ {
    dwrtc_peerjs;
    dwrtc_peerjs_discovery on;
}
location /keyed/ {
    dwrtc_peerjs;
    dwrtc_peerjs_key s3cret_key;
    dwrtc_allowed_origins https://app.example;
}`;

/** A PeerJS WebSocket, as the client opens it; resolves once open. */
async function connect(node, { path = '/peerjs/', key = 'peerjs', id, token = 'tok3n',
                               label } = {}) {
    const q = new URLSearchParams();
    if (key !== null) q.set('key', key);
    if (id !== null && id !== undefined) q.set('id', id);
    if (token !== null) q.set('token', token);
    q.set('version', '1.5.4');
    const ws = new WebSocket(node.wsUrl(`${path}peerjs?${q}`), { perMessageDeflate: false });
    const session = new Session(ws, label ?? `peerjs ${id}`);
    await new Promise((resolve, reject) => {
        ws.once('open', resolve);
        ws.once('error', reject);
        ws.once('unexpected-response', (req, res) =>
            reject(new Error(`handshake answered ${res.statusCode}`)));
    });
    session.id = id;
    return session;
}

async function newId(node, path = '/peerjs/', key = 'peerjs') {
    const res = await fetch(node.httpUrl(`${path}${key}/id`));
    assert.equal(res.status, 200);
    return res.text();
}

/** A registered PeerJS client: an id from the node, OPEN received. */
async function peer(node, opts = {}) {
    const id = await newId(node, opts.path);
    const s = await connect(node, { ...opts, id });
    assert.deepEqual(await s.waitFor(() => true, { what: 'OPEN' }), { type: 'OPEN' });
    return s;
}

/** Asserts that nothing (matching pred) arrives within ms. */
async function nothingFor(s, ms, pred = () => true) {
    await new Promise((r) => setTimeout(r, ms));
    const got = s.inbox.queue.filter(pred);
    assert.equal(got.length, 0, `${s.label} got ${JSON.stringify(got[0])}`);
}

// An offer as the peerjs client sends it: SDP, its own fields, app metadata.
function offerPayload(extra = '') {
    return {
        sdp: { type: 'offer', sdp: `v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n${'a=candidate:x\r\n'.repeat(200)}${extra}` },
        type: 'data', connectionId: 'dc_abc123', label: 'dc_abc123', reliable: true,
        serialization: 'binary', metadata: { user: 'ünïcödé 🎉', nested: [1, 2.5, null, true] },
        browser: 'chrome',
    };
}

describe('PeerJS over a network of two nginx nodes', () => {
    let net, n1, n2;

    before(async () => {
        net = await startNetwork(2, { name: 'peerjs', server: PEERJS });
        [n1, n2] = net.nodes;
    });

    after(async () => {
        terminateSessions();
        await net?.stop();
    });

    describe('HTTP', () => {
        it('describes the server at {path}', async () => {
            const res = await fetch(n1.httpUrl('/peerjs/'));
            assert.equal(res.status, 200);
            assert.match(res.headers.get('content-type'), /^application\/json/);
            const body = await res.json();
            assert.equal(body.name, 'PeerJS Server');
            assert.match(body.description, /DWRTC/);
        });

        it('gives a fresh id at {path}{key}/id: a random UUID, as text', async () => {
            const res = await fetch(n1.httpUrl('/peerjs/peerjs/id'));
            assert.equal(res.status, 200);
            assert.match(res.headers.get('content-type'), /^text\/plain/);
            assert.equal(res.headers.get('cache-control'), 'no-store');
            const a = await res.text();
            const b = await newId(n1);
            assert.match(a, UUID_V4);
            assert.notEqual(a, b);
            assert.doesNotMatch(a, SESSION_ID, 'it names no node');
        });

        it('answers {path}{key}/peers with 401: discovery is off', async () => {
            const res = await fetch(n1.httpUrl('/peerjs/peerjs/peers'));
            assert.equal(res.status, 401);
        });

        it('lists the ids its location\'s sessions hold on the worker, with '
           + 'dwrtc_peerjs_discovery on', async () => {
            const listed = async () => {
                const res = await fetch(n1.httpUrl('/discover/any-key/peers'),
                                        { headers: { Origin: 'https://other.example' } });
                assert.equal(res.status, 200);
                assert.match(res.headers.get('content-type'), /^application\/json/);
                assert.equal(res.headers.get('access-control-allow-origin'),
                             'https://other.example');
                return (await res.json()).sort();
            };
            assert.deepEqual(await listed(), []);
            const given = await peer(n1, { path: '/discover/' });
            const chosenId = `dora ${Math.random().toString(36).slice(2, 8)}`;
            const chosen = await connect(n1, { path: '/discover/', id: chosenId, token: 't' });
            assert.deepEqual(await chosen.waitFor(() => true, { timeout: ROUTE_WAIT }),
                             { type: 'OPEN' });
            const otherLocation = await peer(n1);
            const otherNode = await peer(n2, { path: '/discover/' });
            assert.deepEqual(await listed(), [given.id, chosenId].sort());
            given.ws.close();
            await given.closed;
            await waitUntil(async () => (await listed()).length === 1,
                            { what: 'the closed session to leave the list' });
            assert.deepEqual(await listed(), [chosenId]);
            for (const s of [chosen, otherLocation, otherNode]) {
                s.ws.close();
                await s.closed;
            }
        });

        it('answers 404 for other paths and 405 for other methods', async () => {
            assert.equal((await fetch(n1.httpUrl('/peerjs/peerjs/nothing'))).status, 404);
            assert.equal((await fetch(n1.httpUrl('/peerjs/peerjs/id'), { method: 'POST' })).status,
                         405);
        });

        it('reflects the page\'s Origin, and answers a preflight', async () => {
            const res = await fetch(n1.httpUrl('/peerjs/peerjs/id'),
                                    { headers: { Origin: 'https://other.example' } });
            assert.equal(res.status, 200);
            assert.equal(res.headers.get('access-control-allow-origin'), 'https://other.example');
            assert.match(res.headers.get('vary'), /Origin/);
            const pre = await fetch(n1.httpUrl('/peerjs/peerjs/id'), {
                method: 'OPTIONS',
                headers: { Origin: 'https://other.example', 'Access-Control-Request-Method': 'GET' },
            });
            assert.equal(pre.status, 204);
            assert.equal(pre.headers.get('access-control-allow-origin'), 'https://other.example');
            assert.match(pre.headers.get('access-control-allow-methods'), /GET/);
        });

        it('keeps to dwrtc_allowed_origins where it is set', async () => {
            const ok = await fetch(n1.httpUrl('/keyed/s3cret_key/id'),
                                   { headers: { Origin: 'https://app.example' } });
            assert.equal(ok.status, 200);
            assert.equal(ok.headers.get('access-control-allow-origin'), 'https://app.example');
            const no = await fetch(n1.httpUrl('/keyed/s3cret_key/id'),
                                   { headers: { Origin: 'https://evil.example' } });
            assert.equal(no.status, 403);
            assert.equal(no.headers.get('access-control-allow-origin'), null);
        });
    });

    describe('WebSocket', () => {
        async function refusedWith(opts, msg) {
            const s = await connect(n1, opts);
            assert.deepEqual(await s.waitFor(() => true, { what: 'ERROR' }),
                             { type: 'ERROR', payload: { msg } });
            const closed = await s.closed;
            assert.equal(closed.code, 1000);
        }

        it('says which parameter is missing, then closes', async () => {
            const id = await newId(n1);
            const missing = 'No id, token, or key supplied to websocket server';
            await refusedWith({ id, token: null }, missing);
            await refusedWith({ id, key: null }, missing);
            await refusedWith({ id: null }, missing);
            await refusedWith({ id, token: '' }, missing);
        });

        it('relays nothing from a refused WebSocket before it closes', async () => {
            const b = await peer(n1);
            const ws = new WebSocket(n1.wsUrl(`/peerjs/peerjs?key=wrong&id=${await newId(n1)}`
                                              + '&token=t'), { perMessageDeflate: false });
            await new Promise((resolve) => ws.once('open', resolve));
            ws.send(JSON.stringify({ type: 'OFFER', dst: b.id, payload: 'sneaked in' }));
            await new Promise((resolve) => ws.once('close', resolve));
            await nothingFor(b, 300);
            b.ws.close();
        });

        it('refuses a wrong key, then closes', async () => {
            await refusedWith({ id: await newId(n1), key: 'other' }, 'Invalid key provided');
            await refusedWith({ path: '/keyed/', id: await newId(n1, '/keyed/', 's3cret_key') },
                              'Invalid key provided');
        });

        it('opens with OPEN under an id from /id, also on a location with its own key',
           async () => {
            const s = await peer(n1);
            assert.equal(s.closedWith, null);
            const k = await connect(n1, { path: '/keyed/', key: 's3cret_key',
                                          id: await newId(n1, '/keyed/', 's3cret_key') });
            assert.deepEqual(await k.waitFor(() => true), { type: 'OPEN' });
            s.ws.close();
            k.ws.close();
        });

        it('answers ID-TAKEN for an id a session holds, and OPEN again once it is free',
           async () => {
            const first = await peer(n1);
            const second = await connect(n1, { id: first.id, token: 'another' });
            assert.deepEqual(await second.waitFor(() => true),
                             { type: 'ID-TAKEN', payload: { msg: 'ID is taken' } });
            await second.closed;
            first.ws.close();
            await first.closed;
            const again = await connect(n1, { id: first.id });
            assert.deepEqual(await again.waitFor(() => true), { type: 'OPEN' });
            again.ws.close();
        });

        it('lets the same id with the same token take it back (reconnect()), closing the older',
           async () => {
            const first = await peer(n1, { token: 'same-token' });
            const other = await peer(n1);
            const again = await connect(n1, { id: first.id, token: 'same-token' });
            assert.deepEqual(await again.waitFor(() => true), { type: 'OPEN' });
            const closed = await first.closed;
            assert.equal(closed.code, 1001, 'the older session is told it is going away');
            // messages for the id reach the new session
            other.send({ type: 'OFFER', dst: first.id, payload: { n: 1 } });
            assert.deepEqual(await again.waitFor((m) => m.type === 'OFFER'),
                             { type: 'OFFER', src: other.id, dst: first.id, payload: { n: 1 } });
            assert.match(n1.errorLog(),
                         new RegExp(`peerjs chosen id "${first.id}" taken back by a newer session`));
            again.ws.close();
            other.ws.close();
        });

        it('refuses an id that is neither its own nor one a client may choose', async () => {
            const notOurs = 'ID not given out by this server and not one a client may choose: '
                          + 'choose another ID, or leave the ID out to get one';
            // a session id of another node, and one of this node in capitals
            const [other] = n2.currentNodes().map((n) => n.nodeId);
            const [own] = n1.currentNodes().map((n) => n.nodeId);
            await refusedWith({ id: `${other}-0123456789abcdef` }, notOurs);
            await refusedWith({ id: `${own}-0123456789abcdef`.toUpperCase() }, notOurs);
            assert.match(n1.errorLog(), /was not given out by this node and may not be chosen/);
            // a decoded id is never written to the log as it is
            await refusedWith({ id: 'x"\n2026/01/01 00:00:00 [emerg] forged' }, notOurs);
            assert.doesNotMatch(n1.errorLog(), /\[emerg\] forged/);
            assert.match(n1.errorLog(), /peerjs id of 37 bytes that is not a PeerJS id refused/);
        });

        it('keeps a session that sends HEARTBEAT, closes a silent one after the alive timeout',
           async () => {
            const beating = await peer(n1, { path: '/short/' });
            const silent = await peer(n1, { path: '/short/' });
            const started = Date.now();
            const timer = setInterval(() => beating.send({ type: 'HEARTBEAT' }), ALIVE_MS / 3);
            try {
                const closed = await silent.closed;
                const after = Date.now() - started;
                assert.equal(closed.code, 1000);
                assert.ok(after >= ALIVE_MS - 100, `closed after ${after} ms`);
                assert.ok(after < ALIVE_MS + 3000, `closed after ${after} ms`);
                await new Promise((r) => setTimeout(r, ALIVE_MS));
                assert.equal(beating.closedWith, null, 'the beating session is still open');
            } finally {
                clearInterval(timer);
            }
            assert.equal(beating.inbox.queue.length, 0, 'HEARTBEAT gets no answer');
            beating.ws.close();
        });
    });

    describe('relaying', () => {
        it('relays OFFER on one node as exactly {type, src, dst, payload}, src by the node',
           async () => {
            const a = await peer(n1);
            const b = await peer(n1);
            const payload = offerPayload();
            // what the client wrote, byte for byte, must reach the other side
            const payloadText = JSON.stringify(payload);
            a.sendText(`{"type":"OFFER","src":"forged","dst":"${b.id}","payload":${payloadText}}`);
            const raw = new Promise((resolve) => b.ws.once('message', (d) => resolve(d.toString())));
            const got = await b.waitFor((m) => m.type === 'OFFER');
            assert.deepEqual(got, { type: 'OFFER', src: a.id, dst: b.id, payload });
            assert.equal(await raw,
                         `{"type":"OFFER","src":"${a.id}","dst":"${b.id}","payload":${payloadText}}`);
            a.ws.close();
            b.ws.close();
        });

        it('relays OFFER, ANSWER, CANDIDATE and LEAVE across nodes', async () => {
            const a = await peer(n1, { label: 'a@1' });
            const b = await peer(n2, { label: 'b@2' });
            const offer = offerPayload('a=x:'.padEnd(20_000, 'y'));
            a.send({ type: 'OFFER', dst: b.id, payload: offer });
            assert.deepEqual(await b.waitFor((m) => m.type === 'OFFER',
                                             { timeout: ROUTE_WAIT, what: 'the OFFER' }),
                             { type: 'OFFER', src: a.id, dst: b.id, payload: offer });
            const answer = { sdp: { type: 'answer', sdp: 'v=0\r\n' }, type: 'data',
                             connectionId: 'dc_abc123', browser: 'firefox' };
            b.send({ type: 'ANSWER', dst: a.id, payload: answer });
            assert.deepEqual(await a.waitFor((m) => m.type === 'ANSWER',
                                             { timeout: ROUTE_WAIT, what: 'the ANSWER' }),
                             { type: 'ANSWER', src: b.id, dst: a.id, payload: answer });
            const candidate = { candidate: { candidate: 'candidate:1 1 udp 1 1.2.3.4 5 typ host',
                                             sdpMid: '0', sdpMLineIndex: 0 },
                                type: 'data', connectionId: 'dc_abc123' };
            a.send({ type: 'CANDIDATE', dst: b.id, payload: candidate });
            assert.deepEqual(await b.waitFor((m) => m.type === 'CANDIDATE'),
                             { type: 'CANDIDATE', src: a.id, dst: b.id, payload: candidate });
            // a LEAVE as DataConnection.close() sends it: no payload at all
            a.send({ type: 'LEAVE', dst: b.id });
            assert.deepEqual(await b.waitFor((m) => m.type === 'LEAVE'),
                             { type: 'LEAVE', src: a.id, dst: b.id });
            a.ws.close();
            b.ws.close();
        });

        it('sends one EXPIRE per missing id after the expire timeout, on one node and across',
           async () => {
            const a = await peer(n1);
            const missingHere = await newId(n1);      // given out, never connected
            const missingThere = await newId(n2);
            const chosen = 'nobody-here';              // no node can hold it yet
            const sent = Date.now();
            for (let i = 0; i < 3; i++) {
                for (const dst of [missingHere, missingThere, chosen]) {
                    a.send({ type: 'OFFER', dst, payload: offerPayload() });
                }
            }
            const expired = await a.collect(3, (m) => m.type === 'EXPIRE',
                                            { timeout: ROUTE_WAIT, what: 'EXPIREs' });
            const after = Date.now() - sent;
            assert.ok(after >= EXPIRE_MS - 50, `EXPIRE after ${after} ms, not before the timeout`);
            assert.deepEqual(new Set(expired.map((m) => JSON.stringify(m))),
                             new Set([missingHere, missingThere, chosen].map((src) =>
                                 JSON.stringify({ type: 'EXPIRE', src, dst: a.id }))));
            await nothingFor(a, EXPIRE_MS + 500);
            a.ws.close();
        });

        it('answers nothing for a LEAVE or EXPIRE to an id that is gone, as the PeerJS server',
           async () => {
            const a = await peer(n1);
            a.send({ type: 'LEAVE', dst: await newId(n1) });
            a.send({ type: 'EXPIRE', dst: 'nobody' });
            await nothingFor(a, EXPIRE_MS + 500);
            a.ws.close();
        });

        it('answers nothing for a LEAVE or EXPIRE to an id gone on the other node, and EXPIRE '
           + 'for an OFFER', async () => {
            const a = await peer(n1);
            const b = await peer(n2);
            const native = await openSession(n2.wsUrl());
            // both reached once, so n1 knows where they are
            a.send({ type: 'OFFER', dst: b.id, payload: {} });
            await b.waitFor((m) => m.type === 'OFFER', { timeout: ROUTE_WAIT });
            a.send({ type: 'OFFER', dst: native.id, payload: {} });
            await native.waitFor((m) => m.type === 'OFFER', { timeout: ROUTE_WAIT });
            b.ws.close();
            await b.closed;
            await native.close();
            a.send({ type: 'LEAVE', dst: b.id });
            a.send({ type: 'EXPIRE', dst: native.id });
            a.send({ type: 'LEAVE', dst: native.id });
            await nothingFor(a, EXPIRE_MS + 1000);
            a.send({ type: 'OFFER', dst: native.id, payload: {} });
            assert.deepEqual(await a.waitFor(() => true, { timeout: EXPIRE_MS + 5000 }),
                             { type: 'EXPIRE', src: native.id, dst: a.id });
            a.ws.close();
        });

        it('drops what the PeerJS server drops, logs it once, and relays on', async () => {
            const a = await peer(n1);
            const b = await peer(n1);
            a.sendText('not json');
            a.sendText('[1,2,3]');
            a.sendText('{"type":"UNKNOWN","dst":"x"}');
            a.sendText(`{"type":"OFFER","dst":"bad//id","payload":{}}`);
            a.sendText(`{"type":"OFFER","dst":"${b.id}","dst":"${b.id}"}`);
            a.sendText('{"type":7}');
            a.send({ type: 'OFFER', dst: b.id, payload: { after: 'the bad ones' } });
            assert.deepEqual(await b.waitFor((m) => m.type === 'OFFER'),
                             { type: 'OFFER', src: a.id, dst: b.id,
                               payload: { after: 'the bad ones' } });
            assert.equal(a.inbox.queue.length, 0, 'the sender is told nothing');
            assert.equal(a.closedWith, null);
            const drops = n1.errorLog().split('\n')
                .filter((l) => l.includes('dwrtc: peerjs message dropped: not JSON'));
            assert.equal(drops.length, 1, 'logged once per session, at info');
            assert.match(drops[0], /\[info\]/);
            a.ws.close();
            b.ws.close();
        });

        it('closes a session that sends a binary frame (1003) or too much (1009), as native ones',
           async () => {
            const a = await peer(n1);
            a.ws.send(Buffer.from('{"type":"HEARTBEAT"}'), { binary: true });
            assert.equal((await a.closed).code, 1003);
            const b = await peer(n1);
            b.send({ type: 'OFFER', dst: 'x', payload: 'y'.repeat(70_000) });
            assert.equal((await b.closed).code, 1009);
        });

        it('shares the network with native sessions: a native message reaches a PeerJS session',
           async () => {
            const p = await peer(n2);
            const native = await openSession(n1.wsUrl());
            native.to(p.id, 'plain text, not JSON', 'OFFER');
            assert.deepEqual(await p.waitFor((m) => m.type === 'OFFER',
                                             { timeout: ROUTE_WAIT, what: 'the OFFER' }),
                             { type: 'OFFER', src: native.id, dst: p.id,
                               payload: 'plain text, not JSON' });
            // a body that is JSON members, not one value, cannot add fields
            native.to(p.id, '1,"src":"forged"', 'OFFER');
            const raw = await new Promise((resolve) => p.ws.once('message', (d) => resolve(d.toString())));
            assert.equal(raw, `{"type":"OFFER","src":"${native.id}","dst":"${p.id}",`
                              + '"payload":"1,\\"src\\":\\"forged\\""}');
            assert.equal(JSON.parse(raw).src, native.id);
            p.ws.close();
            await native.close();
        });
    });

    it('takes an id from /id back with its token on the other node (reconnect() there), '
       + 'where native and PeerJS sessions of either node reach it', async () => {
        const first = await peer(n1, { token: 'moving' });
        const again = await connect(n2, { id: first.id, token: 'moving', label: 'moved' });
        assert.deepEqual(await again.waitFor(() => true), { type: 'OPEN' });
        assert.equal((await first.closed).code, 1001, 'the older session is told it is going away');
        const native = await openSession(n1.wsUrl());
        const other = await peer(n1);
        let n = 0;
        // The move is in the DHT within moments; the first message may find the old node.
        await waitUntil(async () => {
            native.to(first.id, `{"n":${++n}}`, 'OFFER');
            const got = await again.waitFor((m) => m.type === 'OFFER' && m.src === native.id,
                                            { timeout: 1000 }).catch(() => null);
            return got !== null;
        }, { timeout: ROUTE_WAIT, what: 'a native message to reach the id on its new node' });
        other.send({ type: 'ANSWER', dst: first.id, payload: { from: 'n1' } });
        assert.deepEqual(await again.waitFor((m) => m.type === 'ANSWER'),
                         { type: 'ANSWER', src: other.id, dst: first.id, payload: { from: 'n1' } });
        again.ws.close();
        other.ws.close();
        await native.close();
    });

    it('counts PeerJS sessions and relayed messages on the status page', async () => {
        const status = async () => (await (await fetch(n2.httpUrl('/status'))).json())
            .workers[0].peerjs;
        const before = await status();
        const a = await peer(n2);
        const b = await peer(n2);
        a.send({ type: 'HEARTBEAT' });
        a.send({ type: 'OFFER', dst: b.id, payload: 1 });
        await b.waitFor((m) => m.type === 'OFFER');
        let now;
        await waitUntil(async () => {
            now = await status();
            // sessions of the tests before may still be closing
            return now.sessions >= 2 && now.messages === before.messages + 1;
        }, { timeout: 5000, what: 'the status page to count them' }).catch(() => {
            assert.fail(`status page: ${JSON.stringify(now)}, before ${JSON.stringify(before)}`);
        });
        const prom = await (await fetch(n2.httpUrl('/status?format=prometheus'))).text();
        assert.match(prom, /^dwrtc_peerjs_sessions\{worker="0"\} \d+$/m);
        assert.match(prom, /^dwrtc_peerjs_messages_total\{worker="0"\} \d+$/m);
        a.ws.close();
        b.ws.close();
        await a.closed;
        await b.closed;
        await waitUntil(async () => (await status()).sessions <= now.sessions - 2,
                        { timeout: 5000, what: 'the status page to count them out' });
    });

    it('logs no alert or crit', () => {
        net.assertNoAlerts();
    });
});

describe('chosen PeerJS ids on two nginx nodes', () => {
    let net, n1, n2;
    // ids of their own per run, so that no record of an earlier run is met
    const run = Math.random().toString(36).slice(2, 8);
    const ID_TAKEN = { type: 'ID-TAKEN', payload: { msg: 'ID is taken' } };

    before(async () => {
        net = await startNetwork(2, { name: 'peerjs-chosen', server: PEERJS });
        [n1, n2] = net.nodes;
    });

    after(async () => {
        terminateSessions();
        await net?.stop();
    });

    /** The first text a chosen id's WebSocket gets: the network's verdict. */
    async function verdict(node, id, token) {
        const s = await connect(node, { id, token });
        return [s, await s.waitFor(() => true, { timeout: ROUTE_WAIT, what: 'the verdict' })];
    }

    it('opens a chosen id; another token gets ID-TAKEN on the other node; after the close '
       + 'the same token opens it again there, and another token still may not', async () => {
        const id = `alice ${run}`;
        const [a, open] = await verdict(n1, id, 'token-a');
        assert.deepEqual(open, { type: 'OPEN' });

        const [b, taken] = await verdict(n2, id, 'token-b');
        assert.deepEqual(taken, ID_TAKEN);
        assert.equal((await b.closed).code, 1000);
        assert.equal(a.closedWith, null, 'the holder is not disturbed');
        assert.match(n2.errorLog(),
                     new RegExp(`peerjs chosen id "${id}" not held: \\{"type":"ID-TAKEN"`));

        // closed: reserved for its token, on any node
        a.ws.close();
        await a.closed;
        const [again, reopened] = await verdict(n2, id, 'token-a');
        assert.deepEqual(reopened, { type: 'OPEN' });
        const [other, stillTaken] = await verdict(n1, id, 'token-b');
        assert.deepEqual(stillTaken, ID_TAKEN);
        assert.equal((await other.closed).code, 1000);
        assert.equal(again.closedWith, null);
        again.ws.close();
        await again.closed;
        net.assertNoAlerts();
    });

    it('the same token on the other node takes the id over: the older session is closed 1001',
       async () => {
        const id = `bob_${run}`;
        const [first, open] = await verdict(n1, id, 'same-token');
        assert.deepEqual(open, { type: 'OPEN' });
        const [second, reopened] = await verdict(n2, id, 'same-token');
        assert.deepEqual(reopened, { type: 'OPEN' });
        // n1 follows the id in the DHT and sees the newer record of its token
        const closed = await Promise.race([
            first.closed,
            new Promise((_, reject) => setTimeout(
                () => reject(new Error('the older session was not closed')), ROUTE_WAIT)),
        ]);
        assert.equal(closed.code, 1001);
        assert.deepEqual(first.inbox.queue, [], 'the older session is told nothing but the close');
        assert.match(n1.errorLog(),
                     new RegExp(`peerjs chosen id "${id}" taken back by a newer session`));
        assert.equal(second.closedWith, null);
        second.ws.close();
        await second.closed;
        net.assertNoAlerts();
    });

    it('relays nothing a chosen id\'s WebSocket sends before OPEN, nor after its ID-TAKEN',
       async () => {
        const id = `carol-${run}`;
        const [holder, open] = await verdict(n1, id, 'token-a');
        assert.deepEqual(open, { type: 'OPEN' });
        const b = await peer(n1);
        const s = await connect(n1, { id, token: 'token-b' });
        // sent at once: the claim is then waiting or refused, never held
        s.send({ type: 'OFFER', dst: b.id, payload: 'sneaked in' });
        assert.deepEqual(await s.waitFor(() => true), ID_TAKEN);
        await s.closed;
        holder.send({ type: 'HEARTBEAT' });
        await nothingFor(b, EXPIRE_MS);
        holder.ws.close();
        b.ws.close();
        await Promise.all([holder.closed, b.closed]);
    });

    it('relays between two chosen ids on one node, each shown by the id it chose, also to '
       + 'an id the node gave, and to the session that took the id back', async () => {
        const alice = `alice-o-${run}`, bob = `bob-o-${run}`;
        const [a, aOpen] = await verdict(n1, alice, 'token-a');
        const [b, bOpen] = await verdict(n1, bob, 'token-b');
        assert.deepEqual([aOpen, bOpen], [{ type: 'OPEN' }, { type: 'OPEN' }]);

        const offer = offerPayload();
        // a src the client writes is not believed
        a.send({ type: 'OFFER', src: 'mallory', dst: bob, payload: offer });
        assert.deepEqual(await b.waitFor(() => true, { what: 'the offer' }),
                         { type: 'OFFER', src: alice, dst: bob, payload: offer });
        b.send({ type: 'ANSWER', dst: alice, payload: { sdp: 'answer' } });
        assert.deepEqual(await a.waitFor(() => true, { what: 'the answer' }),
                         { type: 'ANSWER', src: bob, dst: alice, payload: { sdp: 'answer' } });

        // an id the node gave speaks as itself; the chosen id answers it as bob
        const plain = await peer(n1);
        plain.send({ type: 'CANDIDATE', dst: bob, payload: { c: 1 } });
        assert.deepEqual(await b.waitFor(() => true, { what: 'the candidate' }),
                         { type: 'CANDIDATE', src: plain.id, dst: bob, payload: { c: 1 } });
        b.send({ type: 'CANDIDATE', dst: plain.id, payload: { c: 2 } });
        assert.deepEqual(await plain.waitFor(() => true, { what: 'the candidate back' }),
                         { type: 'CANDIDATE', src: bob, dst: plain.id, payload: { c: 2 } });

        // bob reconnects with its token (the client's reconnect()): the old
        // WebSocket is closed 1001, and what is for bob reaches the new one
        const [b2, reopened] = await verdict(n1, bob, 'token-b');
        assert.deepEqual(reopened, { type: 'OPEN' });
        assert.equal((await b.closed).code, 1001);
        a.send({ type: 'OFFER', dst: bob, payload: 'again' });
        assert.deepEqual(await b2.waitFor(() => true, { what: 'the offer after reconnect' }),
                         { type: 'OFFER', src: alice, dst: bob, payload: 'again' });

        // gone from here: alice hears EXPIRE for bob, addressed to her chosen id
        b2.ws.close();
        await b2.closed;
        a.send({ type: 'OFFER', dst: bob, payload: 'too late' });
        assert.deepEqual(await a.waitFor(() => true, { timeout: ROUTE_WAIT, what: 'EXPIRE' }),
                         { type: 'EXPIRE', src: bob, dst: alice });
        for (const s of [a, plain]) s.ws.close();
        await Promise.all([a.closed, plain.closed]);
        net.assertNoAlerts();
    });

    it('relays between chosen ids on the two nodes, each shown by the id it chose, and '
       + 'reaches them again after each reconnects on the other node', async () => {
        const alice = `alice-x-${run}`, bob = `bob-x-${run}`;
        const [a, aOpen] = await verdict(n1, alice, 'token-a');
        const [b, bOpen] = await verdict(n2, bob, 'token-b');
        assert.deepEqual([aOpen, bOpen], [{ type: 'OPEN' }, { type: 'OPEN' }]);

        const offer = offerPayload();
        a.send({ type: 'OFFER', src: 'mallory', dst: bob, payload: offer });
        assert.deepEqual(await b.waitFor(() => true, { timeout: ROUTE_WAIT, what: 'the offer' }),
                         { type: 'OFFER', src: alice, dst: bob, payload: offer });
        b.send({ type: 'ANSWER', dst: alice, payload: { sdp: 'answer' } });
        assert.deepEqual(await a.waitFor(() => true, { timeout: ROUTE_WAIT, what: 'the answer' }),
                         { type: 'ANSWER', src: bob, dst: alice, payload: { sdp: 'answer' } });
        for (let i = 0; i < 10; i++) a.send({ type: 'CANDIDATE', dst: bob, payload: { i } });
        for (let i = 0; i < 10; i++) {
            assert.deepEqual(await b.waitFor(() => true, { what: `candidate ${i}` }),
                             { type: 'CANDIDATE', src: alice, dst: bob, payload: { i } });
        }

        // each reconnects on the other node (the client's reconnect() landing
        // elsewhere): the old WebSockets are closed 1001, and the two still
        // reach each other across the nodes, now the other way round
        const [b2, bAgain] = await verdict(n1, bob, 'token-b');
        assert.deepEqual(bAgain, { type: 'OPEN' });
        assert.equal((await b.closed).code, 1001);
        const [a2, aAgain] = await verdict(n2, alice, 'token-a');
        assert.deepEqual(aAgain, { type: 'OPEN' });
        assert.equal((await a.closed).code, 1001);
        a2.send({ type: 'OFFER', dst: bob, payload: 'after reconnect' });
        assert.deepEqual(
            await b2.waitFor(() => true, { timeout: ROUTE_WAIT, what: 'the offer after reconnect' }),
            { type: 'OFFER', src: alice, dst: bob, payload: 'after reconnect' });
        b2.send({ type: 'ANSWER', dst: alice, payload: 'back' });
        assert.deepEqual(
            await a2.waitFor(() => true, { timeout: ROUTE_WAIT, what: 'the answer after reconnect' }),
            { type: 'ANSWER', src: bob, dst: alice, payload: 'back' });

        // bob gone: alice hears one EXPIRE for bob, addressed to her chosen id
        b2.ws.close();
        await b2.closed;
        a2.send({ type: 'OFFER', dst: bob, payload: 'too late' });
        a2.send({ type: 'CANDIDATE', dst: bob, payload: 'too late' });
        assert.deepEqual(await a2.waitFor(() => true, { timeout: ROUTE_WAIT, what: 'EXPIRE' }),
                         { type: 'EXPIRE', src: bob, dst: alice });
        await nothingFor(a2, EXPIRE_MS);
        a2.ws.close();
        await a2.closed;
        net.assertNoAlerts();
    });

    it('counts a chosen id\'s session on the status page while it holds the id', async () => {
        const sessions = async () =>
            (await (await fetch(n1.httpUrl('/status'))).json()).workers[0].peerjs.sessions;
        // every session of the tests above is closed: none is left counted
        await waitUntil(async () => (await sessions()) === 0, { what: 'no PeerJS session' });
        const [s, open] = await verdict(n1, `dave-${run}`, 'token-d');
        assert.deepEqual(open, { type: 'OPEN' });
        const [t, taken] = await verdict(n1, `dave-${run}`, 'token-e');
        assert.deepEqual(taken, ID_TAKEN);
        await t.closed;
        await waitUntil(async () => (await sessions()) === 1, { what: 'one PeerJS session' });
        s.ws.close();
        await s.closed;
        await waitUntil(async () => (await sessions()) === 0, { what: 'the count back to 0' });
    });
});

describe('chosen ids on a node alone', () => {
    const nodes = [];
    after(async () => {
        terminateSessions();
        await Promise.all(nodes.map((n) => n.stop()));
    });

    it('are given by a node that is its whole network (no dwrtc_bootstrap), '
       + 'one token at a time', async () => {
        const node = await startNode({ name: 'peerjs-first',
                                       server: 'location /peerjs/ { dwrtc_peerjs; }' });
        nodes.push(node);
        const s = await connect(node, { id: 'erin', token: 't' });
        assert.deepEqual(await s.waitFor(() => true), { type: 'OPEN' });
        const other = await connect(node, { id: 'erin', token: 'another' });
        assert.deepEqual(await other.waitFor(() => true),
                         { type: 'ID-TAKEN', payload: { msg: 'ID is taken' } });
        const given = await peer(node);
        s.send({ type: 'OFFER', dst: given.id, payload: { n: 1 } });
        assert.deepEqual(await given.waitFor((m) => m.type === 'OFFER'),
                         { type: 'OFFER', src: 'erin', dst: given.id, payload: { n: 1 } });
        s.ws.close();
        given.ws.close();
        node.assertNoAlerts();
    });

    it('are refused by a node whose dwrtc_bootstrap nodes do not answer, with an ERROR that '
       + 'says the network could not be asked, then closed, after dwrtc_peerjs_id_wait',
       async () => {
        // nothing listens there
        const [silent] = await freePortRange(1);
        const node = await NginxNode.create({ name: 'peerjs-cut-off',
                                              http: 'dwrtc_peerjs_id_wait 700ms;',
                                              bootstrap: [`127.0.0.1:${silent}`],
                                              server: 'location /peerjs/ { dwrtc_peerjs; }' });
        nodes.push(node);
        await node.start();
        const s = await connect(node, { id: 'erin', token: 't' });
        assert.deepEqual(await s.waitFor(() => true, { timeout: ROUTE_WAIT }),
                         { type: 'ERROR',
                           payload: { msg: 'ID not available: this server could not reach its '
                                           + 'network to check the ID, try again' } });
        assert.equal((await s.closed).code, 1000);
        // the wait the node applied is the directive's, not the default 5 s
        assert.match(node.errorLog(),
                     /peerjs id erin not given: the DHT did not answer in 700 ms/);
        node.assertNoAlerts();
    });
});

describe('dwrtc_peerjs_id_reserve 0 on two nginx nodes', () => {
    let net, n1, n2;
    const ID_TAKEN = { type: 'ID-TAKEN', payload: { msg: 'ID is taken' } };
    before(async () => {
        net = await startNetwork(2, { name: 'peerjs-noreserve', http: 'dwrtc_peerjs_id_reserve 0;',
                                      server: 'location /peerjs/ { dwrtc_peerjs; }' });
        [n1, n2] = net.nodes;
    });
    after(async () => {
        terminateSessions();
        await net?.stop();
    });

    it('frees a chosen id for any token once its session closes', async () => {
        const id = `frank-${Math.random().toString(36).slice(2, 8)}`;
        const first = await connect(n1, { id, token: 'token-a' });
        assert.deepEqual(await first.waitFor(() => true, { timeout: ROUTE_WAIT }),
                         { type: 'OPEN' });
        first.ws.close();
        await first.closed;
        // At once on the node that held it. Elsewhere once the DHT holds
        // the ended record in place of the live one, a moment later: with
        // the default reservation it would be ID-TAKEN for 60 s.
        const openOn = async (node) => {
            const other = await connect(node, { id, token: `token-of-${node.name}` });
            const got = await other.waitFor(() => true, { timeout: ROUTE_WAIT });
            if (got.type === 'OPEN') {
                other.ws.close();
                await other.closed;
                return true;
            }
            assert.deepEqual(got, ID_TAKEN);
            await other.closed;
            return false;
        };
        assert.equal(await openOn(n1), true, 'opens at once on the node that held it');
        await waitUntil(() => openOn(n2), { timeout: 20_000, interval: 250,
                                            what: `${id} to open on the other node` });
        net.assertNoAlerts();
    });
});

describe('dwrtc_peerjs_id_reservations 1 on two nginx nodes', () => {
    let net, n1;
    before(async () => {
        net = await startNetwork(2, { name: 'peerjs-fewreserved',
                                      http: 'dwrtc_peerjs_id_reservations 1;',
                                      server: `location /peerjs/ { dwrtc_peerjs; }
                                               location = /status { dwrtc_status; }` });
        [n1] = net.nodes;
    });
    after(async () => {
        terminateSessions();
        await net?.stop();
    });

    const openAndClose = async (id, token) => {
        const s = await connect(n1, { id, token });
        assert.deepEqual(await s.waitFor(() => true, { timeout: ROUTE_WAIT }), { type: 'OPEN' });
        s.ws.close();
        await s.closed;
    };
    const firstAnswer = async (id, token) => {
        const s = await connect(n1, { id, token });
        const got = await s.waitFor(() => true, { timeout: ROUTE_WAIT });
        s.ws.close();
        await s.closed;
        return got.type;
    };

    it('lets a closed session\'s id go at once when as many are reserved, and counts it',
       async () => {
        const tag = Math.random().toString(36).slice(2, 8);
        const kept = `kept-${tag}`, letGo = `letgo-${tag}`;
        await openAndClose(kept, 'token-a');
        await openAndClose(letGo, 'token-a');
        const figures = async () => {
            const st = await (await fetch(n1.httpUrl('/status'))).json();
            return st.workers.reduce((f, w) => ({
                reserved: f.reserved + w.peerjs.ids_reserved,
                notReserved: f.notReserved + w.bounds.peerjs_ids_not_reserved,
            }), { reserved: 0, notReserved: 0 });
        };
        await waitUntil(async () => {
            const f = await figures();
            return f.reserved === 1 && f.notReserved === 1;
        }, { timeout: 10_000, interval: 200,
             what: 'the status page to show one id reserved and one not' });
        assert.equal(await firstAnswer(letGo, 'token-b'), 'OPEN', 'the id past the cap is free');
        assert.equal(await firstAnswer(kept, 'token-b'), 'ID-TAKEN',
                     'the id within the cap stays its token\'s');
        assert.match(n1.errorLog(), new RegExp(`peerjs id ${letGo} not reserved for its token: `
                                               + '1 ids are reserved already '
                                               + '\\(dwrtc_peerjs_id_reservations\\)'));
        net.assertNoAlerts();
    });
});

// Ids from /id name no worker: the WebSocket may land on any worker of the
// nginx, as it does with several workers and no affinity.
describe('PeerJS on an nginx of two workers', () => {
    after(() => terminateSessions());

    it('opens ids from /id on either worker, and relays between the workers', async (t) => {
        const node = await startNode({ t, name: 'peerjs-workers', workers: 2, reuseport: true,
                                       server: 'location /peerjs/ { dwrtc_peerjs; }\n'
                                             + 'location = /status { dwrtc_status; }' });
        assert.equal(node.currentNodes().length, 2);
        const perWorker = async () => {
            const res = await fetch(node.httpUrl('/status'));
            return (await res.json()).workers.map((w) => w.peerjs.sessions);
        };
        // Connections land on the workers as the kernel spreads them: open
        // PeerJS sessions until both workers hold some (the status page
        // tells, once a second).
        const peers = [];
        while (peers.length < 40) {
            for (let i = 0; i < 4; i++) {
                peers.push(await peer(node, { token: `t${peers.length}` }));
            }
            const counts = await waitUntil(async () => {
                const c = await perWorker();
                return c.reduce((x, y) => x + y, 0) === peers.length && c;
            }, { timeout: 5000, what: 'the status page to count every PeerJS session' });
            if (counts.every((c) => c > 0)) {
                break;
            }
        }
        assert.ok((await perWorker()).every((c) => c > 0), 'ids from /id opened on both workers');
        // every pair, so every pair of workers, both ways
        for (const from of peers) {
            for (const to of peers) {
                if (from !== to) {
                    from.send({ type: 'OFFER', dst: to.id, payload: { from: from.id } });
                }
            }
        }
        for (const to of peers) {
            const got = await to.collect(peers.length - 1, (m) => m.type === 'OFFER',
                                         { what: `offers to ${to.id}` });
            assert.deepEqual(new Set(got.map((m) => m.src)),
                             new Set(peers.filter((p) => p !== to).map((p) => p.id)));
            assert.ok(got.every((m) => m.dst === to.id && m.payload.from === m.src));
        }
        for (const p of peers) {
            p.ws.close();
        }
        await node.quit();
        node.assertNoAlerts();
    });
});

describe('a full node', () => {
    let node;
    after(async () => {
        terminateSessions();
        await node?.stop();
    });

    it('tells a PeerJS client past dwrtc_max_sessions in the PeerJS server\'s words', async () => {
        node = await startNode({ name: 'peerjs-full',
                                 server: 'location /peerjs/ { dwrtc_peerjs; dwrtc_max_sessions 1; }' });
        const first = await peer(node);
        const second = await connect(node, { id: await newId(node) });
        assert.deepEqual(await second.waitFor(() => true),
                         { type: 'ERROR',
                           payload: { msg: 'Server has reached its concurrent user limit' } });
        assert.equal((await second.closed).code, 1000);
        assert.equal(first.closedWith, null, 'the first session is not disturbed');
        first.ws.close();
        await first.closed;
        node.assertNoAlerts();
    });
});

describe('nginx -t: the PeerJS directives', () => {
    const nodes = [];
    after(() => Promise.all(nodes.map((n) => n.stop())));

    async function check(server) {
        const n = await NginxNode.create({ name: 'peerjs-t', server });
        nodes.push(n);
        return n.configTest();
    }

    it('takes the directives with their values', async () => {
        const t = await check(`location /p/ { dwrtc_peerjs; dwrtc_peerjs_key my-key_2;
                               dwrtc_peerjs_expire_timeout 7s; dwrtc_peerjs_alive_timeout 2m;
                               dwrtc_peerjs_discovery on; }`);
        assert.equal(t.ok, true, t.output);
    });

    async function checkHttp(http) {
        const n = await NginxNode.create({ name: 'peerjs-t', http,
                                           server: 'location /p/ { dwrtc_peerjs; }' });
        nodes.push(n);
        return n.configTest();
    }

    it('takes the chosen ids\' directives at http level', async () => {
        const t = await checkHttp('dwrtc_peerjs_id_reserve 0; dwrtc_peerjs_id_wait 2s; '
                                  + 'dwrtc_peerjs_id_reservations 0;');
        assert.equal(t.ok, true, t.output);
    });

    for (const [what, http, pattern] of [
        ['a reservation over 1h', 'dwrtc_peerjs_id_reserve 2h;',
         /"dwrtc_peerjs_id_reserve" must be at most 1h/],
        ['a claim wait of 0', 'dwrtc_peerjs_id_wait 0;',
         /"dwrtc_peerjs_id_wait" must be more than 0 and at most 60s/],
        ['a claim wait over 60s', 'dwrtc_peerjs_id_wait 61s;',
         /"dwrtc_peerjs_id_wait" must be more than 0 and at most 60s/],
        ['more reservations than 1000000', 'dwrtc_peerjs_id_reservations 1000001;',
         /"dwrtc_peerjs_id_reservations" must be from 0 to 1000000/],
        ['a negative number of reservations', 'dwrtc_peerjs_id_reservations -1;',
         /invalid number|"dwrtc_peerjs_id_reservations" must be from 0/],
    ]) {
        it(`refuses ${what}`, async () => {
            const t = await checkHttp(http);
            assert.equal(t.ok, false, `nginx -t passes, it should not:\n${t.output}`);
            assert.match(t.output, pattern);
        });
    }

    for (const [what, server, pattern] of [
        ['a key that is not a plain word', 'location /p/ { dwrtc_peerjs; dwrtc_peerjs_key "a b"; }',
         /"dwrtc_peerjs_key" "a b" must be letters, digits/],
        ['an expire timeout of 0', 'location /p/ { dwrtc_peerjs; dwrtc_peerjs_expire_timeout 0; }',
         /"dwrtc_peerjs_expire_timeout" must be more than 0/],
        ['an alive timeout that is not a time',
         'location /p/ { dwrtc_peerjs; dwrtc_peerjs_alive_timeout soon; }',
         /"dwrtc_peerjs_alive_timeout" directive invalid value/],
        ['dwrtc_peerjs beside dwrtc_signal', 'location /p/ { dwrtc_signal; dwrtc_peerjs; }',
         /"dwrtc_peerjs" directive cannot be combined with "dwrtc_signal"/],
        ['dwrtc_peerjs twice', 'location /p/ { dwrtc_peerjs; dwrtc_peerjs; }',
         /"dwrtc_peerjs" directive is duplicate/],
    ]) {
        it(`refuses ${what}`, async () => {
            const t = await check(server);
            assert.equal(t.ok, false, `nginx -t passes, it should not:\n${t.output}`);
            assert.match(t.output, pattern);
            assert.match(t.output, /\[emerg\]/);
        });
    }
});

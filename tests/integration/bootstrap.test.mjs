// A node started before its bootstrap node: real nginx nodes on loopback,
// started in the wrong order. The early node says it is not in the network
// (log and status page: its sibling worker does not count), keeps trying,
// and joins as soon as its bootstrap node comes up: messages cross both
// ways within seconds of that, whether the wait was 10 s or 60 s. An entry
// that names a node's DHT range finds it on whichever port of it a reload
// left its worker.

import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';

import { NginxNode, freePortRange, waitUntil } from '../lib/nginx.mjs';
import { openSession, terminateSessions } from '../lib/client.mjs';

const STATUS = 'location = /status { dwrtc_status; }';

async function status(node) {
    const res = await fetch(`http://127.0.0.1:${node.httpPort}/status`);
    return JSON.parse(await res.text());
}

/** The network states of the node's workers, as its status page says. */
async function networkStates(node) {
    return (await status(node)).workers.map((w) => w.network?.state);
}

async function reversedStart(t, gapMs) {
    // A's ports are known before it starts, so B can name A's DHT port.
    const aDht = await freePortRange(4);
    const a = await NginxNode.create({ name: 'late-bootstrap', dhtPorts: aDht, server: STATUS });
    const b = await NginxNode.create({ name: 'early', workers: 2, server: STATUS,
                                       bootstrap: [`127.0.0.1:${aDht[0]}`] });
    t.after(() => Promise.all([a.stop(), b.stop()]));
    const bStarted = Date.now();
    await b.start();
    await b.waitPublished();   // on its sibling: a network of its own so far

    await waitUntil(async () => (await networkStates(b)).every((s) => s === 'joining'),
                    { what: 'both workers of B to say "joining"' });
    const st = await status(b);
    for (const w of st.workers) {
        assert.equal(w.network.bootstrap_entries, 1, JSON.stringify(w));
        assert.equal(w.network.bootstrap_answered, 0, JSON.stringify(w));
        assert.equal(w.network.dht_outside, 0, JSON.stringify(w));
        assert.ok(w.dht_peers.good >= 1, `the sibling worker is a DHT peer: ${JSON.stringify(w)}`);
    }

    const rest = gapMs - (Date.now() - bStarted);
    if (rest > 0) {
        await sleep(rest);
    }
    // Each worker has said once, at warn, that it is not in the network.
    const warned = b.logLines().filter((l) => l.level === 'warn'
                                              && /not in the network after/.test(l.text));
    assert.equal(warned.length, 2, b.errorLog());
    assert.match(warned[0].text, new RegExp(`"127.0.0.1:${aDht[0]}" does not answer \\(nothing `
                                            + `listens on UDP port ${aDht[0]}`));

    const up = Date.now();
    await a.start();
    await waitUntil(async () => (await networkStates(b)).every((s) => s === 'in network'),
                    { timeout: 30_000, what: 'both workers of B to be in the network',
                      detail: async () => JSON.stringify(await status(b)) });
    const joined = Date.now() - up;

    // Sessions on every worker of B and on A reach each other both ways.
    await a.waitPublished();
    const onA = await openSession(a.wsUrl(), { label: 'on A' });
    const onB = [];
    for (let i = 0; i < 4; i++) {
        onB.push(await openSession(b.wsUrl(), { label: `on B ${i}` }));
    }
    let crossed = 0;
    await waitUntil(async () => {
        try {
            for (const s of onB) {
                await s.deliver(onA, `from ${s.label}`, { timeout: 3000 });
                await onA.deliver(s, `to ${s.label}`, { timeout: 3000 });
            }
            return true;
        } catch {
            return false;
        }
    }, { timeout: 30_000, interval: 200, what: 'messages between A and every session on B' });
    crossed = Date.now() - up;
    console.log(`start order reversed by ${gapMs / 1000} s: B in the network ${joined} ms `
                + `and messages crossing ${crossed} ms after A started`);
    for (const w of (await status(b)).workers) {
        assert.equal(w.network.bootstrap_answered, 1, JSON.stringify(w));
        assert.ok(w.network.dht_outside >= 1, JSON.stringify(w));
    }
    const back = b.logLines().filter((l) => /in the network: /.test(l.text));
    assert.equal(back.length, 2, b.errorLog());
    assert.equal(back[0].level, 'warn', 'after a warning, the join is said as loudly');
    a.assertNoAlerts();
    b.assertNoAlerts();
}

describe('bootstrap', () => {
    after(() => terminateSessions());

    it('a node started 10 s before its bootstrap node joins it when it comes up', async (t) => {
        await reversedStart(t, 10_000 + 1500);
    });

    it('a node started 60 s before its bootstrap node joins it when it comes up', async (t) => {
        await reversedStart(t, 60_000);
    });

    it('an entry that names a node\'s DHT range finds it after a reload moved its worker',
       async (t) => {
        // A's old worker keeps the first port until it exits; its new one
        // takes the next, and the first stays free.
        const aDht = await freePortRange(4);
        const a = await NginxNode.create({ name: 'moved', dhtPorts: aDht, server: STATUS });
        t.after(() => a.stop());
        await a.start();    // alone: nothing to store its record on yet
        await a.reload();
        await waitUntil(() => a.workerPids({ shuttingDown: true }).length === 1,
                        { what: 'the old worker of A to exit' });
        const moved = a.currentNodes()[0].dhtPort;
        assert.notEqual(moved, aDht[0], 'the new worker listens on another port of the range');

        const range = `127.0.0.1:${aDht[0]}-${aDht[1]}`;
        const c = await NginxNode.create({ name: 'joiner', server: STATUS, bootstrap: [range] });
        t.after(() => c.stop());
        await c.start();
        await waitUntil(async () => (await networkStates(c)).every((s) => s === 'in network'),
                        { timeout: 30_000, what: `C, bootstrapping through ${range}, in the network`,
                          detail: async () => JSON.stringify(await status(c)) });
        await Promise.all([a.waitPublished(), c.waitPublished()]);
        const onA = await openSession(a.wsUrl(), { label: 'on A' });
        const onC = await openSession(c.wsUrl(), { label: 'on C' });
        await onC.deliver(onA, 'from C');
        await onA.deliver(onC, 'from A');
        a.assertNoAlerts();
        c.assertNoAlerts();
    });

    it('a first node without dwrtc_bootstrap is alone and says so without a warning', async (t) => {
        const a = await NginxNode.create({ name: 'first', server: STATUS });
        t.after(() => a.stop());
        await a.start();
        await waitUntil(async () => (await networkStates(a)).every((s) => s === 'alone'),
                        { what: 'the first node to say "alone"' });
        await openSession(a.wsUrl());   // the node says it is ready at its first handshake
        await waitUntil(() => a.logLines().some((l) => /ready, the first node of its network/
                                                       .test(l.text)),
                        { what: 'the first node\'s ready line' });
        assert.deepEqual(a.logLines().filter((l) => l.level === 'warn'), []);
    });
});

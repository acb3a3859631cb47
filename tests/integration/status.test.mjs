// dwrtc_status: the state of every worker's node of one nginx, as JSON and
// as Prometheus text (checked with promtool), with figures that move as
// sessions open, messages cross and errors happen, and 503 while a node is
// not running.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';

import { startNetwork, NginxNode, waitUntil, freePortRange } from '../lib/nginx.mjs';
import { openSession, terminateSessions, randomSessionId } from '../lib/client.mjs';

const STATUS = `
    location = /status { dwrtc_status; }
    location /limited { dwrtc_signal; dwrtc_rate 1 burst=1; }`;

async function status(node, query = '', headers = {}) {
    const res = await fetch(`http://127.0.0.1:${node.httpPort}/status${query}`, { headers });
    return { code: res.status, type: res.headers.get('content-type'), text: await res.text() };
}

// The sum of one figure over every worker.
function total(doc, pick) {
    return doc.workers.reduce((sum, w) => sum + pick(w), 0);
}

describe('dwrtc_status', () => {
    let net, a, b;

    before(async () => {
        net = await startNetwork(2, { name: 'status', server: STATUS,
                                      nodes: [{ workers: 2 }, {}] });
        [a, b] = net.nodes;
    });

    after(() => {
        terminateSessions();
        return net?.stop();
    });

    it('shows every worker running, with its node, ports and DHT peers', async () => {
        // Other workers' slots are at most a second old: wait until each
        // has seen its DHT peers and a DHT node has stored its record (a
        // worker can know a peer before its first put is answered).
        const s = await waitUntil(async () => {
            const r = await status(a);
            return r.code === 200
                && JSON.parse(r.text).workers.every((w) => w.dht_peers.good > 0
                                                         && w.last_publish_ms > 0)
                ? r : null;
        }, { what: 'every worker with a DHT peer and its record stored' });
        assert.equal(s.code, 200, s.text);
        assert.match(s.type, /^application\/json/);
        const doc = JSON.parse(s.text);
        assert.match(doc.version, /^\d+\.\d+\.\d+$/);
        assert.equal(doc.workers.length, 2);
        const nodes = a.currentNodes();
        for (const w of doc.workers) {
            assert.equal(w.state, 'running', JSON.stringify(w));
            assert.ok(a.workerPids().includes(w.pid), `pid ${w.pid} is a worker`);
            const n = nodes.find((x) => x.nodeId === w.node);
            assert.ok(n, `node ${w.node} is one of ${nodes.map((x) => x.nodeId)}`);
            assert.equal(w.dht_port, n.dhtPort);
            assert.equal(w.link_port, n.linkPort);
            assert.ok(w.dht_peers.good >= 1, `worker ${w.worker} knows a DHT peer`);
            // a's node bootstraps nothing; b bootstraps through a: a's
            // workers are in the network once b's node answers them
            assert.ok(['alone', 'in network'].includes(w.network.state), JSON.stringify(w));
            assert.ok(w.last_publish_ms > 0, `worker ${w.worker} says how long its publish took`);
        }
        // b's worker writes its figures to the page once a second: its
        // first slot may still say "joining" while a's say the rest
        let bs;
        await waitUntil(async () => {
            bs = JSON.parse((await status(b)).text);
            return bs.workers[0]?.network.state === 'in network';
        }, { what: "b's worker to say it is in the network",
             detail: () => JSON.stringify(bs?.workers[0]) });
        assert.equal(bs.workers[0].network.bootstrap_entries, 1);
        assert.equal(bs.workers[0].network.bootstrap_answered, 1);
        assert.ok(bs.workers[0].network.dht_outside >= 1);
    });

    it('counts sessions, messages, lookups and errors as they happen', async () => {
        const before = JSON.parse((await status(a)).text);
        const here = await openSession(a.wsUrl(), { label: 'here' });
        const there = await openSession(b.wsUrl(), { label: 'there' });
        await here.deliver(there, 'across');
        await there.deliver(here, 'and back');
        here.to(randomSessionId(a.currentNodes()[0].nodeId), 'nobody');
        here.to(randomSessionId(a.currentNodes()[1].nodeId), 'nobody either');
        await here.waitError('not found');
        await here.waitError('not found');
        here.sendText('{"type":"x"');
        await here.waitFor((m) => /^invalid message/.test(m.error ?? ''));
        const limited = await openSession(a.wsUrl('/limited'), { label: 'limited' });
        for (let i = 0; i < 5; i++) {
            limited.to(there, String(i));
        }
        await limited.waitError('rate limited');

        // Other workers' figures are at most a second old.
        const after = await waitUntil(async () => {
            const doc = JSON.parse((await status(a)).text);
            return total(doc, (w) => w.sessions) === total(before, (w) => w.sessions) + 2
                && total(doc, (w) => w.errors.rate_limited) > 0
                && total(doc, (w) => w.messages.delivered_locally)
                   > total(before, (w) => w.messages.delivered_locally)
                ? doc : null;
        }, { timeout: 10_000, what: 'the figures to move' });
        const grew = (pick) => total(after, pick) - total(before, pick);
        assert.ok(grew((w) => w.messages.from_clients) >= 4);
        assert.ok(grew((w) => w.messages.sent_over_links) >= 1);
        assert.ok(grew((w) => w.messages.received_over_links) >= 1);
        assert.ok(grew((w) => w.errors.not_found) >= 2);
        assert.ok(grew((w) => w.errors.invalid) >= 1);
        assert.ok(grew((w) => w.lookups.total) >= 1);
        assert.ok(total(after, (w) => w.links.out + w.links.in) >= 1);
        // a's links with b count as outside (once a second); those between
        // a's own two workers do not
        const outside = await waitUntil(async () => {
            const doc = JSON.parse((await status(a)).text);
            return total(doc, (w) => w.links.outside) >= 1 ? doc : null;
        }, { what: 'a link outside this nginx on the status page' });
        assert.ok(total(outside, (w) => w.links.outside)
                  <= total(outside, (w) => w.links.out + w.links.in), JSON.stringify(outside));
        const buckets = after.workers.flatMap((w) => Object.values(w.lookups.latency_ms));
        assert.equal(buckets.reduce((x, y) => x + y, 0), total(after, (w) => w.lookups.total));
        await Promise.all([here.close(), there.close(), limited.close()]);
    });

    it('answers Prometheus text that promtool accepts', async () => {
        for (const [query, headers] of [['?format=prometheus', {}],
                                        ['', { Accept: 'text/plain' }]]) {
            const s = await status(a, query, headers);
            assert.equal(s.code, 200);
            assert.match(s.type, /^text\/plain; version=0\.0\.4/);
            assert.match(s.text, /^dwrtc_node_up\{worker="0"\} 1$/m);
            assert.match(s.text, /^dwrtc_node_up\{worker="1"\} 1$/m);
            assert.match(s.text, /^dwrtc_lookup_duration_seconds_bucket\{worker="0",le="\+Inf"\} \d+$/m);
            const check = spawnSync('promtool', ['check', 'metrics'], { input: s.text,
                                                                       encoding: 'utf8' });
            assert.equal(check.error, undefined,
                         `promtool could not run (Debian: apt-get install prometheus): `
                         + `${check.error}`);
            assert.equal(check.status, 0, `promtool check metrics: ${check.stdout}${check.stderr}`);
        }
        // JSON stays the default for a browser's Accept.
        const s = await status(a, '', { Accept: 'text/html,application/json;q=0.9,*/*' });
        assert.match(s.type, /^application\/json/);
    });

    it('refuses other methods', async () => {
        const res = await fetch(`http://127.0.0.1:${a.httpPort}/status`, { method: 'POST' });
        assert.equal(res.status, 405);
    });
});

describe('dwrtc_status of a node that is not running', () => {
    it('answers 503 while the worker waits for a port, then 200', async (t) => {
        const [port] = await freePortRange(1);
        const holder = createSocket('udp4');
        await new Promise((res) => holder.bind({ port, address: '127.0.0.1' }, res));
        t.after(() => { try { holder.close(); } catch { /* closed below */ } });
        const node = await NginxNode.create({ name: 'status-down', dhtPorts: [port, port],
                                              server: STATUS });
        t.after(() => node.stop());
        await node.start({ waitWorkers: false });
        const down = await waitUntil(async () => {
            const s = await status(node);
            return s.code === 503 ? s : null;
        }, { what: 'a 503 from the status page' });
        const doc = JSON.parse(down.text);
        assert.equal(doc.workers[0].state, 'waiting for a port');
        assert.match(doc.workers[0].reason, /no free port/);
        assert.match((await status(node, '?format=prometheus')).text,
                     /^dwrtc_node_up\{worker="0"\} 0$/m);

        await new Promise((res) => holder.close(res));
        const up = await waitUntil(async () => {
            const s = await status(node);
            return s.code === 200 ? s : null;
        }, { timeout: 15_000, what: 'a 200 once the port is free' });
        assert.equal(JSON.parse(up.text).workers[0].state, 'running');
        await node.quit();
        node.assertNoAlerts();
    });
});

describe('dwrtc_status across a reload', () => {
    it('keeps old workers that still serve sessions on the page, marked exiting, in the '
       + 'figures and the health check, until they exit', async (t) => {
        const node = await NginxNode.create({ name: 'status-reload', workers: 2,
                                              server: STATUS, shutdownTimeout: '30s' });
        t.after(() => node.stop());
        await node.start();
        await node.waitPublished();
        const held = [];
        for (let i = 0; i < 4; i++) {
            held.push(await openSession(node.wsUrl(), { label: `held ${i}` }));
        }
        const { oldPids, newPids } = await node.reload({ published: true });

        const s = await waitUntil(async () => {
            const r = await status(node);
            const doc = JSON.parse(r.text);
            const old = doc.workers.filter((w) => w.exiting);
            return doc.workers.length === 4 && old.length === 2
                && old.reduce((n, w) => n + w.sessions, 0) === 4
                ? { r, doc } : null;
        }, { what: 'the old and the new workers on the page' });
        assert.equal(s.r.code, 200, `the new workers all run: healthy: ${s.r.text}`);
        const old = s.doc.workers.filter((w) => w.exiting);
        const current = s.doc.workers.filter((w) => !w.exiting);
        assert.deepEqual(current.map((w) => w.pid).sort(), [...newPids].sort());
        assert.deepEqual(old.map((w) => w.pid).sort(), [...oldPids].sort());
        assert.deepEqual(current.map((w) => w.worker), [0, 1], 'the current workers first');
        assert.equal(old.reduce((n, w) => n + w.sessions, 0), 4,
                     'the held sessions count, on the old workers');
        const prom = (await status(node, '?format=prometheus')).text;
        assert.match(prom, /^dwrtc_sessions\{worker="\d",exiting="1"\} \d+$/m);
        assert.match(prom, /^dwrtc_sessions\{worker="0"\} 0$/m);

        // Once their sessions close, the old workers exit and leave the page.
        await Promise.all(held.map((h) => h.close()));
        await waitUntil(async () => JSON.parse((await status(node)).text).workers.length === 2,
                        { timeout: 20_000, what: 'the old workers gone from the page' });
        await node.quit();
        node.assertNoAlerts();
    });
});

// Every nginx worker is a node: sessions on two workers of one nginx and on
// another nginx all reach each other.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { startNetwork, startNode, waitUntil } from '../lib/nginx.mjs';
import { openSession, nodeOf, terminateSessions } from '../lib/client.mjs';

const ROUTE_WAIT = 60_000;

describe('two workers of one nginx plus another nginx', () => {
    let net, multi, single;

    before(async () => {
        // reuseport: the kernel spreads connections over both workers
        net = await startNetwork(2, { name: 'workers', signal: 'dwrtc_rate off;',
                                      nodes: [{ workers: 2, reuseport: true }, {}] });
        [multi, single] = net.nodes;
    });

    after(() => {
        terminateSessions();
        return net?.stop();
    });

    it('runs one node per worker, each with its own id and ports', () => {
        const nodes = multi.currentNodes();
        assert.equal(nodes.length, 2);
        assert.notEqual(nodes[0].nodeId, nodes[1].nodeId);
        assert.notEqual(nodes[0].dhtPort, nodes[1].dhtPort);
        assert.notEqual(nodes[0].linkPort, nodes[1].linkPort);
        for (const n of nodes) {
            assert.ok(n.dhtPort >= multi.dhtPorts[0] && n.dhtPort <= multi.dhtPorts[1],
                      `dht port ${n.dhtPort} in ${multi.dhtPorts.join('-')}`);
            assert.ok(n.linkPort >= multi.linkPorts[0] && n.linkPort <= multi.linkPorts[1],
                      `link port ${n.linkPort} in ${multi.linkPorts.join('-')}`);
        }
    });

    it('connects all pairs of 24 sessions across both workers and the other nginx', async () => {
        const workerNodes = multi.currentNodes().map((n) => n.nodeId);
        // 16 sessions on the two-worker nginx, 8 on each worker; open more
        // until both workers have 8 (connections land where the kernel says)
        const byWorker = new Map(workerNodes.map((id) => [id, []]));
        const extra = [];
        for (let tries = 0; tries < 200
             && [...byWorker.values()].some((l) => l.length < 8); tries++) {
            const s = await openSession(multi.wsUrl());
            const list = byWorker.get(nodeOf(s.id));
            assert.ok(list, `session ${s.id} names none of the workers' nodes `
                            + `${workerNodes.join(', ')}`);
            (list.length < 8 ? list : extra).push(s);
        }
        assert.ok([...byWorker.values()].every((l) => l.length === 8),
                  `connections did not reach both workers: ${[...byWorker.values()]
                      .map((l) => l.length).join(' and ')} sessions`);
        await Promise.all(extra.map((s) => s.close()));

        const others = await Promise.all(Array.from({ length: 8 },
                                                    () => openSession(single.wsUrl())));
        const sessions = [...byWorker.values()].flat().concat(others);
        assert.equal(sessions.length, 24);

        for (const from of sessions) {
            for (const to of sessions) {
                if (from !== to) {
                    from.to(to, `${from.id} -> ${to.id}`, 'pair');
                }
            }
        }
        const missing = [];
        await Promise.all(sessions.map(async (to) => {
            const pairs = () => to.inbox.queue.filter((m) => m.type === 'pair');
            await waitUntil(() => pairs().length >= 23, { timeout: ROUTE_WAIT })
                .catch(() => {});   // the missing ones are listed below
            const got = pairs();
            for (const from of sessions) {
                if (from !== to && !got.some((m) => m.senderSessionId === from.id
                                              && m.messageBody === `${from.id} -> ${to.id}`)) {
                    missing.push(`node ${nodeOf(from.id)} -> node ${nodeOf(to.id)}`);
                }
            }
        }));
        const errors = sessions.flatMap((s) => s.inbox.queue
            .filter((m) => m.type === 'WebSocketErrorMessage'));
        // summarized by node pair: "node a -> node b: 64 missing"
        const summary = {};
        for (const m of missing) {
            summary[m] = (summary[m] ?? 0) + 1;
        }
        assert.deepEqual(summary, {}, `${missing.length} of 552 pairs did not arrive; `
                         + `senders got ${errors.length} error(s), first: `
                         + `${JSON.stringify(errors[0])}`);
        assert.deepEqual(errors, []);
        await Promise.all(sessions.map((s) => s.close()));
    });

    it('stops cleanly: no process left, no [alert], [crit] or [emerg]', async () => {
        assert.equal(multi.workerPids().length, 2);
        await Promise.all(net.nodes.map((node) => node.quit()));
        net.assertNoAlerts();
        // each worker stopped its node (and joined its threads) on the way out
        const stopped = net.nodes.flatMap((node) => node.logLines())
            .filter((l) => /^dwrtc: node [0-9a-f]+ stopped/.test(l.text));
        assert.equal(stopped.length, 3, 'one "node ... stopped" line per worker');
    });
});

// The address a node publishes is for other hosts; behind a NAT without
// hairpin, or under a name this host resolves elsewhere or not at all, it
// does not lead back to the same host. Workers of one nginx reach each other
// on this host instead. Here the published 127.0.0.2 has nothing listening:
// the links listen on 127.0.0.1 only.
describe('two workers of one nginx whose public address does not lead back to it', () => {
    after(() => terminateSessions());

    it('delivers between sessions on the two workers both ways', async (t) => {
        const node = await startNode({ t, name: 'workers-nat', workers: 2, reuseport: true,
                                       publicAddress: '127.0.0.2' });
        const workerNodes = node.currentNodes().map((n) => n.nodeId);
        const onWorker = new Map();
        for (let tries = 0; tries < 200 && onWorker.size < 2; tries++) {
            const s = await openSession(node.wsUrl());
            if (onWorker.has(nodeOf(s.id))) {
                await s.close();
            } else {
                onWorker.set(nodeOf(s.id), s);
            }
        }
        assert.deepEqual([...onWorker.keys()].sort(), [...workerNodes].sort(),
                         'connections did not reach both workers');
        const [a, b] = onWorker.values();
        await a.deliver(b, 'from the first worker');
        await b.deliver(a, 'from the second worker');
        await Promise.all([a.close(), b.close()]);
        await node.quit();
        node.assertNoAlerts();
    });
});

// `nginx -s reload` while sessions talk: the old worker keeps its sessions
// working until they close, new sessions (on the new worker, a new node)
// and old ones reach each other, and the old worker then exits.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { startNetwork, startNode, waitUntil, withTimeout, alive, freePortRange }
    from '../lib/nginx.mjs';
import { openSession, nodeOf, terminateSessions } from '../lib/client.mjs';

const ROUTE_WAIT = 60_000;
const EXIT_WAIT = 60_000;

/**
 * Two sessions sending each other numbered messages every `every` ms until
 * stop(); stop() resolves when each has received everything the other sent,
 * and checks nothing was lost or reordered.
 */
function talk(a, b, every = 50) {
    const sent = new Map([[a, 0], [b, 0]]);
    const timer = setInterval(() => {
        for (const [from, to] of [[a, b], [b, a]]) {
            const n = sent.get(from);
            from.to(to, String(n), 'talk');
            sent.set(from, n + 1);
        }
    }, every);
    timer.unref();   // a failed test must not keep the process alive
    return {
        cancel() {
            clearInterval(timer);
        },
        async stop() {
            clearInterval(timer);
            for (const [from, to] of [[a, b], [b, a]]) {
                const n = sent.get(from);
                const got = () => to.inbox.queue
                    .filter((m) => m.type === 'talk' && m.senderSessionId === from.id)
                    .map((m) => Number(m.messageBody));
                await from.unlessErrorFor(to.id, waitUntil(() => got().length >= n, {
                    timeout: ROUTE_WAIT,
                    what: `${n} talk messages ${from.label} -> ${to.label}`,
                    detail: () => `received ${got().length}; missing: ${[...Array(n).keys()]
                        .filter((i) => !got().includes(i)).join(', ')}`,
                }));
                assert.deepEqual(got(), [...Array(n).keys()],
                                 `${from.label} -> ${to.label}: every message, in order`);
            }
            return sent.get(a) + sent.get(b);
        },
    };
}

describe('nginx -s reload while sessions talk', () => {
    let net, node, other;

    before(async () => {
        // a long worker_shutdown_timeout: old workers must exit because
        // their sessions closed, not because nginx ran out of patience
        net = await startNetwork(2, { name: 'reload', signal: 'dwrtc_rate off;',
                                      shutdownTimeout: '300s' });
        [node, other] = net.nodes;
    });

    after(() => {
        terminateSessions();
        return net?.stop();
    });

    it('keeps old sessions working and connects them with new ones; the old worker '
       + 'exits when its sessions close', async (t) => {
        const oldA = await openSession(node.wsUrl(), { label: 'old-a' });
        const oldB = await openSession(node.wsUrl(), { label: 'old-b' });
        const far = await openSession(other.wsUrl(), { label: 'far' });
        const oldNode = nodeOf(oldA.id);

        const localTalk = talk(oldA, oldB);
        const farTalk = talk(oldA, far);
        t.after(() => {
            localTalk.cancel();
            farTalk.cancel();
        });
        // a few rounds before the reload
        await waitUntil(() => far.inbox.queue.some((m) => m.type === 'talk'),
                        { timeout: ROUTE_WAIT, what: 'the first talk message at far' });

        const { oldPids, newPids } = await node.reload({ published: true });
        assert.notDeepEqual(newPids, oldPids);
        assert.ok(oldPids.every(alive), 'the old worker waits for its open sessions');

        // new session, new worker, new node
        const fresh = await openSession(node.wsUrl(), { label: 'fresh' });
        assert.notEqual(nodeOf(fresh.id), oldNode, 'a new session lands on the new worker');
        assert.ok(node.currentNodes().some((n) => n.nodeId === nodeOf(fresh.id)));

        // old <-> new, both ways, and new <-> the other nginx
        await fresh.deliver(oldA, 'new to old', { timeout: ROUTE_WAIT });
        await oldA.deliver(fresh, 'old to new', { timeout: ROUTE_WAIT });
        await fresh.deliver(far, 'new to far', { timeout: ROUTE_WAIT });
        await far.deliver(fresh, 'far to new', { timeout: ROUTE_WAIT });

        // the talk went on through the reload without a gap
        const n = await localTalk.stop() + await farTalk.stop();
        assert.ok(n > 0);

        // old sessions close; the old worker has nothing left and exits
        await Promise.all([oldA.close(), oldB.close()]);
        await waitUntil(() => oldPids.every((pid) => !alive(pid)), {
            timeout: EXIT_WAIT, what: `old worker(s) ${oldPids.join(', ')} to exit`,
            detail: () => node.describe() });
        assert.deepEqual(node.workerPids({ shuttingDown: true }), newPids);
        assert.ok(node.logLines().some((l) => oldPids.includes(l.pid)
                                              && l.text.startsWith(`dwrtc: node ${oldNode} stopped`)),
                  `the old worker stopped its node ${oldNode} (threads joined) before exiting`);

        // the old node left: its sessions are not found, the new ones still work
        far.to(oldA, 'anyone?');
        assert.equal((await far.waitError('not found', { timeout: ROUTE_WAIT }))
            .recipientSessionId, oldA.id);
        await far.deliver(fresh, 'still there', { timeout: ROUTE_WAIT });
        await Promise.all([fresh.close(), far.close()]);
    });

    it('stops cleanly: no process left, no [alert], [crit] or [emerg]', async () => {
        await Promise.all(net.nodes.map((n) => n.quit()));
        net.assertNoAlerts();
    });
});

describe('an old worker with a session still open after a reload', () => {
    it('exits within worker_shutdown_timeout, closing the session with 1001', async (t) => {
        const node = await startNode({ t, name: 'reload-open', shutdownTimeout: '3s' });
        const open = await openSession(node.wsUrl(), { label: 'open' });
        const { oldPids } = await node.reload();
        const closed = await withTimeout(open.closed, EXIT_WAIT,
                                         'the old worker to close the open session');
        assert.equal(closed.code, 1001, 'going away');
        await waitUntil(() => oldPids.every((pid) => !alive(pid)), {
            timeout: EXIT_WAIT, what: `old worker(s) ${oldPids.join(', ')} to exit`,
            detail: () => node.describe() });
        // the new worker serves
        const s = await openSession(node.wsUrl());
        await s.close();
        await node.quit();
        node.assertNoAlerts();
    });
});

describe('a reload with one port in each range and one worker', () => {
    it('has the new worker wait for the old one\'s ports and serve within seconds of its exit',
       async (t) => {
        const [dht] = await freePortRange(1);
        const [link] = await freePortRange(1);
        const node = await startNode({ t, name: 'reload-tight', shutdownTimeout: '60s',
                                       dhtPorts: [dht, dht], linkPorts: [link, link],
                                       server: 'location = /status { dwrtc_status; }' });
        const open = await openSession(node.wsUrl(), { label: 'open' });
        const oldPids = node.workerPids();
        node.signal('reload');

        // The new worker is up, its node waiting for a port (for a moment
        // the old worker may still answer, and show the new one starting).
        const waiting = await waitUntil(async () => {
            const res = await fetch(`http://127.0.0.1:${node.httpPort}/status`);
            const doc = await res.json();
            return res.status === 503 && doc.workers[0].state === 'waiting for a port'
                ? doc : null;
        }, { timeout: 30_000, what: 'the new worker to report that it waits for a port' });
        assert.ok(!oldPids.includes(waiting.workers[0].pid), 'the slot is the new worker\'s');
        assert.match(waiting.workers[0].reason, /no free port/);

        // The old worker exits once its session closes; the new node starts.
        await open.close();
        await waitUntil(() => oldPids.every((pid) => !alive(pid)), {
            timeout: EXIT_WAIT, what: 'the old worker to exit', detail: () => node.describe() });
        const exited = Date.now();
        await waitUntil(() => /started, .* after waiting for a free port/.test(node.errorLog()), {
            timeout: 15_000, what: 'the new worker to start its node',
            detail: () => node.describe() });
        const s = await openSession(node.wsUrl());
        console.log(`# new worker's node started and welcomed a session `
                    + `${Date.now() - exited} ms after the old worker exited`);
        const res = await fetch(`http://127.0.0.1:${node.httpPort}/status`);
        assert.equal(res.status, 200);
        await s.close();
        await node.quit();
        node.assertNoAlerts();
    });
});

// kill -9 of one nginx worker (its master starts a new one) under steady
// traffic. The host runs two workers, two DWRTC nodes: sessions on the
// other worker and on other hosts lose nothing; every message to a
// session of the killed worker is delivered or answered with an error
// naming it; its clients reconnect, and a session on the new worker is
// reachable from another host with the first message after its welcome.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';

import { startHostNetwork } from '../lib/hosts.mjs';
import { alive, waitUntil } from '../lib/nginx.mjs';
import { openSession, terminateSessions } from '../lib/client.mjs';
import { Ledger, Peer, Traffic, crossRoutes, describe as line, report, spread, now,
         nodeOf } from './traffic.mjs';

const HOSTS = 3;
const VICTIM = 2;                 // host index (1-based), two workers
const WARMUP = 3000;
const AFTER = 4000;
const STALE = 2000;
const FIRST_WAIT = 15_000;

describe('kill -9 of one worker under steady traffic', () => {
    let net, peers = [];

    before(async () => {
        net = await startHostNetwork(HOSTS, {
            name: 'worker', signal: 'dwrtc_rate off;',
            hosts: { [VICTIM - 1]: { workers: 2, reuseport: true } },
        });
    });

    after(async () => {
        peers.forEach((p) => p.close());
        terminateSessions();
        await net?.stop();
    });

    it('loses nothing, and the new worker\'s sessions are reachable', async () => {
        const ledger = new Ledger();
        const victim = net.hosts[VICTIM - 1];
        const workerOf = () => new Map([...victim.node.nodes().values()]
            .map((n) => [n.nodeId, n.pid]));
        const byHost = await Promise.all(net.hosts.map((h, i) => Promise.all(
            Array.from({ length: i === VICTIM - 1 ? 6 : 2 }, (_, k) => Peer.open(
                `peer${k}@${h.name}`, [h.wsUrl()], ledger)))));
        // both workers need sessions: the one killed and the one that lives on
        const local = byHost[VICTIM - 1];
        while (new Set(local.map((p) => nodeOf(p.id))).size < 2 && local.length < 24) {
            local.push(await Peer.open(`peer${local.length}@${victim.name}`, [victim.wsUrl()],
                                       ledger));
        }
        peers = byHost.flat();
        const pidOf = workerOf();
        const counts = new Map();
        for (const p of local) {
            const pid = pidOf.get(nodeOf(p.id));
            counts.set(pid, (counts.get(pid) ?? 0) + 1);
        }
        assert.equal(counts.size, 2, `sessions on both workers of ${victim.name}`);
        const [killedPid] = [...counts.keys()];
        const deadNode = [...pidOf].find(([, pid]) => pid === killedPid)[0];
        const orphans = local.filter((p) => nodeOf(p.id) === deadNode);

        // across hosts, and between the two workers of the victim host
        const routes = crossRoutes(byHost);
        local.forEach((p, k) => routes.push([p, local[(k + 1) % local.length]]));
        const traffic = new Traffic(routes, { interval: 100 }).start();
        const probe = await openSession(net.hosts[0].wsUrl(), { label: 'probe' });
        await sleep(WARMUP);

        const oldIds = new Map(orphans.map((p) => [p, p.id]));
        const oldPids = victim.node.workerPids();
        const killedAt = now();
        victim.killWorker(killedPid);
        const stale = new Traffic(routes.filter(([, to]) => orphans.includes(to))
            .map(([from, to]) => [from, oldIds.get(to)]), { interval: 100 }).start();
        setTimeout(() => stale.stop(), STALE).unref();
        await waitUntil(() => !alive(killedPid), { what: `worker ${killedPid} to die` });

        // the master's new worker and its node
        const respawn = await waitUntil(() => {
            const pid = victim.node.workerPids().find((p) => !oldPids.includes(p));
            const node = pid && victim.node.nodes().get(pid);
            return node && { pid, nodeId: node.nodeId, at: now() };
        }, { timeout: 30_000, what: 'the master to start a new worker and its node',
             detail: () => victim.node.describe() });

        // a session on the new worker, and a first message to it from another host
        let fresh = null;
        for (let i = 0; i < 40 && !fresh; i++) {
            const s = await openSession(victim.wsUrl(), { label: `fresh${i}` });
            if (nodeOf(s.id) === respawn.nodeId) {
                fresh = s;
            } else {
                s.terminate();
            }
        }
        assert.ok(fresh, `a new session landed on the new worker ${respawn.pid}`);
        const welcomedAt = now();
        probe.to(fresh, 'first');
        const first = await Promise.race([
            fresh.waitFor((m) => m.messageBody === 'first', { timeout: FIRST_WAIT })
                .then(() => ({ delivered: true, at: now() })),
            probe.waitFor((m) => m.type === 'WebSocketErrorMessage'
                                        && m.recipientSessionId === fresh.id,
                                  { timeout: FIRST_WAIT + 1000 })
                .then((e) => ({ error: e })),
        ]).catch(() => ({
            error: `neither delivered nor answered within ${FIRST_WAIT} ms` }));

        const moved = await Promise.all(orphans.map((p) => p.newSession(oldIds.get(p))));
        await sleep(AFTER);
        traffic.stop();
        stale.stop();

        const dead = (id) => nodeOf(id) === deadNode;
        const survivors = (p) => !dead(p.fromId) && !dead(p.toId);
        const toDead = (p) => !dead(p.fromId) && dead(p.toId);
        await ledger.settle((p) => !dead(p.fromId));
        const s = ledger.summary(survivors);
        const d = ledger.summary(toDead);
        const firstError = ledger.errorLog.find((e) => e.at > killedAt && dead(e.toId));
        report(`kill -9 of worker ${killedPid} of ${victim.name} (${traffic.rate} msg/s, `
               + `${orphans.length} of ${local.length} local sessions on it): `
               + `survivors ${line(s)}`);
        report(`  to the killed worker's sessions: ${line(d)}`);
        report(`  time to first error: ${firstError
            ? `${Math.round(firstError.at - killedAt)} ms (${firstError.kind})` : 'no error'}`);
        report(`  new worker's node started ${Math.round(respawn.at - killedAt)} ms after the `
               + 'kill');
        report(`  its clients' new sessions (kill to welcome): ${spread(moved.map(
            (m) => m.at - killedAt))}`);
        report(`  first message to a session of the new worker: ${first.delivered
            ? `delivered ${Math.round(first.at - welcomedAt)} ms after its welcome `
              + `(${Math.round(welcomedAt - killedAt)} ms after the kill)`
            : `NOT delivered: ${JSON.stringify(first.error)}`}`);

        assert.equal(s.errorCount, 0, `survivors got errors: ${JSON.stringify(s.errors)}`);
        assert.equal(s.sent, s.delivered, `survivors lost messages:\n${s.lossy.join('\n')}`);
        assert.equal(s.duplicates + s.reordered, 0, 'survivors: no duplicate, no reordering');
        assert.ok(d.sent > 0, 'messages were sent to the killed worker\'s sessions');
        assert.equal(d.lost, 0, `messages to the killed worker neither delivered nor answered:\n`
                     + d.lossy.join('\n'));
        assert.ok(first.delivered, 'the first message to a session of the new worker is '
                  + `delivered, not refused: ${JSON.stringify(first.error)}`);
        assert.deepEqual(ledger.strays, [], 'no message or error outside the books');
    });

    it('stops cleanly: no [alert], [crit] or [emerg] but the killed worker\'s', async () => {
        peers.forEach((p) => p.close());
        terminateSessions();
        await Promise.all(net.hosts.map((h) => h.node.quit()));
        for (const h of net.hosts) {
            const bad = h.node.alerts().filter((l) => !/worker process \d+ exited on signal 9/
                .test(l));
            assert.deepEqual(bad, [], `${h.name}: unexpected alerts`);
        }
    });
});

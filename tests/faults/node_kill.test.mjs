// kill -9 of one host's nginx (master and workers at once) under steady
// traffic between clients on four hosts. The survivors lose nothing among
// themselves; every message sent to a session of the dead node is
// delivered or answered with an error naming it; the dead node's clients
// (web/dwrtc.js, given the dead node's URL and a second one) fail over and
// are reachable under their new ids.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';

import { startHostNetwork } from '../lib/hosts.mjs';
import { alive, waitUntil } from '../lib/nginx.mjs';
import { Ledger, Peer, Traffic, crossRoutes, describe as line, report, spread, now,
         nodeOf } from './traffic.mjs';

const HOSTS = 4;
const PEERS_PER_HOST = 2;
const VICTIM = 2;                 // host index (1-based)
const WARMUP = 3000;              // ms of traffic before the kill
const AFTER = 5000;               // ms of traffic after every peer failed over
const STALE = 2000;               // ms some senders go on using the dead ids

describe('kill -9 of a node under steady traffic', () => {
    let net, peers = [];

    before(async () => {
        net = await startHostNetwork(HOSTS, { name: 'kill', signal: 'dwrtc_rate off;' });
    });

    after(async () => {
        peers.forEach((p) => p.close());
        await net?.stop();
    });

    it('loses nothing: every message is delivered or answered; clients fail over', async () => {
        const ledger = new Ledger();
        const victim = net.hosts[VICTIM - 1];
        // each peer's second URL: the next host, where it fails over to
        const byHost = await Promise.all(net.hosts.map((h, i) => Promise.all(
            Array.from({ length: PEERS_PER_HOST }, (_, k) => Peer.open(
                `peer${k}@${h.name}`, [h.wsUrl(), net.hosts[(i + 1) % HOSTS].wsUrl()], ledger)))));
        peers = byHost.flat();
        const orphans = byHost[VICTIM - 1];
        const deadNodes = new Set(victim.node.currentNodes().map((n) => n.nodeId));
        const routes = crossRoutes(byHost);
        const traffic = new Traffic(routes, { interval: 100 }).start();
        await sleep(WARMUP);

        const oldIds = new Map(orphans.map((p) => [p, p.id]));
        const killedAt = now();
        const pids = victim.killNginx();
        // senders that have not heard of the new sessions yet
        const stale = new Traffic(routes.filter(([, to]) => orphans.includes(to))
            .map(([from, to]) => [from, oldIds.get(to)]), { interval: 100 }).start();
        setTimeout(() => stale.stop(), STALE).unref();
        await waitUntil(() => pids.every((pid) => !alive(pid)),
                        { timeout: 10_000, what: `nginx of ${victim.name} to die` });

        const moved = await Promise.all(orphans.map((p) => p.newSession(oldIds.get(p))));
        for (const m of moved) {
            assert.ok(!deadNodes.has(nodeOf(m.id)), 'the new session is on a live node');
        }
        const failedOverAt = now();
        await sleep(Math.max(AFTER, STALE));
        traffic.stop();
        stale.stop();

        const dead = (id) => deadNodes.has(nodeOf(id));
        const survivors = (p) => !dead(p.fromId) && !dead(p.toId);
        const toDead = (p) => !dead(p.fromId) && dead(p.toId);
        const fromDead = (p) => dead(p.fromId);
        await ledger.settle((p) => !fromDead(p));

        const s = ledger.summary(survivors);
        const d = ledger.summary(toDead);
        const f = ledger.summary(fromDead);
        const firstError = ledger.errorLog.find((e) => e.at > killedAt && dead(e.toId));
        const reachedNew = orphans.map((p) => {
            const id = p.ids.at(-1).id;
            const times = ledger.select((q) => q.toId === id)
                .flatMap((q) => [...q.deliveredAt.values()]);
            return times.length ? Math.min(...times) - killedAt : null;
        });
        report(`kill -9 of ${victim.name} (${traffic.rate} msg/s): survivors ${line(s)}`);
        report(`  to the dead node's sessions: ${line(d)}`);
        report(`  from the dead node's sessions (not counted): sent ${f.sent}, delivered `
               + `${f.delivered}`);
        report(`  time to first error: ${firstError
            ? `${Math.round(firstError.at - killedAt)} ms (${firstError.kind})` : 'no error'}`);
        report(`  failover (kill to new welcome): ${spread(moved.map((m) => m.at - killedAt))}`);
        report(`  kill to first message delivered to a new id: ${spread(reachedNew.filter(
            (x) => x !== null))}; all failed over ${Math.round(failedOverAt - killedAt)} ms`);

        assert.ok(d.sent > 0, 'messages were sent to the dead node\'s sessions');
        assert.equal(s.errorCount, 0, `survivors got errors: ${JSON.stringify(s.errors)}`);
        assert.equal(s.sent, s.delivered, `survivors lost messages:\n${s.lossy.join('\n')}`);
        assert.equal(s.duplicates + s.reordered, 0, 'survivors: no duplicate, no reordering');
        assert.equal(d.lost, 0, `messages to the dead node neither delivered nor answered:\n`
                     + d.lossy.join('\n'));
        assert.ok(reachedNew.every((x) => x !== null),
                  'every failed-over client received messages under its new id');
        assert.deepEqual(ledger.strays, [], 'no message or error outside the books');
    });

    it('the survivors stop cleanly: no [alert], [crit] or [emerg]', async () => {
        const victim = net.hosts[VICTIM - 1];
        peers.forEach((p) => p.close());
        await Promise.all(net.hosts.filter((h) => h !== victim).map((h) => h.node.quit()));
        net.assertNoAlerts({ except: [victim] });
    });
});

// 20 rounds of `nginx -s reload` (HUP) of two of three hosts under steady
// load between long-lived sessions: those sessions (kept by the old
// workers) see no message lost, duplicated or reordered. After each reload
// a fresh session opens on the reloaded node (its new worker) and a client
// on another host sends it a message right after its welcome: it is
// delivered, not refused with "not found". The reloaded nodes' old workers
// tell the nodes they have links with where the new workers are: that
// host's node reaches them through that word, not the DHT.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';

import { startHostNetwork, HTTP_PORT } from '../lib/hosts.mjs';
import { openSession, terminateSessions } from '../lib/client.mjs';
import { Ledger, Peer, Traffic, crossRoutes, describe as line, report, spread, now,
         nodeOf, firstMessage } from './traffic.mjs';

const ROUNDS = 20;
const FIRST_WAIT = 15_000;

async function statusOf(host) {
    return (await fetch(`http://${host.address}:${HTTP_PORT}/status`)).json();
}

describe(`${ROUNDS} reloads of two nodes under steady load`, () => {
    let net, peers = [];

    before(async () => {
        // old workers must outlive the reloads: they hold the long-lived sessions
        net = await startHostNetwork(3, { name: 'reloads', signal: 'dwrtc_rate off;',
                                          shutdownTimeout: '300s',
                                          server: 'location = /status { dwrtc_status; }' });
    });

    after(async () => {
        peers.forEach((p) => p.close());
        terminateSessions();
        await net?.stop();
    });

    it('long-lived pairs lose nothing; a fresh session is reachable at once', async () => {
        const ledger = new Ledger();
        const [a, b, c] = net.hosts;
        const byHost = await Promise.all(net.hosts.map((h) => Promise.all(
            Array.from({ length: 2 }, (_, k) => Peer.open(`peer${k}@${h.name}`, [h.wsUrl()],
                                                          ledger)))));
        peers = byHost.flat();
        const traffic = new Traffic(crossRoutes(byHost), { interval: 40 }).start();
        const probe = await openSession(c.wsUrl(), { label: 'probe' });
        await sleep(1000);

        const firsts = [];       // { host, round, delivered, ms, error, newWorker }
        const reloadMs = [];
        const welcomeMs = [];    // connect to welcome of the fresh sessions
        const publishMs = [];    // the new workers' puts of their records, until stored
        for (let round = 1; round <= ROUNDS; round++) {
            const started = now();
            await Promise.all([a, b].map((h) => h.node.reload()));
            reloadMs.push(now() - started);
            await Promise.all([a, b].map(async (h) => {
                const openedAt = now();
                const fresh = await openSession(h.wsUrl(), { label: `fresh${round}@${h.name}` });
                const welcomedAt = now();
                welcomeMs.push(welcomedAt - openedAt);
                const first = firstMessage(probe, fresh, `first ${round}`, welcomedAt,
                                           FIRST_WAIT);
                statusOf(h).then((st) => {
                    const w = st.workers.find((x) => x.node === nodeOf(fresh.id));
                    if (w?.last_publish_ms > 0) {
                        publishMs.push(w.last_publish_ms);
                    }
                }).catch(() => {});
                const r = await first;
                firsts.push({ host: h.name, round, ...r, newWorker: h.node.currentNodes()
                    .some((n) => n.nodeId === nodeOf(fresh.id)) });
                fresh.terminate();
            }));
        }
        traffic.stop();
        await ledger.settle(() => true);
        const status = await statusOf(c);
        const sum = (pick) => status.workers.reduce((total, w) => total + pick(w), 0);
        const viaSiblings = sum((w) => w.links.via_siblings);

        const s = ledger.summary();
        const delivered = firsts.filter((f) => f.delivered);
        const refused = firsts.filter((f) => !f.delivered);
        report(`${ROUNDS} reloads of ${a.name} and ${b.name} (${traffic.rate} msg/s): `
               + `long-lived ${line(s)}`);
        report(`  reload (HUP to new workers' nodes started): ${spread(reloadMs)}`);
        report(`  fresh session, connect to welcome: ${spread(welcomeMs)}`);
        report(`  new workers' record puts, until stored (those the status page showed in time): `
               + spread(publishMs));
        report(`  ${c.name}: links opened where a sibling said ${viaSiblings}; DHT lookups `
               + `${sum((w) => w.lookups.total)}, of them found nothing `
               + `${sum((w) => w.lookups.failed)}`);
        report(`  first message to a fresh session: ${delivered.length} of ${firsts.length} `
               + `delivered; welcome to delivery ${spread(delivered.map((f) => f.ms))}`);
        report(`  per reload, welcome to delivery (ms): ${firsts
            .sort((x, y) => x.round - y.round || x.host.localeCompare(y.host))
            .map((f) => `${f.round}${f.host}=${f.delivered ? Math.round(f.ms) : f.error}`)
            .join(' ')}`);
        if (refused.length) {
            report(`  not delivered: ${refused.map((f) => `round ${f.round} ${f.host}: `
                + f.error).join('; ')}`);
        }

        assert.equal(s.errorCount, 0, `long-lived pairs got errors: ${JSON.stringify(s.errors)}`);
        assert.equal(s.sent, s.delivered, `long-lived pairs lost messages:\n${s.lossy.join('\n')}`);
        assert.equal(s.duplicates, 0, 'no message delivered twice');
        assert.equal(s.reordered, 0, 'no message delivered out of order');
        assert.ok(peers.every((p) => p.ids.length === 1), 'no long-lived session was lost');
        assert.ok(firsts.every((f) => f.newWorker), 'every fresh session is on a new worker');
        assert.deepEqual(refused, [], 'every first message to a fresh session is delivered');
        assert.ok(viaSiblings >= 1, `${c.name} reached new workers where their siblings said`);
        assert.deepEqual(ledger.strays, [], 'no message or error outside the books');
    });

    it('stops cleanly: no [alert], [crit] or [emerg]', async () => {
        peers.forEach((p) => p.close());
        terminateSessions();
        await Promise.all(net.hosts.map((h) => h.node.quit()));
        net.assertNoAlerts();
    });
});

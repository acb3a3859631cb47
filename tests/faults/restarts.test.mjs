// Restarts of one host's nginx under steady traffic between the other
// hosts: a stop and start (`nginx -s quit`, then nginx again) and a kill -9
// and start, several rounds of each. After each start a fresh session
// opens on the restarted node (a new node, with a new id) and a client on
// another host sends it a message right after its welcome: it is
// delivered, never refused with "not found". The pairs between the other
// hosts lose nothing, and no message is delivered twice or out of order.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';

import { startHostNetwork } from '../lib/hosts.mjs';
import { waitUntil } from '../lib/nginx.mjs';
import { openSession, terminateSessions } from '../lib/client.mjs';
import { Ledger, Peer, Traffic, crossRoutes, describe as line, report, spread, now,
         nodeOf, firstMessage } from './traffic.mjs';

const ROUNDS = 5;                 // of each way to restart
const VICTIM = 2;                 // host index (1-based); host 1 is the bootstrap node
const FIRST_WAIT = 15_000;

describe(`${ROUNDS} restarts and ${ROUNDS} kill -9 and starts of a node under steady load`,
         () => {
    let net, peers = [];

    before(async () => {
        net = await startHostNetwork(3, { name: 'restarts', signal: 'dwrtc_rate off;' });
    });

    after(async () => {
        peers.forEach((p) => p.close());
        terminateSessions();
        await net?.stop();
    });

    it('a fresh session on the restarted node is reachable at once; others lose nothing',
       async () => {
        const ledger = new Ledger();
        const victim = net.hosts[VICTIM - 1];
        const others = net.hosts.filter((h) => h !== victim);
        const byHost = await Promise.all(others.map((h) => Promise.all(
            Array.from({ length: 2 }, (_, k) => Peer.open(`peer${k}@${h.name}`, [h.wsUrl()],
                                                          ledger)))));
        peers = byHost.flat();
        const traffic = new Traffic(crossRoutes(byHost), { interval: 40 }).start();
        const probe = await openSession(others[1].wsUrl(), { label: 'probe' });
        await sleep(1000);

        const firsts = [];      // { way, round, delivered, ms, error }
        const startMs = [];     // start to the node's worker running
        const welcomeMs = [];   // connect to welcome of the fresh session
        for (const way of ['quit', 'kill']) {
            for (let round = 1; round <= ROUNDS; round++) {
                if (way === 'quit') {
                    await victim.node.quit();
                } else {
                    victim.killNginx();
                    await victim.node.waitGone({ timeout: 10_000, what: 'kill -9' });
                }
                // the old master's exit is reported before the new one starts
                await waitUntil(() => victim.node.exited, { what: 'the old master\'s exit' });
                const started = now();
                await victim.node.start();
                startMs.push(now() - started);
                const openedAt = now();
                const fresh = await openSession(victim.wsUrl(), { label: `${way}${round}` });
                const welcomedAt = now();
                welcomeMs.push(welcomedAt - openedAt);
                const r = await firstMessage(probe, fresh, `first ${way} ${round}`, welcomedAt,
                                             FIRST_WAIT);
                firsts.push({ way, round, ...r,
                              newNode: victim.node.currentNodes()
                                  .some((n) => n.nodeId === nodeOf(fresh.id)) });
                fresh.terminate();
            }
        }
        traffic.stop();
        await ledger.settle(() => true);

        const s = ledger.summary();
        const delivered = firsts.filter((f) => f.delivered);
        const refused = firsts.filter((f) => !f.delivered);
        report(`${ROUNDS} stops and starts, ${ROUNDS} kill -9 and starts of ${victim.name} `
               + `(${traffic.rate} msg/s between the other hosts): ${line(s)}`);
        report(`  start to the node running: ${spread(startMs)}`);
        report(`  fresh session, connect to welcome: ${spread(welcomeMs)}`);
        report(`  first message to a fresh session: ${delivered.length} of ${firsts.length} `
               + `delivered; welcome to delivery ${spread(delivered.map((f) => f.ms))}`);
        report(`  per restart, welcome to delivery (ms): ${firsts
            .map((f) => `${f.way}${f.round}=${f.delivered ? Math.round(f.ms) : f.error}`)
            .join(' ')}`);

        assert.equal(s.errorCount, 0, `pairs got errors: ${JSON.stringify(s.errors)}`);
        assert.equal(s.sent, s.delivered, `pairs lost messages:\n${s.lossy.join('\n')}`);
        assert.equal(s.duplicates, 0, 'no message delivered twice');
        assert.equal(s.reordered, 0, 'no message delivered out of order');
        assert.ok(firsts.every((f) => f.newNode), 'every fresh session is on the new node');
        assert.deepEqual(refused, [], 'every first message to a fresh session is delivered');
        assert.deepEqual(ledger.strays, [], 'no message or error outside the books');
    });

    it('stops cleanly: no [alert], [crit] or [emerg]', async () => {
        peers.forEach((p) => p.close());
        terminateSessions();
        await Promise.all(net.hosts.map((h) => h.node.quit()));
        net.assertNoAlerts();
    });
});

// A host cut off from the other hosts for 10 s (blackhole routes both ways;
// its clients still reach it) and healed, under steady traffic between
// clients on four hosts. Nothing is lost: every message is delivered or
// its sender gets an error naming the recipient. Prints how long after the
// heal messages flow into and out of the cut-off host again, for the first
// pair and for every pair (a figure, not a bound: machines are noisy).

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';

import { startHostNetwork } from '../lib/hosts.mjs';
import { Ledger, Peer, Traffic, crossRoutes, describe as line, report, now,
         nodeOf } from './traffic.mjs';

const HOSTS = 4;
const CUT = 3;                    // host index (1-based)
const WARMUP = 2000;
const CUT_FOR = 10_000;
const AFTER = 8000;

describe('a host cut off for 10 s and healed', () => {
    let net, peers = [];

    before(async () => {
        net = await startHostNetwork(HOSTS, { name: 'cut', signal: 'dwrtc_rate off;' });
    });

    after(async () => {
        peers.forEach((p) => p.close());
        await net?.stop();
    });

    it('loses nothing: every message is delivered or answered', async () => {
        const ledger = new Ledger();
        const host = net.hosts[CUT - 1];
        const byHost = await Promise.all(net.hosts.map((h) => Promise.all(
            Array.from({ length: 2 }, (_, k) => Peer.open(`peer${k}@${h.name}`, [h.wsUrl()],
                                                          ledger)))));
        peers = byHost.flat();
        const cutNodes = new Set(host.node.currentNodes().map((n) => n.nodeId));
        const traffic = new Traffic(crossRoutes(byHost), { interval: 100 }).start();
        await sleep(WARMUP);

        const cutAt = now();
        host.partition();
        await sleep(CUT_FOR);
        const healAt = now();
        host.heal();
        await sleep(AFTER);
        traffic.stop();
        await ledger.settle(() => true, { timeout: 60_000 });

        const cut = (id) => cutNodes.has(nodeOf(id));
        const inward = (p) => !cut(p.fromId) && cut(p.toId);
        const outward = (p) => cut(p.fromId) && !cut(p.toId);
        const elsewhere = (p) => !cut(p.fromId) && !cut(p.toId);
        const all = ledger.summary();
        const times = (filter) => {
            const t = { firstAfterHeal: null, held: 0, lastHeld: null, duringCut: 0,
                        everyPair: null, pairsSilent: 0 };
            for (const p of ledger.select(filter)) {
                let pairFirst = null;
                for (const [seq, at] of p.deliveredAt) {
                    if (at > healAt) {
                        t.firstAfterHeal = Math.min(t.firstAfterHeal ?? Infinity, at - healAt);
                        pairFirst = Math.min(pairFirst ?? Infinity, at - healAt);
                        if (p.sentAt[seq] < healAt) {
                            t.held++;
                            t.lastHeld = Math.max(t.lastHeld ?? 0, at - healAt);
                        }
                    } else if (at > cutAt && p.sentAt[seq] > cutAt) {
                        t.duringCut++;
                    }
                }
                // When this pair's messages flowed again: the heal is done
                // when every pair's do.
                if (pairFirst === null) {
                    t.pairsSilent++;
                } else {
                    t.everyPair = Math.max(t.everyPair ?? 0, pairFirst);
                }
            }
            return t;
        };
        const ms = (x) => (x === null ? 'none' : `${Math.round(x)} ms`);
        const errorsIn = (from, to) => ledger.errorLog.filter((e) => e.at > from && e.at < to);
        const firstError = errorsIn(cutAt, Infinity)[0];
        report(`${host.name} cut off for ${CUT_FOR / 1000} s (${traffic.rate} msg/s): `
               + `all ${line(all)}`);
        for (const [what, filter] of [['into the cut-off host', inward],
                                      ['out of the cut-off host', outward],
                                      ['between the other hosts', elsewhere]]) {
            const t = times(filter);
            report(`  ${what}: ${line(ledger.summary(filter))}; delivered during the cut `
                   + `${t.duringCut}; after the heal: first delivery ${ms(t.firstAfterHeal)}, `
                   + `every pair flowing ${ms(t.everyPair)}, `
                   + `${t.held} held message(s), the last ${ms(t.lastHeld)}`);
        }
        report(`  errors during the cut: ${errorsIn(cutAt, healAt).length}, after the heal: `
               + `${errorsIn(healAt, Infinity).length}; first error ${firstError
                   ? `${Math.round(firstError.at - cutAt)} ms after the cut (${firstError.kind})`
                   : 'none'}`);

        const e = ledger.summary(elsewhere);
        assert.equal(e.errorCount, 0, `hosts not cut off got errors: ${JSON.stringify(e.errors)}`);
        assert.equal(e.sent, e.delivered, `lost between hosts not cut off:\n${e.lossy.join('\n')}`);
        assert.equal(all.lost, 0, `messages neither delivered nor answered:\n`
                     + all.lossy.join('\n'));
        assert.equal(all.duplicates, 0, 'no message delivered twice');
        // Both ways, every pair: the heal is not done while one pair of
        // clients still cannot talk.
        for (const [what, filter] of [['into', inward], ['out of', outward]]) {
            assert.equal(times(filter).pairsSilent, 0,
                         `every pair delivers ${what} the cut-off host after the heal`);
        }
        assert.deepEqual(ledger.strays, [], 'no message or error outside the books');
    });

    it('stops cleanly: no [alert], [crit] or [emerg]', async () => {
        peers.forEach((p) => p.close());
        await Promise.all(net.hosts.map((h) => h.node.quit()));
        net.assertNoAlerts();
    });
});

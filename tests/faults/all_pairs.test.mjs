// Five hosts, each a network namespace with its own address and nginx: a
// client on every host sends to a client on every other host, all at once
// to cold nodes, and everything arrives, in order, without an error.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { startHostNetwork } from '../lib/hosts.mjs';
import { openSession, terminateSessions } from '../lib/client.mjs';
import { report, spread, now } from './traffic.mjs';

const HOSTS = 5;
const PER_PAIR = 50;
const ROUTE_WAIT = 60_000;

describe(`all pairs across ${HOSTS} hosts`, () => {
    let net;

    before(async () => {
        net = await startHostNetwork(HOSTS, { name: 'pairs', signal: 'dwrtc_rate off;' });
    });

    after(async () => {
        terminateSessions();
        await net?.stop();
    });

    it('delivers every message from every host to every other host', async () => {
        const sessions = await Promise.all(net.hosts.map((h) => openSession(h.wsUrl(),
            { label: `client@${h.name}` })));
        const pairs = [];
        for (const from of sessions) {
            for (const to of sessions) {
                if (from !== to) {
                    pairs.push([from, to]);
                }
            }
        }
        const start = now();
        for (let i = 0; i < PER_PAIR; i++) {
            for (const [from, to] of pairs) {
                from.to(to, `${i}`, 'pairs');
            }
        }
        const done = [];
        await Promise.all(pairs.map(async ([from, to]) => {
            const got = await from.unlessErrorFor(to.id, to.collect(PER_PAIR,
                (m) => m.type === 'pairs' && m.senderSessionId === from.id,
                { timeout: ROUTE_WAIT, what: `messages from ${from.label}` }));
            done.push(now() - start);
            assert.deepEqual(got.map((m) => Number(m.messageBody)), [...Array(PER_PAIR).keys()],
                             `${from.label} -> ${to.label}: every message, in order`);
        }));
        for (const s of sessions) {
            assert.equal(s.inbox.queue.length, 0,
                         `${s.label} has unexpected messages: ${JSON.stringify(s.inbox.queue[0])}`);
        }
        report(`all pairs: ${pairs.length} pairs, sent ${pairs.length * PER_PAIR}, delivered `
               + `${pairs.length * PER_PAIR}, errors 0, lost 0; time until a pair had all its `
               + `messages: ${spread(done)}`);
        await Promise.all(sessions.map((s) => s.close()));
    });

    it('stops cleanly: no [alert], [crit] or [emerg]', async () => {
        await Promise.all(net.hosts.map((h) => h.node.quit()));
        net.assertNoAlerts();
    });
});

// The hold budget (dwrtc_session_hold, dwrtc_worker_hold) against the
// attack of issue 22: many sessions of one worker, each writing large
// messages to many sessions of nodes that no one can find, or to key-owned
// ids no one has claimed, so that every message waits on the worker for a
// lookup. With the default
// configuration the worker holds at most dwrtc_worker_hold of them, senders
// past their share hear "queue full" naming the recipient, and the other
// sessions of the worker still talk.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';

import { startNode, startNetwork } from '../lib/nginx.mjs';
import { openSession, openSessions, randomSessionId, until,
         terminateSessions } from '../lib/client.mjs';

const KiB = 1024;
const MiB = 1024 * KiB;

// The defaults, as docs/security.md ("What a stranger can make a worker
// hold") writes them.
const SESSION_HOLD = 1 * MiB;
const WORKER_HOLD = 64 * MiB;

// Past the worker's total: 80 shares of 1 MiB are more than 64 MiB. Each
// session writes 64 messages of 60 KiB (within dwrtc_max_message_size and
// the burst of dwrtc_rate), 3.75 MiB, each to a node of its own: without
// the budget the worker would hold all of it, 300 MiB, for the lookup wait.
const ATTACKERS = 80;
const MESSAGES = 64;
const BODY = 'x'.repeat(60 * KiB);

// What the worker may grow by beyond the held messages themselves: the
// sessions' connections and buffers, a lookup (a DHT search) per unknown
// node, and the allocator's slack. The worker grew by 66 to 70 MiB in all
// (64 MiB held) in the runs this was written with.
const ALLOWANCE = 48 * MiB;

/** Resident memory of a process, in bytes (VmRSS). */
function rss(pid) {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'latin1'));
    return Number(m[1]) * KiB;
}

const mib = (bytes) => `${(bytes / MiB).toFixed(1)} MiB`;

/** A key-owned id no one has claimed: "k" and 48 hex digits. */
const unclaimedId = () => `k${randomBytes(24).toString('hex')}`;

// The same attack twice: to sessions of made-up nodes (each message waits
// for its node's lookup, dwrtc_lookup_wait), and to made-up key-owned ids
// (each waits for the lookups of the id's claim): issue 22's two ways in.
for (const [what, recipient] of [['unknown nodes', () => randomSessionId()],
                                 ['never-claimed key-owned ids', unclaimedId]]) {
    describe(`the hold budget under many senders to ${what}`, () => {
        let node, worker;

        before(async () => {
            node = await startNode({
                name: 'budgets',
                server: 'location = /status { dwrtc_status; }',
            });
            [worker] = node.workerPids();
        });

        after(() => {
            terminateSessions();
            return node?.stop();
        });

        it('holds at most dwrtc_worker_hold, tells senders "queue full", and others still talk',
           async () => {
            await attack(node, worker, recipient);
        });
    });
}

async function attack(node, worker, recipient) {
    const alice = await openSession(node.wsUrl(), { label: 'alice' });
    const bob = await openSession(node.wsUrl(), { label: 'bob' });
    const attackers = await openSessions(node.wsUrl(), ATTACKERS, { label: 'attacker' });
    const before = rss(worker);
    let peak = before;
    const sampler = setInterval(() => { peak = Math.max(peak, rss(worker)); }, 50);
    try {
        const fullFor = attackers.map((a) => {
            const sentTo = new Set();
            for (let i = 0; i < MESSAGES; i++) {
                const to = recipient();
                sentTo.add(to);
                a.to(to, BODY);
            }
            return a.waitFor((m) => m.type === 'WebSocketErrorMessage'
                                    && m.error === 'queue full',
                             { what: `"queue full" for ${a.label}`, timeout: 30_000 })
                .then((e) => {
                    assert.ok(sentTo.has(e.recipientSessionId),
                              `"queue full" names a recipient the sender wrote to: ${
                                  JSON.stringify(e)}`);
                });
        });
        // While the worker is full, sessions that hold nothing still talk:
        // a message to an open session is never held.
        await alice.deliver(bob, 'still here');
        await bob.deliver(alice, 'me too');
        await Promise.all(fullFor);
        peak = Math.max(peak, rss(worker));
    } finally {
        clearInterval(sampler);
    }
    const growth = peak - before;
    console.log(`worker RSS ${mib(before)} -> peak ${mib(peak)}: grew ${mib(growth)}; `
                + `held at most ${mib(WORKER_HOLD)} (${ATTACKERS} x ${mib(SESSION_HOLD)} `
                + `asked), allowance ${mib(ALLOWANCE)}`);
    assert.ok(growth < WORKER_HOLD + ALLOWANCE,
              `the worker grew by ${mib(growth)}, more than the documented worst case `
              + `${mib(WORKER_HOLD)} and the allowance ${mib(ALLOWANCE)}`);

    const res = await fetch(`http://127.0.0.1:${node.httpPort}/status`);
    const st = await res.json();
    const errors = st.workers.map((w) => w.errors);
    const budgetFull = errors.reduce((n, e) => n + e.budget_full, 0);
    const queueFull = errors.reduce((n, e) => n + e.queue_full, 0);
    assert.ok(budgetFull >= ATTACKERS, `budget_full ${budgetFull} on the status page`);
    assert.ok(queueFull >= budgetFull, `queue_full ${queueFull} counts them too`);

    // Once the lookups give up the held messages are answered and their
    // shares given back: a new message is held again, and answered
    // "unreachable" or "not found" rather than "queue full".
    await until(async () => {
        const carol = await openSession(node.wsUrl(), { label: 'carol' });
        const to = recipient();
        carol.to(to, 'after the storm');
        const e = await carol.waitFor((m) => m.type === 'WebSocketErrorMessage',
                                      { what: 'an answer for carol', timeout: 15_000 });
        await carol.close();
        return e.error !== 'queue full' && e.recipientSessionId === to;
    }, 'the budget given back after the lookups ended', 60_000);
}

// OpenDHT keeps every search after it ends; dwrtc_dht_max_searches caps
// them. Past the cap a new lookup must take the place of one that ended,
// not fail: a node that has made many more lookups than the cap still finds
// a node it never talked to.
describe('dwrtc_dht_max_searches', () => {
    let net;

    before(async () => {
        net = await startNetwork(2, { name: 'searches',
                                      http: 'dwrtc_dht_max_searches 64;\ndwrtc_lookup_rate off;' });
    });

    after(() => {
        terminateSessions();
        return net?.stop();
    });

    it('a node past its cap of searches still finds a node it never talked to', async () => {
        const [n1, n2] = net.nodes;
        const sender = await openSession(n1.wsUrl(), { label: 'sender' });
        const BATCH = 50;
        let lookups = 0;
        for (let round = 0; round < 4; round++) {
            const sent = new Set();
            for (let i = 0; i < BATCH; i++) {
                const to = randomSessionId();
                sent.add(to);
                sender.to(to, 'anyone?');
            }
            lookups += BATCH;
            const answers = await sender.collect(
                BATCH, (m) => m.type === 'WebSocketErrorMessage' && sent.has(m.recipientSessionId),
                { timeout: 30_000, what: `answers of round ${round}` });
            assert.ok(answers.every((m) => m.error === 'unreachable' || m.error === 'not found'),
                      JSON.stringify(answers.find((m) => m.error !== 'unreachable')));
        }
        assert.ok(lookups > 64 * 3, `${lookups} lookups, well past the cap of 64`);
        const far = await openSession(n2.wsUrl(), { label: 'far' });
        await sender.deliver(far, 'found you', { timeout: 30_000 });
        net.assertNoAlerts();
    });
});

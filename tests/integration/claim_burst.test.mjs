// Claims cost a worker a signature check each, about 15 messages' worth.
// Issue 22's attack: many sessions send claims as fast as they can, each
// with a well-formed key and a signature that does not hold (free to make,
// a check to refute), while two other sessions of the same worker talk.
// With the default dwrtc_claims (6 a minute, 3 refusals in a row close the
// session) each attacker costs the worker at most 3 checks, every
// attacker is closed with 1008, the status page counts the refusals, and
// the two others lose nothing. Prints how long their messages took during
// the burst, against before it: a figure, not a bound (machines are noisy).
// The attackers run in a worker thread (claim_attackers.mjs), so that their
// burst does not hold up this thread, which times the round trips.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';

import { startNode } from '../lib/nginx.mjs';
import { openSession, terminateSessions, until } from '../lib/client.mjs';

const ATTACKERS = 100;
const CLAIMS_EACH = 20;
const REFUSALS_TO_CLOSE = 3;  // dwrtc_claims' default
const PINGS = 200;

/** Round trips between a and b, one after the other; their times in ms. */
async function roundTrips(a, b, n) {
    const times = [];
    for (let i = 0; i < n; i++) {
        const start = process.hrtime.bigint();
        await a.deliver(b, `ping ${i}`);
        await b.deliver(a, `pong ${i}`);
        times.push(Number(process.hrtime.bigint() - start) / 1e6);
    }
    return times;
}

function summary(times) {
    const sorted = [...times].sort((x, y) => x - y);
    const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
    return `median ${at(0.5).toFixed(2)} ms, p99 ${at(0.99).toFixed(2)} ms, `
           + `max ${sorted[sorted.length - 1].toFixed(2)} ms`;
}

describe('a burst of claims that do not hold', () => {
    let node;

    before(async () => {
        node = await startNode({
            name: 'claimburst',
            signal: 'dwrtc_rate off;',
            server: 'location = /status { dwrtc_status; }',
        });
    });

    after(() => {
        terminateSessions();
        return node?.stop();
    });

    it('closes every attacker after 3 refusals, and the others lose nothing', async () => {
        const alice = await openSession(node.wsUrl(), { label: 'alice' });
        const bob = await openSession(node.wsUrl(), { label: 'bob' });
        const quiet = await roundTrips(alice, bob, PINGS);

        const attackers = new Worker(new URL('./claim_attackers.mjs', import.meta.url), {
            workerData: { url: node.wsUrl(), attackers: ATTACKERS, claimsEach: CLAIMS_EACH },
        });
        const news = [];
        let wake = () => {};
        attackers.on('message', (m) => { news.push(m); wake(); });
        attackers.on('error', (err) => { news.push({ error: err }); wake(); });
        const next = async () => {
            while (news.length === 0) {
                await new Promise((resolve) => { wake = resolve; });
            }
            const m = news.shift();
            if (m.error) {
                throw m.error;
            }
            return m;
        };
        assert.equal((await next()).opened, ATTACKERS);
        const during = roundTrips(alice, bob, PINGS);
        attackers.postMessage({ go: true });
        const burst = await during;
        const { closed } = await next();
        await attackers.terminate();
        for (const c of closed) {
            assert.deepEqual(c, { code: 1008, reason: 'claims refused' });
        }
        await alice.deliver(bob, 'still here');

        const st = async () => (await (await fetch(node.httpUrl('/status'))).json()).workers;
        await until(async () => (await st()).reduce((n, w) => n + w.bounds.claims_refused, 0)
                                >= ATTACKERS * REFUSALS_TO_CLOSE,
                    'bounds.claims_refused to count every refusal');
        const refused = (await st()).reduce((n, w) => n + w.bounds.claims_refused, 0);
        // A claim after the third refusal is never checked: the session is
        // closed with it.
        assert.ok(refused <= ATTACKERS * (REFUSALS_TO_CLOSE + 1),
                  `${refused} claims refused for ${ATTACKERS} attackers: each closed after `
                  + `${REFUSALS_TO_CLOSE}`);
        console.log(`# claim burst: ${ATTACKERS} sessions x ${CLAIMS_EACH} claims that do not `
                    + `hold, ${refused} refused (checked), every attacker closed with 1008`);
        console.log(`#   round trips of two other sessions before: ${summary(quiet)}`);
        console.log(`#   during the burst: ${summary(burst)}`);
        await alice.close();
        await bob.close();
    });
});

// The attackers of claim_burst.test.mjs, in a worker thread of their own:
// their burst must not hold up the event loop that times the other
// sessions' round trips. Gets {url, attackers, claimsEach} as workerData;
// posts {opened} once every session is open and waits for {go}; then posts
// {closed: [...close codes and reasons]}.

import { parentPort, workerData } from 'node:worker_threads';
import { webcrypto as crypto } from 'node:crypto';

import { openSessions } from '../lib/client.mjs';
import { generateIdentity } from '../../web/dwrtc.js';

const { url, attackers, claimsEach } = workerData;
const sessions = await openSessions(url, attackers, { label: 'attacker' });
const mallory = await generateIdentity();
const key = Buffer.from(await crypto.subtle.exportKey('raw', mallory.publicKey)).toString('hex');
parentPort.postMessage({ opened: sessions.length });
parentPort.once('message', async () => {
    for (const s of sessions) {
        const claim = { type: 'WebSocketClaimMessage', key, time: s.welcome.time,
                        signature: '00'.repeat(64) };
        for (let i = 0; i < claimsEach; i++) {
            s.send(claim);
        }
    }
    parentPort.postMessage({ closed: await Promise.all(sessions.map((s) => s.closed)) });
});

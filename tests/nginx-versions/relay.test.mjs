// Two nodes of one nginx version relay to each other: the nginx binary
// (DWRTC_NGINX) and the module built for it (DWRTC_MODULE) are given by
// run.sh, which builds both for each version it proves.
//
//   DWRTC_NGINX=.../nginx DWRTC_MODULE=.../ngx_http_dwrtc_module.so \
//       node --test tests/nginx-versions/relay.test.mjs

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';

import { startNetwork, NGINX, MODULE } from '../lib/nginx.mjs';
import { openSession, nodeOf, terminateSessions } from '../lib/client.mjs';

const N = 200;
// The first message to a node not yet known costs a DHT lookup.
const ROUTE_WAIT = 60_000;

// `nginx -v` writes "nginx version: nginx/1.26.3" to stderr
const version = spawnSync(NGINX, ['-v'], { encoding: 'utf8' }).stderr.trim();

describe(`two nodes of ${NGINX} with ${MODULE}`, () => {
    let net;

    before(async () => {
        net = await startNetwork(2, { name: 'nv', signal: 'dwrtc_rate off;' });
    });

    after(() => {
        terminateSessions();
        return net?.stop();
    });

    it('relays messages in order both ways', async () => {
        const [n1, n2] = net.nodes;
        const a = await openSession(n1.wsUrl(), { label: 'a on node 1' });
        const b = await openSession(n2.wsUrl(), { label: 'b on node 2' });
        assert.notEqual(nodeOf(a.id), nodeOf(b.id), 'the sessions are on two nodes');
        for (const [from, to] of [[a, b], [b, a]]) {
            for (let i = 0; i < N; i++) {
                from.to(to, `${from.label} #${i}`, 'relay');
            }
        }
        await Promise.all([[a, b], [b, a]].map(async ([from, to]) => {
            const got = await from.unlessErrorFor(to.id, to.collect(
                N, (m) => m.type === 'relay',
                { timeout: ROUTE_WAIT, what: `messages from ${from.label}` }));
            got.forEach((m, i) => assert.deepEqual(m, {
                type: 'relay', senderSessionId: from.id, recipientSessionId: to.id,
                messageBody: `${from.label} #${i}`,
            }, `message ${i} from ${from.label}`));
        }));
        await Promise.all([a.close(), b.close()]);
        net.assertNoAlerts();
        console.log(`# ${version}: ${N} messages each way across two nodes`);
    });
});

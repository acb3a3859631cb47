// ICE servers from the node: `dwrtc_ice_servers` reaches the client in the
// welcome message, TURN credentials made from a shared secret follow the
// TURN REST form (what coturn's use-auth-secret checks), and dwrtc.js hands
// the list to the browser's RTCPeerConnection.
//
// The STUN/TURN hosts are names under .test that nothing resolves: they are
// only strings here; no call is negotiated, so no traffic goes to them.
//
// TURN REST credentials (draft-uberti-behave-turn-rest-00, coturn's
// "TURN REST API"):
//   username   = "<expiry as unix time>:<name>"
//   credential = base64(HMAC-SHA1(shared secret, username))

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { randomSessionId } from '../lib/client.mjs';
import WebSocket from 'ws';

import { DwrtcClient } from '../../web/dwrtc.js';
import { startNode } from '../lib/nginx.mjs';
import { launchBrowser, newPage } from './browser.mjs';

const SECRET = 's3cret';
const SECRET2 = 'b6f0c1e2-second_secret';

/** The TURN REST credential of `username` under `secret`, by definition. */
function turnCredential(secret, username) {
    return createHmac('sha1', secret).update(username).digest('base64');
}

/** Connects a dwrtc.js client; returns { client, id, iceServers, before, after } (times in s). */
async function welcome(t, url) {
    const client = new DwrtcClient({ WebSocket });
    t.after(() => client.close());
    const before = Date.now() / 1000;
    const id = await client.connect(url);
    const after = Date.now() / 1000;
    return { client, id, iceServers: client.iceServers, before, after };
}

/**
 * Checks one TURN REST username/credential pair: the name, the expiry
 * within [before + ttl, after + ttl] (whole seconds, so one second of
 * slack either side), and the credential computed here with node:crypto.
 */
function assertRestCredentials(server, { secret, name, ttl, before, after }) {
    const m = /^(\d+):(.+)$/.exec(server.username);
    assert.ok(m, `username "${server.username}" should be "<expiry>:<name>"`);
    const expiry = Number(m[1]);
    assert.equal(m[2], name);
    assert.ok(expiry >= Math.floor(before + ttl) - 1 && expiry <= Math.ceil(after + ttl) + 1,
              `expiry ${expiry} should be ttl ${ttl} s after the welcome `
              + `(${Math.floor(before)}..${Math.ceil(after)})`);
    assert.equal(server.credential, turnCredential(secret, server.username),
                 'credential = base64(HMAC-SHA1(secret, username))');
}

describe('ICE servers in the welcome message (dwrtc_ice_servers)', () => {
    let node;

    before(async () => {
        node = await startNode({
            name: 'turn',
            http: `dwrtc_ice_servers stun:stun.example.test:3478;
                   dwrtc_ice_servers turn:turn.example.test:3478?transport=udp
                                     turns:turn.example.test:5349
                                     secret=${SECRET} ttl=3600;`,
            server: `location /named {
                         dwrtc_signal;
                         dwrtc_ice_servers turn:relay.example.test secret=${SECRET2}
                                           name=demo ttl=10m;
                         dwrtc_ice_servers turn:static.example.test:3478
                                           username=alice credential=wonderland;
                     }
                     location /none {
                         dwrtc_signal;
                         dwrtc_ice_servers off;
                     }`,
        });
    });

    after(async () => {
        try {
            node?.assertNoAlerts();
        } finally {
            await node?.stop();
        }
    });

    it('gives each session STUN and TURN servers with fresh TURN REST credentials',
       async (t) => {
        const a = await welcome(t, node.wsUrl());
        assert.equal(a.iceServers.length, 2, JSON.stringify(a.iceServers));
        assert.deepEqual(a.iceServers[0], { urls: ['stun:stun.example.test:3478'] });
        const turn = a.iceServers[1];
        assert.deepEqual(turn.urls, ['turn:turn.example.test:3478?transport=udp',
                                     'turns:turn.example.test:5349']);
        assert.deepEqual(Object.keys(turn).sort(), ['credential', 'urls', 'username']);
        // without name=, the name is the session id
        assertRestCredentials(turn, { secret: SECRET, name: a.id, ttl: 3600, ...a });
        console.log(`# ${turn.username} -> ${turn.credential}`);

        // another session: its own username and credential
        const b = await welcome(t, node.wsUrl());
        const turnB = b.iceServers[1];
        assert.notEqual(turnB.username, turn.username);
        assertRestCredentials(turnB, { secret: SECRET, name: b.id, ttl: 3600, ...b });
    });

    it('takes name= and ttl= with units, static credentials, and off', async (t) => {
        const a = await welcome(t, node.wsUrl('/named'));
        assert.equal(a.iceServers.length, 2, 'a location with its own list does not inherit');
        assert.deepEqual(a.iceServers[0].urls, ['turn:relay.example.test']);
        assertRestCredentials(a.iceServers[0], { secret: SECRET2, name: 'demo', ttl: 600, ...a });
        assert.deepEqual(a.iceServers[1], { urls: ['turn:static.example.test:3478'],
                                            username: 'alice', credential: 'wonderland' });

        const n = await welcome(t, node.wsUrl('/none'));
        assert.deepEqual(n.iceServers, [], 'dwrtc_ice_servers off: no ICE servers');
    });

    it('hands the node\'s ICE servers to the browser\'s RTCPeerConnection', async (t) => {
        const { browser } = await launchBrowser({ t });
        const page = await newPage(browser, { label: 'ice' });
        await page.goto(node.httpUrl('/'));    // the demo's origin; dwrtc.js is beside it
        const got = await page.evaluate(async (partner) => {
            const { DwrtcClient } = await import('./dwrtc.js');
            const client = new DwrtcClient();
            await client.connect('./signal');
            // a call creates the RTCPeerConnection with the node's list; it is
            // hung up before it negotiates (negotiation waits for a task), so
            // no ICE server is ever contacted
            const call = client.call(partner, {});
            const config = call.pc.getConfiguration();
            call.hangup();
            const welcomed = client.iceServers;
            client.close();
            return { welcomed, used: config.iceServers };
        }, randomSessionId());
        assert.equal(got.used.length, 2);
        const norm = (s) => ({ urls: [s.urls].flat(), username: s.username ?? '',
                               credential: s.credential ?? '' });
        assert.deepEqual(got.used.map(norm), got.welcomed.map(norm));
        assert.match(got.used[1].username, /^\d+:[0-9a-f]{32}-[0-9a-f]{16}$/);
        assert.deepEqual(page.problems, []);
    });
});

// The unmodified `peerjs` client from npm (node_modules/peerjs/dist, served
// by the test's own nginx, never a CDN) in Chromium, against dwrtc_peerjs
// locations of two nodes: each page asks its own node for an id, the pages
// (each served by the other node, so every /id is a cross-origin request)
// open a DataConnection across the nodes and exchange data both ways, place
// a MediaConnection call with the fake camera (both videos play), calling
// an id nobody holds gives `peer-unavailable` within 5 to 7 s, an id the
// app chose opens on one node and is `unavailable-id` on the other, and two
// pages with chosen ids talk over a DataConnection by them, on one node and
// across the two, and a page whose Peer disconnects and calls reconnect()
// gets its chosen id back (`open` again) and is reached by it.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { REPO, startNetwork } from '../lib/nginx.mjs';
import { launchBrowser, newPage } from './browser.mjs';

const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>peerjs on DWRTC</title>
<link rel="icon" href="data:,">
<script src="/peerjs-lib/peerjs.min.js"></script>
<script>
  // what a PeerJS app writes: only host, port and path point at DWRTC
  window.start = (host, port, id) => new Promise((resolve, reject) => {
    window.received = [];
    window.errors = [];
    window.callers = [];
    const options = { host, port, path: '/peerjs/', secure: false,
                      config: { iceServers: [] }, debug: 1 };
    window.peer = id ? new peerjs.Peer(id, options) : new peerjs.Peer(options);
    peer.on('open', resolve);
    peer.on('error', (e) => { errors.push(e.type); reject(new Error(e.type + ': ' + e.message)); });
    peer.on('connection', (conn) => {
      callers.push(conn.peer);
      conn.on('data', (d) => { received.push(d); conn.send('echo: ' + d); });
    });
  });
  window.talk = (id, text) => new Promise((resolve, reject) => {
    const conn = peer.connect(id, { reliable: true });
    conn.on('open', () => conn.send(text));
    conn.on('data', resolve);
    conn.on('error', reject);
  });
  // a MediaConnection with the fake camera, the remote video shown
  const show = (stream) => {
    const v = document.createElement('video');
    v.autoplay = true; v.muted = true; v.playsInline = true; v.srcObject = stream;
    document.body.append(v);
    window.remoteVideo = v;
  };
  window.answerCalls = async () => {
    const mine = await navigator.mediaDevices.getUserMedia({ video: true, audio: false });
    peer.on('call', (call) => { call.answer(mine); call.on('stream', show); });
  };
  window.callPeer = async (id) => {
    const mine = await navigator.mediaDevices.getUserMedia({ video: true, audio: false });
    const call = peer.call(id, mine);
    await new Promise((resolve, reject) => {
      call.on('stream', (s) => { show(s); resolve(); });
      call.on('error', reject);
    });
  };
  window.videoPlays = () => !!window.remoteVideo && remoteVideo.videoWidth > 0
                            && remoteVideo.currentTime > 0.5;
  // what an app does when its connection to the server dropped
  window.reconnectPeer = () => new Promise((resolve) => {
    peer.once('disconnected', () => setTimeout(() => {
      peer.once('open', resolve);
      peer.reconnect();
    }, 0));
    peer.disconnect();
  });
  window.callNobody = (id) => new Promise((resolve) => {
    const started = Date.now();
    peer.on('error', (e) => resolve({ type: e.type, ms: Date.now() - started }));
    peer.connect(id);
  });
</script>`;

describe('the unmodified peerjs client on two DWRTC nodes', () => {
    let net, dir, browser;

    before(async () => {
        dir = mkdtempSync(join(tmpdir(), 'dwrtc-peerjs-page-'));
        chmodSync(dir, 0o755);
        writeFileSync(join(dir, 'index.html'), PAGE);
        const server = `
            location /peerjs/ {
                dwrtc_peerjs;
            }
            location /peerjs-lib/ {
                alias ${join(REPO, 'node_modules/peerjs/dist')}/;
            }
            location /app/ {
                alias ${dir}/;
            }`;
        net = await startNetwork(2, { name: 'peerjs-web', server });
        ({ browser } = await launchBrowser());
    });

    after(async () => {
        await browser?.close().catch(() => {});
        await net?.stop();
        if (dir) rmSync(dir, { recursive: true, force: true });
    });

    /** A page served by `pageNode`, whose Peer speaks to `peerNode`. */
    async function peerPage(pageNode, peerNode, label, chosen) {
        const page = await newPage(browser, { label });
        await page.goto(pageNode.httpUrl('/app/index.html'));
        const id = await page.evaluate(([host, port, c]) => window.start(host, port, c),
                                       [peerNode.address, peerNode.httpPort, chosen ?? null]);
        return { page, id };
    }

    it('pages on different nodes get ids and exchange data over a DataConnection', async () => {
        const [n1, n2] = net.nodes;
        const a = await peerPage(n2, n1, 'a');   // served by node 2, peer on node 1
        const b = await peerPage(n1, n2, 'b');
        // random UUIDs, as the PeerJS server gives
        assert.match(a.id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
        assert.notEqual(a.id, b.id);
        const echo = await b.page.evaluate(([id]) => window.talk(id, 'hello from b'), [a.id]);
        assert.equal(echo, 'echo: hello from b');
        assert.deepEqual(await a.page.evaluate(() => window.received), ['hello from b']);
        assert.deepEqual(await a.page.evaluate(() => window.errors), []);
        assert.deepEqual(a.page.problems.concat(b.page.problems), []);
        net.assertNoAlerts();
    });

    it('pages on different nodes place a MediaConnection call: both videos play', async () => {
        const [n1, n2] = net.nodes;
        const a = await peerPage(n1, n1, 'callee');
        const b = await peerPage(n2, n2, 'caller');
        await a.page.evaluate(() => window.answerCalls());
        await b.page.evaluate(([id]) => window.callPeer(id), [a.id]);
        for (const p of [a.page, b.page]) {
            await p.waitForFunction(() => window.videoPlays(), null, { timeout: 20_000 });
        }
        assert.deepEqual(a.page.problems.concat(b.page.problems), []);
    });

    it('calling an id nobody holds gives peer-unavailable within 5 to 7 s', async () => {
        const [n1, n2] = net.nodes;
        const a = await peerPage(n1, n1, 'caller');
        const nobody = await (await fetch(n2.httpUrl('/peerjs/peerjs/id'))).text();
        const got = await a.page.evaluate(([id]) => window.callNobody(id), [nobody]);
        assert.equal(got.type, 'peer-unavailable');
        assert.ok(got.ms >= 4900 && got.ms <= 7000, `after ${got.ms} ms`);
    });

    it('an id the app chose opens on one node and is unavailable-id on the other', async () => {
        const [n1, n2] = net.nodes;
        const chosen = `alice-${Math.random().toString(36).slice(2, 8)}`;
        const a = await peerPage(n1, n1, 'chooser', chosen);
        assert.equal(a.id, chosen);
        const page = await newPage(browser, { label: 'second chooser' });
        await page.goto(n2.httpUrl('/app/index.html'));
        const refused = await page.evaluate(([host, port, c]) =>
            window.start(host, port, c).then(() => 'open', (e) => e.message),
        [n2.address, n2.httpPort, chosen]);
        assert.match(refused, /^unavailable-id: /);
        assert.deepEqual(await a.page.evaluate(() => window.errors), []);
        assert.deepEqual(a.page.problems, []);
        net.assertNoAlerts();
    });

    // The caller's page serves the callee's Peer's node, or the other one.
    const chosenPairs = [['on one node', false, ['ann', 'ben']],
                         ['on different nodes', true, ['cleo', 'dan']]];
    for (const [where, across, [callee, caller]] of chosenPairs) {
        it(`two pages with ids they chose, ${where}, exchange data by those ids`, async () => {
            const [n1, n2] = net.nodes;
            const run = Math.random().toString(36).slice(2, 8);
            const a = await peerPage(n2, n1, `chosen ${callee}`, `${callee}-${run}`);
            const b = await peerPage(across ? n1 : n2, across ? n2 : n1, `chosen ${caller}`,
                                     `${caller}-${run}`);
            assert.deepEqual([a.id, b.id], [`${callee}-${run}`, `${caller}-${run}`]);
            const echo = await b.page.evaluate(([id]) => window.talk(id, 'hi'), [a.id]);
            assert.equal(echo, 'echo: hi');
            assert.deepEqual(await a.page.evaluate(() => window.received), ['hi']);
            // the connection came from the caller's chosen id, not a node's session id
            assert.deepEqual(await a.page.evaluate(() => window.callers), [b.id]);
            assert.deepEqual(await a.page.evaluate(() => window.errors), []);
            assert.deepEqual(await b.page.evaluate(() => window.errors), []);
            assert.deepEqual(a.page.problems.concat(b.page.problems), []);
            net.assertNoAlerts();
        });
    }

    it('reconnect() after disconnect() gets the chosen id back, and the page is reached by it',
       async () => {
        const [n1, n2] = net.nodes;
        const run = Math.random().toString(36).slice(2, 8);
        const a = await peerPage(n2, n1, 'reconnecting', `eve-${run}`);
        const b = await peerPage(n1, n2, 'caller', `finn-${run}`);
        assert.equal(await b.page.evaluate(([id]) => window.talk(id, 'before'), [a.id]),
                     'echo: before');
        const started = Date.now();
        const back = await a.page.evaluate(() => window.reconnectPeer());
        console.log(`reconnect(): open again as ${back} in ${Date.now() - started} ms`);
        assert.equal(back, a.id, 'the same id, taken back with the Peer\'s token');
        assert.equal(await b.page.evaluate(([id]) => window.talk(id, 'after'), [a.id]),
                     'echo: after');
        assert.deepEqual(await a.page.evaluate(() => window.received), ['before', 'after']);
        assert.deepEqual(await a.page.evaluate(() => window.errors), []);
        assert.deepEqual(await b.page.evaluate(() => window.errors), []);
        assert.deepEqual(a.page.problems.concat(b.page.problems), []);
        net.assertNoAlerts();
    });
});

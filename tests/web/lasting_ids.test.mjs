// Ids that last, and rooms, in headless Chromium on real nginx nodes: the
// demo owns its id by a key kept in IndexedDB, so its call link still
// reaches it after a reload, and a call goes on (and negotiates again) when
// its page's node is stopped and the page reconnects to another node with
// the same id; two pages on different nodes meet in a room and call.

import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { startNetwork } from '../lib/nginx.mjs';
import { until } from '../lib/client.mjs';
import { openDemo, waitState, nodeOfPage } from './demo_helpers.mjs';
import { launchBrowser, newPage, framesDecoded, casesFor } from './browser.mjs';

// Run again in Firefox (web_firefox_lasting_ids): the reload, whose key
// comes back from Firefox's IndexedDB.
const it = casesFor([/^keeps the call link of a page that reloads/]);

const WAIT = 60_000;
const OWNED = /^k[0-9a-f]{48}$/;


describe('ids that last, in the browser', () => {
    let net;
    let n1, n2, n3;
    let browser;
    const pages = [];
    // Pages whose node is stopped log the failed reconnect attempts.
    const reconnecting = /^WebSocket connection to .* failed/;

    async function page(label, opts) {
        const p = await newPage(browser, { label, ignoreConsole: reconnecting, ...opts });
        pages.push(p);
        return p;
    }

    before(async () => {
        // node 1 is stopped under a call: its sessions hear 1001 after
        // worker_shutdown_timeout (a graceful stop keeps them till then)
        net = await startNetwork(3, { name: 'lasting', nodes: [{ shutdownTimeout: '1s' }] });
        [n1, n2, n3] = net.nodes;
        ({ browser } = await launchBrowser());
    });

    after(async () => {
        await browser?.close().catch(() => {});
        await net?.stop();
        const problems = pages.flatMap((p) => p.problems);
        assert.deepEqual(problems, [], 'no uncaught exceptions or console errors in the pages');
    });

    it('shows two pages on different nodes to each other in a room, and they call',
       async () => {
        const a = await page('roomA');
        const aId = await openDemo(a, n2.httpUrl('/?room=team'));
        await a.waitForSelector('#room:not([hidden])');
        assert.equal(await a.textContent('#room-title'), 'team');
        assert.equal(await a.isVisible('#room-empty'), true, 'alone in the room at first');

        const b = await page('roomB');
        await openDemo(b, n3.httpUrl('/'));
        await b.fill('#room-name', 'team');
        await b.click('#room-btn');
        // each sees the other, named in plain words, with a Call button
        await a.waitForSelector('#room-members [data-testid="call-member"]', { timeout: WAIT });
        await b.waitForSelector(`#room-members li[data-member="${aId}"] button`,
                                { timeout: WAIT });
        assert.equal(await b.textContent(`#room-members li[data-member="${aId}"] span`),
                     `Guest ${aId.slice(-6)}`);
        assert.equal(await a.isVisible('#room-empty'), false);

        await b.click(`#room-members li[data-member="${aId}"] button`);
        await a.waitForSelector('#incoming:not([hidden])', { timeout: WAIT });
        await a.click('#answer-btn');
        await Promise.all([waitState(a, '#call-state', 'connected'),
                           waitState(b, '#call-state', 'connected')]);

        // B leaves the room: A's list empties
        await b.click('#room-leave');
        await a.waitForSelector('#room-empty:not([hidden])', { timeout: WAIT });
        await b.click('#hangup-btn');
        await Promise.all([a.close(), b.close()]);
    });

    it('keeps the call link of a page that reloads while it waits', async () => {
        const a = await page('A');
        const aId = await openDemo(a, n1.httpUrl('/'));
        assert.match(aId, OWNED);
        await a.click('#start-btn');
        await waitState(a, '#call-state', 'waiting');
        const link = await a.inputValue('#share-link');
        assert.ok(link.endsWith(`?call=${aId}`), link);

        // A reloads; B opens A's link at once, on another node, while A is away
        const reloaded = a.reload();
        const b = await page('B');
        await b.goto(link.replace(n1.httpUrl('/'), n2.httpUrl('/')));
        await reloaded;
        await waitState(a, '#conn-state', 'open');
        assert.equal(await a.evaluate(() => window.dwrtcDemo.client.id), aId,
                     'the same id after the reload');

        // B's call rings at A (a reloaded page does not answer by itself)
        await a.waitForSelector('#incoming:not([hidden])', { timeout: WAIT });
        await a.click('#answer-btn');
        await Promise.all([waitState(a, '#call-state', 'connected'),
                           waitState(b, '#call-state', 'connected')]);
        assert.equal(await b.evaluate(() => window.dwrtcDemo.call.partnerId), aId);
        await b.click('#hangup-btn');
        await waitState(a, '#call-state', 'ended');
        await Promise.all([a.close(), b.close()]);
    });

    it('keeps a call when the page\'s node stops: same id on another node, and it '
       + 'negotiates again', async () => {
        // A knows two nodes; B is on a third
        const signal = encodeURIComponent(`${n1.wsUrl('/signal')},${n2.wsUrl('/signal')}`);
        const a = await page('A2');
        const aId = await openDemo(a, n1.httpUrl(`/?signal=${signal}`));
        const firstNode = await nodeOfPage(a);
        await a.click('#start-btn');
        await waitState(a, '#call-state', 'waiting');
        const b = await page('B2');
        await b.goto(n3.httpUrl(`/?call=${aId}`));
        await Promise.all([waitState(a, '#call-state', 'connected'),
                           waitState(b, '#call-state', 'connected')]);

        await a.evaluate(() => {
            window.lostAt = null;
            window.dwrtcDemo.client.addEventListener('state', (e) => {
                if (e.detail.state === 'disconnected' && window.lostAt === null) {
                    window.lostAt = Date.now();
                }
            });
        });
        const stoppedAt = Date.now();
        await n1.stop();
        console.log(`# node 1 stopped in ${Date.now() - stoppedAt} ms; A lost it after `
                    + `${(await a.evaluate(() => window.lostAt)) - stoppedAt} ms`);
        const secondNode = await until(async () => {
            const now = await a.evaluate(() => window.dwrtcDemo.client.state === 'open'
                                                && window.dwrtcDemo.client.nodeId);
            return now && now !== firstNode ? now : null;
        }, 'A back on another node');
        console.log(`# node stopped to A open on another node: ${Date.now() - stoppedAt} ms`);
        assert.ok(n2.currentNodes().some((n) => n.nodeId === secondNode), 'A is on node 2');
        assert.equal(await a.evaluate(() => window.dwrtcDemo.client.id), aId, 'the same id');
        assert.equal(await a.evaluate(() => window.dwrtcDemo.call?.state), 'connected',
                     'the call goes on');

        // A negotiates again (an ICE restart, as after a network change): its
        // offer goes out through node 2, B's answer finds A by its id there
        const ufrag = (p) => p.evaluate(
            () => /a=ice-ufrag:(\S+)/.exec(window.dwrtcDemo.pc.remoteDescription.sdp)[1]);
        const [aBefore, bBefore] = [await ufrag(a), await ufrag(b)];
        const restartedAt = Date.now();
        await a.evaluate(() => window.dwrtcDemo.pc.restartIce());
        await until(async () => (await ufrag(b)) !== bBefore, 'B to get A\'s new offer');
        await until(async () => (await ufrag(a)) !== aBefore
                                && await a.evaluate(() => window.dwrtcDemo.pc.signalingState)
                                   === 'stable',
                    'A to get B\'s answer');
        console.log(`# renegotiation through the new node: ${Date.now() - restartedAt} ms`);
        const frames = await framesDecoded(b);
        await until(async () => (await framesDecoded(b)) > frames, 'video still arriving at B');
        assert.equal(await b.evaluate(() => window.dwrtcDemo.call?.state), 'connected');
        await Promise.all([a.close(), b.close()]);
    });
});

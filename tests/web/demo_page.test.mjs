// What the demo page says and shows to a person, in headless Chromium with
// its fake camera (tests/web/browser.mjs), on two real nginx nodes: plain
// words in the top bar with the node's id and URL under "Details", the
// node's errors as sentences with their codes under "Details", the call
// link first with a Copy button, Cancel while waiting (the called partner
// gets the hangup), no empty video box before there is video, and how the
// media travels, said only once a call is connected.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { startNetwork, freeTcpPort } from '../lib/nginx.mjs';
import { openDemo, waitState, nodeOfPage } from './demo_helpers.mjs';
import { launchBrowser, newPage } from './browser.mjs';

// bounds on waits; a working build is far faster
const WAIT = 60_000;

/** The video area as a person sees it. */
function videoArea(page) {
    return page.evaluate(() => {
        const shown = (id) => {
            const el = document.getElementById(id);
            const r = el.getBoundingClientRect();
            return getComputedStyle(el).display !== 'none' && r.width > 0 && r.height > 0;
        };
        return {
            local: shown('local-video'),
            remote: shown('remote-video'),
            placeholder: shown('video-placeholder')
                ? document.getElementById('video-placeholder').textContent.trim() : null,
            localHasStream: Boolean(document.getElementById('local-video').srcObject),
            remoteHasStream: Boolean(document.getElementById('remote-video').srcObject),
        };
    });
}

describe('the demo page in plain words', () => {
    let net;
    let n1, n2;
    let browser;
    const pages = [];

    async function page(label, opts) {
        const p = await newPage(browser, { label, ...opts });
        pages.push(p);
        return p;
    }

    before(async () => {
        net = await startNetwork(2, { name: 'demo-page' });
        [n1, n2] = net.nodes;
        ({ browser } = await launchBrowser());
    });

    after(async () => {
        await browser?.close().catch(() => {});
        try {
            net?.assertNoAlerts();
        } finally {
            await net?.stop();
        }
        const problems = pages.flatMap((p) => p.problems);
        assert.deepEqual(problems, [], 'no uncaught exceptions or console errors in the pages');
    });

    it('says "Connected" in the top bar; the node id and URL only under Details', async () => {
        const p = await page('topbar');
        await openDemo(p, n1.httpUrl('/'));
        const nodeId = await nodeOfPage(p);
        assert.match(nodeId, /^[0-9a-f]{32}$/);
        assert.equal(await p.textContent('#conn-state'), 'Connected');
        const bar = await p.innerText('header');
        assert.ok(!bar.includes(nodeId), `no node id in the visible top bar: "${bar}"`);
        assert.ok(!bar.includes('ws://'), `no URL in the visible top bar: "${bar}"`);
        assert.equal(await p.isVisible('#node-id'), false);
        assert.equal(await p.isVisible('#node-url'), false);
        // a tooltip and the details have them
        assert.equal(await p.getAttribute('#conn-state', 'title'),
                     `Call server ${n1.wsUrl('/signal')}, node ${nodeId}`);
        await p.click('#node-detail summary');
        assert.equal(await p.isVisible('#node-id'), true);
        assert.equal(await p.textContent('#node-id'), nodeId);
        assert.equal(await p.textContent('#node-url'), n1.wsUrl('/signal'));
        await p.close();
    });

    it('says "Offline, retrying" in the top bar when the node cannot be reached', async () => {
        const deadPort = await freeTcpPort();   // nothing listens there
        const p = await page('offline', { ignoreConsole: /^WebSocket connection to .* failed/ });
        await p.goto(n1.httpUrl(`/?signal=ws://127.0.0.1:${deadPort}/signal`));
        const badge = await p.waitForFunction(() => {
            const el = document.getElementById('conn-state');
            return el.dataset.state === 'disconnected' && el.textContent;
        }, null, { timeout: WAIT });
        assert.equal(await badge.jsonValue(), 'Offline, retrying');
        const bar = await p.innerText('header');
        assert.ok(!bar.includes(`${deadPort}`), `no URL in the visible top bar: "${bar}"`);
        await p.close();
    });

    it('tells a node\'s errors (ErrorCode) as sentences, the code under Details', async () => {
        // the node's errors, as dwrtc.js announces them (an 'error' event)
        const p = await page('errors');
        await openDemo(p, n1.httpUrl('/'));
        const shown = (error) => p.evaluate((err) => {
            document.getElementById('error').hidden = true;
            window.dwrtcDemo.client.dispatchEvent(new CustomEvent('error', {
                detail: { error: err, recipientSessionId: null, message: {} } }));
            const box = document.getElementById('error');
            return box.hidden ? null : { kind: box.dataset.kind,
                                         text: document.getElementById('error-text').textContent,
                                         detail: document.getElementById('error-detail-text')
                                             .textContent };
        }, error);
        const plain = {
            'rate limited': /^This page sent messages too quickly/,
            'not sent: node unavailable': /^The call server is restarting/,
            'invalid message: no recipientSessionId': /^The call server refused a message/,
            'unparsable message from the node': /^The call server sent something/,
            'something new': /^Something went wrong at the call server/,
        };
        for (const [error, sentence] of Object.entries(plain)) {
            const got = await shown(error);
            assert.ok(got, `an error box for "${error}"`);
            assert.match(got.text, sentence, error);
            assert.ok(!got.text.includes(error), `"${error}" is not in the sentence`);
            assert.equal(got.detail, `The call server said: ${error}.`);
        }
        // about a partner, and no call: nothing to tell
        assert.equal(await shown('not found'), null);
        await p.close();
    });

    it('leads with the call link, which holds the page\'s own id and copies', async () => {
        const p = await page('link', { permissions: ['clipboard-read', 'clipboard-write'] });
        const id = await openDemo(p, n1.httpUrl('/'));
        assert.equal(await p.isVisible('#share-link'), false, 'no link before Start');
        await p.click('#start-btn');
        await p.waitForSelector('#share-link', { state: 'visible' });
        const link = await p.inputValue('#share-link');
        assert.equal(link, n1.httpUrl(`/?call=${id}`));
        assert.ok(link.includes(id));
        // the raw id is a detail
        assert.equal(await p.isVisible('#my-id'), false);
        assert.ok(!(await p.innerText('#share')).includes(id),
                  'the id is not shown beside the link');
        assert.equal(await p.textContent('#my-id'), id);

        await p.click('#copy-btn');
        await p.waitForSelector('#copy-btn:text-is("Copied")', { timeout: WAIT });
        assert.equal(await p.evaluate(() => navigator.clipboard.readText()), link);
        await p.close();
    });

    it('shows no empty video box before the camera starts, the preview once it has',
       async () => {
        const p = await page('videos');
        await openDemo(p, n1.httpUrl('/'));
        assert.deepEqual(await videoArea(p), {
            local: false, remote: false,
            placeholder: 'Your camera starts when you start or join a call.',
            localHasStream: false, remoteHasStream: false });

        await p.click('#start-btn');
        await waitState(p, '#call-state', 'waiting');
        assert.deepEqual(await videoArea(p), {
            local: true, remote: false, placeholder: null,
            localHasStream: true, remoteHasStream: false });

        // Cancel turns the camera off: back to the text
        await p.click('#hangup-btn');
        await waitState(p, '#call-state', 'idle');
        assert.deepEqual(await videoArea(p), {
            local: false, remote: false,
            placeholder: 'Your camera starts when you start or join a call.',
            localHasStream: false, remoteHasStream: false });
        await p.close();
    });

    it('Cancel while waiting goes back to the start; a called partner gets the hangup',
       async () => {
        const a = await page('cancel-a');
        const b = await page('cancel-b');
        const [aId, bId] = await Promise.all([openDemo(a, n1.httpUrl('/')),
                                              openDemo(b, n2.httpUrl('/'))]);
        const idle = async (p) => ({
            state: await p.getAttribute('#call-state', 'data-state'),
            share: await p.isVisible('#share'),
            startEnabled: await p.isEnabled('#start-btn'),
            controls: await p.isVisible('#controls'),
            call: await p.evaluate(() => window.dwrtcDemo.call),
        });
        const atStart = { state: 'idle', share: false, startEnabled: true, controls: false,
                          call: null };
        assert.deepEqual(await idle(a), atStart);

        // after Start, waiting for anyone
        await a.click('#start-btn');
        await waitState(a, '#call-state', 'waiting');
        assert.equal(await a.textContent('#hangup-btn'), 'Cancel');
        await a.click('#hangup-btn');
        await waitState(a, '#call-state', 'idle');
        assert.deepEqual(await idle(a), atStart);
        await a.waitForSelector('#chat-log li.system:text-is("You stopped waiting.")');

        // calling B, who has not answered yet
        await b.evaluate(() => {
            window.signals = [];
            window.dwrtcDemo.client.addEventListener('signaling', (e) => {
                if (e.detail.type === 'SignalingMessage') {
                    window.signals.push({ from: e.detail.senderSessionId,
                                          body: JSON.parse(e.detail.messageBody) });
                }
            });
        });
        await a.fill('#join-id', n2.httpUrl(`/?call=${bId}`));     // the link B would send
        await a.click('#join-btn');
        await b.waitForSelector('#incoming:not([hidden])', { timeout: WAIT });
        await waitState(b, '#call-state', 'ringing');
        assert.match(await a.getAttribute('#call-state', 'data-state'), /^(new|connecting)$/);
        assert.equal(await a.textContent('#hangup-btn'), 'Cancel');
        await a.click('#hangup-btn');
        await waitState(a, '#call-state', 'idle');
        assert.deepEqual(await idle(a), atStart);
        await a.waitForSelector('#chat-log li.system:text-is("You cancelled the call.")');

        await waitState(b, '#call-state', 'ended');
        assert.equal(await b.textContent('#call-state'), 'The caller hung up');
        assert.equal(await b.isVisible('#incoming'), false);
        assert.equal(await b.evaluate(() => window.dwrtcDemo.call), null);
        const hangups = await b.evaluate(
            () => window.signals.filter((s) => s.body.type === 'hangup'));
        assert.deepEqual(hangups, [{ from: aId, body: { type: 'hangup', reason: 'hangup' } }]);
        await a.close();
        await b.close();
    });

    it('says how media travels only once a call is connected: "direct" on loopback',
       async () => {
        const a = await page('path-a');
        const b = await page('path-b');
        await openDemo(a, n1.httpUrl('/'));
        await openDemo(b, n2.httpUrl('/'));
        for (const p of [a, b]) {
            assert.equal(await p.getAttribute('#media-path', 'data-path'), 'none');
            assert.doesNotMatch(await p.innerText('footer'), /direct|straight|relay|TURN/i,
                                'no claim before a call');
        }
        await a.click('#start-btn');
        await waitState(a, '#call-state', 'waiting');
        await b.goto(await a.inputValue('#share-link'));     // joins by itself
        await Promise.all([waitState(a, '#call-state', 'connected'),
                           waitState(b, '#call-state', 'connected')]);
        for (const p of [a, b]) {
            await p.waitForSelector('#media-path[data-path="direct"]', { timeout: WAIT });
            assert.match(await p.innerText('footer'), /This call is direct/);
            assert.doesNotMatch(await p.innerText('footer'), /relay|TURN/i);
            // what the label rests on: the selected pair has no relay end
            const types = await p.evaluate(async () => {
                const stats = await window.dwrtcDemo.pc.getStats();
                const out = [];
                stats.forEach((s) => {
                    if (s.type === 'transport' && s.selectedCandidatePairId) {
                        const pair = stats.get(s.selectedCandidatePairId);
                        out.push(stats.get(pair.localCandidateId).candidateType,
                                 stats.get(pair.remoteCandidateId).candidateType);
                    }
                });
                return out;
            });
            assert.ok(types.length && !types.includes('relay'), `candidate types ${types}`);
        }
        assert.equal(await b.textContent('#hangup-btn'), 'Hang up');
        await b.click('#hangup-btn');
        for (const p of [a, b]) {
            await waitState(p, '#call-state', 'ended');
            assert.equal(await p.getAttribute('#media-path', 'data-path'), 'none');
            assert.doesNotMatch(await p.innerText('footer'), /direct|relay/i);
        }
        await a.close();
        await b.close();
    });

    it('says "relayed through a TURN server" when the selected pair has a relay end',
       async () => {
        // There is no TURN server here: page A's getStats() reports its
        // local candidates as relay candidates, as they are through TURN.
        const a = await page('relay-a');
        await a.addInitScript(() => {
            const getStats = RTCPeerConnection.prototype.getStats;
            RTCPeerConnection.prototype.getStats = async function (...args) {
                const report = await getStats.apply(this, args);
                const copy = new Map();
                report.forEach((s, key) => copy.set(key, s.type === 'local-candidate'
                    ? { ...s, candidateType: 'relay' } : s));
                return copy;
            };
        });
        const b = await page('relay-b');
        await openDemo(a, n1.httpUrl('/'));
        await openDemo(b, n2.httpUrl('/'));
        await a.click('#start-btn');
        await waitState(a, '#call-state', 'waiting');
        await b.goto(await a.inputValue('#share-link'));
        await Promise.all([waitState(a, '#call-state', 'connected'),
                           waitState(b, '#call-state', 'connected')]);
        await a.waitForSelector('#media-path[data-path="relayed"]', { timeout: WAIT });
        assert.match(await a.innerText('footer'), /This call is relayed through a TURN server/);
        assert.doesNotMatch(await a.innerText('footer'), /direct:/);
        await b.waitForSelector('#media-path[data-path="direct"]', { timeout: WAIT });
        await a.close();
        await b.close();
    });
});

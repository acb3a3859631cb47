// The demo in a real browser on a real DWRTC network: three nginx nodes on
// loopback, each serving web/ at / and signaling at /signal (node 3 also
// serves the demo under a sub-path, /apps/call/, with its signal location at
// /apps/call/signal, as a site would host it). Headless Debian Chromium with
// a fake camera: page A on node 1 starts a call, page B on node 3 joins it by
// id; both connect, video frames are decoded, and chat crosses both ways.
// Run again in Firefox (web_firefox_e2e_call, DWRTC_BROWSER=firefox): the
// cases FIREFOX_CASES names, and a call between a page of each browser,
// which in the two runs goes both ways.

import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomSessionId } from '../lib/client.mjs';
import { copyFileSync } from 'node:fs';

import { startNetwork, freeTcpPort, waitUntil, WEB_ROOT } from '../lib/nginx.mjs';
import { openDemo, waitState, nodeOfPage } from './demo_helpers.mjs';
import { launchBrowser, newPage, screenshot, framesDecoded, casesFor, BROWSER_KIND, OTHER_KIND,
         BROWSER_NAME } from './browser.mjs';

// The cases that run in Firefox too: a call with video both ways, each way
// a call ends (hang-up, a closed page, an unreachable partner), crossed
// offers, and the pair of browsers. The others are the same in any browser
// or use Chromium's switches.
const FIREFOX_CASES = [/^B on node 3/, /^C opens the link/, /^offers that cross/,
                       /^dwrtc\.js on its own/, /^dwrtc\.js: a call whose partner/,
                       /^dwrtc\.js: a call whose media connection stays lost/,
                       /^a call between a Chromium page and a Firefox page/];
const it = casesFor(FIREFOX_CASES);

const SUB = '/apps/call/';
// Bounds on waits, so a broken build fails instead of hanging; a working
// one is far faster (the test prints how long things took).
const WAIT = 60_000;

/** Waits until a chat line of class `cls` with exactly `text` is shown. */
function waitChat(page, cls, text) {
    return page.waitForFunction(([c, t]) => [...document.querySelectorAll(`#chat-log li.${c}`)]
        .some((li) => li.textContent === t), [cls, text], { timeout: WAIT });
}

async function sendChat(page, text) {
    await page.fill('#chat-input', text);       // waits until chat is enabled
    await page.click('#chat-send');
}

// In a page: calls `partner` with a 3 s callLostTimeout and records how
// the call ends (window.ends) and every error (window.callErrors,
// window.clientErrors).
async function placeWatchedCall(partner) {
    const { DwrtcClient } = await import('./dwrtc.js');
    const a = new DwrtcClient({ callLostTimeout: 3000 });
    await a.connect('./signal');
    const stream = await navigator.mediaDevices.getUserMedia({ video: true });
    const call = a.call(partner, { stream });
    window.ends = [];
    window.callErrors = [];
    window.clientErrors = [];
    call.addEventListener('hangup', (e) => window.ends.push(
        { ...e.detail, state: call.state, at: Date.now() }));
    call.addEventListener('error', (e) => window.callErrors.push(String(e.detail.error)));
    a.addEventListener('error', (e) => window.clientErrors.push(String(e.detail.error)));
    window.aCall = call;
}

/** Waits for the watched call's end, and a while more: nothing else comes. */
async function watchedEnd(page) {
    await page.waitForFunction(() => window.ends.length > 0, null, { timeout: WAIT });
    await new Promise((r) => setTimeout(r, 1500));
    return page.evaluate(() => ({ ends: window.ends, callErrors: window.callErrors,
                                  clientErrors: window.clientErrors }));
}

describe(`the video-call demo in ${BROWSER_NAME[BROWSER_KIND]} across DWRTC nodes`, () => {
    let net;
    let n1, n2, n3;
    let browser;
    const pages = [];

    async function page(label, opts) {
        const p = await newPage(browser, { label, ...opts });
        pages.push(p);
        return p;
    }

    before(async () => {
        net = await startNetwork(3, {
            name: 'e2e',
            nodes: [{}, {}, {
                server: `location ${SUB} {
                             alias ${WEB_ROOT}/;
                         }
                         location = ${SUB}signal {
                             dwrtc_signal;
                         }`,
            }],
        });
        [n1, n2, n3] = net.nodes;
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

    let pageA;
    let aId;

    it('B on node 3 (under a sub-path) joins A on node 1: video both ways and chat', async () => {
        pageA = await page('A');
        aId = await openDemo(pageA, n1.httpUrl('/'));
        assert.match(aId, /^k[0-9a-f]{48}$/, 'the demo owns its id by a key');
        const nodeA = await nodeOfPage(pageA);
        assert.equal(await pageA.textContent('#node-id'), nodeA);
        assert.equal(await pageA.textContent('#node-url'), n1.wsUrl('/signal'));
        assert.ok(n1.currentNodes().some((n) => n.nodeId === nodeA), 'A is on node 1');

        await pageA.click('#start-btn');
        await pageA.waitForSelector('#share:not([hidden])');
        assert.equal(await pageA.textContent('#my-id'), aId);
        assert.equal(await pageA.inputValue('#share-link'), n1.httpUrl(`/?call=${aId}`));
        await waitState(pageA, '#call-state', 'waiting');

        const pageB = await page('B', { viewport: { width: 390, height: 844 }, isMobile: true,
                                        hasTouch: true });
        const bId = await openDemo(pageB, n3.httpUrl(SUB));
        assert.equal(await pageB.textContent('#node-url'), n3.wsUrl(`${SUB}signal`));
        const nodeB = await nodeOfPage(pageB);
        assert.ok(n3.currentNodes().some((n) => n.nodeId === nodeB), 'B is on node 3');
        assert.notEqual(nodeA, nodeB);

        await pageB.fill('#join-id', aId);
        const joinedAt = performance.now();
        await pageB.click('#join-btn');
        await Promise.all([waitState(pageA, '#call-state', 'connected'),
                           waitState(pageB, '#call-state', 'connected')]);
        const connectedMs = Math.round(performance.now() - joinedAt);
        console.log(`# join to connected (both pages): ${connectedMs} ms`);

        assert.equal(await pageA.evaluate(() => window.dwrtcDemo.call.partnerId), bId);
        assert.equal(await pageB.evaluate(() => window.dwrtcDemo.call.partnerId), aId);
        // a key-owned id names no node: the partner's node is not claimed
        assert.equal(await pageB.isVisible('#partner-node-line'), false);

        // frames from each fake camera are decoded on the other side
        let frames;
        await waitUntil(async () => {
            frames = [await framesDecoded(pageA), await framesDecoded(pageB)];
            return frames[0] > 0 && frames[1] > 0;
        }, { timeout: WAIT, what: 'decoded video frames on both pages',
             detail: () => `framesDecoded A ${frames?.[0]}, B ${frames?.[1]}` });
        const firstFramesMs = Math.round(performance.now() - joinedAt);
        console.log(`# join to frames decoded on both pages: ${firstFramesMs} ms`);
        for (const p of [pageA, pageB]) {
            await p.waitForFunction(() => {
                const v = document.getElementById('remote-video');
                return v.videoWidth > 0 && v.readyState >= 2;
            }, null, { timeout: WAIT });
        }

        await sendChat(pageB, 'Hello from B on node 3 – grüße');
        await waitChat(pageA, 'partner', 'Hello from B on node 3 – grüße');
        await sendChat(pageA, 'Hi B, this is A on node 1');
        await waitChat(pageB, 'partner', 'Hi B, this is A on node 1');
        await waitChat(pageA, 'me', 'Hi B, this is A on node 1');

        // a moment of video for the screenshots
        await waitUntil(async () => (await framesDecoded(pageA)) > 30
                        && (await framesDecoded(pageB)) > 30,
                        { timeout: WAIT, what: '30 frames decoded on both pages' });
        const shotA = await screenshot(pageA, 'call-a-node1.png');
        const shotB = await screenshot(pageB, 'call-b-node3-phone.png', { fullPage: true });
        console.log(`# screenshots: ${shotA} ${shotB}`);
        if (process.env.DWRTC_UPDATE_SCREENSHOT) {
            copyFileSync(shotA, process.env.DWRTC_UPDATE_SCREENSHOT);
        }

        // B hangs up: both sides end, A waits for the next caller
        await pageB.click('#hangup-btn');
        await Promise.all([waitState(pageA, '#call-state', 'ended'),
                           waitState(pageB, '#call-state', 'ended')]);
        await waitChat(pageA, 'system', 'Your partner hung up.');
        assert.equal(await pageA.evaluate(() => window.dwrtcDemo.call), null);
        await pageB.close();
    });

    it('C opens the link A shared and gets through to A again', async () => {
        const link = await pageA.inputValue('#share-link');
        const pageC = await page('C');
        await pageC.goto(link);     // joins by itself once connected
        await Promise.all([waitState(pageA, '#call-state', 'connected'),
                           waitState(pageC, '#call-state', 'connected')]);
        assert.equal(await pageC.evaluate(() => window.dwrtcDemo.call.partnerId), aId);
        await waitUntil(async () => (await framesDecoded(pageA)) > 0
                        && (await framesDecoded(pageC)) > 0,
                        { timeout: WAIT, what: 'decoded video frames on A and C' });
        await sendChat(pageC, 'C here');
        await waitChat(pageA, 'partner', 'C here');

        // leaving the page hangs up
        await pageC.close({ runBeforeUnload: true });
        await waitState(pageA, '#call-state', 'ended');
        await pageA.close();
    });

    it('both pressing Join at once makes one call', async () => {
        const p1 = await page('glare-1');
        const p2 = await page('glare-2');
        const [id1, id2] = await Promise.all([openDemo(p1, n1.httpUrl('/')),
                                              openDemo(p2, n2.httpUrl('/'))]);
        await p1.fill('#join-id', id2);
        await p2.fill('#join-id', id1);
        // submitted in the same moment (a click waits for the button, which
        // hides once the other's call rings): whichever comes first, pressing
        // Join for someone who is calling you answers them
        await Promise.all([p1, p2].map(
            (p) => p.evaluate(() => document.getElementById('join-form').requestSubmit())));
        await Promise.all([waitState(p1, '#call-state', 'connected'),
                           waitState(p2, '#call-state', 'connected')]);
        // whether the offers crossed, or one arrived before the other page
        // had called (then its Join answered it), depends on timing; the
        // collision itself is the next test's
        const calls = await Promise.all([p1, p2].map((p) => p.evaluate(
            () => ({ partner: window.dwrtcDemo.call.partnerId,
                     polite: window.dwrtcDemo.call.polite,
                     incoming: window.dwrtcDemo.call.incoming }))));
        console.log(`# simultaneous Join: incoming ${calls.map((c) => c.incoming).join('/')}`);
        assert.deepEqual(calls.map((c) => c.partner), [id2, id1]);
        assert.deepEqual(calls.map((c) => c.polite).sort(), [false, true],
                         'one side is polite, one is not');
        await waitUntil(async () => (await framesDecoded(p1)) > 0 && (await framesDecoded(p2)) > 0,
                        { timeout: WAIT, what: 'decoded video frames after the collision' });
        await sendChat(p1, 'one');
        await waitChat(p2, 'partner', 'one');
        await sendChat(p2, 'two');
        await waitChat(p1, 'partner', 'two');
        await p1.close();
        await p2.close();
    });

    it('offers that cross are resolved by perfect negotiation (dwrtc.js)', async () => {
        // Page 1 holds back what it sends (a WebSocket subclass with a
        // gate) until page 2's offer has reached it, so the two offers cross
        // for certain: each page gets the other's offer while it waits for
        // an answer to its own.
        const p1 = await page('collide-1');
        const p2 = await page('collide-2');
        await Promise.all([p1.goto(n1.httpUrl('/')), p2.goto(n3.httpUrl('/'))]);
        const setup = async () => {
            const { DwrtcClient } = await import('./dwrtc.js');
            class GatedWebSocket extends WebSocket {
                send(data) {
                    if (window.gate) {
                        window.held.push([this, data]);
                    } else {
                        super.send(data);
                    }
                }
            }
            window.gate = false;
            window.held = [];
            window.offersSeenIn = [];    // our signalingState when an offer came
            window.got = [];
            const client = new DwrtcClient({ WebSocket: GatedWebSocket });
            client.addEventListener('signaling', (e) => {
                if (JSON.parse(e.detail.messageBody).type === 'offer') {
                    window.offersSeenIn.push(window.theCall?.pc.signalingState ?? 'no call');
                }
            });
            window.client = client;
            window.stream = await navigator.mediaDevices.getUserMedia({ video: true });
            return client.connect('./signal');
        };
        const place = (partner) => {
            const call = window.client.call(partner, { stream: window.stream, dataChannel: true });
            window.theCall = call;
            const channels = new Set();     // ours, and the partner's
            const listen = (ch) => {
                if (!channels.has(ch)) {
                    channels.add(ch);
                    ch.addEventListener('message', (m) => window.got.push(m.data));
                }
            };
            listen(call.dataChannel);
            call.addEventListener('datachannel', (e) => listen(e.detail.channel));
        };
        const [id1, id2] = await Promise.all([p1.evaluate(setup), p2.evaluate(setup)]);

        await p1.evaluate(() => { window.gate = true; });
        await p1.evaluate(place, id2);
        await p1.waitForFunction(() => window.held.some(([, d]) => d.includes('\\"offer\\"')),
                                 null, { timeout: WAIT });
        await p2.evaluate(place, id1);
        await p1.waitForFunction(() => window.offersSeenIn.length > 0, null, { timeout: WAIT });
        await p1.evaluate(() => {
            window.gate = false;
            for (const [ws, data] of window.held.splice(0)) {
                ws.send(data);
            }
        });
        await Promise.all([p1, p2].map((p) => p.waitForFunction(
            () => window.theCall.state === 'connected', null, { timeout: WAIT })));

        const seen = await Promise.all([p1, p2].map((p) => p.evaluate(() => window.offersSeenIn)));
        assert.equal(seen[0][0], 'have-local-offer', 'page 1 got an offer while offering');
        assert.equal(seen[1][0], 'have-local-offer', 'page 2 got an offer while offering');
        const polite = await Promise.all([p1, p2].map((p) => p.evaluate(() => window.theCall.polite)));
        assert.deepEqual(polite, [id1 < id2, id2 < id1]);
        console.log(`# crossed offers resolved; polite: page ${polite[0] ? 1 : 2}; `
                    + `offers seen in states: ${JSON.stringify(seen)}`);

        // media and the data channel work after the collision
        await waitUntil(async () => (await Promise.all([p1, p2].map((p) => p.evaluate(async () => {
            let n = 0;
            (await window.theCall.pc.getStats()).forEach((r) => {
                if (r.type === 'inbound-rtp' && r.kind === 'video') {
                    n += r.framesDecoded ?? 0;
                }
            });
            return n;
        })))).every((n) => n > 0), { timeout: WAIT, what: 'frames after the collision' });
        const send = (text) => {
            const ch = window.theCall.dataChannel;
            const go = () => ch.send(text);
            if (ch.readyState === 'open') {
                go();
            } else {
                ch.addEventListener('open', go, { once: true });
            }
        };
        await p1.evaluate(send, 'from 1');
        await p2.evaluate(send, 'from 2');
        await p2.waitForFunction(() => window.got.includes('from 1'), null, { timeout: WAIT });
        await p1.waitForFunction(() => window.got.includes('from 2'), null, { timeout: WAIT });

        // Once connected, both restart ICE at once: the offers cross again,
        // now on a negotiated connection (the polite side rolls back).
        const remoteUfrag = () => /a=ice-ufrag:(\S+)/.exec(
            window.theCall.pc.currentRemoteDescription.sdp)[1];
        const before = await Promise.all([p1, p2].map((p) => p.evaluate(remoteUfrag)));
        const politeNow = await Promise.all([p1, p2].map((p) => p.evaluate(() => {
            window.firstPc = window.theCall.pc;
            return window.theCall.polite;
        })));
        await p1.evaluate(() => {
            window.gate = true;
            window.offersSeenIn = [];
            window.theCall.pc.restartIce();
        });
        await p1.waitForFunction(() => window.held.some(([, d]) => d.includes('\\"offer\\"')),
                                 null, { timeout: WAIT });
        await p2.evaluate(() => {
            window.offersSeenIn = [];
            window.theCall.pc.restartIce();
        });
        await p1.waitForFunction(() => window.offersSeenIn.length > 0, null, { timeout: WAIT });
        await p1.evaluate(() => {
            window.gate = false;
            for (const [ws, data] of window.held.splice(0)) {
                ws.send(data);
            }
        });
        await Promise.all([p1, p2].map((p, i) => p.waitForFunction((old) => {
            const pc = window.theCall.pc;
            return pc.signalingState === 'stable' && pc.connectionState === 'connected'
                && /a=ice-ufrag:(\S+)/.exec(pc.currentRemoteDescription.sdp)[1] !== old
                && window.theCall.state === 'connected';
        }, before[i], { timeout: WAIT })));
        const again = await Promise.all([p1, p2].map((p) => p.evaluate(
            () => ({ seen: window.offersSeenIn, samePc: window.firstPc === window.theCall.pc }))));
        assert.equal(again[0].seen[0], 'have-local-offer', 'page 1 got an offer while offering');
        assert.equal(again[1].seen[0], 'have-local-offer', 'page 2 got an offer while offering');
        assert.deepEqual(again.map((a) => a.samePc), [true, true],
                         'a negotiated connection is kept (rolled back, not replaced)');
        console.log(`# crossed ICE restarts resolved (polite: page ${politeNow[0] ? 1 : 2}); `
                    + `offers seen in states: ${JSON.stringify(again.map((a) => a.seen))}`);
        await p1.evaluate(send, 'again from 1');
        await p2.waitForFunction(() => window.got.includes('again from 1'), null,
                                 { timeout: WAIT });
        await p1.close();
        await p2.close();
    });

    it('rings a page that did not start a call: decline, then answer', async () => {
        const callee = await page('callee');
        const caller = await page('caller');
        const [calleeId] = await Promise.all([openDemo(callee, n2.httpUrl('/')),
                                              openDemo(caller, n3.httpUrl('/'))]);
        await caller.fill('#join-id', calleeId);
        await caller.click('#join-btn');
        await callee.waitForSelector('#incoming:not([hidden])', { timeout: WAIT });
        await waitState(callee, '#call-state', 'ringing');
        await callee.click('#decline-btn');
        await waitState(caller, '#call-state', 'ended');
        assert.match(await caller.textContent('#call-state'), /declined/);

        await caller.click('#join-btn');        // the id is still in the field
        await callee.waitForSelector('#incoming:not([hidden])', { timeout: WAIT });
        await callee.click('#answer-btn');
        await Promise.all([waitState(caller, '#call-state', 'connected'),
                           waitState(callee, '#call-state', 'connected')]);
        await callee.click('#hangup-btn');
        await waitState(caller, '#call-state', 'ended');
        await callee.close();
        await caller.close();
    });

    it('dwrtc.js on its own: auto-answer, a data channel, and busy for a second caller',
       async () => {
        // three pages use the module directly (the demo page is only their
        // origin); X answers by itself and echoes on the data channel
        const [px, py, pz] = [await page('lib-x'), await page('lib-y'), await page('lib-z')];
        await Promise.all([px.goto(n1.httpUrl('/')), py.goto(n2.httpUrl('/')),
                           pz.goto(n3.httpUrl('/'))]);
        const xId = await px.evaluate(async () => {
            const { DwrtcClient } = await import('./dwrtc.js');
            const x = new DwrtcClient({ autoAnswer: {} });     // receive only
            window.x = x;
            x.addEventListener('incomingcall', (e) => {
                const { call } = e.detail;
                window.xState = call.state;
                call.addEventListener('datachannel', ({ detail: { channel } }) => {
                    channel.addEventListener('message', (m) => channel.send(`echo ${m.data}`));
                });
            });
            return x.connect('./signal');
        });
        const echo = await py.evaluate(async (partner) => {
            const { DwrtcClient } = await import('./dwrtc.js');
            const y = new DwrtcClient();
            await y.connect('./signal');
            const stream = await navigator.mediaDevices.getUserMedia({ video: true });
            const call = y.call(partner, { stream, dataChannel: 'data' });
            window.yCall = call;
            const dc = call.dataChannel;
            await new Promise((res) => dc.addEventListener('open', res, { once: true }));
            const reply = new Promise((res) => dc.addEventListener(
                'message', (m) => res(m.data), { once: true }));
            dc.send('ping');
            return reply;
        }, xId);
        assert.equal(echo, 'echo ping');
        assert.equal(await px.evaluate(() => window.xState), 'new',
                     'an auto-answered call is announced already answered');
        await py.waitForFunction(() => window.yCall.state === 'connected', null,
                                 { timeout: WAIT });

        const busy = await pz.evaluate(async (partner) => {
            const { DwrtcClient } = await import('./dwrtc.js');
            const z = new DwrtcClient();
            await z.connect('./signal');
            const call = z.call(partner, {});
            return new Promise((res) => call.addEventListener(
                'hangup', (e) => res({ ...e.detail, state: call.state })));
        }, xId);
        assert.deepEqual(busy, { by: 'remote', reason: 'busy', state: 'ended' });

        // Y's page is closed: dwrtc.js hangs up on pagehide, so X hears
        // "left" at once rather than when its connection fails.
        await px.evaluate(() => {
            const [call] = window.x.calls.values();
            window.xHangup = new Promise((res) => call.addEventListener(
                'hangup', (e) => res({ ...e.detail, state: call.state })));
        });
        const closedAt = Date.now();
        await py.close({ runBeforeUnload: true });
        const left = await px.evaluate(() => window.xHangup);
        console.log(`# a closed page's partner heard the hang-up after ${Date.now() - closedAt} ms`);
        assert.deepEqual(left, { by: 'remote', reason: 'left', state: 'ended' });
        for (const p of [px, pz]) {
            await p.close();
        }
    });

    it('dwrtc.js: a crashed partner\'s call ends soon, with one error (Chromium: Page.crash)',
       async () => {
        // No hang-up comes from a renderer that crashed. Once the media
        // connection is lost the client asks the node about the partner
        // (a ping), and the node answers "not found": the session is gone.
        const [pa, pb] = [await page('lib-lost-a'), await page('lib-lost-b')];
        await Promise.all([pa.goto(n1.httpUrl('/')), pb.goto(n2.httpUrl('/'))]);
        const bId = await pb.evaluate(async () => {
            const { DwrtcClient } = await import('./dwrtc.js');
            const b = new DwrtcClient({ autoAnswer: {} });
            return b.connect('./signal');
        });
        await pa.evaluate(placeWatchedCall, bId);
        await pa.waitForFunction(() => window.aCall.state === 'connected', null,
                                 { timeout: WAIT });
        const cdp = await pb.context().newCDPSession(pb);
        const crashedAt = Date.now();
        cdp.send('Page.crash').catch(() => {});    // answers never: the page is gone
        const r = await watchedEnd(pa);
        console.log(`# a crashed partner's call ended ${r.ends[0].at - crashedAt} ms after the crash`);
        assert.deepEqual(r.ends.map(({ by, reason, state }) => ({ by, reason, state })),
                         [{ by: 'error', reason: 'not found', state: 'ended' }]);
        assert.deepEqual(r.callErrors, ['not found'], 'one error on the call');
        assert.deepEqual(r.clientErrors, ['not found'], 'and one on the client');
        await pa.close();
        await pb.close().catch(() => {});
    });

    it('dwrtc.js: a call whose media connection stays lost ends: "connection lost"', async () => {
        // the partner's session lives on, but its side of the media is gone
        const [pa, pb] = [await page('lib-gone-a'), await page('lib-gone-b')];
        await Promise.all([pa.goto(n1.httpUrl('/')), pb.goto(n2.httpUrl('/'))]);
        const bId = await pb.evaluate(async () => {
            const { DwrtcClient } = await import('./dwrtc.js');
            const b = new DwrtcClient({ autoAnswer: {} });
            b.addEventListener('incomingcall', (e) => {
                window.bCall = e.detail.call;
                window.bEnd = new Promise((res) => e.detail.call.addEventListener(
                    'hangup', (h) => res(h.detail)));
            });
            return b.connect('./signal');
        });
        await pa.evaluate(placeWatchedCall, bId);
        await pa.waitForFunction(() => window.aCall.state === 'connected', null,
                                 { timeout: WAIT });
        const cutAt = Date.now();
        await pb.evaluate(() => window.bCall.pc.close());
        const r = await watchedEnd(pa);
        console.log(`# a call whose media went ended ${r.ends[0].at - cutAt} ms after (3 s timeout)`);
        assert.deepEqual(r.ends.map(({ by, reason, state }) => ({ by, reason, state })),
                         [{ by: 'error', reason: 'connection lost', state: 'ended' }]);
        assert.deepEqual(r.callErrors, []);
        assert.deepEqual(r.clientErrors, []);
        // the partner is told
        assert.deepEqual(await pb.evaluate(() => window.bEnd),
                         { by: 'remote', reason: 'connection lost' });
        await Promise.all([pa.close(), pb.close()]);
    });

    it('dwrtc.js: a call whose partner cannot be reached tries again, then ends with one error',
       async () => {
        // a session of a node no one can find: the node answers
        // "unreachable" for the offer and every candidate behind it
        const p = await page('lib-unreachable');
        await p.goto(n1.httpUrl('/'));
        const started = Date.now();
        const result = await p.evaluate(async (partner) => {
            const { DwrtcClient } = await import('./dwrtc.js');
            const c = new DwrtcClient();
            await c.connect('./signal');
            const clientErrors = [];
            c.addEventListener('error', (e) => clientErrors.push(e.detail.error));
            const stream = await navigator.mediaDevices.getUserMedia({ video: true });
            const call = c.call(partner, { stream });
            const callErrors = [];
            call.addEventListener('error', (e) => callErrors.push(e.detail.error));
            const ended = await new Promise((res) => call.addEventListener(
                'hangup', (e) => res({ ...e.detail, state: call.state })));
            // errors for what was still on its way are no news either
            await new Promise((res) => setTimeout(res, 1000));
            return { ended, clientErrors, callErrors };
        }, randomSessionId());
        console.log(`# a call to an unreachable partner ended after ${Date.now() - started} ms`);
        assert.deepEqual(result.ended, { by: 'error', reason: 'unreachable', state: 'ended' });
        assert.deepEqual(result.callErrors, ['unreachable'], 'one error on the call');
        assert.deepEqual(result.clientErrors, ['unreachable'], 'and one on the client');
        await p.close();
    });

    it('a call between a Chromium page and a Firefox page: video both ways, and a closed '
       + 'page hangs up', async (t) => {
        // the caller in this run's browser, the callee in the other one: the
        // Chromium run calls from Chromium, the Firefox run from Firefox
        const { browser: other } = await launchBrowser({ t, kind: OTHER_KIND });
        const caller = await page(`mixed-${BROWSER_KIND}`);
        const callee = await newPage(other, { label: `mixed-${OTHER_KIND}` });
        pages.push(callee);
        const [calleeId] = await Promise.all([openDemo(callee, n2.httpUrl('/')),
                                              openDemo(caller, n1.httpUrl('/'))]);
        await callee.click('#start-btn');
        await waitState(callee, '#call-state', 'waiting');
        await caller.fill('#join-id', calleeId);
        const joinedAt = performance.now();
        await caller.click('#join-btn');
        await Promise.all([waitState(caller, '#call-state', 'connected'),
                           waitState(callee, '#call-state', 'connected')]);
        await waitUntil(async () => (await framesDecoded(caller)) > 0
                        && (await framesDecoded(callee)) > 0,
                        { timeout: WAIT, what: 'decoded video frames in both browsers' });
        for (const p of [caller, callee]) {
            await p.waitForFunction(() => {
                const v = document.getElementById('remote-video');
                return v.videoWidth > 0 && v.readyState >= 2 && !v.paused;
            }, null, { timeout: WAIT });
        }
        console.log(`# ${BROWSER_NAME[BROWSER_KIND]} -> ${BROWSER_NAME[OTHER_KIND]}: join to `
                    + `frames playing on both pages ${Math.round(performance.now() - joinedAt)} ms`);
        await sendChat(callee, `from ${OTHER_KIND}`);
        await waitChat(caller, 'partner', `from ${OTHER_KIND}`);

        // the caller's page is closed: the callee is told at once
        const closedAt = performance.now();
        await caller.close({ runBeforeUnload: true });
        await waitState(callee, '#call-state', 'ended');
        await waitChat(callee, 'system', 'Your partner hung up.');
        console.log(`# the ${BROWSER_NAME[OTHER_KIND]} page heard that the `
                    + `${BROWSER_NAME[BROWSER_KIND]} page closed after `
                    + `${Math.round(performance.now() - closedAt)} ms`);
        await callee.close();
    });

    it('tells the person what to do: partner not found, bad id, node unreachable',
       async () => {
        const p = await page('errors');
        await openDemo(p, n2.httpUrl('/'));

        await p.fill('#join-id', 'not a call');
        await p.click('#join-btn');
        await p.waitForSelector('#error[data-kind="bad-id"]:not([hidden])');

        // a session its node says is not there (an id of no node at all
        // would be "unreachable": only a node can say a session is gone)
        const nobody = randomSessionId(n1.currentNodes()[0].nodeId);
        await p.fill('#join-id', `${n1.httpUrl('/')}?call=${nobody}`);   // a link works too
        await p.click('#join-btn');
        await p.waitForSelector('#error[data-kind="not-found"]:not([hidden])', { timeout: WAIT });
        // the demo owns its ids by a key: links last, so the page says to open it again
        assert.match(await p.textContent('#error-text'), /^No one is at that link: your partner's page is closed/);
        assert.equal(await p.isVisible('#error-detail-text'), false, 'the id is under Details');
        assert.match(await p.textContent('#error-detail-text'), new RegExp(`Call id ${nobody}`));
        await waitState(p, '#call-state', 'ended');
        await p.close();

        const deadPort = await freeTcpPort();   // nothing listens there
        // Chromium logs each failed WebSocket attempt as a console error
        const q = await page('unreachable', { ignoreConsole: /^WebSocket connection to .* failed/ });
        await q.goto(n2.httpUrl(`/?signal=ws://127.0.0.1:${deadPort}/signal`));
        await q.waitForSelector('#error[data-kind="node-unreachable"]:not([hidden])',
                                { timeout: WAIT });
        assert.match(await q.textContent('#error-text'),
                     /^This page cannot reach its call server\. It tries again in \d+ s\./);
        assert.doesNotMatch(await q.textContent('#error-text'), /ws:|127\.0\.0\.1/,
                            'the URL is a detail');
        assert.match(await q.textContent('#error-detail-text'),
                     new RegExp(`^Call server ws://127.0.0.1:${deadPort}/signal: `));
        // (it goes on retrying: read the badge while it is disconnected)
        const badge = await q.waitForFunction(() => {
            const el = document.getElementById('conn-state');
            return el.dataset.state === 'disconnected' && el.textContent;
        }, null, { timeout: WAIT });
        assert.equal(await badge.jsonValue(), 'Offline, retrying');
        await q.close();
    });

    it('says how to fix a denied camera, and can go on without it', async () => {
        // a browser that denies camera and microphone: no fake permission UI
        const { browser: denying, close } = await launchBrowser({
            args: ['--deny-permission-prompts'], noFakeUi: true });
        try {
            const p = await newPage(denying, { label: 'denied' });
            pages.push(p);
            await openDemo(p, n1.httpUrl('/'));
            await p.click('#start-btn');
            await p.waitForSelector('#error[data-kind="camera"]:not([hidden])', { timeout: WAIT });
            assert.match(await p.textContent('#error-text'), /Camera and microphone access was denied/);
            await p.click('#error-actions button:text("Continue without camera")');
            await p.waitForSelector('#share:not([hidden])');
            await waitState(p, '#call-state', 'waiting');
        } finally {
            await close();
        }
    });
});

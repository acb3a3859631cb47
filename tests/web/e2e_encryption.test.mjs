// An end-to-end encrypted call in headless Chromium, across two real nginx
// nodes: two pages with dwrtc.js (identity and e2e: true) call each other,
// and the connection comes up although no frame their sockets send or
// receive holds an SDP or an ICE candidate: the nodes relayed only
// ciphertext, and every signaling message the pages handled was decrypted
// (encrypted: true). The demo, which enables e2e with its lasting id, is
// then called from a second demo page the same way. A page that loses its
// key-owned id (its claim refused, or the id taken over by a newer session)
// sends nothing in plaintext to a key-owned id: send() throws, and no frame
// of its socket, nor anything the recipient gets, holds the text; with
// e2e: 'prefer' it falls back to plaintext as before.

import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { startNetwork } from '../lib/nginx.mjs';
import { launchBrowser, newPage, casesFor } from './browser.mjs';

// Run again in Firefox (web_firefox_e2e_encryption): the calls; what a
// page does once it lost its id is the client's logic, the same in any browser.
const it = casesFor([/^connects a call whose signaling/, /^a closed page hangs up/,
                     /^the demo calls end to end/,
                     /^logs nothing at/]);

const WAIT = 60_000;

// In the page: a dwrtc.js client with a fresh identity and e2e, on a
// WebSocket that records every frame (window.frames_), and its messages
// (signaling included).
async function e2eClient() {
    const { DwrtcClient, generateIdentity } = await import('./dwrtc.js');
    window.frames_ = [];
    window.messages_ = [];
    window.errors_ = [];
    class RecordingSocket extends WebSocket {
        constructor(url) {
            super(url);
            this.addEventListener('message', (e) => window.frames_.push(String(e.data)));
        }

        send(data) {
            window.frames_.push(data);
            super.send(data);
        }
    }
    const client = new DwrtcClient({ WebSocket: RecordingSocket, e2e: true,
                                     identity: await generateIdentity() });
    // what the app gets, and the call signaling the calls got
    client.addEventListener('message', (e) => window.messages_.push(e.detail));
    client.addEventListener('signaling', (e) => window.messages_.push(e.detail));
    client.addEventListener('error', (e) => window.errors_.push(
        `${e.detail.error}: ${e.detail.reason ?? ''}`));
    window.client = client;
    return client.connect('./signal');
}

// What a page's socket carried, and what its 'message' events said.
const wireOf = (page) => page.evaluate(() => ({
    frames: window.frames_,
    messages: window.messages_.map((m) => ({ type: m.type, encrypted: m.encrypted })),
    errors: window.errors_,
}));

// In the page: a client with e2e (`e2e`, true or 'prefer') and a fresh
// identity that loses its key-owned id `how`: 'refused' (its socket changes
// one digit of the claim's signature on the way, so the node refuses it)
// or 'taken over' (a newer client with the same key claims the id on the
// same node). Every frame its socket sends is kept in window.lost_.frames.
async function loseId({ e2e, how }) {
    const { DwrtcClient, generateIdentity } = await import('./dwrtc.js');
    const identity = await generateIdentity();
    const frames = [];
    const errors = [];
    class ClaimBreakingSocket extends WebSocket {
        send(data) {
            const msg = JSON.parse(data);
            if (how === 'refused' && msg.type === 'WebSocketClaimMessage') {
                msg.signature = (msg.signature[0] === '0' ? '1' : '0') + msg.signature.slice(1);
                data = JSON.stringify(msg);
            }
            frames.push(data);
            super.send(data);
        }
    }
    const client = new DwrtcClient({ WebSocket: ClaimBreakingSocket, e2e, identity });
    client.addEventListener('error', (e) => errors.push(String(e.detail.error)));
    await client.connect('./signal');
    if (how === 'taken over') {
        const newer = new DwrtcClient({ identity, e2e: true });
        window.newer_ = newer;
        await newer.connect('./signal');
        const until = Date.now() + 20_000;
        while (client.id === client.ownedId && Date.now() < until) {
            await new Promise((r) => setTimeout(r, 50));
        }
    }
    window.lost_ = { client, frames, errors };
    return { id: client.id, ownedId: client.ownedId, errors };
}

// In the page of loseId(): sends `text` to `to`; what send() did.
function sendLost({ to, text }) {
    try {
        window.lost_.client.send('chat', to, text);
        return { sent: true };
    } catch (err) {
        return { sent: false, code: err.code, reason: err.reason, message: err.message,
                 recipient: err.recipientSessionId };
    }
}

function assertSealed(label, wire) {
    assert.deepEqual(wire.errors, [], `${label}: no errors`);
    const types = new Set(wire.frames.map((f) => JSON.parse(f).type));
    assert.ok(types.has('DwrtcE2eMessage'), `${label}: ciphertext went by`);
    assert.ok(!types.has('SignalingMessage'), `${label}: no signaling in plaintext`);
    for (const needle of ['v=0', 'a=fingerprint', 'candidate:', '"offer"', '"answer"']) {
        assert.ok(!wire.frames.some((f) => f.includes(needle)),
                  `${label}: "${needle}" is in no frame`);
    }
    const signaling = wire.messages.filter((m) => m.type === 'SignalingMessage');
    assert.ok(signaling.length >= 2, `${label}: it handled signaling (${signaling.length})`);
    assert.ok(signaling.every((m) => m.encrypted === true),
              `${label}: every signaling message came encrypted`);
}

describe('an end-to-end encrypted call in the browser', () => {
    let net;
    let n1, n2;
    let browser;
    const pages = [];

    async function page(label) {
        const p = await newPage(browser, { label });
        pages.push(p);
        return p;
    }

    before(async () => {
        net = await startNetwork(2, { name: 'e2e-web' });
        [n1, n2] = net.nodes;
        ({ browser } = await launchBrowser());
    });

    after(async () => {
        await browser?.close().catch(() => {});
        await net?.stop();
        const problems = pages.flatMap((p) => p.problems);
        assert.deepEqual(problems, [], 'no uncaught exceptions or console errors in the pages');
    });

    it('connects a call whose signaling the nodes relay only as ciphertext', async () => {
        const [a, b] = [await page('A'), await page('B')];
        await Promise.all([a.goto(n1.httpUrl('/')), b.goto(n2.httpUrl('/'))]);
        const [aId] = await Promise.all([a.evaluate(e2eClient), b.evaluate(e2eClient)]);
        assert.match(aId, /^k[0-9a-f]{48}$/);
        await a.evaluate(() => {
            window.client.addEventListener('incomingcall', async (e) => {
                const stream = await navigator.mediaDevices.getUserMedia({ video: true });
                window.call = e.detail.call;
                e.detail.call.addEventListener('datachannel', ({ detail: { channel } }) => {
                    channel.addEventListener('message', (m) => channel.send(`echo ${m.data}`));
                });
                e.detail.call.answer({ stream });
            });
        });
        const echo = await b.evaluate(async (partner) => {
            const stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
            const call = window.client.call(partner, { stream, dataChannel: 'chat' });
            window.call = call;
            const dc = call.dataChannel;
            await new Promise((res) => dc.addEventListener('open', res, { once: true }));
            const reply = new Promise((res) => dc.addEventListener(
                'message', (m) => res(m.data), { once: true }));
            dc.send('ping');
            return reply;
        }, aId);
        assert.equal(echo, 'echo ping');
        for (const p of [a, b]) {
            await p.waitForFunction(() => window.call?.state === 'connected', null,
                                    { timeout: WAIT });
        }
        assertSealed('A', await wireOf(a));
        assertSealed('B', await wireOf(b));
        await b.evaluate(() => window.call.hangup());
        await a.waitForFunction(() => window.call.state === 'ended', null, { timeout: WAIT });
        assertSealed('A after the hang-up', await wireOf(a));
        await Promise.all([a.close(), b.close()]);
    });

    it('a closed page hangs up its encrypted call: the partner hears "left" at once',
       async () => {
        // the hang-up a page sends on pagehide is sealed before the page
        // goes: Firefox runs no later task in which WebCrypto could answer
        const [a, b] = [await page('closing-A'), await page('closing-B')];
        await Promise.all([a.goto(n1.httpUrl('/')), b.goto(n2.httpUrl('/'))]);
        const [aId] = await Promise.all([a.evaluate(e2eClient), b.evaluate(e2eClient)]);
        await a.evaluate(() => {
            window.client.addEventListener('incomingcall', (e) => {
                window.call = e.detail.call;
                window.hungUp = new Promise((res) => e.detail.call.addEventListener(
                    'hangup', (h) => res({ ...h.detail, state: e.detail.call.state })));
                e.detail.call.answer({});
            });
        });
        await b.evaluate((partner) => {
            window.call = window.client.call(partner, { dataChannel: true });
        }, aId);
        for (const p of [a, b]) {
            await p.waitForFunction(() => window.call?.state === 'connected', null,
                                    { timeout: WAIT });
        }
        const closedAt = Date.now();
        await b.close({ runBeforeUnload: true });
        const left = await a.evaluate(() => Promise.race([window.hungUp, new Promise(
            (res) => setTimeout(() => res('no hang-up within 30 s'), 30_000))]));
        console.log(`# the partner of a closed e2e page heard the hang-up after `
                    + `${Date.now() - closedAt} ms`);
        assert.deepEqual(left, { by: 'remote', reason: 'left', state: 'ended' });
        const wire = await wireOf(a);
        assertSealed('A, told by a closed page', wire);
        // the hang-up sealed ahead of time took a counter of its own: no
        // nonce served twice under B's key
        const counters = wire.frames.map((f) => JSON.parse(f))
            .filter((m) => m.type === 'DwrtcE2eMessage' && m.senderSessionId)
            .map((m) => JSON.parse(m.messageBody).n);
        assert.equal(new Set(counters).size, counters.length,
                     `B's counters are all different: ${counters}`);
        await a.close();
    });

    it('the demo calls end to end encrypted: its key-owned id, e2e on', async () => {
        const [a, b] = [await page('demo-A'), await page('demo-B')];
        await a.goto(n1.httpUrl('/'));
        await a.waitForSelector('#conn-state[data-state="open"]', { timeout: WAIT,
                                                                   state: 'attached' });
        await a.click('#start-btn');
        await a.waitForSelector('#call-state[data-state="waiting"]', { timeout: WAIT,
                                                                      state: 'attached' });
        const aId = await a.evaluate(() => window.dwrtcDemo.client.id);
        await a.evaluate(() => {
            window.sealed_ = [];
            window.dwrtcDemo.client.addEventListener('signaling', (e) => {
                if (e.detail.type === 'SignalingMessage') {
                    window.sealed_.push(e.detail.encrypted);
                }
            });
        });
        await b.goto(n2.httpUrl(`/?call=${aId}`));
        for (const p of [a, b]) {
            await p.waitForSelector('#call-state[data-state="connected"]',
                                    { timeout: WAIT, state: 'attached' });
        }
        const sealed = await a.evaluate(() => window.sealed_);
        assert.ok(sealed.length >= 1 && sealed.every((e) => e === true),
                  `every signaling message of the demo's call came encrypted: ${sealed}`);
        await b.click('#hangup-btn');
        await a.waitForSelector('#call-state[data-state="ended"]', { timeout: WAIT,
                                                                    state: 'attached' });
        await Promise.all([a.close(), b.close()]);
    });

    for (const how of ['refused', 'taken over']) {
        it(`sends no plaintext to a key-owned id once its own id is lost (${how})`, async () => {
            const [a, b] = [await page(`lost-${how}`), await page(`recipient-${how}`)];
            await Promise.all([a.goto(n1.httpUrl('/')), b.goto(n2.httpUrl('/'))]);
            const bId = await b.evaluate(e2eClient);
            const lost = await a.evaluate(loseId, { e2e: true, how });
            assert.notEqual(lost.id, lost.ownedId, `the page lost its id: ${JSON.stringify(lost)}`);
            assert.match(lost.id, /^[0-9a-f]{32}-[0-9a-f]{16}$/, 'it speaks as its node session');
            assert.ok(lost.errors.some((e) => e.startsWith(how === 'refused'
                                                           ? 'claim refused'
                                                           : 'id taken over')),
                      `the node said so: ${lost.errors}`);

            const secret = `secret-${how}-${Date.now()}`;
            const sent = await a.evaluate(sendLost, { to: bId, text: secret });
            assert.equal(sent.sent, false, 'send() refused to send it');
            assert.equal(sent.code, 'e2e id lost');
            assert.equal(sent.recipient, bId);
            assert.match(sent.reason, how === 'refused' ? /^claim refused/ : /^id taken over/);
            assert.match(sent.message, /lost its key-owned id/);
            // a call's signaling does not go either
            const call = await a.evaluate(async (to) => {
                const errors = [];
                const c = window.lost_.client.call(to, { dataChannel: true });
                c.addEventListener('error', (e) => errors.push(e.detail.error?.code));
                await new Promise((r) => setTimeout(r, 1000));
                c.hangup();
                return errors;
            }, bId);
            assert.ok(call.includes('e2e id lost'), `the call said why: ${call}`);

            await new Promise((r) => setTimeout(r, 1000));
            const frames = await a.evaluate(() => window.lost_.frames);
            assert.ok(!frames.some((f) => f.includes(secret)), 'the text is in no frame sent');
            assert.ok(!frames.some((f) => JSON.parse(f).type === 'SignalingMessage'),
                      'no signaling in plaintext');
            const got = await b.evaluate(() => window.messages_);
            assert.ok(!got.some((m) => String(m.messageBody).includes(secret)),
                      'the recipient got nothing of it');
            assert.ok(!got.some((m) => m.type === 'SignalingMessage' && !m.encrypted),
                      'nor plaintext signaling');
            await Promise.all([a.close(), b.close()]);
        });
    }

    it("falls back to plaintext with e2e: 'prefer', as it did before", async () => {
        const [a, b] = [await page('prefer'), await page('prefer-recipient')];
        await Promise.all([a.goto(n1.httpUrl('/')), b.goto(n2.httpUrl('/'))]);
        const bId = await b.evaluate(e2eClient);
        const lost = await a.evaluate(loseId, { e2e: 'prefer', how: 'taken over' });
        assert.notEqual(lost.id, lost.ownedId);
        const secret = `prefer-${Date.now()}`;
        assert.deepEqual(await a.evaluate(sendLost, { to: bId, text: secret }), { sent: true });
        await b.waitForFunction((text) => window.messages_.some((m) => m.messageBody === text),
                                secret, { timeout: WAIT });
        const got = await b.evaluate((text) => window.messages_.find(
            (m) => m.messageBody === text), secret);
        assert.equal(got.encrypted, false, 'it came in plaintext, and says so');
        assert.equal(got.senderSessionId, lost.id);
        await Promise.all([a.close(), b.close()]);
    });

    it('logs nothing at [alert], [crit] or [emerg]', () => {
        net.assertNoAlerts();
    });
});

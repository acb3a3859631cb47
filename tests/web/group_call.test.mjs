// Group calls (DwrtcClient.joinCall) in headless Chromium and Firefox on
// three real nginx nodes: four pages in one group call (two in each
// browser), each playing the three others' videos; then the node of one
// page is killed (the page comes back on another node with a new id and
// rejoins), one page leaves by the demo's
// Hang up button, one page is closed: every other page shows the one gone
// and keeps the rest. The group is filled back up to its limit of 6, and a
// 7th page (the demo) gets the limit message and disturbs no one. Then two
// newcomers race for the last place of a group of 3: at most one gets in,
// and a page that claims to replace a member without its token changes
// nothing.
//
// Media is kept small (160x120 fake camera, no audio): the machine has 2
// cores. Timings are printed, never asserted tightly.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { startNetwork, waitUntil } from '../lib/nginx.mjs';
import { launchBrowser, newPage, screenshot, BROWSER_KIND, OTHER_KIND,
         BROWSER_NAME } from './browser.mjs';

const WAIT = 60_000;
const ROOM = 'group-test-7c1f';
// Bounds on how long the others take to show a member gone (printed).
const GONE_BOUND_MS = 10_000;
const BLANK = '/group-test.html';

/**
 * Runs in the page: a group-call page on dwrtc.js, as an app would write
 * it (a video per member), recording what it sees in window.harness.
 */
async function joinGroup({ urls, room, limit, camera, identity }) {
    const { DwrtcClient } = await import('/dwrtc.js');
    const client = new DwrtcClient({ backoff: { initial: 200, max: 2000 },
                                     ...(identity ? { identity: 'group', e2e: true } : {}) });
    const h = { client, group: null, videos: new Map(), joined: [], left: [],
                encryptedFrom: {}, error: null, leftGroup: null };
    window.harness = h;
    client.addEventListener('signaling', (e) => {
        if (e.detail.type === 'SignalingMessage') {
            h.encryptedFrom[e.detail.senderSessionId] = e.detail.encrypted ?? false;
        }
    });
    await client.connect(urls);
    const stream = camera
        ? await navigator.mediaDevices.getUserMedia({
            video: { width: 160, height: 120, frameRate: 10 }, audio: false })
        : undefined;
    const group = client.joinCall(room, { stream, limit, receiveAudio: false });
    h.group = group;
    group.addEventListener('memberjoin', (e) => h.joined.push({ id: e.detail.id, at: Date.now() }));
    group.addEventListener('memberstream', (e) => {
        let v = h.videos.get(e.detail.id);
        if (!v) {
            v = document.createElement('video');
            v.muted = true;
            v.autoplay = true;
            v.playsInline = true;
            v.dataset.member = e.detail.id;
            document.body.append(v);
            h.videos.set(e.detail.id, v);
        }
        v.srcObject = e.detail.stream;
        v.play().catch(() => {});
    });
    group.addEventListener('memberleave', (e) => {
        h.left.push({ id: e.detail.id, at: Date.now(), by: e.detail.by, reason: e.detail.reason });
        h.videos.get(e.detail.id)?.remove();
        h.videos.delete(e.detail.id);
    });
    group.addEventListener('left', (e) => { h.leftGroup = e.detail.reason; });
    try {
        await group.joined;
    } catch (err) {
        h.error = err.code ?? String(err);
        return { id: client.id, error: h.error, message: err.message };
    }
    return { id: client.id, error: null };
}

/** The page's members (ids of the calls its group has). */
function membersOf(page) {
    return page.evaluate(() => [...window.harness.group.members.keys()].sort());
}

/**
 * Waits until the page plays a video from each of `ids`: it has a size and
 * its currentTime advances. Returns the ms it took.
 */
async function waitPlaying(page, ids) {
    const start = performance.now();
    await page.waitForFunction(async (want) => {
        const h = window.harness;
        const vs = want.map((id) => h.videos.get(id) ?? document.querySelector(
            `#group-grid [data-member="${id}"] video`));
        if (vs.some((v) => !v || v.videoWidth === 0)) {
            return false;
        }
        const before = vs.map((v) => v.currentTime);
        await new Promise((r) => setTimeout(r, 300));
        return vs.every((v, i) => v.currentTime > before[i]);
    }, ids, { timeout: WAIT, polling: 500 });
    return Math.round(performance.now() - start);
}

/** Waits until none of `pages` has `id` as a member; returns the ms each took from `since`. */
async function waitGone(pages, id, since) {
    const took = [];
    const why = [];
    for (const p of pages) {
        await p.waitForFunction((gone) => !window.harness.group.members.has(gone)
                                && !window.harness.videos.has(gone), id, { timeout: WAIT });
        const left = await p.evaluate((gone) => window.harness.left
            .filter((l) => l.id === gone).pop() ?? null, id);
        took.push(left?.at ? left.at - since : null);
        why.push(left ? `${p.label}: ${left.by} ${left.reason}` : `${p.label}: ?`);
    }
    console.log(`#   (how: ${why.join('; ')})`);
    return took;
}

describe('group calls across three nodes, in Chromium and Firefox', () => {
    let net;
    let n1, n2, n3;
    let browser;
    let other;      // the other browser: pages of both are in one group
    const pages = [];
    // Pages whose node is killed log the failed reconnect attempts
    // (Chromium, then Firefox).
    const reconnecting = new RegExp('^WebSocket connection to .* failed'
                                    + '|^Firefox can.t establish a connection to the server at ws:');

    async function page(label, node, { inOther = false } = {}) {
        const p = await newPage(inOther ? other : browser,
                                { label, ignoreConsole: reconnecting,
                                  viewport: { width: 800, height: 600 } });
        pages.push(p);
        await p.goto(node.httpUrl(BLANK));
        return p;
    }

    before(async () => {
        // a page of the nodes' origin for the pages that are not the demo
        net = await startNetwork(3, { name: 'group', server: `location = ${BLANK} {
                default_type text/html;
                return 200 '<!doctype html><title>group</title><link rel="icon" href="data:,">';
            }` });
        [n1, n2, n3] = net.nodes;
        ({ browser } = await launchBrowser());
        ({ browser: other } = await launchBrowser({ kind: OTHER_KIND }));
    });

    after(async () => {
        await browser?.close().catch(() => {});
        await other?.close().catch(() => {});
        await net?.stop();
        const problems = pages.flatMap((p) => p.problems);
        assert.deepEqual(problems, [], 'no uncaught exceptions or console errors in the pages');
    });

    it('connects four pages on three nodes, each to each, and survives a node kill, a leave, '
       + 'a closed page; the one who would make 7 is told the group is full', async () => {
        const sig = (n) => n.wsUrl('/signal');
        // A: the demo in group mode (key-owned id, e2e); B, C: key-owned, e2e;
        // D: node-assigned id on node 3, which it may leave for node 2
        const a = await page('A', n1);
        const started = performance.now();
        await a.goto(n1.httpUrl(`/?group=${encodeURIComponent(ROOM)}`));
        await a.waitForFunction(() => window.dwrtcDemo?.group?.state === 'joined',
                                null, { timeout: WAIT });
        const aId = await a.evaluate(() => window.dwrtcDemo.client.id);
        await a.evaluate(() => {
            // the same record the harness pages keep, for the helpers above
            const group = window.dwrtcDemo.group;
            const h = { group, left: [], videos: new Map() };
            window.harness = h;
            group.addEventListener('memberleave', (e) => h.left.push({
                id: e.detail.id, at: Date.now(), by: e.detail.by, reason: e.detail.reason }));
            group.addEventListener('memberstream', (e) => { h.videos.set(e.detail.id, null); });
            group.addEventListener('memberleave', (e) => { h.videos.delete(e.detail.id); });
        });

        // B and D in the other browser: each pair of browsers meets in the mesh
        const [b, c, d] = await Promise.all([page('B', n2, { inOther: true }), page('C', n1),
                                             page('D', n3, { inOther: true })]);
        console.log(`# A, C in ${BROWSER_NAME[BROWSER_KIND]}; B, D in ${BROWSER_NAME[OTHER_KIND]}`);
        const opts = { room: ROOM, limit: 6, camera: true };
        const [rb, rc, rd] = await Promise.all([
            b.evaluate(joinGroup, { ...opts, urls: [sig(n2)], identity: true }),
            c.evaluate(joinGroup, { ...opts, urls: [sig(n1)], identity: true }),
            d.evaluate(joinGroup, { ...opts, urls: [sig(n3), sig(n2)], identity: false }),
        ]);
        for (const r of [rb, rc, rd]) {
            assert.equal(r.error, null, `joined: ${r.message}`);
        }
        const [bId, cId, dId] = [rb.id, rc.id, rd.id];
        console.log(`# members: A ${aId} (demo), B ${bId}, C ${cId}, D ${dId}`);
        const everyone = { A: aId, B: bId, C: cId, D: dId };
        const byPage = new Map([[a, 'A'], [b, 'B'], [c, 'C'], [d, 'D']]);
        for (const [p, name] of byPage) {
            const others = Object.entries(everyone).filter(([k]) => k !== name)
                .map(([, v]) => v);
            await waitUntil(async () => (await membersOf(p)).length === 3,
                            { timeout: WAIT, what: `${name} has 3 members` });
            assert.deepEqual(await membersOf(p), [...others].sort(), `${name}'s members`);
            const ms = await waitPlaying(p, others);
            console.log(`# ${name} plays the 3 others' videos (${Math.round(
                performance.now() - started)} ms after A opened; ${ms} ms waiting here)`);
        }
        // the demo labels each member's video (the picture in docs/)
        await screenshot(a, 'group-call-a-node1.png');
        assert.equal(await a.evaluate(() => document.querySelectorAll(
            '#group-grid [data-member] video').length), 3);
        assert.equal(await a.evaluate((id) => document.querySelector(
            `#group-grid [data-member="${id}"] figcaption`).textContent, bId),
                     `Guest ${bId.slice(-6)}`);

        // E2E as in 1:1 calls: signaling between key-owned pages came encrypted,
        // with the node-assigned D in plaintext
        const enc = await b.evaluate(() => window.harness.encryptedFrom);
        assert.equal(enc[cId], true, 'B got C\'s signaling end-to-end encrypted');
        assert.equal(enc[aId], true, 'B got A\'s signaling end-to-end encrypted');
        assert.equal(enc[dId], false, 'D owns no key: plaintext');

        // D's node is killed: D comes back on node 2 with a new id and rejoins;
        // the others drop its old id and play the new one
        const killedAt = Date.now();
        n3.kill();
        const goneD = await waitGone([a, b, c], dId, killedAt);
        console.log(`# D's node killed: its old id gone from A, B, C after ${goneD.join(', ')} ms`);
        for (const ms of goneD) {
            assert.ok(ms !== null && ms < GONE_BOUND_MS, `gone within ${GONE_BOUND_MS} ms: ${ms}`);
        }
        await d.waitForFunction((old) => window.harness.client.id
                                && window.harness.client.id !== old, dId, { timeout: WAIT });
        const d2Id = await d.evaluate(() => window.harness.client.id);
        for (const [p, name] of [[a, 'A'], [b, 'B'], [c, 'C']]) {
            await waitUntil(async () => (await membersOf(p)).includes(d2Id),
                            { timeout: WAIT, what: `${name} has D back` });
            assert.equal((await membersOf(p)).length, 3, `${name} keeps the rest`);
        }
        for (const [p, ids] of [[b, [aId, cId, d2Id]], [c, [aId, bId, d2Id]],
                                [d, [aId, bId, cId]]]) {
            await waitPlaying(p, ids);
        }
        console.log(`# D back as ${d2Id} and played by all ${Date.now() - killedAt} ms `
                    + 'after the kill');

        // A leaves by the demo's Hang up button
        const leftAt = Date.now();
        await a.evaluate(() => document.getElementById('hangup-btn').click());
        const goneA = await waitGone([b, c, d], aId, leftAt);
        console.log(`# A left by the button: gone from B, C, D after ${goneA.join(', ')} ms`);
        for (const ms of goneA) {
            assert.ok(ms !== null && ms < GONE_BOUND_MS, `gone within ${GONE_BOUND_MS} ms: ${ms}`);
        }
        assert.equal(await a.evaluate(() => window.dwrtcDemo.group), null);
        assert.equal(await a.evaluate(() => document.querySelectorAll(
            '#group-grid [data-member]').length), 0, 'A\'s grid is empty');
        const why = await b.evaluate((id) => window.harness.left.find((l) => l.id === id), aId);
        assert.equal(why.by, 'remote', 'told by A\'s hang-up, not by a timeout');

        // B's page is closed
        const closedAt = Date.now();
        await b.close();
        const goneB = await waitGone([c, d], bId, closedAt);
        console.log(`# B's page closed: gone from C, D after ${goneB.join(', ')} ms`);
        for (const ms of goneB) {
            assert.ok(ms !== null && ms < GONE_BOUND_MS, `gone within ${GONE_BOUND_MS} ms: ${ms}`);
        }
        assert.deepEqual(await membersOf(c), [d2Id]);
        assert.deepEqual(await membersOf(d), [cId]);
        await waitPlaying(c, [d2Id]);
        await waitPlaying(d, [cId]);

        // back to 6: four more pages (receiving only, to spare the CPU)
        const more = await Promise.all(['E', 'F', 'G', 'H'].map((name, i) =>
            page(name, [n1, n2][i % 2])));
        const fillAt = performance.now();
        const rs = await Promise.all(more.map((p, i) => p.evaluate(joinGroup, {
            ...opts, camera: false, identity: false, urls: [sig([n1, n2][i % 2])] })));
        for (const r of rs) {
            assert.equal(r.error, null, `joined: ${r.message}`);
        }
        const six = [cId, d2Id, ...rs.map((r) => r.id)];
        for (const [p, id] of [[c, cId], [d, d2Id], ...more.map((p, i) => [p, rs[i].id])]) {
            await waitUntil(async () => (await membersOf(p)).length === 5,
                            { timeout: WAIT, what: `${p.label} has 5 members`,
                              detail: async () => (await membersOf(p)).join(' ') });
            assert.deepEqual(await membersOf(p), six.filter((m) => m !== id).sort());
        }
        console.log(`# 6 in the group ${Math.round(performance.now() - fillAt)} ms after `
                    + 'the four joined');
        const leftBefore = await c.evaluate(() => window.harness.left.length);

        // a 7th page, the demo: the limit message, and no one disturbed
        const seventh = await page('7th', n2);
        await seventh.goto(n2.httpUrl(`/?group=${encodeURIComponent(ROOM)}`));
        await seventh.waitForFunction(() => {
            const error = document.getElementById('error');
            return error.dataset.kind === 'group-full' && !error.hidden;
        }, null, { timeout: WAIT });
        const message = await seventh.evaluate(
            () => document.getElementById('error-text').textContent);
        console.log(`# the 7th page says: ${message}`);
        assert.match(message, /full/);
        assert.match(message, /6/);
        assert.equal(await seventh.evaluate(() => window.dwrtcDemo.group), null);
        // the seventh's id left the room; no member's call changed
        await new Promise((r) => setTimeout(r, 2000));
        for (const [p, id] of [[c, cId], [d, d2Id], ...more.map((p, i) => [p, rs[i].id])]) {
            assert.deepEqual(await membersOf(p), six.filter((m) => m !== id).sort(),
                             `${p.label} keeps its members`);
        }
        assert.equal(await c.evaluate(() => window.harness.left.length), leftBefore,
                     'no member left C\'s group');
        await waitPlaying(c, [d2Id]);
        await Promise.all(pages.map((p) => p.close()));
    });

    it('lets at most one of two newcomers racing for the last place in, and disturbs no '
       + 'member', async () => {
        const room = 'group-race-2d7e';
        const opts = { room, limit: 3, camera: false, identity: false };
        const [p, q, r, t] = await Promise.all([page('P', n1), page('Q', n2), page('R', n1),
                                                page('T', n2)]);
        const rp = await p.evaluate(joinGroup, { ...opts, urls: [n1.wsUrl('/signal')] });
        const rq = await q.evaluate(joinGroup, { ...opts, urls: [n2.wsUrl('/signal')] });
        assert.equal(rp.error, null);
        assert.equal(rq.error, null);
        await waitUntil(async () => (await membersOf(p)).length === 1,
                        { timeout: WAIT, what: 'P and Q in one call' });
        const raceAt = performance.now();
        const [rr, rt] = await Promise.all([
            r.evaluate(joinGroup, { ...opts, urls: [n1.wsUrl('/signal')] }),
            t.evaluate(joinGroup, { ...opts, urls: [n2.wsUrl('/signal')] }),
        ]);
        const raceMs = Math.round(performance.now() - raceAt);
        const winners = [[rr, 'R'], [rt, 'T']].filter(([x]) => x.error === null);
        console.log(`# race for the last place (R ${rr.id}, T ${rt.id}): `
                    + `${winners.map(([, n]) => n).join(', ') || 'neither'} got in; R: `
                    + `${rr.error ?? 'in'}, T: ${rt.error ?? 'in'} (${raceMs} ms)`);
        assert.ok(winners.length <= 1, 'at most one of the two got in');
        for (const [x] of [[rr], [rt]].filter(([y]) => y.error !== null)) {
            assert.equal(x.error, 'group full');
        }
        // the members keep each other, and have the winner if there is one
        await new Promise((res) => setTimeout(res, 3000));
        const expectP = [rq.id, ...winners.map(([x]) => x.id)].sort();
        const expectQ = [rp.id, ...winners.map(([x]) => x.id)].sort();
        assert.deepEqual(await membersOf(p), expectP);
        assert.deepEqual(await membersOf(q), expectQ);
        for (const [x, name] of winners.map(([y, n]) => [y, n])) {
            const winnerPage = name === 'R' ? r : t;
            assert.deepEqual(await membersOf(winnerPage), [rp.id, rq.id].sort(),
                             `${name} (${x.id}) is in a call with both members`);
        }
        const leftP = await p.evaluate(() => window.harness.left.map((l) => l.id));
        assert.ok(!leftP.includes(rq.id), 'P never lost Q');
        assert.equal(await p.evaluate((id) => window.harness.group.members.get(id).state,
                                      rq.id), 'connected');

        // a page that claims to be Q back with a new id, without the token Q
        // gave P's call, does not end P's call with Q
        const x = await page('X', n1);
        const forgedAt = Date.now();
        await x.evaluate(async ({ urls, to, victim, group }) => {
            const { DwrtcClient, SIGNALING_TYPE } = await import('/dwrtc.js');
            const client = new DwrtcClient();
            await client.connect(urls);
            const pc = new RTCPeerConnection();
            pc.addTransceiver('video', { direction: 'recvonly' });
            const offer = await pc.createOffer();
            // P's reply (an answer, or a hang-up if full) shows it took the offer
            const replied = new Promise((resolve) => client.addEventListener('signaling', (e) => {
                if (e.detail.senderSessionId === to) {
                    resolve(JSON.parse(e.detail.messageBody).type);
                }
            }));
            client.send(SIGNALING_TYPE, to, { type: 'offer', sdp: offer.sdp, group,
                                              replaces: victim, token: '00'.repeat(16) });
            window.reply = await replied;
        }, { urls: [n1.wsUrl('/signal')], to: rp.id, victim: rq.id, group: room });
        console.log(`# P answered the forged replace with: ${await x.evaluate(() => window.reply)}`
                    + ` (${Date.now() - forgedAt} ms)`);
        await new Promise((res) => setTimeout(res, 1000));
        assert.ok(!(await p.evaluate(() => window.harness.left.map((l) => l.id)))
            .includes(rq.id), 'P still has Q after the forged replace');
        assert.equal(await p.evaluate((id) => window.harness.group.members.get(id)?.state,
                                      rq.id), 'connected');
        await Promise.all([p, q, r, t, x].map((y) => y.close()));
    });
});

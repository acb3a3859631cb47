// Call set-up time in real browsers: how long a WebRTC call takes from
// "call" to the first remote video frame, and how much of that is
// signaling, through DWRTC nodes and through the PeerJS server, in one run.
//
//   node tests/bench/call_setup.mjs [--calls N] [--out FILE]
//
// Headless Debian Chromium (tests/web/browser.mjs) with the fake camera at
// 320x240. Each figure is over N calls between the same two pages, one call
// at a time, each hung up before the next (default 40 calls per kind):
//
//   dwrtc-1to1   a page on node 1 calls a page on node 2 (web/dwrtc.js,
//                two nginx nodes with the built module on loopback)
//   peerjs-1to1  a page calls another page through the PeerJS server
//                (npm `peer`, the pinned version; the `peerjs` client 1.5)
//   dwrtc-peerjs-1to1
//                the same PeerJS pages, each on its own DWRTC node's
//                dwrtc_peerjs location (ids the nodes give out)
//
// Two times per call, both on the calling page's clock:
//
//   total      call() until the caller's <video> presents its first remote
//              frame (requestVideoFrameCallback)
//   signaling  the caller's offer set (it leaves right after) until the
//              answer arrives (setRemoteDescription called with it): the
//              signaling round trip through the servers, including the
//              callee's page producing the answer
//
// Both are taken from RTCPeerConnection itself (its prototype is wrapped in
// the page before either library loads), so the two libraries are timed
// the same way. Prints one JSON line per kind on stdout and a markdown
// table on stderr; --out appends the JSON lines to a file.
//
// Environment: DWRTC_MODULE (the built module), DWRTC_REPO (the checkout),
// as for the web tests. Only loopback addresses are used.

import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync, chmodSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { REPO, startNetwork, freeTcpPort, waitUntil } from '../lib/nginx.mjs';
import { launchBrowser, newPage } from '../web/browser.mjs';

const args = process.argv.slice(2);
const option = (name, fallback) => {
    const i = args.indexOf(name);
    return i >= 0 && i + 1 < args.length ? args[i + 1] : fallback;
};
const CALLS = Math.max(1, Math.min(1000, Number(option('--calls', 40))));
const OUT = option('--out', '');
// Bounds a single call, so a broken build ends the run instead of hanging.
const CALL_TIMEOUT = 30_000;

// Runs in the page before any library: times every RTCPeerConnection's first
// offer and answer, and the first frame of any <video> the page plays.
const TIMING = `
<script>
  window.timings = [];
  const P = RTCPeerConnection.prototype;
  const setLocal = P.setLocalDescription, setRemote = P.setRemoteDescription;
  P.setLocalDescription = async function (...a) {
    const r = await setLocal.apply(this, a);
    if (this.localDescription?.type === 'offer' && !this.offerAt) {
      this.offerAt = performance.now();
      window.timings.push(this);
    }
    return r;
  };
  P.setRemoteDescription = function (d, ...a) {
    if (d?.type === 'answer' && !this.answerAt) {
      this.answerAt = performance.now();
    }
    return setRemote.call(this, d, ...a);
  };
  // the time of the first frame a video element presents
  window.firstFrame = (video) => new Promise((resolve) => {
    video.requestVideoFrameCallback(() => resolve(performance.now()));
  });
  window.camera = () => navigator.mediaDevices.getUserMedia(
    { video: { width: 320, height: 240 }, audio: false });
  window.signaling = () => {
    const pc = window.timings.at(-1);
    return pc?.answerAt ? pc.answerAt - pc.offerAt : null;
  };
  window.show = (stream) => {
    const v = document.createElement('video');
    v.autoplay = true; v.muted = true; v.playsInline = true; v.srcObject = stream;
    document.body.append(v);
    return v;
  };
</script>`;

const DWRTC_PAGE = `<!doctype html>
<meta charset="utf-8"><title>call set-up, DWRTC</title>
<link rel="icon" href="data:,">
${TIMING}
<script type="module">
  import { DwrtcClient } from '/dwrtc.js';
  window.start = async (url) => {
    window.client = new DwrtcClient();
    window.stream = await camera();
    const id = new Promise((resolve) =>
      client.addEventListener('id', (e) => resolve(e.detail.id), { once: true }));
    client.addEventListener('incomingcall', (e) => {
      window.incoming = e.detail.call;
      e.detail.call.answer({ stream });
    });
    await client.connect(url);
    return id;
  };
  window.callOnce = async (id) => {
    const t0 = performance.now();
    const call = client.call(id, { stream });
    const first = await new Promise((resolve, reject) => {
      call.addEventListener('remotestream', (e) => {
        firstFrame(show(e.detail.stream)).then(resolve);
      }, { once: true });
      call.addEventListener('hangup', (e) => reject(new Error('hung up: ' + e.detail.reason)));
    });
    const result = { total: first - t0, signaling: signaling() };
    call.hangup();
    document.querySelectorAll('video').forEach((v) => v.remove());
    return result;
  };
  window.callEnded = () => !window.incoming || window.incoming.state === 'ended';
  window.ready = true;
</script>`;

const PEERJS_PAGE = `<!doctype html>
<meta charset="utf-8"><title>call set-up, PeerJS</title>
<link rel="icon" href="data:,">
${TIMING}
<script src="/peerjs-lib/peerjs.min.js"></script>
<script>
  window.start = async (host, port, path) => {
    window.stream = await camera();
    window.peer = new peerjs.Peer({ host, port, path, secure: false,
                                    config: { iceServers: [] }, debug: 0 });
    peer.on('call', (call) => { window.incoming = call; call.answer(stream); });
    return new Promise((resolve, reject) => {
      peer.on('open', resolve);
      peer.on('error', (e) => reject(new Error(e.type)));
    });
  };
  window.callOnce = async (id) => {
    const t0 = performance.now();
    const call = peer.call(id, stream);
    const first = await new Promise((resolve, reject) => {
      call.on('stream', (s) => firstFrame(show(s)).then(resolve));
      call.on('error', reject);
    });
    const result = { total: first - t0, signaling: signaling() };
    call.close();
    document.querySelectorAll('video').forEach((v) => v.remove());
    return result;
  };
  window.callEnded = () => !window.incoming || !window.incoming.open;
  window.ready = true;
</script>`;

function percentile(sorted, q) {
    if (!sorted.length) {
        return null;
    }
    return sorted[Math.max(0, Math.ceil(sorted.length * q) - 1)];
}

function summary(kind, results, extra = {}) {
    const pick = (f) => results.map((r) => r[f]).filter((v) => v != null).sort((a, b) => a - b);
    const total = pick('total');
    const signaling = pick('signaling');
    const round = (v) => (v == null ? null : Math.round(v * 10) / 10);
    return {
        bench: 'call_setup',
        kind,
        calls: results.length,
        total_p50_ms: round(percentile(total, 0.5)),
        total_p99_ms: round(percentile(total, 0.99)),
        signaling_p50_ms: round(percentile(signaling, 0.5)),
        signaling_p99_ms: round(percentile(signaling, 0.99)),
        ...extra,
    };
}

/** N calls from `caller` to `calleeId`, one at a time. */
async function calls(caller, callee, calleeId) {
    const results = [];
    for (let i = 0; i < CALLS; i++) {
        const r = await caller.evaluate(([id, ms]) => Promise.race([
            window.callOnce(id),
            new Promise((_, reject) => setTimeout(() => reject(new Error('no frame')), ms)),
        ]), [calleeId, CALL_TIMEOUT]);
        results.push(r);
        // the callee's side of this call is over before the next begins
        await callee.waitForFunction(() => window.callEnded(), null, { timeout: CALL_TIMEOUT });
    }
    return results;
}

/** Two PeerJS pages served by `node`, each Peer at its [host, port, path]. */
async function peerjsPair(browser, node, callerAt, calleeAt, label) {
    const caller = await newPage(browser, { label: `${label}-caller` });
    const callee = await newPage(browser, { label: `${label}-callee` });
    await caller.goto(node.httpUrl('/bench/peerjs.html'));
    await callee.goto(node.httpUrl('/bench/peerjs.html'));
    await caller.evaluate((at) => window.start(...at), callerAt);
    const calleeId = await callee.evaluate((at) => window.start(...at), calleeAt);
    return { caller, callee, calleeId };
}

function startPeerServer(port) {
    const child = spawn(process.execPath, [join(REPO, 'tests/bench/peerjs-server.mjs'), String(port)],
                        { stdio: ['ignore', 'pipe', 'inherit'] });
    return new Promise((resolve, reject) => {
        child.on('exit', (code) => reject(new Error(`the PeerJS server exited (${code})`)));
        child.stdout.on('data', (d) => {
            if (String(d).includes('peerjs listening')) {
                resolve(child);
            }
        });
    });
}

async function main() {
    const dir = mkdtempSync(join(tmpdir(), 'dwrtc-call-setup-'));
    chmodSync(dir, 0o755);
    writeFileSync(join(dir, 'dwrtc.html'), DWRTC_PAGE);
    writeFileSync(join(dir, 'peerjs.html'), PEERJS_PAGE);
    const server = `
        location /peerjs/ {
            dwrtc_peerjs;
        }
        location /peerjs-lib/ {
            alias ${join(REPO, 'node_modules/peerjs/dist')}/;
        }
        location /bench/ {
            alias ${dir}/;
        }`;
    let net, browser, peerServer;
    const lines = [];
    try {
        net = await startNetwork(2, { name: 'call-setup', server });
        ({ browser } = await launchBrowser());
        const [n1, n2] = net.nodes;

        // DWRTC: a page on each node
        const a = await newPage(browser, { label: 'dwrtc-caller' });
        const b = await newPage(browser, { label: 'dwrtc-callee' });
        await a.goto(n1.httpUrl('/bench/dwrtc.html'));
        await b.goto(n2.httpUrl('/bench/dwrtc.html'));
        await waitUntil(async () => (await a.evaluate(() => window.ready)) &&
                                    (await b.evaluate(() => window.ready)));
        await a.evaluate((url) => window.start(url), n1.wsUrl());
        const bId = await b.evaluate((url) => window.start(url), n2.wsUrl());
        lines.push(summary('dwrtc-1to1', await calls(a, b, bId), { nodes: 2 }));
        await a.close();
        await b.close();

        // PeerJS: both pages on the one PeerJS server
        const port = await freeTcpPort();
        peerServer = await startPeerServer(port);
        const pj = await peerjsPair(browser, n1, ['127.0.0.1', port, '/'],
                                    ['127.0.0.1', port, '/'], 'peerjs');
        lines.push(summary('peerjs-1to1', await calls(pj.caller, pj.callee, pj.calleeId),
                           { nodes: 1 }));
        // the same PeerJS pages on two DWRTC nodes' dwrtc_peerjs locations
        const dp = await peerjsPair(browser, n1, [n1.address, n1.httpPort, '/peerjs/'],
                                    [n2.address, n2.httpPort, '/peerjs/'], 'dwrtc-peerjs');
        lines.push(summary('dwrtc-peerjs-1to1',
                           await calls(dp.caller, dp.callee, dp.calleeId), { nodes: 2 }));
        const c = pj.caller, d = pj.callee, e = dp.caller, f = dp.callee;
        const problems = [a, b, c, d, e, f].flatMap((p) => p.problems);
        if (problems.length) {
            console.error(problems.join('\n'));
        }
    } finally {
        peerServer?.kill();
        await browser?.close().catch(() => {});
        await net?.stop();
        rmSync(dir, { recursive: true, force: true });
    }
    for (const line of lines) {
        const text = JSON.stringify(line);
        console.log(text);
        if (OUT) {
            appendFileSync(OUT, text + '\n');
        }
    }
    const fmt = (v) => (v == null ? 'n/a' : v.toFixed(1));
    console.error(`\n| call set-up, ${CALLS} calls each (ms) | total p50 | total p99 | signaling p50 | signaling p99 |`);
    console.error('| --- | ---: | ---: | ---: | ---: |');
    for (const l of lines) {
        console.error(`| ${l.kind} | ${fmt(l.total_p50_ms)} | ${fmt(l.total_p99_ms)} | ` +
                      `${fmt(l.signaling_p50_ms)} | ${fmt(l.signaling_p99_ms)} |`);
    }
}

main().then(() => process.exit(0), (err) => {
    console.error(`call_setup: ${err.stack ?? err}`);
    process.exit(1);
});

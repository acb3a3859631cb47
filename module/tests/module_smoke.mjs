// The module inside a real nginx: the WebSocket handshake, the welcome,
// local routing through dhtcore, the rate limit, and the close code of every
// RFC 6455 violation, spoken over raw TCP where the ws client would refuse.
// One worker, so every session is local to one node and no DHT is needed.
//
// usage: node module_smoke.mjs NGINX_BINARY MODULE_SO

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import WebSocket from 'ws';

const [nginx, moduleSo] = process.argv.slice(2);
if (!nginx || !moduleSo) {
    console.error('usage: node module_smoke.mjs NGINX_BINARY MODULE_SO');
    process.exit(2);
}

const TURN_SECRET = 'smoke-secret';
let prefix;
let port;
let workerPids;

function freePort() {
    return new Promise((resolve, reject) => {
        const srv = net.createServer();
        srv.on('error', reject);
        srv.listen(0, '127.0.0.1', () => {
            const p = srv.address().port;
            srv.close(() => resolve(p));
        });
    });
}

function workers() {
    const master = fs.readFileSync(path.join(prefix, 'logs/nginx.pid'), 'utf8').trim();
    const out = spawnSync('pgrep', ['-P', master], { encoding: 'utf8' }).stdout;
    return out.split('\n').filter(Boolean).sort();
}

function sleep(ms) {
    return new Promise((r) => setTimeout(r, ms));
}

/** Polls until pred() is truthy (and returns it) or fails after ms. */
async function waitUntil(pred, what, ms = 5000) {
    const end = Date.now() + ms;
    for (;;) {
        const v = await pred();
        if (v) return v;
        if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
        await sleep(20);
    }
}

/** Tries fn until it resolves (the last error is thrown after ms). */
async function retry(fn, ms = 5000) {
    const end = Date.now() + ms;
    for (;;) {
        try {
            return await fn();
        } catch (err) {
            if (Date.now() > end) throw err;
            await sleep(50);
        }
    }
}

before(async () => {
    prefix = fs.mkdtempSync(path.join(os.tmpdir(), 'dwrtc-smoke-'));
    for (const d of ['logs', 'conf', 'tmp']) {
        fs.mkdirSync(path.join(prefix, d));
    }
    port = await freePort();
    fs.writeFileSync(path.join(prefix, 'conf/nginx.conf'), `
load_module ${moduleSo};
error_log ${prefix}/logs/error.log info;
pid ${prefix}/logs/nginx.pid;
worker_processes 1;
events { worker_connections 256; }
http {
    log_format dwrtc '$status $dwrtc_session_id';
    access_log ${prefix}/logs/access.log dwrtc;
    client_body_temp_path ${prefix}/tmp/body;
    proxy_temp_path ${prefix}/tmp/proxy;
    fastcgi_temp_path ${prefix}/tmp/fastcgi;
    uwsgi_temp_path ${prefix}/tmp/uwsgi;
    scgi_temp_path ${prefix}/tmp/scgi;

    dwrtc_dht_port 0;
    dwrtc_link_port 0;
    dwrtc_bind_address 127.0.0.1;

    server {
        listen 127.0.0.1:${port};

        location /signal {
            dwrtc_signal;
            dwrtc_max_message_size 1k;
            dwrtc_ice_servers stun:stun.example.org:3478;
            dwrtc_ice_servers turn:turn.example.org:3478 secret=${TURN_SECRET} ttl=1h;
        }

        location /limited {
            dwrtc_signal;
            dwrtc_rate 5 burst=5;
            dwrtc_allowed_origins https://good.example;
        }

        location /few {
            dwrtc_signal;
            dwrtc_max_sessions 2;
        }

        location /ping {
            dwrtc_signal;
            dwrtc_ping_interval 1s;
        }

        location / {
            return 200 "site\\n";
        }
    }
}
`);
    const r = spawnSync(nginx, ['-p', prefix, '-c', 'conf/nginx.conf'], { encoding: 'utf8' });
    assert.equal(r.status, 0, `nginx did not start: ${r.stderr}`);
    await waitUntil(() => /dwrtc: node \w+ started/.test(
        fs.readFileSync(path.join(prefix, 'logs/error.log'), 'utf8')), 'the node to start');
    workerPids = workers();
});

after(() => {
    if (!prefix) return;
    try {
        spawnSync(nginx, ['-p', prefix, '-c', 'conf/nginx.conf', '-s', 'quit']);
        for (let i = 0; i < 100 && fs.existsSync(path.join(prefix, 'logs/nginx.pid')); i++) {
            spawnSync('sleep', ['0.1']);
        }
    } finally {
        if (!process.env.DWRTC_KEEP) fs.rmSync(prefix, { recursive: true, force: true });
    }
});

// A client that follows the protocol: ws, with a message queue.
function client(loc = '/signal', opts = {}) {
    return new Promise((resolve, reject) => {
        const ws = new WebSocket(`ws://127.0.0.1:${port}${loc}`, opts);
        const queue = [];
        let waiter = null;
        ws.on('message', (data) => {
            const m = JSON.parse(data.toString());
            if (waiter) {
                const w = waiter;
                waiter = null;
                w(m);
            } else {
                queue.push(m);
            }
        });
        ws.next = (ms = 5000) => new Promise((res, rej) => {
            if (queue.length) return res(queue.shift());
            const t = setTimeout(() => rej(new Error('no message')), ms);
            waiter = (m) => { clearTimeout(t); res(m); };
        });
        ws.once('open', async () => {
            ws.welcome = await ws.next();
            ws.id = ws.welcome.id;
            resolve(ws);
        });
        ws.once('unexpected-response', (req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
        ws.once('error', reject);
    });
}

// A raw TCP client: handshake, then frames built by hand.
function raw(loc = '/signal') {
    return new Promise((resolve, reject) => {
        const sock = net.connect(port, '127.0.0.1');
        const key = crypto.randomBytes(16).toString('base64');
        let buf = Buffer.alloc(0);
        let upgraded = false;
        sock.frames = [];
        sock.ended = new Promise((r) => sock.once('close', r));
        sock.on('data', (d) => {
            buf = Buffer.concat([buf, d]);
            if (!upgraded) {
                const end = buf.indexOf('\r\n\r\n');
                if (end < 0) return;
                const head = buf.subarray(0, end).toString();
                buf = buf.subarray(end + 4);
                if (!head.startsWith('HTTP/1.1 101')) return reject(new Error(head));
                const accept = crypto.createHash('sha1')
                    .update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
                assert.match(head, new RegExp(`Sec-WebSocket-Accept: ${accept.replace(/[+/]/g, '\\$&')}`));
                upgraded = true;
                resolve(sock);
            }
            for (;;) {
                if (buf.length < 2) return;
                let len = buf[1] & 0x7f;
                let off = 2;
                if (len === 126) { if (buf.length < 4) return; len = buf.readUInt16BE(2); off = 4; }
                if (len === 127) { if (buf.length < 10) return; len = Number(buf.readBigUInt64BE(2)); off = 10; }
                if (buf.length < off + len) return;
                sock.frames.push({ opcode: buf[0] & 0x0f, payload: buf.subarray(off, off + len) });
                buf = buf.subarray(off + len);
            }
        });
        sock.on('error', () => {});
        sock.write(`GET ${loc} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n` +
                   `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\n` +
                   `Sec-WebSocket-Version: 13\r\n\r\n`);
    });
}

function frame(opcode, payload, { fin = true, mask = true, rsv = 0, declared } = {}) {
    payload = Buffer.from(payload);
    const len = declared ?? payload.length;
    let head;
    if (len < 126) {
        head = Buffer.from([0, len]);
    } else if (len < 65536) {
        head = Buffer.alloc(4);
        head[1] = 126;
        head.writeUInt16BE(len, 2);
    } else {
        head = Buffer.alloc(10);
        head[1] = 127;
        head.writeBigUInt64BE(BigInt(len), 2);
    }
    head[0] = (fin ? 0x80 : 0) | (rsv << 4) | opcode;
    if (!mask) return Buffer.concat([head, payload]);
    head[1] |= 0x80;
    const key = crypto.randomBytes(4);
    const masked = Buffer.from(payload.map((b, i) => b ^ key[i % 4]));
    return Buffer.concat([head, key, masked]);
}

async function closeCodeAfter(bytes) {
    const s = await raw();
    s.write(bytes);
    await Promise.race([s.ended, sleep(5000)]);
    const close = s.frames.find((f) => f.opcode === 8);
    s.destroy();
    assert.ok(close, 'a close frame');
    return close.payload.length >= 2 ? close.payload.readUInt16BE(0) : 1005;
}

function http(request) {
    return new Promise((resolve) => {
        const sock = net.connect(port, '127.0.0.1');
        let data = '';
        sock.on('data', (d) => { data += d; });
        sock.on('end', () => resolve(data));
        sock.on('error', () => resolve(data));
        sock.write(request);
    });
}

test('welcome names the session and brings iceServers with TURN REST credentials', async () => {
    const a = await client();
    assert.equal(a.welcome.type, 'WebSocketIdMessage');
    assert.match(a.id, /^[0-9a-f]{32}-[0-9a-f]{16}$/);
    assert.deepEqual(a.welcome.iceServers[0], { urls: ['stun:stun.example.org:3478'] });
    const turn = a.welcome.iceServers[1];
    assert.deepEqual(turn.urls, ['turn:turn.example.org:3478']);
    const [expiry, name] = turn.username.split(':');
    assert.equal(name, a.id);
    assert.ok(Math.abs(Number(expiry) - (Date.now() / 1000 + 3600)) < 10);
    const expected = crypto.createHmac('sha1', TURN_SECRET).update(turn.username).digest('base64');
    assert.equal(turn.credential, expected);
    a.close();
    // the access log line is written when the session ends
    const line = new RegExp(`^101 ${a.id}$`, 'm');
    await waitUntil(() => line.test(fs.readFileSync(path.join(prefix, 'logs/access.log'), 'utf8')),
                    `the access log line of ${a.id}`);
});

test('messages route between local sessions with the sender stamped', async () => {
    const a = await client();
    const b = await client();
    a.send(JSON.stringify({ type: 'SignalingMessage', recipientSessionId: b.id,
                            senderSessionId: b.id, messageBody: '{"sdp":"x"}' }));
    const m = await b.next();
    assert.equal(m.type, 'SignalingMessage');
    assert.equal(m.senderSessionId, a.id);
    assert.equal(m.messageBody, '{"sdp":"x"}');
    a.send(JSON.stringify({ type: 'T', recipientSessionId: b.id.replace(/.$/, (c) => (c === '0' ? '1' : '0')),
                            messageBody: 'x' }));
    assert.equal((await a.next()).error, 'not found');
    a.send('not json');
    assert.match((await a.next()).error, /^invalid message/);
    a.send(JSON.stringify({ type: 'T', recipientSessionId: b.id, messageBody: 'still open' }));
    assert.equal((await b.next()).messageBody, 'still open');
    a.close();
    b.close();
});

test('over the rate, messages are dropped with one error a second', async () => {
    const a = await client('/limited');
    const b = await client('/limited');
    for (let i = 0; i < 20; i++) {
        a.send(JSON.stringify({ type: 'T', recipientSessionId: b.id, messageBody: String(i) }));
    }
    const err = await a.next();
    assert.deepEqual(err, { type: 'WebSocketErrorMessage', error: 'rate limited' });
    const got = [];
    for (;;) {
        try { got.push((await b.next(500)).messageBody); } catch { break; }
    }
    assert.ok(got.length >= 5 && got.length < 10, `got ${got.length}`);
    assert.deepEqual(got.slice(0, 5), ['0', '1', '2', '3', '4']);
    await assert.rejects(a.next(300));  // no second error within the second
    a.close();
    b.close();
});

test('handshake errors: 426, 400, 403', async () => {
    let r = await http('GET /signal HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    assert.match(r, /^HTTP\/1.1 426 /);
    assert.match(r, /\r\nUpgrade: websocket\r\n/i);
    r = await http('GET /signal HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
                   'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: short\r\n\r\n');
    assert.match(r, /^HTTP\/1.1 400 /);
    r = await http('GET /signal HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
                   'Sec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n');
    assert.match(r, /^HTTP\/1.1 400 /);
    assert.match(r, /\r\nSec-WebSocket-Version: 13\r\n/);
    r = await http('GET /signal HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n' +
                   'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n');
    assert.match(r, /^HTTP\/1.1 400 /);
    r = await http('POST /signal HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
                   'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n' +
                   'Content-Length: 0\r\n\r\n');
    assert.match(r, /^HTTP\/1.1 400 /);
    await assert.rejects(client('/limited', { origin: 'https://evil.example' }), /HTTP 403/);
    (await client('/limited', { origin: 'https://good.example' })).close();
    r = await http('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    assert.match(r, /\r\n\r\nsite\n$/);
});

test('framing violations close with their RFC 6455 codes', async () => {
    assert.equal(await closeCodeAfter(frame(1, 'hi', { mask: false })), 1002);
    assert.equal(await closeCodeAfter(frame(2, 'bin')), 1003);
    assert.equal(await closeCodeAfter(frame(1, Buffer.from([0x68, 0xc3, 0x28]))), 1007);
    assert.equal(await closeCodeAfter(frame(1, Buffer.alloc(0), { declared: 2000 })), 1009);
    assert.equal(await closeCodeAfter(Buffer.concat([
        frame(1, 'a'.repeat(600), { fin: false }), frame(0, 'b'.repeat(600))])), 1009);
    assert.equal(await closeCodeAfter(frame(9, 'p'.repeat(126))), 1002);
    assert.equal(await closeCodeAfter(frame(9, 'p', { fin: false })), 1002);
    assert.equal(await closeCodeAfter(frame(0, 'cont')), 1002);
    assert.equal(await closeCodeAfter(frame(3, 'reserved')), 1002);
    assert.equal(await closeCodeAfter(frame(1, 'rsv', { rsv: 4 })), 1002);
    assert.equal(await closeCodeAfter(Buffer.concat([
        frame(1, 'a', { fin: false }), frame(1, 'b')])), 1002);
});

test('fragments reassemble around a ping; close is echoed', async () => {
    const s = await raw();
    const welcome = JSON.parse(await new Promise((resolve) => {
        const t = setInterval(() => {
            if (s.frames.length) { clearInterval(t); resolve(s.frames.shift().payload.toString()); }
        }, 10);
    }));
    const msg = JSON.stringify({ type: 'T', recipientSessionId: welcome.id, messageBody: 'é-self' });
    const bytes = Buffer.from(msg);
    s.write(Buffer.concat([
        frame(1, bytes.subarray(0, 10), { fin: false }),
        frame(9, 'are you there'),
        frame(0, bytes.subarray(10, 88), { fin: false }),   // splits the é
        frame(0, bytes.subarray(88)),
    ]));
    const pong = await waitUntil(() => s.frames.find((f) => f.opcode === 10), 'the pong');
    assert.equal(pong.payload.toString(), 'are you there');
    const echo = await waitUntil(() => s.frames.find((f) => f.opcode === 1), 'the echo');
    assert.equal(JSON.parse(echo.payload.toString()).messageBody, 'é-self');
    const close = Buffer.alloc(2);
    close.writeUInt16BE(1000);
    s.write(frame(8, close));
    await Promise.race([s.ended, sleep(3000)]);
    const reply = s.frames.find((f) => f.opcode === 8);
    assert.equal(reply.payload.readUInt16BE(0), 1000);
    s.destroy();
});

test('frames sent with the handshake are not lost', async () => {
    const key = crypto.randomBytes(16).toString('base64');
    const sock = net.connect(port, '127.0.0.1');
    let data = Buffer.alloc(0);
    sock.on('data', (d) => { data = Buffer.concat([data, d]); });
    sock.write(Buffer.concat([
        Buffer.from(`GET /signal HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
                    `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`),
        frame(1, 'not json')]));
    await waitUntil(() => /WebSocketIdMessage[\s\S]*invalid message/.test(data.toString()),
                    'the welcome and the answer to the early frame');
    sock.destroy();
});

test('a client that does not answer pings is closed; one that does stays', async () => {
    const silent = await raw('/ping');
    const alive = await client('/ping');
    let aliveClosed = false;
    alive.on('close', () => { aliveClosed = true; });
    const t0 = Date.now();
    await Promise.race([silent.ended, sleep(5000)]);
    const waited = Date.now() - t0;
    assert.ok(silent.destroyed || silent.readyState === 'closed', 'silent client closed');
    assert.ok(waited >= 900 && waited < 3500, `closed after ${waited} ms`);
    assert.ok(silent.frames.some((f) => f.opcode === 9), 'server pinged');
    assert.equal(aliveClosed, false);
    alive.close();
});

test('over dwrtc_max_sessions the handshake gets 503', async () => {
    // sessions of earlier tests may still be closing
    const a = await retry(() => client('/few'));
    const b = await retry(() => client('/few'));
    await assert.rejects(client('/few'), /HTTP 503/);
    a.close();
    const c = await retry(() => client('/few'));  // a place is free again
    b.close();
    c.close();
});

test('the worker survived and logged no alert, crit or emerg', async () => {
    assert.deepEqual(workers(), workerPids);
    const log = fs.readFileSync(path.join(prefix, 'logs/error.log'), 'utf8');
    assert.doesNotMatch(log, /\[(alert|crit|emerg)\]/);
});

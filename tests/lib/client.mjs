// WebSocket clients for integration tests: a DWRTC session on the `ws`
// library (what a well-behaved client does), and a raw TCP connection that
// sends hand-made frames (what a broken or hostile one does).
//
//   const a = await openSession(node.wsUrl());   // a.id: the welcome's id
//   a.send({ type: 'offer', recipientSessionId: b.id, messageBody: 'x' });
//   const m = await b.waitFor((m) => m.type === 'offer', { what: 'the offer' });
//
//   const raw = await rawUpgrade(node.httpPort);   // after the 101
//   raw.write(frame({ opcode: OP.BINARY, payload: 'x' }));
//   assert.equal((await raw.waitClose()).code, 1003);

import WebSocket from 'ws';
import { connect as tcpConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { randomBytes, createHash } from 'node:crypto';

export const DEFAULT_WAIT = 15_000;

/**
 * Polls `check` (sync or async) every 10 ms until it returns something
 * truthy, which is returned; after `timeout` ms throws an Error naming
 * `what` (a string, or a function that says it then, with what it saw).
 */
export async function until(check, what, timeout = 30_000) {
    const end = Date.now() + timeout;
    for (;;) {
        const value = await check();
        if (value) {
            return value;
        }
        if (Date.now() > end) {
            throw new Error(`timed out waiting for ${typeof what === 'function' ? what() : what}`);
        }
        await new Promise((r) => setTimeout(r, 10));
    }
}

// ---------------------------------------------------------------------------
// A DWRTC session over `ws`

/** A received message queue with predicate waits. */
class Inbox {
    constructor(owner) {
        this.owner = owner;
        this.queue = [];     // not yet taken by waitFor
        this.waiters = [];
        this.count = 0;      // every message ever received
    }

    push(msg) {
        this.count++;
        for (let i = 0; i < this.waiters.length; i++) {
            const w = this.waiters[i];
            if (w.pred(msg)) {
                this.waiters.splice(i, 1);
                clearTimeout(w.timer);
                w.resolve(msg);
                return;
            }
        }
        this.queue.push(msg);
    }

    fail(err) {
        for (const w of this.waiters.splice(0)) {
            clearTimeout(w.timer);
            w.reject(err);
        }
    }

    waitFor(pred, opts) {
        return this.watch(pred, opts).promise;
    }

    // Like waitFor, with a cancel() that drops the wait (no rejection).
    watch(pred, { timeout = DEFAULT_WAIT, what = 'a matching message' } = {}) {
        const i = this.queue.findIndex(pred);
        if (i >= 0) {
            return { promise: Promise.resolve(this.queue.splice(i, 1)[0]), cancel() {} };
        }
        if (this.owner.closedWith) {
            return { promise: Promise.reject(this.owner.closedError(what)), cancel() {} };
        }
        const w = { pred };
        const promise = new Promise((resolve, reject) => {
            w.resolve = resolve;
            w.reject = reject;
            w.timer = setTimeout(() => {
                this.waiters.splice(this.waiters.indexOf(w), 1);
                reject(new Error(`${this.owner.label}: timed out after ${timeout} ms `
                    + `waiting for ${what}; ${this.queue.length} other message(s) `
                    + `queued${this.queue.length ? ', first: '
                        + JSON.stringify(this.queue[0]).slice(0, 300) : ''}`));
            }, timeout);
            this.waiters.push(w);
        });
        const cancel = () => {
            const k = this.waiters.indexOf(w);
            if (k >= 0) {
                this.waiters.splice(k, 1);
                clearTimeout(w.timer);
            }
        };
        return { promise, cancel };
    }
}

// Sessions not yet closed, so a failed test can drop them (see
// terminateSessions) and its nginx need not wait for them to stop.
const openSessionsSet = new Set();

/**
 * Drops every session still open (without a close handshake). Call it in
 * an after hook before stopping nodes: nginx's graceful stop waits for open
 * sessions up to worker_shutdown_timeout.
 */
export function terminateSessions() {
    for (const s of openSessionsSet) {
        s.terminate();
    }
    openSessionsSet.clear();
}

/**
 * One browser-like DWRTC session. Messages are parsed JSON objects (a text
 * that is not JSON arrives as { unparsed: text }).
 */
export class Session {
    constructor(ws, label) {
        this.ws = ws;
        this.label = label;
        this.id = null;
        this.welcome = null;
        this.inbox = new Inbox(this);
        this.closedWith = null;
        openSessionsSet.add(this);
        this.closed = new Promise((resolve) => {
            ws.on('close', (code, reason) => {
                openSessionsSet.delete(this);
                this.closedWith = { code, reason: reason.toString() };
                this.inbox.fail(this.closedError('more messages'));
                resolve(this.closedWith);
            });
        });
        ws.on('message', (data, isBinary) => {
            const text = data.toString('utf8');
            let msg;
            try {
                msg = JSON.parse(text);
            } catch {
                msg = { unparsed: text };
            }
            if (isBinary) {
                msg = { binary: text };
            }
            this.inbox.push(msg);
        });
        ws.on('error', (err) => { this.error = err; });
    }

    closedError(what) {
        const c = this.closedWith;
        return new Error(`${this.label}: connection closed (code ${c.code}`
            + `${c.reason ? `, "${c.reason}"` : ''}) while waiting for ${what}`);
    }

    /** Sends an object as JSON text. */
    send(obj) {
        this.ws.send(JSON.stringify(obj));
    }

    /** Sends text as is. */
    sendText(text) {
        this.ws.send(text, { binary: false });
    }

    /** Sends an application message to another session. */
    to(recipient, messageBody, type = 'test') {
        this.send({ type, recipientSessionId: recipient.id ?? recipient, messageBody });
    }

    /** Resolves with (and takes) the first message matching pred. */
    waitFor(pred, opts) {
        return this.inbox.waitFor(pred, opts);
    }

    /**
     * Takes `n` messages matching pred, in arrival order, within one
     * overall timeout.
     */
    async collect(n, pred, { timeout = DEFAULT_WAIT, what = 'messages' } = {}) {
        const out = [];
        const deadline = Date.now() + timeout;
        while (out.length < n) {
            out.push(await this.waitFor(pred, {
                timeout: Math.max(1, deadline - Date.now()),
                what: `${what} (${out.length} of ${n} arrived)`,
            }));
        }
        return out;
    }

    /**
     * Runs `promise` (a wait at a recipient) but fails at once if this
     * session, the sender, gets an error message about `recipientId`
     * meanwhile: a "not found" for a live recipient should not cost the
     * whole timeout.
     */
    async unlessErrorFor(recipientId, promise) {
        const w = this.inbox.watch((m) => m.type === 'WebSocketErrorMessage'
                                          && m.recipientSessionId === recipientId,
                                   { timeout: 2 ** 31 - 1 });
        try {
            return await Promise.race([promise, w.promise.then((e) => {
                throw new Error(`${this.label} got ${JSON.stringify(e)} for a recipient `
                                + 'that is open');
            })]);
        } finally {
            w.cancel();
        }
    }

    /**
     * Sends one message to `to` (a Session) and resolves with it as `to`
     * received it; fails early if the sender gets an error for `to`.
     */
    deliver(to, messageBody, { type = 'test', timeout } = {}) {
        this.to(to, messageBody, type);
        return this.unlessErrorFor(to.id, to.waitFor(
            (m) => m.senderSessionId === this.id && m.type === type
                   && m.messageBody === messageBody,
            { timeout, what: `${JSON.stringify(messageBody).slice(0, 40)} from ${this.label}` }));
    }

    /** The next message of type `type` from `sender` (a Session or id). */
    waitFrom(sender, opts = {}) {
        const id = sender.id ?? sender;
        return this.waitFor((m) => m.senderSessionId === id
                                   && (!opts.type || m.type === opts.type),
                            { what: `a message from ${id}`, ...opts });
    }

    /** The next WebSocketErrorMessage (matching `error` if given). */
    waitError(error, opts = {}) {
        const match = typeof error === 'function' ? error
            : error instanceof RegExp ? (e) => error.test(e)
                : error === undefined ? () => true : (e) => e === error;
        return this.waitFor((m) => m.type === 'WebSocketErrorMessage' && match(m.error),
                            { what: `an error message${error ? ` (${error})` : ''}`, ...opts });
    }

    /** Resolves when a ping round trip completed: the session is alive. */
    ping({ timeout = DEFAULT_WAIT } = {}) {
        return new Promise((resolve, reject) => {
            const payload = randomBytes(8);
            const timer = setTimeout(() => {
                this.ws.off('pong', onPong);
                reject(new Error(`${this.label}: no pong within ${timeout} ms`));
            }, timeout);
            const onPong = (data) => {
                if (data.equals(payload)) {
                    clearTimeout(timer);
                    this.ws.off('pong', onPong);
                    resolve();
                }
            };
            this.ws.on('pong', onPong);
            this.ws.ping(payload);
        });
    }

    /** Closes (normal closure) and waits for the close handshake. */
    async close(code = 1000) {
        if (!this.closedWith) {
            this.ws.close(code);
        }
        return this.closed;
    }

    terminate() {
        this.ws.terminate();
    }
}

/** A session id: the node's id (32 hex digits), a dash, 16 random ones. */
export const SESSION_ID = /^[0-9a-f]{32}-[0-9a-f]{16}$/;

/** A well-formed session id on node `nodeId` (a random node by default). */
export function randomSessionId(nodeId = randomBytes(16).toString('hex')) {
    return `${nodeId}-${randomBytes(8).toString('hex')}`;
}

/**
 * Opens a session and waits for its welcome ({"type":"WebSocketIdMessage",
 * "id":...}); the id must be a session id. opts: origin, headers, ca (for
 * wss), localAddress (the client's own address, say 127.0.0.2), timeout,
 * label.
 */
export async function openSession(url, opts = {}) {
    const { timeout = DEFAULT_WAIT, origin, headers, ca, localAddress, label } = opts;
    const ws = new WebSocket(url, { origin, headers, ca, localAddress, perMessageDeflate: false,
                                    handshakeTimeout: timeout });
    const session = new Session(ws, label ?? `session@${url}`);
    await new Promise((resolve, reject) => {
        const onError = (err) => reject(new Error(`${session.label}: connecting failed: ${err.message}`));
        ws.once('open', () => { ws.off('error', onError); resolve(); });
        ws.once('error', onError);
        ws.once('unexpected-response', (req, res) => {
            ws.off('error', onError);
            reject(new Error(`${session.label}: handshake answered ${res.statusCode}`));
        });
    });
    const welcome = await session.waitFor(() => true, { timeout, what: 'the welcome message' });
    if (welcome.type !== 'WebSocketIdMessage' || !SESSION_ID.test(welcome.id ?? '')) {
        throw new Error(`${session.label}: first message is not a welcome with a session id: `
                        + JSON.stringify(welcome));
    }
    session.welcome = welcome;
    session.id = welcome.id;
    session.label = label ?? `session ${welcome.id.slice(0, 8)}..${welcome.id.slice(-4)}`;
    return session;
}

/** Opens `n` sessions on `url` at once. */
export function openSessions(url, n, opts) {
    return Promise.all(Array.from({ length: n }, () => openSession(url, opts)));
}

/** The node part of a session id (the 32 hex digits before the dash). */
export function nodeOf(sessionId) {
    return sessionId.slice(0, 32);
}

// ---------------------------------------------------------------------------
// Raw frames

export const OP = { CONT: 0x0, TEXT: 0x1, BINARY: 0x2, CLOSE: 0x8, PING: 0x9, PONG: 0xa };

/**
 * One client frame. payload: Buffer or string. mask (default true) masks
 * with a random key as clients must. rsv: the three reserved bits (0-7).
 * length: the declared payload length, if it is to differ from the
 * payload's (the payload is then sent as given, or not at all).
 */
export function frame({ fin = true, rsv = 0, opcode, payload = Buffer.alloc(0),
                        mask = true, length } = {}) {
    const data = Buffer.isBuffer(payload) ? payload : Buffer.from(payload, 'utf8');
    const len = length ?? data.length;
    let header;
    if (len < 126) {
        header = Buffer.alloc(2);
        header[1] = len;
    } else if (len < 65536) {
        header = Buffer.alloc(4);
        header[1] = 126;
        header.writeUInt16BE(len, 2);
    } else {
        header = Buffer.alloc(10);
        header[1] = 127;
        header.writeBigUInt64BE(BigInt(len), 2);
    }
    header[0] = (fin ? 0x80 : 0) | ((rsv & 7) << 4) | (opcode & 0x0f);
    if (!mask) {
        return Buffer.concat([header, data]);
    }
    header[1] |= 0x80;
    const key = randomBytes(4);
    const masked = Buffer.alloc(data.length);
    for (let i = 0; i < data.length; i++) {
        masked[i] = data[i] ^ key[i & 3];
    }
    return Buffer.concat([header, key, masked]);
}

/** A close frame's payload: code and reason. */
export function closePayload(code, reason = '') {
    const b = Buffer.alloc(2);
    b.writeUInt16BE(code);
    return Buffer.concat([b, Buffer.from(reason)]);
}

/**
 * A TCP (or TLS) connection after a successful WebSocket handshake, reading
 * server frames. Server frames must not be masked; a masked one fails.
 */
export class RawConnection {
    constructor(socket, rest, response) {
        this.socket = socket;
        this.response = response;
        this.buf = rest;
        this.frames = [];
        this.waiters = [];
        this.ended = false;
        this.errors = [];
        socket.on('data', (d) => {
            this.buf = Buffer.concat([this.buf, d]);
            this.parse();
        });
        socket.on('end', () => { this.ended = true; this.wake(); });
        socket.on('close', () => { this.ended = true; this.wake(); });
        socket.on('error', (e) => { this.errors.push(e); });
        this.parse();
    }

    parse() {
        for (;;) {
            const b = this.buf;
            if (b.length < 2) {
                break;
            }
            let len = b[1] & 0x7f;
            let off = 2;
            if (len === 126) {
                if (b.length < 4) break;
                len = b.readUInt16BE(2);
                off = 4;
            } else if (len === 127) {
                if (b.length < 10) break;
                len = Number(b.readBigUInt64BE(2));
                off = 10;
            }
            const masked = (b[1] & 0x80) !== 0;
            if (masked) {
                this.errors.push(new Error('server sent a masked frame'));
                off += 4;
            }
            if (b.length < off + len) {
                break;
            }
            this.frames.push({ fin: (b[0] & 0x80) !== 0, rsv: (b[0] >> 4) & 7,
                               opcode: b[0] & 0x0f, masked,
                               payload: b.subarray(off, off + len) });
            this.buf = b.subarray(off + len);
        }
        this.wake();
    }

    wake() {
        for (const w of this.waiters.splice(0)) {
            w();
        }
    }

    write(buf) {
        this.socket.write(buf);
    }

    /** Takes the first frame matching pred; rejects on timeout or EOF. */
    async waitFrame(pred = () => true, { timeout = DEFAULT_WAIT, what = 'a frame' } = {}) {
        const deadline = Date.now() + timeout;
        for (;;) {
            const i = this.frames.findIndex(pred);
            if (i >= 0) {
                return this.frames.splice(i, 1)[0];
            }
            if (this.ended) {
                throw new Error(`connection ended while waiting for ${what}`);
            }
            const left = deadline - Date.now();
            if (left <= 0) {
                throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
            }
            await new Promise((resolve) => {
                const t = setTimeout(resolve, left);
                this.waiters.push(() => { clearTimeout(t); resolve(); });
            });
        }
    }

    /** The next text frame, parsed as JSON. */
    async waitMessage(pred = () => true, opts = {}) {
        const parse = (f) => {
            try {
                return JSON.parse(f.payload.toString());
            } catch {
                return { unparsed: f.payload.toString() };
            }
        };
        const f = await this.waitFrame((f) => f.opcode === OP.TEXT && pred(parse(f)),
                                       { what: 'a text message', ...opts });
        return parse(f);
    }

    /**
     * Waits for the server's close frame and returns { code, reason } (code
     * 1005 for an empty close frame). If the connection ends without one,
     * returns { code: 1006 } so assertions name what happened.
     */
    async waitClose({ timeout = DEFAULT_WAIT } = {}) {
        try {
            const f = await this.waitFrame((f) => f.opcode === OP.CLOSE,
                                           { timeout, what: 'a close frame' });
            if (f.payload.length < 2) {
                return { code: 1005, reason: '' };
            }
            return { code: f.payload.readUInt16BE(0),
                     reason: f.payload.subarray(2).toString() };
        } catch (err) {
            if (this.ended) {
                return { code: 1006, reason: 'connection ended without a close frame' };
            }
            throw err;
        }
    }

    /** Resolves when the server has closed the TCP connection. */
    async waitEnd({ timeout = DEFAULT_WAIT } = {}) {
        const deadline = Date.now() + timeout;
        while (!this.ended) {
            const left = deadline - Date.now();
            if (left <= 0) {
                throw new Error(`timed out after ${timeout} ms waiting for the server to close`);
            }
            await new Promise((resolve) => {
                const t = setTimeout(resolve, left);
                this.waiters.push(() => { clearTimeout(t); resolve(); });
            });
        }
    }

    destroy() {
        this.socket.destroy();
    }
}

/**
 * Sends `request` (a string or Buffer, sent as is) to 127.0.0.1:port and
 * reads the response head. Resolves { status, headers, head, socket, rest }
 * where rest holds the bytes after the head. opts.tls: connect with TLS
 * (opts.ca trusted); opts.localAddress: connect from that address.
 */
export function rawRequest(port, request, { timeout = DEFAULT_WAIT, tls, ca,
                                            localAddress } = {}) {
    return new Promise((resolve, reject) => {
        const socket = tls
            ? tlsConnect({ port, host: '127.0.0.1', ca, servername: 'localhost', localAddress })
            : tcpConnect({ port, host: '127.0.0.1', localAddress });
        let buf = Buffer.alloc(0);
        const timer = setTimeout(() => {
            socket.destroy();
            reject(new Error(`no response head within ${timeout} ms; got `
                             + JSON.stringify(buf.toString('latin1').slice(0, 200))));
        }, timeout);
        const onData = (d) => {
            buf = Buffer.concat([buf, d]);
            const end = buf.indexOf('\r\n\r\n');
            if (end < 0) {
                return;
            }
            clearTimeout(timer);
            socket.off('data', onData);
            socket.off('end', onEnd);
            const head = buf.subarray(0, end).toString('latin1');
            const [statusLine, ...lines] = head.split('\r\n');
            const headers = {};
            for (const l of lines) {
                const i = l.indexOf(':');
                headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
            }
            resolve({ status: Number(statusLine.split(' ')[1]), statusLine, headers,
                      head, socket, rest: buf.subarray(end + 4) });
        };
        const onEnd = () => {
            clearTimeout(timer);
            reject(new Error(`connection closed before a response head; got `
                             + JSON.stringify(buf.toString('latin1').slice(0, 200))));
        };
        socket.on('data', onData);
        socket.on('end', onEnd);
        socket.on('error', (e) => { clearTimeout(timer); reject(e); });
        socket.write(request);
    });
}

/** A valid Sec-WebSocket-Key and its expected Sec-WebSocket-Accept. */
export function wsKey() {
    const key = randomBytes(16).toString('base64');
    const accept = createHash('sha1')
        .update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
    return { key, accept };
}

/**
 * The text of a handshake request. headers are added to (or, with value
 * null, removed from) a valid handshake's headers.
 */
export function handshakeRequest({ path = '/signal', port, method = 'GET',
                                   version = 'HTTP/1.1', headers = {}, key } = {}) {
    const h = {
        Host: `127.0.0.1${port ? `:${port}` : ''}`,
        Upgrade: 'websocket',
        Connection: 'Upgrade',
        'Sec-WebSocket-Key': key ?? wsKey().key,
        'Sec-WebSocket-Version': '13',
        ...headers,
    };
    let text = `${method} ${path} ${version}\r\n`;
    for (const [k, v] of Object.entries(h)) {
        if (v !== null && v !== undefined) {
            text += `${k}: ${v}\r\n`;
        }
    }
    return text + '\r\n';
}

/**
 * Opens a WebSocket by hand and checks the 101 answer (including
 * Sec-WebSocket-Accept). Returns a RawConnection; its welcome message is
 * the first frame (see welcome()).
 */
export async function rawUpgrade(port, opts = {}) {
    const { key, accept } = wsKey();
    const res = await rawRequest(port, handshakeRequest({ port, key, ...opts }), opts);
    if (res.status !== 101) {
        res.socket.destroy();
        throw new Error(`handshake answered ${res.statusLine}, expected 101`);
    }
    if (res.headers['sec-websocket-accept'] !== accept) {
        res.socket.destroy();
        throw new Error(`Sec-WebSocket-Accept is ${res.headers['sec-websocket-accept']}, `
                        + `expected ${accept}`);
    }
    const conn = new RawConnection(res.socket, res.rest, res);
    const welcome = await conn.waitMessage((m) => m.type === 'WebSocketIdMessage',
                                           { what: 'the welcome message' });
    conn.id = welcome.id;
    return conn;
}

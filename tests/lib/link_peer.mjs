// A hand-made node-to-node link client for integration tests: what a
// stranger (or a rogue node) on a node's link port can do. It speaks the
// link protocol (version 2, dhtcore/include/dwrtc/protocol.h and trust.h)
// at the byte level, so a test can send a correct hello or any broken one.
//
//   const me = new LinkIdentity();                  // an RSA key, its node id
//   const link = await openLink(node.linkPort);     // TLS 1.3, WebSocket, 101
//   link.sendFrames([me.hello('initiator', link.binding)]);
//   const hello = await link.waitHello();           // the node's own proof
//   assert.ok(verifyHello(hello, 'responder', link.binding));
//   link.sendFrames([{ v: 2, t: 'msg', node: me.id, sender: me.sessionId(), ... }]);
//
// Transport: WebSocket (path /, subprotocol dwrtc-link) over TLS 1.3; the
// node's certificate is self-signed and not checked, as nodes do not check
// it either. The channel binding is the TLS exporter with the label
// EXPORTER-dwrtc-link-v2 and no context (32 bytes). A hello signs
//   "dwrtc-link-hello-v2" 0 role 0 node 0 binding
// with RSASSA-PKCS1-v1_5 SHA-256, role "initiator" for the side that
// opened the connection and "responder" for the side that accepted it.

import { connect as tcpConnect, createServer } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { createHash, createPublicKey, generateKeyPairSync, randomBytes, sign,
         verify } from 'node:crypto';

import { DEFAULT_WAIT, OP, RawConnection, wsKey } from './client.mjs';

export const LINK_PROTOCOL_VERSION = 2;
export const BINDING_LABEL = 'EXPORTER-dwrtc-link-v2';
export const BINDING_LENGTH = 32;
const HELLO_CONTEXT = 'dwrtc-link-hello-v2';

/** The node id of a public key (SubjectPublicKeyInfo DER): 32 hex digits. */
export function nodeIdOfKey(spkiDer) {
    return createHash('sha256').update(spkiDer).digest().subarray(0, 16).toString('hex');
}

/** The bytes a hello signs, for `role` ('initiator' or 'responder'). */
export function helloSignedBytes(role, node, binding) {
    return Buffer.concat([Buffer.from(`${HELLO_CONTEXT}\0${role}\0${node}\0`, 'latin1'),
                          binding]);
}

/** A node identity of our own: an RSA key pair and the id it names. */
export class LinkIdentity {
    constructor() {
        const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
        this.privateKey = privateKey;
        this.spki = publicKey.export({ type: 'spki', format: 'der' });
        this.id = nodeIdOfKey(this.spki);
    }

    /** A session id of this node (random low part). */
    sessionId() {
        return `${this.id}-${randomBytes(8).toString('hex')}`;
    }

    /**
     * A hello frame (object). By default a correct one for `role` on a link
     * with `binding`; `node` names another id in the frame and signature
     * (the key is still ours), `signRole` signs another role.
     */
    hello(role, binding, { node = this.id, signRole = role } = {}) {
        const proof = sign('sha256', helloSignedBytes(signRole, node, binding), this.privateKey);
        return { v: LINK_PROTOCOL_VERSION, t: 'hello', node, key: this.spki.toString('hex'),
                 proof: proof.toString('hex') };
    }
}

/**
 * True if `hello` (a parsed hello frame) proves its node for `role` on a
 * link with `binding`: its key hashes to its node id and its signature
 * holds. This is the check a node makes.
 */
export function verifyHello(hello, role, binding) {
    if (hello?.t !== 'hello' || typeof hello.key !== 'string' || typeof hello.proof !== 'string') {
        return false;
    }
    const der = Buffer.from(hello.key, 'hex');
    if (nodeIdOfKey(der) !== hello.node) {
        return false;
    }
    const key = createPublicKey({ key: der, format: 'der', type: 'spki' });
    return verify('sha256', helloSignedBytes(role, hello.node, binding), key,
                  Buffer.from(hello.proof, 'hex'));
}

/**
 * A masked client frame header announcing `length` payload bytes, with an
 * all-zero masking key (legal, and it leaves the payload as written, so a
 * text payload stays valid UTF-8 however it is cut).
 */
export function frameHeader(length, { opcode = OP.TEXT, fin = true } = {}) {
    let header;
    if (length < 126) {
        header = Buffer.alloc(2 + 4);
        header[1] = length;
    } else if (length < 65536) {
        header = Buffer.alloc(4 + 4);
        header[1] = 126;
        header.writeUInt16BE(length, 2);
    } else {
        header = Buffer.alloc(10 + 4);
        header[1] = 127;
        header.writeBigUInt64BE(BigInt(length), 2);
    }
    header[0] = (fin ? 0x80 : 0) | (opcode & 0x0f);
    header[1] |= 0x80;
    return header;
}

/** A whole masked text frame holding `text` (zero masking key). */
export function textFrame(text) {
    const payload = Buffer.from(text, 'utf8');
    return Buffer.concat([frameHeader(payload.length), payload]);
}

/** A TLS 1.3 connection to host:port; the certificate is not checked. */
export function connectTls(port, { host = '127.0.0.1', timeout = DEFAULT_WAIT } = {}) {
    return new Promise((resolve, reject) => {
        const socket = tlsConnect({ port, host, rejectUnauthorized: false,
                                    minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' });
        const timer = setTimeout(() => {
            socket.destroy();
            reject(new Error(`no TLS handshake with ${host}:${port} within ${timeout} ms`));
        }, timeout);
        socket.once('secureConnect', () => {
            clearTimeout(timer);
            socket.off('error', onError);
            resolve(socket);
        });
        const onError = (err) => {
            clearTimeout(timer);
            reject(new Error(`TLS to ${host}:${port} failed: ${err.message}`));
        };
        socket.once('error', onError);
    });
}

/** The text of the link's WebSocket upgrade request. */
export function linkUpgradeRequest(host, port, key) {
    return `GET / HTTP/1.1\r\nHost: ${host}:${port}\r\nUpgrade: websocket\r\n`
        + `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\n`
        + 'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: dwrtc-link\r\n\r\n';
}

/**
 * Opens a link as an initiator would, up to the 101 answer (checked,
 * subprotocol included). Returns a LinkPeer; nothing of the link protocol
 * has been sent yet.
 */
export async function openLink(port, { host = '127.0.0.1', timeout = DEFAULT_WAIT } = {}) {
    const socket = await connectTls(port, { host, timeout });
    const binding = socket.exportKeyingMaterial(BINDING_LENGTH, BINDING_LABEL);
    const { key, accept } = wsKey();
    const { head, rest } = await readHead(socket, linkUpgradeRequest(host, port, key), timeout);
    const [statusLine, ...lines] = head.split('\r\n');
    const headers = {};
    for (const l of lines) {
        const i = l.indexOf(':');
        headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
    }
    const fail = (why) => {
        socket.destroy();
        throw new Error(`link upgrade to ${host}:${port}: ${why}`);
    };
    if (Number(statusLine.split(' ')[1]) !== 101) {
        fail(`answered "${statusLine}", expected 101`);
    }
    if (headers['sec-websocket-accept'] !== accept) {
        fail(`Sec-WebSocket-Accept is ${headers['sec-websocket-accept']}, expected ${accept}`);
    }
    if (headers['sec-websocket-protocol'] !== 'dwrtc-link') {
        fail(`subprotocol is ${headers['sec-websocket-protocol']}, expected dwrtc-link`);
    }
    return new LinkPeer(socket, rest, binding);
}

function readHead(socket, request, timeout) {
    return new Promise((resolve, reject) => {
        let buf = Buffer.alloc(0);
        const done = (err, value) => {
            clearTimeout(timer);
            socket.off('data', onData);
            socket.off('end', onEnd);
            socket.off('error', onEnd);
            if (err) {
                socket.destroy();
                reject(err);
            } else {
                resolve(value);
            }
        };
        const timer = setTimeout(() => done(new Error(
            `no upgrade answer within ${timeout} ms; got `
            + JSON.stringify(buf.toString('latin1').slice(0, 200)))), timeout);
        const onData = (d) => {
            buf = Buffer.concat([buf, d]);
            const end = buf.indexOf('\r\n\r\n');
            if (end >= 0) {
                done(null, { head: buf.subarray(0, end).toString('latin1'),
                             rest: buf.subarray(end + 4) });
            }
        };
        const onEnd = (e) => done(new Error(`connection ended before an upgrade answer`
            + `${e?.message ? ` (${e.message})` : ''}; got `
            + JSON.stringify(buf.toString('latin1').slice(0, 200))));
        socket.on('data', onData);
        socket.once('end', onEnd);
        socket.once('error', onEnd);
        socket.write(request);
    });
}

/**
 * An open link to a node, seen from our end: raw frames in (the node's, as
 * a RawConnection reads them), link frames out.
 */
export class LinkPeer extends RawConnection {
    constructor(socket, rest, binding) {
        super(socket, rest);
        this.binding = binding;
        this.openedAt = Date.now();
        this.endedAt = null;
        socket.on('close', () => { this.endedAt ??= Date.now(); });
        socket.on('end', () => { this.endedAt ??= Date.now(); });
    }

    /** Sends link frames (objects or text) as one WebSocket text message. */
    sendFrames(frames) {
        const text = frames.map((f) => (typeof f === 'string' ? f : JSON.stringify(f))).join('\n');
        this.write(textFrame(text));
    }

    /** The node's next link frames: one text message, split and parsed. */
    async waitFrames(opts = {}) {
        const f = await this.waitFrame((f) => f.opcode === OP.TEXT,
                                       { what: 'a link message', ...opts });
        return f.payload.toString('utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
    }

    /** The node's hello (the first frame it sends). */
    async waitHello(opts = {}) {
        const [hello] = await this.waitFrames({ what: "the node's hello", ...opts });
        if (hello?.t !== 'hello') {
            throw new Error(`the node's first frame is not a hello: ${JSON.stringify(hello)}`);
        }
        return hello;
    }

    /**
     * Waits until the node has closed the connection; returns
     * { ms (since the upgrade), code (of its close frame, if it sent one) }.
     */
    async waitClosedByNode({ timeout = DEFAULT_WAIT } = {}) {
        await this.waitEnd({ timeout });
        const close = this.frames.find((f) => f.opcode === OP.CLOSE);
        return { ms: (this.endedAt ?? Date.now()) - this.openedAt,
                 code: close ? (close.payload.length >= 2 ? close.payload.readUInt16BE(0) : 1005)
                     : null };
    }
}

/**
 * A TCP relay on the path between two nodes: listens on listenHost:port,
 * forwards every connection to targetHost:targetPort, and records every
 * byte both ways. From the connecting side to the target it forwards whole
 * TLS records only (5-byte header: type, version, length), so it can flip
 * a byte inside one (armFlip) or put bytes of its own between two
 * (inject). When one side closes, it closes the other and then waits for
 * that side to close too (`closed`), so by then both ends have seen the end.
 */
export class RecordingRelay {
    constructor({ listenHost, port, targetHost, targetPort = port }) {
        Object.assign(this, { listenHost, port, targetHost, targetPort });
        this.connections = [];
        this.flip = null;
        this.server = createServer({ allowHalfOpen: false }, (a) => this.relay(a));
    }

    start() {
        return new Promise((resolve, reject) => {
            this.server.once('error', reject);
            this.server.listen({ host: this.listenHost, port: this.port, exclusive: true },
                               () => { this.server.off('error', reject); resolve(); });
        });
    }

    relay(a) {
        const b = tcpConnect({ host: this.targetHost, port: this.targetPort });
        const conn = { a, b, forward: [], back: [], injected: [], pending: Buffer.alloc(0),
                       records: 0, openedAt: Date.now(), closedAt: null };
        let aClosed, bClosed;
        const closedA = new Promise((r) => { aClosed = r; });
        const closedB = new Promise((r) => { bClosed = r; });
        conn.closed = Promise.all([closedA, closedB]).then(() => {
            conn.closedAt = Date.now();
            return conn;
        });
        this.connections.push(conn);
        a.on('data', (d) => {
            conn.forward.push(d);
            conn.pending = Buffer.concat([conn.pending, d]);
            this.forwardRecords(conn);
        });
        b.on('data', (d) => {
            conn.back.push(d);
            a.write(d);
        });
        // one side's end (or error) ends the other; each side's close is awaited
        a.on('end', () => b.end());
        b.on('end', () => a.end());
        a.on('error', () => b.destroy());
        b.on('error', () => a.destroy());
        a.on('close', () => { b.destroy(); aClosed(); });
        b.on('close', () => { a.end(); bClosed(); });
    }

    forwardRecords(conn) {
        while (conn.pending.length >= 5) {
            const end = 5 + conn.pending.readUInt16BE(3);
            if (conn.pending.length < end) {
                return;
            }
            let record = conn.pending.subarray(0, end);
            conn.pending = conn.pending.subarray(end);
            conn.records++;
            // 23: application data, what carries the link once TLS is up
            if (this.flip && record[0] === 23 && record.length > 5 + 16) {
                record = Buffer.from(record);
                const at = 5 + ((record.length - 5) >> 1);
                record[at] ^= 0x01;
                const { resolve } = this.flip;
                this.flip = null;
                resolve({ connection: this.connections.indexOf(conn), recordLength: end, at });
            }
            conn.b.write(record);
        }
    }

    /** The last connection the relay took (the link now in use). */
    current() {
        return this.connections.at(-1);
    }

    /**
     * Flips one bit of the next application-data record forwarded to the
     * target. Resolves with { connection, recordLength, at } once done.
     */
    armFlip() {
        return new Promise((resolve) => { this.flip = { resolve }; });
    }

    /** Writes `bytes` to the target on the current connection, between records. */
    inject(bytes) {
        const conn = this.current();
        if (conn.pending.length) {
            throw new Error('a record is half forwarded; inject between records');
        }
        conn.injected.push(bytes);
        conn.b.write(bytes);
        return conn;
    }

    /** Every byte the connecting side sent (as received), every byte sent back. */
    forwardBytes() {
        return Buffer.concat(this.connections.flatMap((c) => c.forward));
    }

    backBytes() {
        return Buffer.concat(this.connections.flatMap((c) => c.back));
    }

    stop() {
        for (const c of this.connections) {
            c.a.destroy();
            c.b.destroy();
        }
        return new Promise((resolve) => this.server.close(() => resolve()));
    }
}

/*
 * SPDX-License-Identifier: MIT (see LICENSE beside this file)
 *
 * dwrtc-e2e.js: end-to-end encryption of messages between two key-owned
 * DWRTC sessions, for dwrtc.js (its `e2e` option). Internal: dwrtc.js
 * imports it and apps do not; it ships beside dwrtc.js.
 *
 * The nodes relay what this module makes and cannot read it: a message to a
 * key-owned id goes as ciphertext under a key only the two browsers can
 * derive, and a message that was altered, replayed or made by anyone else
 * is refused by the receiving browser, never delivered.
 *
 * Keys. Every client instance (every DwrtcClient, so every page load) makes
 * a fresh ECDH P-256 key pair, its private key not extractable and kept
 * only in memory, and 16 random bytes, its salt. The identity key (ECDSA,
 * the one that owns the id) signs the ECDH public key and the salt; the
 * signed announcement is what peers exchange:
 *
 *   {"v":1,"op":"request"|"response"|"rekey","key":K,"ecdh":E,"salt":S,
 *    "signature":G[,"ref":R]}     as the messageBody of type DwrtcE2eKey
 *
 * K and E are raw P-256 public keys (65 bytes, 04 X Y), S 16 bytes and G the
 * ECDSA SHA-256 signature (r then s, 64 bytes), all lowercase hex; G signs
 * the UTF-8 text "dwrtc-e2e-key-v1\n<id>\n<E>\n<S>\n<R>" (R empty unless
 * given). The receiver checks that K gives the sender's id (ownedIdOf) and
 * G. "request" asks the peer for its announcement (and carries ours),
 * "response" answers it. "rekey" answers a message that was encrypted for an
 * earlier instance of the receiver (R = "<that message's sender salt>:<its
 * n>"): the sender answers it as a request, and sends again, under the new
 * keys, what it still holds of what it sent that earlier instance from n on
 * (the last 32 messages of the last minute). An announcement whose salt the
 * receiver has seen replaced is refused, so an old one cannot be replayed.
 *
 * Each direction has its own AES-256-GCM key: HKDF-SHA256 of the ECDH
 * secret, with the sender's salt then the recipient's as HKDF salt and
 * "dwrtc-e2e-v1\n<sender id>\n<recipient id>" as info. The nonce is 4 zero
 * bytes and a 64-bit big-endian counter, one counter per client instance
 * for all its messages, so no (key, nonce) pair is used twice: a key holds
 * the sender instance's salt, and that instance never repeats a counter; a
 * reload is a new instance with a new salt and new ECDH keys. The message:
 *
 *   {"v":1,"from":S_sender,"to":S_recipient,"n":N,"ct":C}
 *                                  as the messageBody of type DwrtcE2eMessage
 *
 * C is base64 of the AES-GCM ciphertext and tag of the UTF-8 JSON text
 * {"type":T,"body":B}: the app's message type and body, so the nodes see
 * neither. The receiver refuses a counter it has seen, or one more than
 * REPLAY_WINDOW below the highest it has seen.
 */

/** Message type of key announcements. */
export const E2E_KEY_TYPE = 'DwrtcE2eKey';
/** Message type of encrypted messages. */
export const E2E_MESSAGE_TYPE = 'DwrtcE2eMessage';
/** Types that start with this are the module's: apps cannot send them. */
export const E2E_PREFIX = 'DwrtcE2e';

const VERSION = 1;
const SALT_BYTES = 16;
const REPLAY_WINDOW = 1024;     // counters this far below the highest still arrive
const PENDING_LIMIT = 64;       // messages per peer waiting for its key
const RETAIN_COUNT = 32;        // messages per peer kept to send again after a rekey
const RETAIN_MS = 60_000;
const ECDH = Object.freeze({ name: 'ECDH', namedCurve: 'P-256' });
const ECDSA = Object.freeze({ name: 'ECDSA', namedCurve: 'P-256' });
const ECDSA_SIGN = Object.freeze({ name: 'ECDSA', hash: 'SHA-256' });
const HEX_KEY = /^04[0-9a-f]{128}$/;
const HEX_SALT = /^[0-9a-f]{32}$/;
const HEX_SIGNATURE = /^[0-9a-f]{128}$/;
const REF = /^([0-9a-f]{32}):(\d{1,16})$/;

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder('utf-8', { fatal: true });

function subtle() {
    const s = globalThis.crypto?.subtle;
    if (!s) {
        throw new Error('no WebCrypto here (a page must be served over https or from localhost)');
    }
    return s;
}

function hexOf(buffer) {
    return [...new Uint8Array(buffer)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

function bytesOf(hex) {
    const out = new Uint8Array(hex.length / 2);
    for (let i = 0; i < out.length; i++) {
        out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
    }
    return out;
}

function base64Of(buffer) {
    const bytes = new Uint8Array(buffer);
    let text = '';
    for (let i = 0; i < bytes.length; i += 0x8000) {
        text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    }
    return btoa(text);
}

function bytesOfBase64(text) {
    const raw = atob(text);
    const out = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i++) {
        out[i] = raw.charCodeAt(i);
    }
    return out;
}

function nonceOf(n) {
    const iv = new Uint8Array(12);
    const view = new DataView(iv.buffer);
    view.setUint32(4, Math.floor(n / 2 ** 32));
    view.setUint32(8, n >>> 0);
    return iv;
}

function announcementText(id, ecdh, salt, ref) {
    return `dwrtc-e2e-key-v1\n${id}\n${ecdh}\n${salt}\n${ref}`;
}

function parseJson(text) {
    try {
        const value = JSON.parse(text);
        return value !== null && typeof value === 'object' ? value : null;
    } catch {
        return null;
    }
}

/** What one peer (a key-owned id we talk to) is to us. */
class Peer {
    constructor(id) {
        this.id = id;
        this.remote = null;         // { ecdh, salt }: its current instance
        this.retired = new Set();   // salts of its earlier instances
        this.sendKey = null;        // AES-GCM, us to it
        this.recvKey = null;        // AES-GCM, it to us
        this.highest = -1;          // replay window of what came under recvKey
        this.seen = new Set();
        this.keyWait = null;        // { promise, resolve, reject, timer, waiting }
        this.sent = [];             // { n, salt, type, body, at }: kept for a rekey
        this.rekeyed = '';          // the stale (from, to) we last asked a rekey for
        this.out = Promise.resolve();
        this.in = Promise.resolve();
        this.queued = 0;            // send()s not yet written
        this.finalWanted = null;    // { type, body } of prepareFinal()
        this.final = null;          // { type, body, key, salt, n, raw }: sealed
        this.sealing = false;
    }
}

/**
 * The E2E sessions of one DwrtcClient instance: its ECDH keys and salt,
 * and what it knows of each peer. Touched only from the client's event
 * loop; every step of a peer's sending and receiving runs in order on that
 * peer's two promise chains.
 *
 * `host` is the client: { ownedId, identity, isOpen(), whenOpen(),
 * sendRaw(type, to, body), deliver(msg), refused(sender, reason, msg),
 * noKey(recipient, reason, count) }.
 */
export class E2eSessions {
    #host;
    #keyTimeout;
    #self = null;           // { ecdh, ecdhHex, keyHex, salt, signature }
    #counter = 0;
    #peers = new Map();

    constructor(host, { keyTimeout }) {
        this.#host = host;
        this.#keyTimeout = keyTimeout;
    }

    /** Makes this instance's ECDH key pair, salt and signed announcement. */
    async start() {
        if (this.#self) {
            return;
        }
        const s = subtle();
        const ecdh = await s.generateKey(ECDH, false, ['deriveBits']);
        const ecdhHex = hexOf(await s.exportKey('raw', ecdh.publicKey));
        const keyHex = hexOf(await s.exportKey('raw', this.#host.identity.publicKey));
        const salt = hexOf(globalThis.crypto.getRandomValues(new Uint8Array(SALT_BYTES)));
        const signature = await this.#sign(ecdhHex, salt, '');
        this.#self = { ecdh, ecdhHex, keyHex, salt, signature };
    }

    /**
     * Sends a message to the key-owned id `to`, encrypted, once its key is
     * known (asked for now if it is not). Throws when too many wait.
     */
    send(to, type, body) {
        const p = this.#peer(to);
        if (!p.sendKey && p.keyWait && p.keyWait.waiting >= PENDING_LIMIT) {
            throw new Error(`${PENDING_LIMIT} messages already wait for the end-to-end key of ${to}`);
        }
        const wait = p.sendKey ? null : this.#expectKey(p, true);
        if (wait) {
            wait.waiting++;
        }
        p.queued++;
        p.out = p.out.then(async () => {
            let key;
            try {
                // the wait this message was counted in, so a wait that
                // failed fails each of its messages once
                key = p.sendKey ?? await (wait ?? this.#expectKey(p, true)).promise;
            } catch {
                return;     // no key: reported once, by #failKey
            }
            await this.#write(p, key, type, body);
        }).catch(() => {}).finally(() => {
            p.queued--;
        });
    }

    /**
     * Seals now, and again as keys and counters move on, the one message
     * sendFinal() may have to send to `to` at once: a page that goes away
     * (pagehide) has no later task in which WebCrypto could answer (Firefox
     * runs none), so its hang-up must be ciphertext already. Each sealing
     * takes a counter of its own, used for nothing else.
     */
    prepareFinal(to, type, body) {
        const p = this.#peer(to);
        p.finalWanted = { type, body };
        this.#sealFinal(p);
    }

    /** Forgets what prepareFinal() sealed for `to`. */
    dropFinal(to) {
        const p = this.#peers.get(to);
        if (p) {
            p.finalWanted = null;
            p.final = null;
        }
    }

    /**
     * Sends type/body to `to` now, without waiting for a later task, if it
     * is what prepareFinal() sealed for it, under its current keys, and
     * nothing sent earlier still waits (it would arrive after); false if
     * not, for send() to do.
     */
    sendFinal(to, type, body) {
        const p = this.#peers.get(to);
        const f = p?.final;
        if (!f || f.type !== type || f.body !== body || p.queued > 0 || f.key !== p.sendKey
            || f.salt !== p.remote?.salt || !this.#host.isOpen()) {
            return false;
        }
        p.final = null;     // its counter is spent
        p.finalWanted = null;
        this.#host.sendRaw(E2E_MESSAGE_TYPE, p.id, f.raw);
        return true;
    }

    #sealFinal(p) {
        if (p.sealing) {
            return;
        }
        p.sealing = true;
        p.out = p.out.then(async () => {
            const want = p.finalWanted;
            if (!want) {
                return;
            }
            const key = await this.#keyFor(p);
            const n = this.#counter++;
            const plain = utf8.encode(JSON.stringify({ type: want.type, body: want.body }));
            const ct = await subtle().encrypt({ name: 'AES-GCM', iv: nonceOf(n) }, key, plain);
            if (p.finalWanted === want) {
                const salt = p.remote.salt;
                p.final = { ...want, key, salt, n, raw: JSON.stringify({
                    v: VERSION, from: this.#self.salt, to: salt, n, ct: base64Of(ct),
                }) };
            }
        }).catch(() => {}).finally(() => {
            p.sealing = false;
        });
    }

    /**
     * A message from the node that is not the node's own: an E2E message, a
     * key announcement, or plaintext. Delivered through host.deliver (in
     * order per sender), or refused through host.refused.
     */
    receive(msg, { require }) {
        const from = msg.senderSessionId;
        if (typeof from !== 'string' || !/^k[0-9a-f]{48}$/i.test(from)) {
            // a session that owns no key cannot speak E2E
            if (msg.type === E2E_KEY_TYPE || msg.type === E2E_MESSAGE_TYPE) {
                this.#host.refused(from ?? null, 'from a session that owns no key', msg);
            } else if (require) {
                this.#host.refused(from ?? null, 'not encrypted', msg);
            } else {
                this.#host.deliver({ ...msg, encrypted: false });
            }
            return;
        }
        const p = this.#peer(from);
        p.in = p.in.then(async () => {
            if (msg.type === E2E_KEY_TYPE) {
                await this.#onKey(p, msg);
            } else if (msg.type === E2E_MESSAGE_TYPE) {
                await this.#onMessage(p, msg);
            } else if (require) {
                this.#host.refused(from, 'not encrypted', msg);
            } else if (p.remote) {
                // it spoke E2E with us: plaintext in its name is not its own
                this.#host.refused(from, 'not encrypted, from a peer that encrypts', msg);
            } else {
                this.#host.deliver({ ...msg, encrypted: false });
            }
        }).catch((err) => {
            this.#host.refused(from, `not handled: ${err?.message ?? err}`, msg);
        });
    }

    /**
     * The client was closed: messages still waiting for a key are dropped
     * without an error, and no timer is left running.
     */
    stop() {
        for (const p of this.#peers.values()) {
            const wait = p.keyWait;
            if (wait && wait.timer !== null) {
                clearTimeout(wait.timer);
                p.keyWait = null;
                wait.reject(new Error('client closed'));
            }
        }
    }

    /** The node's error about a recipient: a key request it could not deliver. */
    nodeError(recipient, code, definitive) {
        const p = recipient ? this.#peers.get(recipient) : null;
        if (p?.keyWait && definitive) {
            this.#failKey(p, code);
        }
    }

    // --- sending ---------------------------------------------------------

    #peer(id) {
        let p = this.#peers.get(id);
        if (!p) {
            p = new Peer(id);
            this.#peers.set(id, p);
        }
        return p;
    }

    // The wait for p's key; with `ask`, starts it by sending our request.
    #expectKey(p, ask) {
        if (p.keyWait) {
            return p.keyWait;
        }
        const wait = { waiting: 0, timer: null };
        wait.promise = new Promise((resolve, reject) => {
            wait.resolve = resolve;
            wait.reject = reject;
        });
        wait.promise.catch(() => {});
        p.keyWait = wait;
        if (ask) {
            this.#announce(p.id, 'request', '');
            wait.timer = setTimeout(() => {
                this.#failKey(p, `no answer within ${this.#keyTimeout} ms`);
            }, this.#keyTimeout);
        }
        return wait;
    }

    #keyFor(p) {
        return p.sendKey ? Promise.resolve(p.sendKey) : this.#expectKey(p, true).promise;
    }

    #failKey(p, reason) {
        const wait = p.keyWait;
        if (!wait) {
            return;
        }
        clearTimeout(wait.timer);
        p.keyWait = null;
        wait.reject(new Error(reason));
        this.#host.noKey(p.id, reason, wait.waiting);
    }

    #keyKnown(p) {
        const wait = p.keyWait;
        if (wait) {
            clearTimeout(wait.timer);
            p.keyWait = null;
            wait.resolve(p.sendKey);
        }
    }

    async #write(p, key, type, body) {
        if (!this.#host.isOpen()) {
            try {
                await this.#host.whenOpen();
            } catch {
                return;     // the client was closed
            }
        }
        if (p.sendKey !== key) {
            key = await this.#keyFor(p);    // the peer changed its keys meanwhile
        }
        const n = this.#counter++;
        const plain = utf8.encode(JSON.stringify({ type, body }));
        const ct = await subtle().encrypt({ name: 'AES-GCM', iv: nonceOf(n) }, key, plain);
        const salt = p.remote.salt;
        this.#host.sendRaw(E2E_MESSAGE_TYPE, p.id, JSON.stringify({
            v: VERSION, from: this.#self.salt, to: salt, n, ct: base64Of(ct),
        }));
        const now = Date.now();
        p.sent.push({ n, salt, type, body, at: now });
        while (p.sent.length > RETAIN_COUNT || (p.sent.length && now - p.sent[0].at > RETAIN_MS)) {
            p.sent.shift();
        }
        // the final message must still be in the peer's replay window, and
        // under the peer's keys of now
        const f = p.final;
        if (p.finalWanted && (!f || f.key !== key || f.salt !== salt
                              || n - f.n >= REPLAY_WINDOW / 2)) {
            this.#sealFinal(p);
        }
    }

    // The peer's new instance could not read what we sent its earlier one
    // from counter `from` on: send that again, under its new keys.
    #resend(p, from) {
        p.out = p.out.then(async () => {
            const now = Date.now();
            const again = p.sent.filter((m) => m.salt !== p.remote.salt && m.n >= from
                                             && now - m.at <= RETAIN_MS);
            p.sent = p.sent.filter((m) => !again.includes(m));
            for (const m of again) {
                await this.#write(p, p.sendKey, m.type, m.body);
            }
        }).catch(() => {});
    }

    async #sign(ecdhHex, salt, ref) {
        const text = announcementText(this.#host.ownedId, ecdhHex, salt, ref);
        const sig = await subtle().sign(ECDSA_SIGN, this.#host.identity.privateKey,
                                        utf8.encode(text));
        return hexOf(sig);
    }

    async #announce(to, op, ref) {
        const self = this.#self;
        const signature = ref ? await this.#sign(self.ecdhHex, self.salt, ref) : self.signature;
        const body = { v: VERSION, op, key: self.keyHex, ecdh: self.ecdhHex, salt: self.salt,
                       signature };
        if (ref) {
            body.ref = ref;
        }
        this.#host.sendRaw(E2E_KEY_TYPE, to, JSON.stringify(body));
    }

    // --- receiving -------------------------------------------------------

    // Checks an announcement: its key gives the sender's id, its signature
    // holds. Returns the reason it does not, or null.
    async #check(from, a) {
        if (a === null || a.v !== VERSION || !['request', 'response', 'rekey'].includes(a.op)
            || typeof a.key !== 'string' || !HEX_KEY.test(a.key)
            || typeof a.ecdh !== 'string' || !HEX_KEY.test(a.ecdh)
            || typeof a.salt !== 'string' || !HEX_SALT.test(a.salt)
            || typeof a.signature !== 'string' || !HEX_SIGNATURE.test(a.signature)
            || (a.ref !== undefined && (typeof a.ref !== 'string' || !REF.test(a.ref)))) {
            return 'not a key announcement';
        }
        const s = subtle();
        const raw = bytesOf(a.key);
        const digest = hexOf(await s.digest('SHA-256', raw));
        if (`k${digest.slice(0, 48)}` !== from.toLowerCase()) {
            return 'its key does not give the sender\'s id';
        }
        let identity;
        try {
            identity = await s.importKey('raw', raw, ECDSA, false, ['verify']);
        } catch {
            return 'its key is not a P-256 key';
        }
        const text = announcementText(from, a.ecdh, a.salt, a.ref ?? '');
        const good = await s.verify(ECDSA_SIGN, identity, bytesOf(a.signature), utf8.encode(text));
        return good ? null : 'its signature does not hold';
    }

    async #onKey(p, msg) {
        const a = parseJson(msg.messageBody);
        const why = await this.#check(p.id, a);
        if (why) {
            this.#host.refused(p.id, `key announcement refused: ${why}`, msg);
            return;
        }
        if (p.retired.has(a.salt)) {
            this.#host.refused(p.id, 'key announcement refused: one of an earlier session', msg);
            return;
        }
        if ((!p.remote || p.remote.salt !== a.salt || p.remote.ecdhHex !== a.ecdh)
            && !await this.#rekey(p, a)) {
            return;
        }
        if (a.op === 'request' || a.op === 'rekey') {
            await this.#announce(p.id, 'response', '');
        }
        const ref = a.op === 'rekey' ? REF.exec(a.ref ?? '') : null;
        if (ref && ref[1] === this.#self.salt) {
            this.#resend(p, Number(ref[2]));
        }
    }

    // The peer's (new) instance: its keys, from now on.
    async #rekey(p, a) {
        let ecdh;
        try {
            ecdh = await subtle().importKey('raw', bytesOf(a.ecdh), ECDH, true, []);
        } catch {
            this.#host.refused(p.id, 'key announcement refused: its ECDH key is not a P-256 key',
                               null);
            return false;
        }
        if (p.remote) {
            p.retired.add(p.remote.salt);
        }
        // what is sent from here on waits for the new keys
        p.sendKey = null;
        p.recvKey = null;
        this.#expectKey(p, false);
        const self = this.#self;
        const me = this.#host.ownedId;
        const s = subtle();
        let sendKey;
        let recvKey;
        try {
            const secret = await s.deriveBits({ name: 'ECDH', public: ecdh }, self.ecdh.privateKey,
                                              256);
            const hkdf = await s.importKey('raw', secret, 'HKDF', false, ['deriveKey']);
            const derive = (salt, info, use) => s.deriveKey(
                { name: 'HKDF', hash: 'SHA-256', salt: bytesOf(salt), info: utf8.encode(info) },
                hkdf, { name: 'AES-GCM', length: 256 }, false, [use]);
            sendKey = await derive(self.salt + a.salt, `dwrtc-e2e-v1\n${me}\n${p.id}`, 'encrypt');
            recvKey = await derive(a.salt + self.salt, `dwrtc-e2e-v1\n${p.id}\n${me}`, 'decrypt');
        } catch (err) {
            this.#failKey(p, `no keys derived: ${err?.message ?? err}`);
            return false;
        }
        p.remote = { ecdhHex: a.ecdh, salt: a.salt };
        p.sendKey = sendKey;
        p.recvKey = recvKey;
        p.highest = -1;
        p.seen.clear();
        this.#keyKnown(p);
        return true;
    }

    async #onMessage(p, msg) {
        const e = parseJson(msg.messageBody);
        if (e === null || e.v !== VERSION || typeof e.from !== 'string' || !HEX_SALT.test(e.from)
            || typeof e.to !== 'string' || !HEX_SALT.test(e.to)
            || !Number.isSafeInteger(e.n) || e.n < 0 || typeof e.ct !== 'string') {
            this.#host.refused(p.id, 'not an end-to-end message', msg);
            return;
        }
        if (e.to !== this.#self.salt) {
            // encrypted for an earlier instance of this client (before a
            // reload): ask the sender to send it again, under our keys
            const stale = `${e.from}:${e.to}`;
            if (p.rekeyed !== stale) {
                p.rekeyed = stale;
                await this.#announce(p.id, 'rekey', `${e.from}:${e.n}`);
            }
            return;
        }
        if (!p.remote || !p.recvKey || e.from !== p.remote.salt) {
            this.#host.refused(p.id, 'under a key this client does not know', msg);
            return;
        }
        if (e.n <= p.highest - REPLAY_WINDOW || p.seen.has(e.n)) {
            this.#host.refused(p.id, 'replayed', msg);
            return;
        }
        let plain;
        try {
            const ct = bytesOfBase64(e.ct);
            plain = await subtle().decrypt({ name: 'AES-GCM', iv: nonceOf(e.n) }, p.recvKey, ct);
        } catch {
            this.#host.refused(p.id, 'does not decrypt: altered, or not made by the sender', msg);
            return;
        }
        p.seen.add(e.n);
        if (e.n > p.highest) {
            p.highest = e.n;
            if (p.seen.size > 2 * REPLAY_WINDOW) {
                for (const n of p.seen) {
                    if (n <= p.highest - REPLAY_WINDOW) {
                        p.seen.delete(n);
                    }
                }
            }
        }
        let inner;
        try {
            inner = JSON.parse(fromUtf8.decode(plain));
        } catch {
            inner = null;
        }
        if (inner === null || typeof inner !== 'object' || typeof inner.type !== 'string'
            || inner.type === '' || inner.type.startsWith('WebSocket')
            || inner.type.startsWith(E2E_PREFIX) || typeof inner.body !== 'string') {
            this.#host.refused(p.id, 'not a message inside', msg);
            return;
        }
        this.#host.deliver({ type: inner.type, senderSessionId: msg.senderSessionId,
                             recipientSessionId: msg.recipientSessionId,
                             messageBody: inner.body, encrypted: true });
    }
}

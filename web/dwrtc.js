/*
 * SPDX-License-Identifier: MIT (see LICENSE beside this file)
 *
 * dwrtc.js: the browser client of DWRTC, decentralized WebRTC signaling.
 *
 * An ES module with no dependencies and no build step. It speaks the client
 * protocol of a DWRTC node (an nginx location with `dwrtc_signal`) and sets
 * up calls on the browser's own RTCPeerConnection.
 *
 *   import { DwrtcClient } from './dwrtc.js';
 *
 *   const client = new DwrtcClient();
 *   client.addEventListener('id', (e) => console.log('my id', e.detail.id));
 *   await client.connect(['./signal', 'wss://other.example/signal']);
 *
 *   // call someone (they may be on any node of the network)
 *   const stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
 *   const call = client.call(partnerId, { stream, dataChannel: true });
 *   call.addEventListener('remotestream', (e) => { video.srcObject = e.detail.stream; });
 *
 *   // or answer
 *   client.addEventListener('incomingcall', (e) => e.detail.call.answer({ stream }));
 *
 * Every event is a CustomEvent; what it carries is in `event.detail`.
 * TypeScript declarations of all of this are in dwrtc.d.ts, beside this file.
 *
 * Events of DwrtcClient
 * ---------------------
 *   state         The connection to the node changed state.
 *                 detail: { state, previous, url, attempt, retryIn, reason }
 *                 (url: the node this state is about: for 'disconnected'
 *                 the one lost or failed; the next attempt's URL comes with
 *                 its 'connecting')
 *                 state is one of
 *                   'idle'          before connect()
 *                   'connecting'    a WebSocket to `url` is being opened
 *                   'open'          the node welcomed us; `id` is valid
 *                   'disconnected'  no connection; the next attempt (maybe to
 *                                   the next URL) starts in `retryIn` ms.
 *                                   `reason` says what went wrong, `attempt`
 *                                   counts failed attempts in a row (0 after
 *                                   an open session that lasted was lost;
 *                                   see options.stableAfter).
 *                   'closed'        close() was called; nothing more happens
 *   id            The node gave us a session id: after the first connect and
 *                 after every reconnect. A node-assigned id is new with
 *                 every session; with options.identity the id is the
 *                 key's (see ownedIdOf) and the same after every
 *                 reconnect, on any node.
 *                 detail: { id, previousId, nodeId, url, iceServers, owned,
 *                           nodeSessionId }
 *                 (owned: whether id is key-owned; nodeSessionId: the id
 *                 the node gave this session, the same as id when not
 *                 owned)
 *   message       A message from another session, as the node delivered it.
 *                 detail: { type, senderSessionId, recipientSessionId,
 *                           messageBody }
 *                 Call signaling ('SignalingMessage') never shows up here:
 *                 the calls handle it, and 'signaling' shows it. With
 *                 options.e2e, detail also has `encrypted`: true if it
 *                 came end-to-end encrypted (decrypted and authenticated
 *                 here), false if it came as plaintext; the key exchange
 *                 and the ciphertext never show up.
 *   signaling     A message of call signaling ('SignalingMessage'), as it
 *                 came, before the calls handle it (same detail as
 *                 'message'): for logs and tests; apps need not listen.
 *   error         The node reported an error (a WebSocketErrorMessage).
 *                 detail: { error, recipientSessionId, message }
 *                 error is the node's text, one of ErrorCode (below):
 *                 'not found' (no such recipient, or its node left;
 *                 recipientSessionId names it), 'unreachable' (its node
 *                 could not be reached, or the link broke with the message
 *                 on it: try again shortly), 'queue full', 'rate limited',
 *                 'not sent: node unavailable', or 'invalid message: <why>'
 *                 (docs/web-developers.md, "What each error means");
 *                 errorCodeOf(error) gives the ErrorCode without the <why>.
 *                 `message` is the whole message from the node. A frame
 *                 from the node that is not JSON gives error 'unparsable
 *                 message from the node' (ErrorCode.UNPARSABLE; message:
 *                 its text). With options.e2e, two errors of the client's
 *                 own: 'e2e refused' (ErrorCode.E2E_REFUSED: what arrived
 *                 did not hold and was not delivered; detail adds
 *                 senderSessionId and reason) and 'no e2e key'
 *                 (ErrorCode.E2E_NO_KEY: the recipient's key did not come,
 *                 `count` messages were not sent; detail adds reason).
 *   room          Who is in a room we joined (join()): event 'members' with the
 *                 whole list when we joined (again after a reconnect), then
 *                 'join' and 'leave' as others come and go, on any node.
 *                 detail: { room, event, id, members } (id: who joined or
 *                 left, null for 'members'; members: the list after it)
 *   incomingcall  Someone called us: an offer from a session we are not in a
 *                 call with. Answer with detail.call.answer(options) or
 *                 refuse with detail.call.hangup('busy'). With the client's
 *                 autoAnswer option the call is already answered (its state
 *                 is no longer 'ringing'): listen to it here; a call that
 *                 autoAnswer refused as busy is not announced.
 *                 detail: { call, from }
 *
 * Events of DwrtcCall
 * -------------------
 *   state         The call changed state. detail: { state, previous }
 *                 state is 'ringing' (incoming, not answered yet), then the
 *                 RTCPeerConnection's connectionState ('new', 'connecting',
 *                 'connected', 'disconnected', 'failed'), and finally
 *                 'ended'.
 *   track         A remote track arrived. detail: { track, streams }
 *   remotestream  The partner's media stream is known (first track), or
 *                 changed. detail: { stream }
 *   datachannel   A data channel exists: the one this side created (caller;
 *                 sent just after call() returns, and call.dataChannel has it
 *                 at once) or the partner's (callee). detail: { channel }
 *                 When both sides call each other at once, one of them
 *                 becomes the callee: its own channel closes and this event
 *                 brings the partner's. call.dataChannel is the latest.
 *   error         Something went wrong in the call; it may still go on.
 *                 detail: { error, reason } (error: an Error, or the node's
 *                 error text about the partner: ErrorCode.NOT_FOUND when
 *                 the partner's session does not exist, or NOT_BACK_IN_TIME
 *                 when a key-owned partner stayed away too long; both end
 *                 the call)
 *   hangup        The call ended. detail: { by, reason }
 *                 by: 'local' (hangup() here), 'remote' (the partner hung
 *                 up), or 'error' (reason: the error code, e.g.
 *                 ErrorCode.NOT_FOUND, or 'connection lost' when the media
 *                 connection stayed lost for options.callLostTimeout)
 *
 * Wire protocol (compatible with the original DWRTC clients): the node
 * welcomes with {"type":"WebSocketIdMessage","id":ID,"challenge":C,
 * "time":T,"iceServers":[...]}; with an identity we then claim our key's id
 * with {"type":"WebSocketClaimMessage","key":K,"time":T,"signature":S} and
 * the node answers {"type":"WebSocketIdMessage","id":OWNED,"owned":true,
 * "nodeSessionId":ID} (docs/web-developers.md, "Ids that last");
 * we send {"type":T,"recipientSessionId":R,"messageBody":B}; calls use type
 * "SignalingMessage" with B = JSON text of {"type":"offer"|"answer","sdp"},
 * {"type":"candidate","candidate":{...}} or {"type":"hangup","reason"}.
 * With options.e2e, messages to key-owned ids go as types "DwrtcE2eKey"
 * (signed key announcements) and "DwrtcE2eMessage" (ciphertext); see
 * dwrtc-e2e.js.
 */

import { E2eSessions, E2E_PREFIX } from './dwrtc-e2e.js';

/** Message type of call signaling (SDP, ICE candidates, hang-up). */
export const SIGNALING_TYPE = 'SignalingMessage';
// the body of the hang-up a page sends when it goes away (DwrtcCall#send's JSON)
const LEAVE_BODY = JSON.stringify({ type: 'hangup', reason: 'left' });
// Node errors after which a call being set up sends its description again
// (the node may deliver it a moment later), and how many times.
const RETRIED_ERRORS = new Set(['unreachable', 'queue full', 'rate limited',
                                'not sent: node unavailable']);
const CALL_RETRIES = 3;
const ENDED_CALL_ERRORS_MS = 10_000;

const WELCOME_TYPE = 'WebSocketIdMessage';
const ROOM_TYPE = 'WebSocketRoomMessage';
const ERROR_TYPE = 'WebSocketErrorMessage';
const RESERVED_PREFIX = 'WebSocket';

/**
 * The errors of the `error` events, by name: the texts a node sends in its
 * WebSocketErrorMessage (they are the wire protocol; docs/web-developers.md,
 * "What each error means"), and the client's own for a frame it cannot
 * read. An invalid message comes as 'invalid message: <why>': compare with
 * errorCodeOf(error), which gives INVALID_MESSAGE for it. (dwrtc.d.ts
 * declares each value as its literal type, and `ErrorCode` as the type of
 * any of them.)
 */
export const ErrorCode = Object.freeze({
    NOT_FOUND: 'not found',                         // no such recipient, or its node left
    UNREACHABLE: 'unreachable',                     // its node could not be reached
    QUEUE_FULL: 'queue full',                       // too many wait for that recipient
    RATE_LIMITED: 'rate limited',                   // the sender exceeded dwrtc_rate
    NODE_UNAVAILABLE: 'not sent: node unavailable', // the sender's node is stopping
    NOT_BACK_IN_TIME: 'not back in time',           // a key-owned recipient stayed away too long
    CLAIM_REFUSED: 'claim refused',                 // sent as 'claim refused: <why>'
    TAKEN_OVER: 'id taken over by a newer session', // our id is in use by a newer session
    ROOM_FULL: 'room full',                         // the room has dwrtc_room_members members
    TOO_MANY_ROOMS: 'too many rooms',               // this session is in dwrtc_rooms_per_session
    INVALID_MESSAGE: 'invalid message',             // sent as 'invalid message: <why>'
    UNKNOWN: 'unknown error',                       // an error message without a text
    UNPARSABLE: 'unparsable message from the node', // a frame that is not JSON
    E2E_REFUSED: 'e2e refused',                     // options.e2e: a message or key that did not hold
    E2E_NO_KEY: 'no e2e key',                       // options.e2e: the recipient's key did not come
    E2E_ID_LOST: 'e2e id lost',                     // options.e2e: not sent, this page lost its key's id
    NO_NODE: 'no node answered',                    // connect(): every node URL failed once
});

const ERROR_CODES = new Set(Object.values(ErrorCode));

/**
 * The ErrorCode of an error text of an `error` event: the text itself when
 * it is one of ErrorCode's, INVALID_MESSAGE for 'invalid message: <why>',
 * and null for anything else (an Error, or a text this version does not
 * know).
 *
 * @param {unknown} error
 * @returns {string | null} one of ErrorCode's values, or null
 */
export function errorCodeOf(error) {
    if (typeof error !== 'string') {
        return null;
    }
    if (ERROR_CODES.has(error)) {
        return error;
    }
    if (error.startsWith(`${ErrorCode.INVALID_MESSAGE}: `)) {
        return ErrorCode.INVALID_MESSAGE;
    }
    if (error.startsWith(`${ErrorCode.CLAIM_REFUSED}: `)) {
        return ErrorCode.CLAIM_REFUSED;
    }
    return null;
}

/** Default reconnection backoff; see DwrtcClient options. */
export const DEFAULT_BACKOFF = Object.freeze({
    initial: 500,       // ms before the first retry
    max: 30_000,        // no wait is longer than this
    factor: 2,          // each failed attempt in a row multiplies the wait
    jitter: 0.5,        // the wait is randomly shortened by up to this share
});

/**
 * The WebSocket URL of a signaling location. Relative URLs are resolved
 * against `base` (by default the page's location), and http:/https: become
 * ws:/wss:, so `'./signal'` on https://example.com/app/ gives
 * wss://example.com/app/signal.
 *
 * @param {string} url
 * @param {string} [base] page URL; default `location.href` in a browser
 * @returns {string}
 */
export function signalUrl(url, base = globalThis.location?.href) {
    const u = base === undefined ? new URL(url) : new URL(url, base);
    if (u.protocol === 'http:') {
        u.protocol = 'ws:';
    } else if (u.protocol === 'https:') {
        u.protocol = 'wss:';
    } else if (u.protocol !== 'ws:' && u.protocol !== 'wss:') {
        throw new TypeError(`not a WebSocket or HTTP URL: ${url}`);
    }
    u.hash = '';
    return u.href;
}

/**
 * The node part of a node-assigned session id: its 32 hex digits before
 * the dash. Sessions on the same DWRTC node (nginx worker) share it. A
 * key-owned id names no node: null.
 *
 * @param {string} sessionId
 * @returns {string | null}
 */
export function nodeIdOf(sessionId) {
    if (isOwnedId(sessionId)) {
        return null;
    }
    return String(sessionId).slice(0, 32).toLowerCase();
}

const NODE_SESSION_ID = /^[0-9a-f]{32}-[0-9a-f]{16}$/i;
const OWNED_ID = /^k[0-9a-f]{48}$/i;

/**
 * True if `text` has the form of a session id: one a node assigned (the
 * node's id, 32 hex digits, a dash, 16 random hex digits) or a key-owned
 * one ('k' and 48 hex digits, see ownedIdOf).
 *
 * @param {string} text
 * @returns {boolean}
 */
export function isSessionId(text) {
    return typeof text === 'string' && (NODE_SESSION_ID.test(text) || OWNED_ID.test(text));
}

/**
 * True if `text` has the form of a key-owned id.
 *
 * @param {string} text
 * @returns {boolean}
 */
export function isOwnedId(text) {
    return typeof text === 'string' && OWNED_ID.test(text);
}

const ECDSA = Object.freeze({ name: 'ECDSA', namedCurve: 'P-256' });
const ECDSA_SIGN = Object.freeze({ name: 'ECDSA', hash: 'SHA-256' });
const KEY_DB = 'dwrtc';
const KEY_STORE = 'keys';

function hexOf(buffer) {
    return [...new Uint8Array(buffer)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

function subtle() {
    const s = globalThis.crypto?.subtle;
    if (!s) {
        throw new Error('no WebCrypto here (a page must be served over https or from localhost)');
    }
    return s;
}

/**
 * The id a key pair owns: 'k' and the first 48 hex digits of the SHA-256 of
 * its public key (uncompressed P-256 point). Every node derives it the same
 * way, so it is known before connecting and is the same on every node.
 *
 * @param {CryptoKeyPair} keyPair an ECDSA P-256 key pair
 * @returns {Promise<string>}
 */
export async function ownedIdOf(keyPair) {
    const raw = await subtle().exportKey('raw', keyPair.publicKey);
    const digest = await subtle().digest('SHA-256', raw);
    return `k${hexOf(digest).slice(0, 48)}`;
}

/**
 * A new ECDSA P-256 key pair whose private key cannot be exported: it
 * can sign claims, and nothing on the page can read it out.
 *
 * @returns {Promise<CryptoKeyPair>}
 */
export function generateIdentity() {
    return subtle().generateKey(ECDSA, false, ['sign', 'verify']);
}

function keyDb() {
    return new Promise((resolve, reject) => {
        const open = globalThis.indexedDB.open(KEY_DB, 1);
        open.onupgradeneeded = () => open.result.createObjectStore(KEY_STORE);
        open.onsuccess = () => resolve(open.result);
        open.onerror = () => reject(open.error);
    });
}

function keyDbRequest(db, mode, run) {
    return new Promise((resolve, reject) => {
        const tx = db.transaction(KEY_STORE, mode);
        const req = run(tx.objectStore(KEY_STORE));
        tx.oncomplete = () => resolve(req.result);
        tx.onerror = () => reject(tx.error);
        tx.onabort = () => reject(tx.error);
    });
}

/**
 * The key pair stored under `name` in this origin's IndexedDB, made and
 * stored on first use. The private key is not extractable: the browser
 * keeps it, the page can only sign with it. Another page of the same
 * origin gets the same pair (and so the same id); pick another name for
 * a second identity.
 *
 * @param {string} [name='default']
 * @returns {Promise<CryptoKeyPair>}
 */
export async function loadIdentity(name = 'default') {
    if (!globalThis.indexedDB) {
        throw new Error('no IndexedDB here to keep an identity in; pass a CryptoKeyPair');
    }
    const db = await keyDb();
    try {
        const stored = await keyDbRequest(db, 'readonly', (s) => s.get(name));
        if (stored?.privateKey && stored?.publicKey) {
            return stored;
        }
        const made = await generateIdentity();
        await keyDbRequest(db, 'readwrite', (s) => s.put(made, name));
        return made;
    } finally {
        db.close();
    }
}

/**
 * The wait before the next connection attempt: exponential in the number of
 * failed attempts in a row, capped, with random jitter (so many clients of a
 * node that went away do not all come back at the same moment).
 *
 * @param {number} failures failed attempts in a row (0: an open session
 *        was lost); 0 and 1 wait `initial`, each further one `factor` times
 *        longer, up to `max`
 * @param {typeof DEFAULT_BACKOFF} [backoff]
 * @param {() => number} [random] in [0, 1)
 * @returns {number} milliseconds
 */
export function backoffDelay(failures, backoff = DEFAULT_BACKOFF, random = Math.random) {
    const b = { ...DEFAULT_BACKOFF, ...backoff };
    const full = Math.min(b.max, b.initial * b.factor ** Math.max(0, failures - 1));
    return Math.round(full * (1 - b.jitter * random()));
}

/**
 * A connection to a DWRTC node, with reconnection and failover. See the
 * events at the top of this file.
 *
 * @extends EventTarget
 */
export class DwrtcClient extends EventTarget {
    #WebSocket;
    #RTCPeerConnection;
    #base;
    #backoff;
    #openTimeout;
    #callLostTimeout;
    #stableAfter;
    #fallbackIceServers;
    #autoAnswer;
    #identityOption;
    #e2eOption;
    #e2eKeyTimeout;
    #claimClockSkew;
    #e2e = null;            // E2eSessions, with options.e2e once the identity is loaded

    #identity = null;       // CryptoKeyPair, once loaded
    #ownedId = null;        // its id
    #claimPending = false;  // a claim is out; the welcome waits for its answer
    #idLost = null;         // why this session speaks as the node's id, not the key's
    #lastClaimTime = 0;
    #nodeSessionId = null;
    #rooms = new Map();     // room -> { members: Set, waiters: [{resolve, reject}] }
    #urls = [];
    #index = 0;
    #failures = 0;
    #openedAt = 0;
    #ws = null;
    #openTimer = null;
    #retryTimer = null;
    #state = 'idle';
    #id = null;
    #lastId = null;
    #iceServers = [];
    #waiters = [];
    // connect()'s own promise, until the first welcome or until every URL
    // failed once (then it rejects; the client keeps trying meanwhile).
    #connectWaiter = null;
    // Calls that ended lately, by partner: the errors they heard, and until
    // when more of the same are no news (their queued signaling's).
    #endedCalls = new Map();
    #calls = new Map();

    /**
     * @param {object} [options]
     * @param {typeof WebSocket} [options.WebSocket] WebSocket constructor
     *        (default the global one; in Node.js pass the `ws` package's)
     * @param {typeof RTCPeerConnection} [options.RTCPeerConnection] for calls
     *        (default the global one)
     * @param {string} [options.base] base for relative node URLs (default
     *        the page's location)
     * @param {Partial<typeof DEFAULT_BACKOFF>} [options.backoff] reconnection
     *        waits: { initial, max, factor, jitter }
     * @param {number} [options.openTimeout=10000] ms to wait for the node's
     *        welcome before giving up on a connection attempt
     * @param {number} [options.stableAfter=5000] a session that was open for
     *        less than this many ms counts as a failed attempt when it is
     *        lost (backoff grows, next URL), so a node that welcomes and
     *        drops at once is not hammered; a longer one is retried on the
     *        same node after `backoff.initial` ms
     * @param {RTCIceServer[]} [options.iceServers] ICE servers for calls when
     *        the node sends none (the node's list wins when present)
     * @param {boolean|CallOptions} [options.autoAnswer=false] answer incoming
     *        calls at once (with these options) when no other call is
     *        active, then announce them in 'incomingcall'; a call that comes
     *        in during another one is refused with hangup('busy')
     * @param {boolean|string|CryptoKeyPair} [options.identity=false] own an
     *        id by a key, so that it stays the same across reloads,
     *        reconnects and nodes: true keeps a key pair in IndexedDB under
     *        'default' (made on first use), a string under that name, or
     *        pass an ECDSA P-256 CryptoKeyPair. false: the node assigns a
     *        new id to every session.
     * @param {boolean|'require'|'prefer'} [options.e2e=false] with an
     *        identity: encrypt messages (call signaling included) end to end
     *        to key-owned ids, and refuse what arrives altered, replayed or
     *        in plaintext from a peer that encrypts. A message to a
     *        key-owned id is never sent in plaintext: while this session
     *        could not claim its key's id (claim refused, id taken over),
     *        send() throws an Error whose code is ErrorCode.E2E_ID_LOST.
     *        'require' also refuses to send or take plaintext at all;
     *        'prefer' sends such messages in plaintext instead of throwing
     *        (the behaviour of earlier versions). See
     *        docs/web-developers.md, "End-to-end encryption".
     * @param {number} [options.e2eKeyTimeout=35000] ms to wait for a
     *        recipient's key before its waiting messages fail with
     *        ErrorCode.E2E_NO_KEY
     * @param {number} [options.callLostTimeout=8000] a call whose media
     *        connection stays 'disconnected' or 'failed' this many ms ends
     *        (hangup by 'error', reason 'connection lost'; the partner is
     *        sent the hang-up): a partner whose browser or network died
     *        would otherwise leave the call 'failed' for good
     * @param {number} [options.claimClockSkew=120000] with an identity: the
     *        claim of the key's id is signed with the time of the node's
     *        welcome, so a welcome whose time is further than this many ms
     *        from this device's clock is not signed (the id is not claimed
     *        on that session, and an 'error' event says why): a node that
     *        gave a time far ahead would hold a claim that outranks this
     *        key's later ones until that time
     */
    constructor(options = {}) {
        super();
        this.#WebSocket = options.WebSocket ?? globalThis.WebSocket;
        this.#RTCPeerConnection = options.RTCPeerConnection ?? globalThis.RTCPeerConnection;
        this.#base = options.base ?? globalThis.location?.href;
        this.#backoff = { ...DEFAULT_BACKOFF, ...options.backoff };
        this.#openTimeout = options.openTimeout ?? 10_000;
        this.#stableAfter = options.stableAfter ?? 5_000;
        this.#fallbackIceServers = options.iceServers ?? [];
        this.#autoAnswer = options.autoAnswer ?? false;
        this.#identityOption = options.identity ?? false;
        this.#e2eOption = options.e2e ?? false;
        this.#e2eKeyTimeout = options.e2eKeyTimeout ?? 35_000;
        this.#claimClockSkew = options.claimClockSkew ?? 120_000;
        this.#callLostTimeout = options.callLostTimeout ?? 8_000;
        if (typeof this.#WebSocket !== 'function') {
            throw new TypeError('no WebSocket implementation: pass options.WebSocket');
        }
        if (this.#e2eOption !== false && this.#e2eOption !== true
            && this.#e2eOption !== 'require' && this.#e2eOption !== 'prefer') {
            throw new TypeError("options.e2e must be true, 'require', 'prefer' or false");
        }
        if (this.#e2eOption && !this.#identityOption) {
            throw new TypeError('options.e2e needs options.identity: keys are exchanged '
                                + 'between key-owned ids');
        }
    }

    // A page that goes away (closed, reloaded, left) hangs up its calls
    // while its socket is still there: the partners hear it now, not when
    // their connection fails many seconds later. Listened to from connect()
    // to close() (the same listener twice is one).
    #onPageHide = () => {
        for (const call of this.#calls.values()) {
            call.hangup('left');
        }
    };

    // With e2e that hang-up goes out sealed in advance: encrypting takes a
    // later task, and a page that is going away gets none in Firefox.
    #sealLeave(partnerId) {
        if (this.#e2e && isOwnedId(partnerId) && this.#id === this.#ownedId) {
            this.#e2e.prepareFinal(partnerId, SIGNALING_TYPE, LEAVE_BODY);
        }
    }

    /** Connection state: idle, connecting, open, disconnected or closed. */
    get state() {
        return this.#state;
    }

    /** This session's id while the state is 'open', else null. */
    get id() {
        return this.#id;
    }

    /** The id of the node we are connected to while 'open', else null. */
    get nodeId() {
        return this.#id && this.#nodeSessionId ? nodeIdOf(this.#nodeSessionId) : null;
    }

    /** With options.identity: the key's id (known once connect() has
     *  loaded the key), else null. */
    get ownedId() {
        return this.#ownedId;
    }

    /** WebSocket URL of the node we are connected or connecting to. */
    get url() {
        return this.#urls[this.#index] ?? null;
    }

    /** Every node URL given to connect(), resolved. */
    get urls() {
        return [...this.#urls];
    }

    /** ICE servers for calls: the node's, or options.iceServers. */
    get iceServers() {
        return this.#iceServers;
    }

    /** The rooms joined, each with its members as last heard (copies). */
    get rooms() {
        return new Map([...this.#rooms].map(([name, r]) => [name, new Set(r.members)]));
    }

    /**
     * Joins a room: everyone in it, on any node, hears 'join', and this
     * client gets the member list and then a 'room' event for each join
     * and leave. Rooms are joined again after every reconnect. Room names
     * are 1 to 64 characters of printable ASCII; whoever knows a name can
     * join (the names are not secret).
     *
     * @param {string} room
     * @returns {Promise<string[]>} the members (this session among them)
     *          once the node has the list; rejects with the node's error
     *          ('room full', 'too many rooms') or when the client closes
     */
    join(room) {
        if (typeof room !== 'string' || !/^[\x20-\x7e]{1,64}$/.test(room)) {
            throw new TypeError('a room name is 1 to 64 characters of printable ASCII');
        }
        let r = this.#rooms.get(room);
        if (!r) {
            r = { members: new Set(), waiters: [], joined: false };
            this.#rooms.set(room, r);
        }
        const p = new Promise((resolve, reject) => r.waiters.push({ resolve, reject }));
        if (this.#state === 'open') {
            this.#ws.send(JSON.stringify({ type: 'WebSocketJoinMessage', room }));
        }
        return p;
    }

    /**
     * Leaves a room; the others hear 'leave'.
     *
     * @param {string} room
     */
    leave(room) {
        const r = this.#rooms.get(room);
        if (!r) {
            return;
        }
        this.#rooms.delete(room);
        for (const w of r.waiters.splice(0)) {
            w.reject(new Error(`left room ${room}`));
        }
        if (this.#state === 'open') {
            this.#ws.send(JSON.stringify({ type: 'WebSocketLeaveMessage', room }));
        }
    }

    /** Active calls (not ended), by partner session id. */
    get calls() {
        return new Map(this.#calls);
    }

    /**
     * Connects to a node and stays connected: a lost or failed connection is
     * retried after a backoff wait (see backoffDelay), and each failed
     * attempt moves on to the next URL of the list (round robin). A session
     * that was open (for at least options.stableAfter ms) and is lost is
     * first retried on the same node. Calling connect() again replaces the
     * URLs and starts over.
     *
     * @param {string|string[]} urls one node URL or a list; relative URLs
     *        and http(s): URLs are turned into WebSocket URLs (see signalUrl)
     * @returns {Promise<string>} the session id, once the node welcomed us.
     *        Rejects if close() is called first, and with an Error whose
     *        `code` is ErrorCode.NO_NODE once every URL of the list failed
     *        (refused, closed, or no welcome within options.openTimeout)
     *        without a welcome: a page can say it is offline rather than
     *        wait. The client goes on trying in the background, as after a
     *        lost connection: a later welcome fires `id` (close() stops it).
     */
    connect(urls) {
        const list = (Array.isArray(urls) ? urls : [urls]).map((u) => signalUrl(u, this.#base));
        if (list.length === 0) {
            throw new TypeError('connect() needs at least one node URL');
        }
        this.#drop();
        globalThis.addEventListener?.('pagehide', this.#onPageHide);
        this.#urls = list;
        this.#index = 0;
        this.#failures = 0;
        const ready = this.#nextId();
        this.#connectWaiter = this.#waiters[this.#waiters.length - 1];
        if (this.#identityOption && !this.#identity) {
            this.#loadIdentity().then(() => this.#attempt(), (err) => {
                const e = new Error(`no identity: ${err.message}`);
                for (const w of this.#waiters.splice(0)) {
                    w.reject(e);
                }
            });
        } else {
            this.#attempt();
        }
        return ready;
    }

    async #loadIdentity() {
        const option = this.#identityOption;
        let pair;
        if (option === true || typeof option === 'string') {
            pair = await loadIdentity(option === true ? 'default' : option);
        } else if (option?.privateKey && option?.publicKey) {
            pair = option;
        } else {
            throw new TypeError('options.identity must be true, a name or a CryptoKeyPair');
        }
        this.#ownedId = await ownedIdOf(pair);
        this.#identity = pair;
        if (this.#e2eOption) {
            await this.#startE2e();
        }
    }

    /**
     * Sends a message to another session (on any node).
     *
     * @param {string} type message type; names starting with "WebSocket"
     *        are reserved for the node
     * @param {string} recipientId the recipient's session id
     * @param {string|object} body the message body; anything but a string is
     *        sent as its JSON text
     * @throws {Error} when not connected (state is not 'open'); with
     *         options.e2e, when the message cannot go encrypted and would go
     *         in plaintext (code ErrorCode.E2E_ID_LOST, see options.e2e);
     *         TypeError on a bad argument
     */
    send(type, recipientId, body) {
        if (typeof type !== 'string' || type === '') {
            throw new TypeError('message type must be a non-empty string');
        }
        if (type.startsWith(RESERVED_PREFIX)) {
            throw new TypeError(`message types starting with "${RESERVED_PREFIX}" are reserved`);
        }
        if (typeof recipientId !== 'string' || recipientId === '') {
            throw new TypeError('recipient session id must be a non-empty string');
        }
        const messageBody = typeof body === 'string' ? body : JSON.stringify(body ?? '');
        if (this.#state !== 'open') {
            throw new Error(`not connected to a node (state ${this.#state})`);
        }
        if (this.#e2e && this.#e2eSend(type, recipientId, messageBody)) {
            return;
        }
        this.#ws.send(JSON.stringify({ type, recipientSessionId: recipientId, messageBody }));
    }

    /**
     * Closes the connection for good (state 'closed'); active calls are
     * hung up first. connect() may be called again later.
     */
    close() {
        for (const call of [...this.#calls.values()]) {
            call.hangup('closed');
        }
        for (const [room, r] of this.#rooms) {
            for (const w of r.waiters.splice(0)) {
                w.reject(new Error(`client closed before joining ${room}`));
            }
        }
        this.#rooms.clear();
        this.#e2e?.stop();
        this.#drop();
        globalThis.removeEventListener?.('pagehide', this.#onPageHide);
        const err = new Error('client closed');
        this.#connectWaiter = null;
        for (const w of this.#waiters.splice(0)) {
            w.reject(err);
        }
        this.#setState('closed', {});
    }

    /**
     * Calls a session: creates an RTCPeerConnection, adds the stream's
     * tracks and starts negotiating. The partner may be on any node. If the
     * partner is calling us already (an incoming call still 'ringing'), that
     * call is answered with these options and returned instead: both
     * calling each other at once is one call.
     *
     * @param {string} partnerId the partner's session id
     * @param {CallOptions} [options]
     * @returns {DwrtcCall}
     * @throws {Error} when not connected, already in an answered call with
     *         this partner, or calling oneself
     */
    call(partnerId, options = {}) {
        if (!isSessionId(partnerId)) {
            throw new TypeError(`not a session id: ${partnerId}`);
        }
        if (this.#state !== 'open') {
            throw new Error(`not connected to a node (state ${this.#state})`);
        }
        if (partnerId === this.#id) {
            throw new Error('cannot call oneself');
        }
        const existing = this.#calls.get(partnerId);
        if (existing?.state === 'ringing') {
            existing.answer(options);
            return existing;
        }
        if (existing) {
            throw new Error(`already in a call with ${partnerId}`);
        }
        const call = new DwrtcCall(this, partnerId, { incoming: false });
        this.#calls.set(partnerId, call);
        this.#sealLeave(partnerId);
        call._start(options);
        return call;
    }

    // --- for DwrtcCall -------------------------------------------------

    /** @internal */
    _createPeerConnection(config) {
        if (typeof this.#RTCPeerConnection !== 'function') {
            throw new Error('no RTCPeerConnection in this environment');
        }
        return new this.#RTCPeerConnection(config);
    }

    /** @internal */
    /** @internal ms a call's media connection may stay lost */
    get _callLostTimeout() {
        return this.#callLostTimeout;
    }

    /** @internal */
    _callEnded(call, errors) {
        if (this.#calls.get(call.partnerId) === call) {
            this.#calls.delete(call.partnerId);
            this.#e2e?.dropFinal(call.partnerId);
        }
        // errors for its signaling still on the way are no news
        const now = Date.now();
        for (const [partner, e] of this.#endedCalls) {
            if (e.until <= now) {
                this.#endedCalls.delete(partner);
            }
        }
        this.#endedCalls.set(call.partnerId, { until: now + ENDED_CALL_ERRORS_MS, errors });
    }

    // --- connection ------------------------------------------------------

    #nextId() {
        const p = new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
        p.catch(() => {});   // a caller that does not wait is not an error
        return p;
    }

    #setState(state, extra) {
        const previous = this.#state;
        if (previous === state && state !== 'disconnected') {
            return;
        }
        this.#state = state;
        this.#emit('state', { state, previous, url: this.url, attempt: this.#failures,
                              retryIn: null, reason: null, ...extra });
    }

    #emit(type, detail) {
        this.dispatchEvent(new CustomEvent(type, { detail }));
    }

    // Stops the current socket and timers without changing the state.
    #drop() {
        clearTimeout(this.#retryTimer);
        clearTimeout(this.#openTimer);
        this.#retryTimer = null;
        this.#openTimer = null;
        const ws = this.#ws;
        this.#ws = null;
        this.#id = null;
        this.#claimPending = false;
        if (ws) {
            try {
                ws.close(1000);
            } catch {
                // closing a socket that is still connecting may throw
            }
        }
    }

    #attempt() {
        this.#retryTimer = null;
        const url = this.url;
        this.#setState('connecting', {});
        let ws;
        try {
            ws = new this.#WebSocket(url);
        } catch (err) {
            this.#lost(null, `cannot open ${url}: ${err.message}`);
            return;
        }
        this.#ws = ws;
        this.#openTimer = setTimeout(() => {
            if (this.#ws === ws) {
                this.#lost(ws, `no welcome from the node within ${this.#openTimeout} ms`);
            }
        }, this.#openTimeout);
        ws.addEventListener('message', (ev) => {
            if (this.#ws === ws) {
                this.#frame(ev.data);
            }
        });
        ws.addEventListener('close', (ev) => {
            if (this.#ws === ws) {
                const why = ev.reason ? `: ${ev.reason}` : '';
                this.#lost(ws, `connection closed (code ${ev.code}${why})`);
            }
        });
        // 'error' is always followed by 'close', which does the work
        ws.addEventListener('error', () => {});
    }

    // The socket failed or closed: schedule the next attempt.
    #lost(ws, reason) {
        const wasOpen = this.#state === 'open';
        clearTimeout(this.#openTimer);
        this.#openTimer = null;
        this.#ws = null;
        this.#id = null;
        this.#claimPending = false;
        if (ws) {
            try {
                ws.close();
            } catch {
                // already closing
            }
        }
        const url = this.url;
        if (wasOpen && Date.now() - this.#openedAt >= this.#stableAfter) {
            this.#failures = 0;     // retry the node that worked, soon
        } else {
            // a failed attempt, or a session dropped right after its welcome
            this.#failures++;
            this.#index = (this.#index + 1) % this.#urls.length;
        }
        const retryIn = backoffDelay(this.#failures, this.#backoff);
        this.#setState('disconnected', { url, retryIn, reason });
        this.#retryTimer = setTimeout(() => this.#attempt(), retryIn);
        const waiter = this.#connectWaiter;
        if (waiter && this.#failures >= this.#urls.length) {
            // Every node of the list was tried since connect() and none
            // welcomed us: connect() says so rather than hang the page.
            this.#connectWaiter = null;
            this.#waiters = this.#waiters.filter((w) => w !== waiter);
            const tried = this.#urls.length === 1 ? url : `${this.#urls.length} nodes`;
            const err = new Error(`${ErrorCode.NO_NODE} (${tried}): ${reason}`);
            err.code = ErrorCode.NO_NODE;
            waiter.reject(err);
        }
    }

    #frame(data) {
        let msg;
        try {
            msg = JSON.parse(typeof data === 'string' ? data : String(data));
        } catch {
            this.#emit('error', { error: ErrorCode.UNPARSABLE,
                                  recipientSessionId: null, message: data });
            return;
        }
        if (msg === null || typeof msg !== 'object') {
            return;
        }
        if (msg.type === WELCOME_TYPE && typeof msg.id === 'string') {
            this.#welcome(msg);
        } else if (msg.type === ROOM_TYPE && typeof msg.room === 'string') {
            this.#roomMessage(msg);
        } else if (msg.type === ERROR_TYPE) {
            const detail = { error: String(msg.error ?? ErrorCode.UNKNOWN),
                             recipientSessionId: msg.recipientSessionId ?? null,
                             message: msg };
            const code = errorCodeOf(detail.error);
            if (code === ErrorCode.CLAIM_REFUSED && this.#claimPending) {
                // the node would not let us own the id: go on with the
                // session's own id, and say so
                this.#claimPending = false;
                this.#idLost = detail.error;
                this.#open(this.#nodeSessionId, false);
            } else if (typeof msg.room === 'string' && this.#rooms.has(msg.room)) {
                // a join the node refused: that room is not joined
                const r = this.#rooms.get(msg.room);
                this.#rooms.delete(msg.room);
                for (const w of r.waiters.splice(0)) {
                    w.reject(Object.assign(new Error(`${detail.error}: ${msg.room}`),
                                           { code: detail.error }));
                }
            } else if (code === ErrorCode.TAKEN_OVER && this.#id === this.#ownedId) {
                // a newer session (another tab, say) owns the id now; this
                // one speaks as its own session id from here on
                this.#id = this.#nodeSessionId;
                this.#idLost = detail.error;
            }
            // An error about a call's partner is told once per call (the
            // call's queued offer and candidates each bring one), also for
            // a while after the call ended from it.
            const partner = detail.recipientSessionId;
            const call = partner && this.#calls.get(partner);
            const ended = partner && this.#endedCalls.get(partner);
            if (call) {
                if (call._nodeError(detail.error) || !call.pc) {
                    this.#emit('error', detail);
                }
            } else if (!(ended && ended.until > Date.now() && ended.errors.has(detail.error))) {
                this.#emit('error', detail);
            }
            this.#e2e?.nodeError(detail.recipientSessionId, code,
                                 code === ErrorCode.NOT_FOUND
                                 || code === ErrorCode.NOT_BACK_IN_TIME);
        } else if (typeof msg.type === 'string' && !msg.type.startsWith(RESERVED_PREFIX)) {
            if (this.#e2e) {
                this.#e2e.receive(msg, { require: this.#e2eOption === 'require' });
            } else {
                this.#deliver(msg);
            }
        }
    }

    // A message from another session: call signaling goes to the calls
    // (and the 'signaling' event), everything else is the app's 'message',
    // so a chat handler never sees an SDP.
    #deliver(msg) {
        if (msg.type === SIGNALING_TYPE) {
            this.#emit('signaling', msg);
            if (typeof msg.senderSessionId === 'string') {
                this.#signal(msg);
            }
            return;
        }
        this.#emit('message', msg);
    }

    #welcome(msg) {
        if (msg.owned === true) {
            // the answer to our claim
            if (this.#claimPending && msg.id === this.#ownedId) {
                this.#claimPending = false;
                this.#idLost = null;
                this.#open(msg.id, true);
            }
            return;
        }
        this.#nodeSessionId = msg.id;
        this.#iceServers = Array.isArray(msg.iceServers) && msg.iceServers.length
            ? msg.iceServers : this.#fallbackIceServers;
        if (this.#identity && typeof msg.challenge === 'string') {
            this.#claim(msg).catch((err) => {
                if (this.#claimPending) {
                    this.#claimPending = false;
                    this.#idLost = `claim not made: ${err?.message ?? err}`;
                    this.#emit('error', { error: err, recipientSessionId: null, message: null });
                    this.#open(msg.id, false);
                }
            });
            return;
        }
        this.#open(msg.id, false);
    }

    // Proves the key to the node: signs the node's id, the challenge it gave
    // this session and a time (the node's clock, which the node checks
    // against its own; later than our last claim, so it is newer). A time
    // far from this device's clock is not signed: routing follows an id's
    // newest claim, so a claim dated ahead, kept by the node that asked for
    // it, would outrank this key's own claims until that date. Nodes refuse
    // claims dated more than dwrtc_claim_clock_skew (30 s) ahead of theirs;
    // this bounds what a node can harvest from pages whose clocks are right.
    async #claim(welcome) {
        const ws = this.#ws;
        this.#claimPending = true;
        const offered = Number(welcome.time);
        if (Number.isFinite(offered) && offered > 0
            && Math.abs(offered - Date.now()) > this.#claimClockSkew) {
            const off = Math.round((offered - Date.now()) / 1000);
            throw new Error(`the node's welcome time is ${Math.abs(off)} s `
                            + `${off > 0 ? 'ahead of' : 'behind'} this device's clock, more than `
                            + `options.claimClockSkew (${this.#claimClockSkew} ms); not signed`);
        }
        const time = Math.max(offered || Date.now(), this.#lastClaimTime + 1);
        this.#lastClaimTime = time;
        const node = nodeIdOf(welcome.id);
        const text = `dwrtc-claim-v1\n${node}\n${welcome.challenge}\n${time}`;
        const raw = await subtle().exportKey('raw', this.#identity.publicKey);
        const signature = await subtle().sign(ECDSA_SIGN, this.#identity.privateKey,
                                              new TextEncoder().encode(text));
        if (this.#ws !== ws || !this.#claimPending) {
            return;     // that session is gone
        }
        ws.send(JSON.stringify({ type: 'WebSocketClaimMessage', key: hexOf(raw), time,
                                 signature: hexOf(signature) }));
    }

    // --- end-to-end encryption (options.e2e; the work is in dwrtc-e2e.js) --

    async #startE2e() {
        if (this.#e2e) {
            return;
        }
        const e2e = new E2eSessions(this.#e2eHost(), { keyTimeout: this.#e2eKeyTimeout });
        await e2e.start();
        this.#e2e = e2e;
    }

    // What dwrtc-e2e.js may do with this client.
    #e2eHost() {
        return {
            ownedId: this.#ownedId,
            identity: this.#identity,
            isOpen: () => this.#state === 'open',
            whenOpen: () => this.#nextId(),
            sendRaw: (type, to, messageBody) => {
                if (this.#state === 'open') {
                    this.#ws.send(JSON.stringify({ type, recipientSessionId: to, messageBody }));
                }
            },
            deliver: (msg) => this.#deliver(msg),
            refused: (sender, reason, message) => {
                this.#emit('error', { error: ErrorCode.E2E_REFUSED, recipientSessionId: null,
                                      senderSessionId: sender, reason, message });
            },
            noKey: (recipient, reason, count) => {
                this.#emit('error', { error: ErrorCode.E2E_NO_KEY, recipientSessionId: recipient,
                                      reason, count, message: null });
                this.#calls.get(recipient)?._nodeError(ErrorCode.E2E_NO_KEY);
            },
        };
    }

    // With options.e2e: true if the message went the E2E way (a key-owned
    // recipient, and this session speaks as its key's id); throws when
    // e2e is 'require' and it cannot, and (unless e2e is 'prefer') when a
    // message to a key-owned id would go in plaintext because this session
    // lost its key's id: whoever made it lose the id (a rogue node refusing
    // the claim, a replayed claim taking it over) would otherwise turn
    // encryption off by doing so.
    #e2eSend(type, recipientId, messageBody) {
        if (type.startsWith(E2E_PREFIX)) {
            throw new TypeError(`message types starting with "${E2E_PREFIX}" are end-to-end `
                                + 'encryption\'s');
        }
        if (isOwnedId(recipientId) && this.#id === this.#ownedId) {
            if (!this.#e2e.sendFinal(recipientId, type, messageBody)) {
                this.#e2e.send(recipientId, type, messageBody);
            }
            return true;
        }
        if (isOwnedId(recipientId) && this.#e2eOption === true) {
            const why = this.#idLost ?? 'this session does not speak as its key\'s id';
            throw Object.assign(
                new Error(`not sent to ${recipientId}: this session lost its key-owned id `
                          + `(${why}), and options.e2e sends nothing to a key-owned id in `
                          + "plaintext (e2e: 'prefer' would)"),
                { code: ErrorCode.E2E_ID_LOST, recipientSessionId: recipientId, reason: why });
        }
        if (this.#e2eOption === 'require') {
            throw new Error(this.#id === this.#ownedId
                ? `not sent: ${recipientId} owns no key, and options.e2e is 'require'`
                : "not sent: this session does not speak as its key's id, and options.e2e "
                  + "is 'require'");
        }
        return false;
    }

    #open(id, owned) {
        clearTimeout(this.#openTimer);
        this.#openTimer = null;
        const previousId = this.#lastId;
        this.#id = id;
        this.#lastId = id;
        this.#openedAt = Date.now();
        this.#setState('open', {});
        this.#rejoin();
        this.#emit('id', { id, previousId, nodeId: nodeIdOf(this.#nodeSessionId), url: this.url,
                           iceServers: this.#iceServers, owned,
                           nodeSessionId: this.#nodeSessionId });
        this.#connectWaiter = null;
        for (const w of this.#waiters.splice(0)) {
            w.resolve(id);
        }
        if (owned && previousId === id) {
            // back with the same id: calls whose media broke meanwhile
            // (the network changed) negotiate a new path
            for (const call of this.#calls.values()) {
                call._reconnected();
            }
        }
    }

    // The node's news of a room: the member list, a join, a leave.
    #roomMessage(msg) {
        const r = this.#rooms.get(msg.room);
        if (!r) {
            return;     // left meanwhile
        }
        let id = null;
        if (msg.event === 'members' && Array.isArray(msg.members)) {
            r.members = new Set(msg.members.filter((m) => typeof m === 'string'));
            r.joined = true;
        } else if ((msg.event === 'join' || msg.event === 'leave') && typeof msg.id === 'string') {
            id = msg.id;
            if (msg.event === 'join') {
                r.members.add(id);
            } else {
                r.members.delete(id);
            }
        } else {
            return;
        }
        const members = [...r.members];
        this.#emit('room', { room: msg.room, event: msg.event, id, members });
        if (msg.event === 'members') {
            for (const w of r.waiters.splice(0)) {
                w.resolve(members);
            }
        }
    }

    // After a reconnect the new session is in no room yet: join them again.
    #rejoin() {
        for (const room of this.#rooms.keys()) {
            this.#ws.send(JSON.stringify({ type: 'WebSocketJoinMessage', room }));
        }
    }

    // A SignalingMessage: to its call, or a new incoming call if an offer.
    #signal(msg) {
        let body;
        try {
            body = JSON.parse(msg.messageBody);
        } catch {
            return;
        }
        if (body === null || typeof body !== 'object') {
            return;
        }
        const from = msg.senderSessionId;
        const existing = this.#calls.get(from);
        if (existing) {
            existing._receive(body);
            return;
        }
        if (body.type !== 'offer' || typeof body.sdp !== 'string') {
            return;     // not for a call we know (a late candidate, say)
        }
        const call = new DwrtcCall(this, from, { incoming: true });
        this.#calls.set(from, call);
        this.#sealLeave(from);
        call._receive(body);
        if (this.#autoAnswer) {
            const busy = [...this.#calls.values()].some((c) => c !== call);
            if (busy) {
                call.hangup('busy');
                return;
            }
            // answered now; its messages are handled from the next microtask
            // on, so listeners added in 'incomingcall' miss nothing
            call.answer(this.#autoAnswer === true ? {} : this.#autoAnswer);
        }
        this.#emit('incomingcall', { call, from });
    }
}

/**
 * @typedef {object} CallOptions
 * @property {MediaStream} [stream] local media to send (its tracks are
 *           added; the stream is not stopped when the call ends)
 * @property {boolean|string|RTCDataChannelInit} [dataChannel] caller only:
 *           open a data channel (true, a label, or RTCDataChannelInit with an
 *           optional `label`); the callee gets it in 'datachannel'
 * @property {boolean} [receiveVideo=true] receive video even when not
 *           sending any
 * @property {boolean} [receiveAudio=true] receive audio even when not
 *           sending any
 * @property {RTCConfiguration} [rtcConfig] for the RTCPeerConnection; by
 *           default { iceServers: client.iceServers }
 */

/**
 * One call with one partner session, on an RTCPeerConnection negotiated
 * with the perfect-negotiation pattern (either side may renegotiate at any
 * time; the side whose session id sorts lower is the polite one) and
 * trickle ICE. Made by DwrtcClient.call() or delivered by 'incomingcall'.
 * See the events at the top of this file.
 *
 * @extends EventTarget
 */
export class DwrtcCall extends EventTarget {
    #client;
    #partnerId;
    #incoming;
    #polite;
    #pc = null;
    #state;
    #options = {};
    #queue = [];            // bodies received before answer()
    #chain = Promise.resolve();
    #makingOffer = false;
    #ignoreOffer = false;
    #settingRemoteAnswer = false;
    #localMediaAdded = false;
    #remoteStream = null;
    #dataChannel = null;
    #errorsHeard = new Set();  // node errors about the partner: each told once
    #retries = 0;              // of the description, while the node cannot deliver
    #retryTimer = null;
    #lostTimer = null;         // runs while the media connection is lost

    /** @internal use DwrtcClient.call() */
    constructor(client, partnerId, { incoming }) {
        super();
        this.#client = client;
        this.#partnerId = partnerId;
        this.#incoming = incoming;
        this.#polite = String(client.id) < partnerId;
        this.#state = incoming ? 'ringing' : 'new';
    }

    /** The partner's session id. */
    get partnerId() {
        return this.#partnerId;
    }

    /** True if the partner called us. */
    get incoming() {
        return this.#incoming;
    }

    /** True if this side yields when both offer at once. */
    get polite() {
        return this.#polite;
    }

    /** 'ringing', 'new', 'connecting', 'connected', 'disconnected', 'failed' or 'ended'. */
    get state() {
        return this.#state;
    }

    /** The RTCPeerConnection (null while ringing). */
    get pc() {
        return this.#pc;
    }

    /** The local stream given in the options, if any. */
    get localStream() {
        return this.#options.stream ?? null;
    }

    /** The partner's stream, once a track arrived. */
    get remoteStream() {
        return this.#remoteStream;
    }

    /** The data channel, once there is one. */
    get dataChannel() {
        return this.#dataChannel;
    }

    /**
     * Answers an incoming call.
     *
     * @param {CallOptions} [options] (dataChannel is ignored: the caller's
     *        channel arrives in 'datachannel')
     */
    answer(options = {}) {
        if (this.#state !== 'ringing') {
            throw new Error(`cannot answer a call in state ${this.#state}`);
        }
        this.#setup(options);
        for (const body of this.#queue.splice(0)) {
            this.#enqueue(body);
        }
    }

    /**
     * Ends the call: tells the partner (best effort) and closes the
     * connection. Refuses a ringing call. Does nothing once ended.
     *
     * @param {string} [reason] sent to the partner, e.g. 'busy'
     */
    hangup(reason = 'hangup') {
        if (this.#state === 'ended') {
            return;
        }
        this.#send({ type: 'hangup', reason });
        this.#end('local', reason);
    }

    /** @internal */
    _start(options) {
        this.#setup(options);
        const dc = options.dataChannel;
        if (dc) {
            const init = typeof dc === 'object' ? { ...dc } : {};
            const label = typeof dc === 'string' ? dc : (init.label ?? 'dwrtc');
            delete init.label;
            const channel = this.#pc.createDataChannel(label, init);
            this.#dataChannel = channel;
            // after call() has returned, so its caller can listen for it
            queueMicrotask(() => this.#setDataChannel(channel));
        }
        this.#addLocalMedia();
    }

    /** @internal a signaling body from the partner */
    _receive(body) {
        if (this.#state === 'ended') {
            return;
        }
        if (body.type === 'hangup') {
            this.#end('remote', typeof body.reason === 'string' ? body.reason : 'hangup');
            return;
        }
        if (this.#state === 'ringing') {
            this.#queue.push(body);
            return;
        }
        this.#enqueue(body);
    }

    /**
     * @internal an error from the node about the partner. Each error is
     * told once per call (one per queued offer and candidate would be
     * many). The partner is gone: the call ends. The node could not deliver
     * for now (unreachable, queue full, rate limited, node unavailable)
     * while the call is being set up: the description is sent again, up
     * to CALL_RETRIES times, 1, 2, 3 s apart, and then the call ends with
     * that error. Once media flows, signaling errors do not end it.
     * Returns whether the error was news.
     */
    _nodeError(error) {
        if (this.#state === 'ended') {
            return false;
        }
        const news = !this.#errorsHeard.has(error);
        this.#errorsHeard.add(error);
        if (news) {
            this.#emit('error', { error, reason: error });
        }
        if (error === ErrorCode.NOT_FOUND || error === ErrorCode.NOT_BACK_IN_TIME
            || error === ErrorCode.E2E_NO_KEY) {
            this.#end('error', error);
        } else if (RETRIED_ERRORS.has(error) && this.#state !== 'connected'
                   && this.#state !== 'ringing' && this.#retryTimer === null) {
            if (this.#retries >= CALL_RETRIES) {
                this.#end('error', error);
            } else {
                this.#retries++;
                this.#retryTimer = setTimeout(() => {
                    this.#retryTimer = null;
                    const d = this.#pc?.localDescription;
                    if (this.#state !== 'ended' && this.#state !== 'connected' && d) {
                        this.#sendDescription();
                    }
                }, 1000 * this.#retries);
            }
        }
        return news;
    }

    /** @internal */
    _reconnected() {
        const pc = this.#pc;
        if (pc && this.#state !== 'ended'
            && (pc.connectionState === 'disconnected' || pc.connectionState === 'failed')) {
            pc.restartIce();
        }
    }

    #emit(type, detail) {
        this.dispatchEvent(new CustomEvent(type, { detail }));
    }

    #setState(state) {
        const previous = this.#state;
        if (previous === state || previous === 'ended') {
            return;
        }
        this.#state = state;
        this.#emit('state', { state, previous });
    }

    #send(body) {
        try {
            this.#client.send(SIGNALING_TYPE, this.#partnerId, body);
            return true;
        } catch (err) {
            this.#emit('error', { error: err, reason: 'signaling failed' });
            return false;
        }
    }

    #setup(options) {
        this.#options = options;
        const config = options.rtcConfig ?? { iceServers: this.#client.iceServers };
        const pc = this.#client._createPeerConnection(config);
        this.#pc = pc;
        this.#setState(pc.connectionState ?? 'new');

        // (events of a connection this call has replaced are ignored)
        pc.addEventListener('negotiationneeded', async () => {
            if (pc !== this.#pc) {
                return;
            }
            try {
                this.#makingOffer = true;
                await pc.setLocalDescription();
                if (pc === this.#pc) {
                    this.#sendDescription();
                }
            } catch (err) {
                if (pc === this.#pc) {
                    this.#emit('error', { error: err, reason: 'offer failed' });
                }
            } finally {
                if (pc === this.#pc) {
                    this.#makingOffer = false;
                }
            }
        });
        pc.addEventListener('icecandidate', ({ candidate }) => {
            // null marks the end of candidates; the original clients do
            // not send it, so neither do we
            if (candidate && pc === this.#pc && this.#state !== 'ended') {
                this.#send({ type: 'candidate', candidate: candidate.toJSON() });
            }
        });
        pc.addEventListener('connectionstatechange', () => {
            if (pc === this.#pc && this.#state !== 'ended') {
                this.#setState(pc.connectionState);
                this.#watchConnection(pc.connectionState);
            }
        });
        pc.addEventListener('track', (ev) => {
            if (pc !== this.#pc) {
                return;
            }
            let stream = ev.streams[0];
            if (!stream) {
                stream = this.#remoteStream ?? new MediaStream();
                stream.addTrack(ev.track);
            }
            this.#emit('track', { track: ev.track, streams: ev.streams });
            if (stream !== this.#remoteStream) {
                this.#remoteStream = stream;
                this.#emit('remotestream', { stream });
            }
        });
        pc.addEventListener('datachannel', (ev) => {
            if (pc === this.#pc) {
                this.#setDataChannel(ev.channel);
            }
        });
    }

    // Replaces the connection with a fresh one that has sent nothing; see
    // #handle. The local media goes onto it after the partner's offer.
    #renew() {
        const old = this.#pc;
        this.#makingOffer = false;
        this.#localMediaAdded = false;
        this.#dataChannel = null;
        this.#setup(this.#options);
        old.close();
        return this.#pc;
    }

    #setDataChannel(channel) {
        this.#dataChannel = channel;
        this.#emit('datachannel', { channel });
    }

    #addLocalMedia() {
        if (this.#localMediaAdded) {
            return;
        }
        this.#localMediaAdded = true;
        const { stream, receiveVideo = true, receiveAudio = true } = this.#options;
        const pc = this.#pc;
        const kinds = new Set();
        if (stream) {
            for (const track of stream.getTracks()) {
                pc.addTrack(track, stream);
                kinds.add(track.kind);
            }
        }
        // receive what we do not send, unless the partner's offer already
        // made transceivers for it (then they are reused)
        const have = new Set(pc.getTransceivers()
            .map((t) => t.receiver.track?.kind).filter(Boolean));
        if (receiveAudio && !kinds.has('audio') && !have.has('audio')) {
            pc.addTransceiver('audio', { direction: 'recvonly' });
        }
        if (receiveVideo && !kinds.has('video') && !have.has('video')) {
            pc.addTransceiver('video', { direction: 'recvonly' });
        }
    }

    #sendDescription() {
        const d = this.#pc.localDescription;
        this.#send({ type: d.type, sdp: d.sdp });
    }

    // Bodies are handled one at a time, in order of arrival.
    #enqueue(body) {
        this.#chain = this.#chain.then(() => this.#handle(body)).catch((err) => {
            this.#emit('error', { error: err, reason: 'signaling message failed' });
        });
    }

    async #handle(body) {
        let pc = this.#pc;
        if (this.#state === 'ended' || !pc) {
            return;
        }
        if ((body.type === 'offer' || body.type === 'answer') && typeof body.sdp === 'string') {
            const description = { type: body.type, sdp: body.sdp };
            // perfect negotiation: on a collision the impolite side ignores
            // the partner's offer; the polite one rolls back its own
            const readyForOffer = !this.#makingOffer
                && (pc.signalingState === 'stable' || this.#settingRemoteAnswer);
            const collision = description.type === 'offer' && !readyForOffer;
            this.#ignoreOffer = !this.#polite && collision;
            if (this.#ignoreOffer) {
                return;
            }
            if (collision && !pc.currentRemoteDescription) {
                // Both offered before anything was negotiated (both called
                // at once). Instead of rolling our first offer back, the
                // polite side answers on a fresh connection, like a callee:
                // Chromium 156 sometimes never gathers ICE candidates again
                // when the rollback meets the start of the first offer's
                // gathering (seen in tests/web/e2e_call.test.mjs). Our
                // first offer and its candidates are ignored by the
                // partner, which is impolite and waiting for an answer.
                pc = this.#renew();
            }
            this.#settingRemoteAnswer = description.type === 'answer';
            try {
                await pc.setRemoteDescription(description);
            } finally {
                this.#settingRemoteAnswer = false;
            }
            if (description.type === 'offer') {
                // the callee's media goes out on the transceivers the offer
                // made (added after the offer, so they are reused)
                this.#addLocalMedia();
                await pc.setLocalDescription();
                this.#sendDescription();
            }
        } else if (body.candidate !== undefined) {
            try {
                await pc.addIceCandidate(body.candidate ?? undefined);
            } catch (err) {
                if (!this.#ignoreOffer) {
                    throw err;
                }
            }
        }
    }

    // A media connection that stays lost ends the call: a partner whose
    // browser or network died sends no hang-up, and the browser alone would
    // leave the call 'failed' for good. An ICE restart that brings it back
    // in time (after a reconnect) keeps the call.
    #watchConnection(state) {
        if (state !== 'disconnected' && state !== 'failed') {
            clearTimeout(this.#lostTimer);
            this.#lostTimer = null;
            return;
        }
        if (this.#lostTimer) {
            return;
        }
        // Ask the node whether the partner is still there: a session that
        // is gone (its page crashed, its browser was killed) is answered
        // 'not found' at once, which ends the call now. The partner's
        // client ignores a ping.
        this.#send({ type: 'ping' });
        this.#lostTimer = setTimeout(() => {
            this.#lostTimer = null;
            const now = this.#pc?.connectionState;
            if (this.#state !== 'ended' && (now === 'disconnected' || now === 'failed')) {
                // The partner may be gone with its browser: that the
                // hang-up finds it gone is no news after 'connection lost'.
                for (const code of [ErrorCode.NOT_FOUND, ErrorCode.UNREACHABLE,
                                    ErrorCode.NOT_BACK_IN_TIME]) {
                    this.#errorsHeard.add(code);
                }
                this.#send({ type: 'hangup', reason: 'connection lost' });
                this.#end('error', 'connection lost');
            }
        }, this.#client._callLostTimeout);
    }

    #end(by, reason) {
        if (this.#state === 'ended') {
            return;
        }
        clearTimeout(this.#retryTimer);
        this.#retryTimer = null;
        clearTimeout(this.#lostTimer);
        this.#lostTimer = null;
        const pc = this.#pc;
        this.#setState('ended');
        this.#queue = [];
        if (pc) {
            pc.close();
        }
        this.#client._callEnded(this, this.#errorsHeard);
        this.#emit('hangup', { by, reason });
    }
}

// Steady traffic between DWRTC clients and its accounting, for the fault
// tests: every message sent is counted, and so is what became of it.
//
//   const ledger = new Ledger();
//   const a = await Peer.open('a', [h1.wsUrl(), h2.wsUrl()], ledger);
//   const traffic = new Traffic(ledger, [[a, b], [b, a]], { interval: 50 });
//   traffic.start(); ... traffic.stop(); await ledger.settle();
//   ledger.summary((p) => ...)   // { sent, delivered, errors, lost, ... }
//
// Peers are web/dwrtc.js clients (DwrtcClient on the `ws` package), so a
// peer whose node goes away reconnects and fails over as a page would. A
// sender keeps sending to the last session id its partner had until the
// partner announces a new one (its `id` event).
//
// The node's errors name the recipient, not the message, so the books are
// kept per (sender session, recipient session): sent, delivered (each
// sequence number once), errors by kind, and lost = sent - delivered -
// errors (never below 0): what was neither delivered nor answered.

import WebSocket from 'ws';

import { DwrtcClient } from '../../web/dwrtc.js';
import { waitUntil } from '../lib/nginx.mjs';

export const TYPE = 'fault';

/** Milliseconds since an arbitrary start, for intervals. */
export const now = () => performance.now();

/** The node part of a session id. */
export const nodeOf = (id) => id.slice(0, 32);

/** "min/median/max" of numbers, in ms. */
export function spread(values) {
    if (!values.length) {
        return 'none';
    }
    const v = [...values].sort((a, b) => a - b);
    const f = (x) => `${Math.round(x)}`;
    return `min ${f(v[0])} / median ${f(v[Math.floor(v.length / 2)])} / max ${f(v.at(-1))} ms`
        + ` (n=${v.length})`;
}

/**
 * `from` sends `body` to the session `to` (welcomed at `welcomedAt`) and
 * waits for the outcome: { delivered: true, ms } from the welcome to the
 * delivery, or { error } (the node's answer, or that none came in time).
 */
export async function firstMessage(from, to, body, welcomedAt, timeout) {
    from.to(to, body);
    return Promise.race([
        to.waitFor((m) => m.messageBody === body, { timeout })
            .then(() => ({ delivered: true, ms: now() - welcomedAt })),
        from.waitFor((m) => m.type === 'WebSocketErrorMessage' && m.recipientSessionId === to.id,
                     { timeout: timeout + 1000 })
            .then((e) => ({ error: e.error })),
    ]).catch(() => ({ error: `neither delivered nor answered within ${timeout} ms` }));
}

/** Prints a line of figures (CTest shows it with -V or on failure). */
export function report(line) {
    console.log(`# faults: ${line}`);
}

// ---------------------------------------------------------------------------
// The books

class Pair {
    constructor(fromId, toId) {
        this.fromId = fromId;
        this.toId = toId;
        this.sent = 0;
        this.sentAt = [];            // by sequence number
        this.deliveredAt = new Map(); // sequence number -> time
        this.maxSeq = -1;
        this.duplicates = 0;
        this.reordered = 0;
        this.errors = {};            // kind -> count
        this.errorAt = [];
    }

    get delivered() {
        return this.deliveredAt.size;
    }

    get errorCount() {
        return this.errorAt.length;
    }

    get lost() {
        return Math.max(0, this.sent - this.delivered - this.errorCount);
    }

    get settled() {
        return this.delivered + this.errorCount >= this.sent;
    }
}

export class Ledger {
    constructor() {
        this.pairs = new Map();      // `${from}>${to}` -> Pair
        this.errorLog = [];          // { at, kind, fromId, toId }
        this.strays = [];            // messages or errors that fit no pair
    }

    pair(fromId, toId) {
        const key = `${fromId}>${toId}`;
        let p = this.pairs.get(key);
        if (!p) {
            p = new Pair(fromId, toId);
            this.pairs.set(key, p);
        }
        return p;
    }

    /** Records a message about to be sent; returns its sequence number. */
    sent(fromId, toId, at = now()) {
        const p = this.pair(fromId, toId);
        p.sentAt.push(at);
        return p.sent++;
    }

    /** A message of TYPE arrived at its recipient. */
    delivered(msg, at = now()) {
        const p = this.pairs.get(`${msg.senderSessionId}>${msg.recipientSessionId}`);
        const seq = Number(msg.messageBody);
        if (!p || !Number.isInteger(seq) || seq >= p.sent) {
            this.strays.push(msg);
            return;
        }
        if (p.deliveredAt.has(seq)) {
            p.duplicates++;
            return;
        }
        if (seq < p.maxSeq) {
            p.reordered++;
        }
        p.maxSeq = Math.max(p.maxSeq, seq);
        p.deliveredAt.set(seq, at);
    }

    /** The node told session `fromId` that a message to R failed. */
    error(fromId, msg, at = now()) {
        const toId = msg.recipientSessionId;
        const p = toId && this.pairs.get(`${fromId}>${toId}`);
        if (!p) {
            this.strays.push({ ...msg, at, fromId });
            return;
        }
        const kind = String(msg.error);
        p.errors[kind] = (p.errors[kind] ?? 0) + 1;
        p.errorAt.push(at);
        this.errorLog.push({ at, kind, fromId, toId });
    }

    select(filter = () => true) {
        return [...this.pairs.values()].filter(filter);
    }

    /**
     * Waits until every selected pair has each message delivered or
     * answered with an error, or `timeout` ms passed (the summary then
     * shows what is missing). Returns whether it settled.
     */
    async settle(filter, { timeout = 30_000 } = {}) {
        try {
            await waitUntil(() => this.select(filter).every((p) => p.settled),
                            { timeout, interval: 100, what: 'every message to be accounted for' });
            return true;
        } catch {
            return false;
        }
    }

    /** Totals over the selected pairs. */
    summary(filter) {
        const s = { pairs: 0, sent: 0, delivered: 0, errors: {}, errorCount: 0, lost: 0,
                    duplicates: 0, reordered: 0, lossy: [] };
        for (const p of this.select(filter)) {
            s.pairs++;
            s.sent += p.sent;
            s.delivered += p.delivered;
            s.errorCount += p.errorCount;
            s.lost += p.lost;
            s.duplicates += p.duplicates;
            s.reordered += p.reordered;
            for (const [k, n] of Object.entries(p.errors)) {
                s.errors[k] = (s.errors[k] ?? 0) + n;
            }
            if (p.lost) {
                const missing = [];
                for (let i = 0; i < p.sent && missing.length < 10; i++) {
                    if (!p.deliveredAt.has(i)) {
                        missing.push(i);
                    }
                }
                s.lossy.push(`${p.fromId}>${p.toId}: sent ${p.sent}, delivered ${p.delivered}, `
                             + `errors ${JSON.stringify(p.errors)}, undelivered ${missing}...`);
            }
        }
        return s;
    }
}

/** One line for a summary: "sent N, delivered N, errors {...}, lost N". */
export function describe(s) {
    return `${s.pairs} pairs: sent ${s.sent}, delivered ${s.delivered}, `
        + `errors ${JSON.stringify(s.errors)}, lost ${s.lost}`
        + (s.duplicates || s.reordered
            ? `, duplicated ${s.duplicates}, reordered ${s.reordered}` : '');
}

// ---------------------------------------------------------------------------
// Clients

/**
 * A DwrtcClient with its message and error events wired into a ledger.
 * `id` is the open session's id (null while disconnected), `targetId` the
 * last one it had (what its partners send to), `ids` every session it
 * had: { id, at, url }.
 */
export class Peer {
    constructor(label, urls, ledger, { backoff = { initial: 100, max: 1000 },
                                       stableAfter = 1000 } = {}) {
        this.label = label;
        this.urls = urls;
        this.ledger = ledger;
        this.ids = [];
        this.targetId = null;
        this.lost = [];              // times its session was lost
        this.client = new DwrtcClient({ WebSocket, backoff, stableAfter, openTimeout: 5000 });
        this.client.addEventListener('id', (e) => {
            this.targetId = e.detail.id;
            this.ids.push({ id: e.detail.id, at: now(), url: e.detail.url });
        });
        this.client.addEventListener('state', (e) => {
            if (e.detail.state === 'disconnected' && e.detail.previous === 'open') {
                this.lost.push(now());
            }
        });
        this.client.addEventListener('message', (e) => {
            if (e.detail.type === TYPE) {
                ledger.delivered(e.detail);
            }
        });
        this.client.addEventListener('error', (e) => {
            ledger.error(this.client.id, e.detail.message ?? e.detail);
        });
    }

    static async open(label, urls, ledger, opts) {
        const p = new Peer(label, urls, ledger, opts);
        await p.client.connect(urls);
        return p;
    }

    get id() {
        return this.client.state === 'open' ? this.client.id : null;
    }

    /** Sends one counted message to `toId`; false if not connected. */
    sendTo(toId) {
        const fromId = this.id;
        if (!fromId || !toId) {
            return false;
        }
        const seq = this.ledger.sent(fromId, toId);
        this.client.send(TYPE, toId, String(seq));
        return true;
    }

    /** Waits for a session that is not `oldId` (after a reconnect). */
    async newSession(oldId, { timeout = 30_000 } = {}) {
        await waitUntil(() => this.id && this.id !== oldId,
                        { timeout, what: `${this.label} to open a new session` });
        return this.ids.at(-1);
    }

    close() {
        this.client.close();
    }
}

/**
 * Every `interval` ms each route [from, to] sends one message from `from`
 * (if connected) to `to.targetId`, or to `to` itself if it is a session id
 * (a sender that has not heard of its partner's new session).
 */
export class Traffic {
    constructor(routes, { interval = 50 } = {}) {
        this.routes = routes;
        this.interval = interval;
        this.timer = null;
    }

    start() {
        this.timer = setInterval(() => {
            for (const [from, to] of this.routes) {
                from.sendTo(typeof to === 'string' ? to : to.targetId);
            }
        }, this.interval);
        this.timer.unref();
        return this;
    }

    stop() {
        clearInterval(this.timer);
        this.timer = null;
    }

    /** Messages per second it aims at. */
    get rate() {
        return Math.round(this.routes.length * 1000 / this.interval);
    }
}

/**
 * Routes from every peer to one peer of every other host: `byHost` is an
 * array (per host) of arrays of peers; peer k of a host sends to peer k
 * (mod their count) of each other host.
 */
export function crossRoutes(byHost) {
    const routes = [];
    byHost.forEach((peers, h) => {
        peers.forEach((from, k) => {
            byHost.forEach((others, g) => {
                if (g !== h && others.length) {
                    routes.push([from, others[k % others.length]]);
                }
            });
        });
    });
    return routes;
}

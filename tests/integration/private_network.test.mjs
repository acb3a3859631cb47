// A private network (dwrtc_network_key): only nodes that hold the same key
// reach each other. Real nginx nodes on loopback, browser-like sessions on
// them.
//
// Two members share one key file and bootstrap to each other: their
// sessions talk both ways. Two outsiders bootstrap to the first member too,
// one with a key of its own and one with none (the open network): a message
// between a member's session and an outsider's, either way, is answered
// "unreachable" (no record of the other's node can be found) and never
// arrives. The key never reaches an error log, and no
// node logs an [alert] or [crit].
//
// The keys live in a directory of this test (mode 0700, files 0600, as
// `(umask 077 && openssl rand -hex 32 > FILE)` makes them); no key is
// printed, also not when an assertion fails.

import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync, chmodSync, statSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { NginxNode, freePortRange } from '../lib/nginx.mjs';
import { openSession, terminateSessions } from '../lib/client.mjs';

// The first message to a node not yet known costs a DHT lookup, and an
// "unreachable" comes only when the lookups have given up (dwrtc_lookup_wait).
const ROUTE_WAIT = 60_000;

// the message types sent across the border, one per direction and outsider
const CROSSING = /^(to|from)-(other-key|open)$/;

/** Writes `secret` as `openssl rand -hex 32 > FILE` does, readable by its owner only. */
function writeKey(dir, name, secret) {
    const file = join(dir, name);
    writeFileSync(file, `${secret}\n`, { mode: 0o600 });
    chmodSync(file, 0o600);
    return file;
}

/**
 * Where `secret`, or a 16-character piece of it (as text or hex-encoded),
 * occurs in `text`: the line numbers, never the text itself.
 */
function linesShowing(text, secret) {
    const pieces = new Set([secret, Buffer.from(secret).toString('hex')]);
    for (let i = 0; i + 16 <= secret.length; i++) {
        pieces.add(secret.slice(i, i + 16));
    }
    return text.split('\n').flatMap((line, i) => (
        [...pieces].some((p) => line.includes(p)) ? [i + 1] : []));
}

describe('a private network: dwrtc_network_key', () => {
    let keyDir, memberKey, otherKey;
    let member1, member2, otherKeyNode, openNode;
    let workers;   // node name -> worker pids after start
    const nodes = () => [member1, member2, otherKeyNode, openNode].filter(Boolean);

    before(async () => {
        keyDir = mkdtempSync(join(tmpdir(), 'dwrtc-keys-'));
        memberKey = randomBytes(32).toString('hex');
        otherKey = randomBytes(32).toString('hex');
        const memberFile = writeKey(keyDir, 'network.key', memberKey);
        const otherFile = writeKey(keyDir, 'other.key', otherKey);

        // Both members know each other's DHT ports before either starts, so
        // each bootstraps to the other (a one-worker node takes the first
        // port of its range).
        const dht1 = await freePortRange(4);
        const dht2 = await freePortRange(4);
        member1 = await NginxNode.create({
            name: 'member1', dhtPorts: dht1, bootstrap: [`127.0.0.1:${dht2[0]}`],
            http: `dwrtc_network_key ${memberFile};`,
        });
        member2 = await NginxNode.create({
            name: 'member2', dhtPorts: dht2, bootstrap: [`127.0.0.1:${dht1[0]}`],
            http: `dwrtc_network_key ${memberFile};`,
        });
        await Promise.all([member1.start(), member2.start()]);
        assert.equal(member1.bootstrapAddress(), `127.0.0.1:${dht1[0]}`);
        assert.equal(member2.bootstrapAddress(), `127.0.0.1:${dht2[0]}`);
        await Promise.all([member1.waitPublished(), member2.waitPublished()]);

        // The outsiders join through the first member. Neither finds anyone
        // of its own network there, so neither can publish its record:
        // start() waits for their nodes to start, not to publish.
        const bootstrap = [member1.bootstrapAddress()];
        otherKeyNode = await NginxNode.create({
            name: 'other-key', bootstrap, http: `dwrtc_network_key ${otherFile};`,
        });
        openNode = await NginxNode.create({ name: 'open', bootstrap });
        await Promise.all([otherKeyNode.start(), openNode.start()]);

        workers = new Map(nodes().map((n) => [n.name, n.workerPids()]));
    });

    after(async () => {
        terminateSessions();
        await Promise.all(nodes().map((n) => n.stop()));
        if (keyDir) {
            rmSync(keyDir, { recursive: true, force: true });
        }
    });

    // A test's sessions are dropped when it ends, so a failed one leaves
    // none for the graceful stop to wait for.
    let sessions = [];
    afterEach(() => {
        for (const s of sessions) {
            s.terminate();
        }
        sessions = [];
    });

    async function open(node, name) {
        const s = await openSession(node.wsUrl(), { label: `${name}@${node.name}` });
        sessions.push(s);
        return s;
    }

    it('takes a 0600 key file without a warning', () => {
        for (const name of ['network.key', 'other.key']) {
            assert.equal(statSync(join(keyDir, name)).mode & 0o777, 0o600, name);
        }
        for (const node of [member1, member2, otherKeyNode]) {
            const warned = node.logLines().filter((l) => l.text.startsWith('dwrtc_network_key'));
            assert.deepEqual(warned.map((l) => l.line), [],
                             `${node.name} complained about its key file`);
        }
    });

    it('delivers messages both ways between sessions of two members', async () => {
        const a = await open(member1, 'a');
        const b = await open(member2, 'b');
        await a.deliver(b, 'member to member', { timeout: ROUTE_WAIT });
        await b.deliver(a, 'and back', { timeout: ROUTE_WAIT });
        assert.equal(a.inbox.queue.length + b.inbox.queue.length, 0,
                     'a member got an unexpected message: '
                     + JSON.stringify(a.inbox.queue[0] ?? b.inbox.queue[0]));
        await Promise.all([a.close(), b.close()]);
    });

    /**
     * `from` sends a message of `type` to `to`: the answer is "unreachable"
     * for `to` (its node's record is not in this network's DHT: after the
     * lookup wait), and `to` receives nothing of that type meanwhile.
     */
    async function notFound(from, to, type) {
        const leak = to.inbox.watch((m) => m.type === type, { timeout: 2 ** 31 - 1 });
        try {
            from.to(to, `${type}: this must not cross`, type);
            const e = await Promise.race([
                from.waitFor((m) => m.type === 'WebSocketErrorMessage'
                                    && m.recipientSessionId === to.id,
                             { timeout: ROUTE_WAIT,
                               what: `the error for ${type} (${from.label} to ${to.label})` }),
                leak.promise.then((m) => {
                    throw new Error(`${to.label} received ${type} from ${from.label}: `
                                    + JSON.stringify(m).slice(0, 200));
                }),
            ]);
            assert.deepEqual(e, { type: 'WebSocketErrorMessage', error: 'unreachable',
                                  recipientSessionId: to.id }, `the answer to ${type}`);
        } finally {
            leak.cancel();
        }
    }

    it('answers "unreachable" between a member and a node with another key or none, '
       + 'both ways, and nothing crosses', async () => {
        const m = await open(member1, 'm');
        const peer = await open(member2, 'peer');
        const [k, k2] = await Promise.all([open(otherKeyNode, 'k1'), open(otherKeyNode, 'k2')]);
        const [o, o2] = await Promise.all([open(openNode, 'o1'), open(openNode, 'o2')]);

        // every outsider's node works for its own sessions
        await k.deliver(k2, 'inside the other network');
        await o.deliver(o2, 'inside the open network');

        // all four at once: each answer costs lookups that give up
        await Promise.all([
            notFound(m, k, 'to-other-key'),
            notFound(k, m, 'from-other-key'),
            notFound(m, o, 'to-open'),
            notFound(o, m, 'from-open'),
        ]);

        // the member's session is fine: its network still delivers
        await m.deliver(peer, 'still a member', { timeout: ROUTE_WAIT });
        await peer.deliver(m, 'still a member, back', { timeout: ROUTE_WAIT });

        // nothing came late either: no session holds a border message
        for (const s of [m, peer, k, k2, o, o2]) {
            const crossed = s.inbox.queue.filter((msg) => CROSSING.test(msg.type ?? ''));
            assert.deepEqual(crossed, [], `${s.label} received a message across the border`);
        }
        await Promise.all([m, peer, k, k2, o, o2].map((s) => s.close()));
    });

    it('keeps every worker, logs no key and no [alert] or [crit], and stops cleanly',
       async () => {
        for (const node of nodes()) {
            assert.equal(node.workerPids().length, 1, `${node.name} lost its worker`);
            assert.deepEqual(node.workerPids(), workers.get(node.name),
                             `${node.name}: its worker was replaced (one died)`);
            assert.deepEqual(node.workerPids(), [...node.nodes().keys()],
                             `${node.name}: the worker that started the node still runs`);
        }
        await Promise.all(nodes().map((node) => node.quit()));
        // after the stop, so the whole life of every node is in its log
        for (const node of nodes()) {
            const log = node.errorLog();
            for (const [whose, secret] of [['the members\'', memberKey],
                                           ['the other', otherKey]]) {
                assert.deepEqual(linesShowing(log, secret), [],
                                 `${node.name}: error log lines showing ${whose} network key`);
            }
            node.assertNoAlerts();
        }
    });
});

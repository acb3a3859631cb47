// Node-to-node links as the worker's own connections
// (`dwrtc_link_transport nginx`): the worker listens on its link port,
// accepts, connects and does TLS 1.3 in its event loop, and the link
// protocol is dhtcore's (DrivenLinks). A node sends over the links it opened
// itself, so a message each way between two nodes uses both ends of both
// transports: outbound and inbound.
//
// Two nodes that both run the nginx transport relay messages both ways, in
// order; a node with the nginx transport and one with libwebsockets' (the
// default) do too, so the wire is the same. Every node stops gracefully
// with no [alert] (no "open socket left") in its error log. A link to a
// node published under a name is not opened yet (nginx's resolver is the
// next step): said once, and the other way still works.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

import { startNetwork, NginxNode, waitUntil } from '../lib/nginx.mjs';
import { openSession, terminateSessions } from '../lib/client.mjs';

// The first message to a node not yet known costs a DHT lookup.
const ROUTE_WAIT = 60_000;
// Messages each way after the first one.
const BURST = 50;

const NGINX_LINKS = /^dwrtc: links over the worker's connections, listening on link port (\d+)/;

/** The link port the node's worker listens on itself, or null (lws). */
function nginxLinkPort(node) {
    const l = node.logLines().map((x) => NGINX_LINKS.exec(x.text)).find(Boolean);
    return l ? Number(l[1]) : null;
}

/** One message from `from` to `to`, then BURST more, all in order. */
async function relay(from, to, what) {
    await from.deliver(to, `${what}: first`, { timeout: ROUTE_WAIT });
    const bodies = [];
    for (let i = 0; i < BURST; i++) {
        bodies.push(`${what}: ${i}`);
        from.to(to, bodies[i], 'burst');
    }
    const got = await from.unlessErrorFor(to.id, to.collect(
        BURST, (m) => m.type === 'burst' && m.senderSessionId === from.id,
        { timeout: ROUTE_WAIT, what: `${what} burst` }));
    assert.deepEqual(got.map((m) => m.messageBody), bodies, `${what}: in order`);
}

async function quitClean(net) {
    terminateSessions();
    for (const node of net.nodes) {
        await node.quit();
    }
    net.assertNoAlerts();
}

describe('two nodes with dwrtc_link_transport nginx', () => {
    let net, a, b;

    before(async () => {
        net = await startNetwork(2, { name: 'lnx', signal: 'dwrtc_rate off;',
                                      http: 'dwrtc_link_transport nginx;' });
        a = await openSession(net.nodes[0].wsUrl(), { label: 'a' });
        b = await openSession(net.nodes[1].wsUrl(), { label: 'b' });
    });

    after(() => {
        terminateSessions();
        return net?.stop();
    });

    it('run their links over the worker\'s own listener on the published port', () => {
        for (const node of net.nodes) {
            const [published] = node.currentNodes();
            assert.equal(nginxLinkPort(node), published.linkPort,
                         `${node.name}: ${node.describe(20)}`);
        }
    });

    it('relay messages between sessions both ways, in order', async () => {
        await relay(a, b, 'a to b');
        await relay(b, a, 'b to a');
    });

    it('stop gracefully with every link closed and no alert', async () => {
        await quitClean(net);
    });
});

describe('a node with the nginx transport and one with libwebsockets', () => {
    let net, a, b;

    before(async () => {
        net = await startNetwork(2, {
            name: 'lmix', signal: 'dwrtc_rate off;',
            nodes: [{ http: 'dwrtc_link_transport nginx;' },
                    { http: 'dwrtc_link_transport lws;' }],
        });
        a = await openSession(net.nodes[0].wsUrl(), { label: 'nginx' });
        b = await openSession(net.nodes[1].wsUrl(), { label: 'lws' });
    });

    after(() => {
        terminateSessions();
        return net?.stop();
    });

    it('have one node on each transport', () => {
        assert.ok(nginxLinkPort(net.nodes[0]));
        assert.equal(nginxLinkPort(net.nodes[1]), null);
    });

    it('relay messages between sessions both ways, in order', async () => {
        await relay(a, b, 'nginx to lws');
        await relay(b, a, 'lws to nginx');
    });

    it('stop gracefully with no alert', async () => {
        await quitClean(net);
    });
});

describe('a node with the nginx transport and a peer published under a name', () => {
    const nodes = [];

    after(async () => {
        terminateSessions();
        await Promise.all(nodes.map((n) => n.stop()));
    });

    it('does not open a link to the name, says so once, and is still reached', async () => {
        const a = await NginxNode.create({ name: 'lname1', signal: 'dwrtc_rate off;',
                                           http: 'dwrtc_link_transport nginx;' });
        nodes.push(a);
        await a.start();
        const b = await NginxNode.create({ name: 'lname2', signal: 'dwrtc_rate off;',
                                           http: 'dwrtc_link_transport lws;',
                                           bootstrap: [a.bootstrapAddress()] });
        nodes.push(b);
        b.conf = b.conf.replace(/dwrtc_public_address 127\.0\.0\.1;/,
                                'dwrtc_public_address localhost;');
        writeFileSync(b.confPath, b.conf);
        await b.start();
        await Promise.all([a.waitPublished(), b.waitPublished()]);

        const sa = await openSession(a.wsUrl(), { label: 'nginx' });
        const sb = await openSession(b.wsUrl(), { label: 'named' });

        // the named node opens its own link to the nginx node's address
        await sb.deliver(sa, 'to the nginx node', { timeout: ROUTE_WAIT });

        // the nginx node does not open one to "localhost"
        const named = () => a.logLines().filter(
            (l) => /dwrtc: link to "localhost" port \d+ not opened/.test(l.text));
        for (let i = 0; i < 3; i++) {
            sa.to(sb, `to the named node ${i}`);
            await sleep(700);
        }
        await waitUntil(() => named().length > 0,
                        { what: 'the line about the name', detail: () => a.describe(20) });
        assert.equal(named().length, 1, named().map((l) => l.line).join('\n'));

        terminateSessions();
        await a.quit();
        await b.quit();
        a.assertNoAlerts();
        b.assertNoAlerts();
    });
});

// Starting and stopping: nginx -s quit leaves nothing behind, and a node
// that cannot start says why without taking the web server down.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';

import { startNode, NginxNode, alive, withTimeout, waitUntil, freePortRange } from '../lib/nginx.mjs';
import { openSession, openSessions, rawRequest, handshakeRequest,
         terminateSessions } from '../lib/client.mjs';

describe('nginx -s quit', () => {
    it('closes open sessions with 1001, stops every node and leaves no process behind',
       async (t) => {
        t.after(terminateSessions);
        const node = await startNode({ t, name: 'quit', workers: 2, reuseport: true,
                                       shutdownTimeout: '5s' });
        // the two workers are a network of their own: routable once published
        await node.waitPublished();
        const workers = node.workerPids();
        const nodes = node.currentNodes();
        assert.equal(workers.length, 2);
        const sessions = await openSessions(node.wsUrl(), 6);
        await sessions[0].deliver(sessions[5], 'before quit');

        await node.quit();   // throws if the master or a worker survives

        for (const s of sessions) {
            const closed = await withTimeout(s.closed, 30_000, `${s.label} to be closed`);
            assert.equal(closed.code, 1001, `${s.label}: going away`);
        }
        assert.ok([node.masterPid, ...workers].every((pid) => !alive(pid)));
        const stopped = node.logLines().filter((l) => /^dwrtc: node [0-9a-f]+ stopped/.test(l.text));
        assert.deepEqual(stopped.map((l) => l.pid).sort(), [...workers].sort(),
                         'each worker stopped its node (and joined its threads) before exiting');
        for (const n of nodes) {
            assert.ok(node.logLines().some((l) => l.text.includes(`node ${n.nodeId} left the DHT`)),
                      `node ${n.nodeId} withdrew from the DHT`);
        }
        node.assertNoAlerts();
    });

    it('with no sessions open, exits at once and leaves no process behind', async (t) => {
        // a long worker_shutdown_timeout: only a clean exit can pass
        const node = await startNode({ t, name: 'quit-idle', shutdownTimeout: '300s' });
        const s = await openSession(node.wsUrl());
        await s.close();
        await node.quit({ timeout: 30_000 });
        node.assertNoAlerts();
    });
});

describe('a node whose port range is taken', () => {
    it('logs which range is exhausted, answers 503 at dwrtc_signal, keeps serving, and '
       + 'starts its node once the port is free',
       async (t) => {
        // hold the only DHT port of the node's range
        const [port] = await freePortRange(1);
        const holder = createSocket('udp4');
        await new Promise((res) => holder.bind({ port, address: '127.0.0.1' }, res));
        t.after(() => { try { holder.close(); } catch { /* closed by the test */ } });

        const node = await NginxNode.create({ name: 'taken', dhtPorts: [port, port],
                                              server: 'location = /ok { return 200 "ok\\n"; }' });
        t.after(() => node.stop());
        await node.start({ waitWorkers: false });
        await waitUntil(() => /dwrtc: .*no free UDP port/.test(node.errorLog()), {
            what: 'the worker to report the exhausted range', detail: () => node.describe() });
        const workers = node.workerPids();
        assert.equal(workers.length, 1);

        const res = await rawRequest(node.httpPort,
                                     handshakeRequest({ port: node.httpPort }));
        res.socket.destroy();
        assert.equal(res.status, 503);

        const log = node.errorLog();
        assert.match(log, new RegExp(`no free UDP port for the DHT in ${port}-${port}`),
                     'the log names the exhausted range');

        const ok = await rawRequest(node.httpPort,
                                    'GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
        ok.socket.destroy();
        assert.equal(ok.status, 200, 'the rest of the server still works');
        assert.deepEqual(node.workerPids(), workers);

        // The port comes free (as when the old workers of a reload exit):
        // the worker tries again on its own and starts its node.
        const freed = Date.now();
        await new Promise((res) => holder.close(res));
        await waitUntil(() => /dwrtc: node [0-9a-f]+ started, .*after waiting for a free port/
            .test(node.errorLog()), { timeout: 15_000, what: 'the node to start once the port is free',
                                      detail: () => node.describe() });
        console.log(`# the node started ${Date.now() - freed} ms after its port came free`);
        const s = await openSession(node.wsUrl());
        assert.match(s.id, /^[0-9a-f]{32}-/);
        await s.close();
        assert.deepEqual(node.workerPids(), workers, 'the same worker, not a restart');
        assert.equal(node.logLines().filter((l) => /no free UDP port/.test(l.text)).length, 1,
                     'the exhausted range is logged once, not at every attempt');
        await node.quit();
        node.assertNoAlerts();
    });
});

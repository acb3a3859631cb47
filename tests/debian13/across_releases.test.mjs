// A Debian 13 node and a Debian 12 node of one DWRTC network relay
// messages to each other, both ways, complete and in order: the module of
// the Debian 13 package in Debian 13's nginx (1.26, OpenDHT 3.0 linked in)
// and the module of this machine's build in Debian 12's nginx (1.22,
// OpenDHT 2.4). Run by ci/debian13.sh, not by CTest (it needs a Debian 13
// root with the package installed):
//
//   DWRTC_TRIXIE_ROOT=/path/to/root TMPDIR=/dir/seen/at/the/same/path/in/root \
//       node --test --test-reporter=spec tests/debian13/across_releases.test.mjs
//
// The Debian 13 nginx runs as `chroot ROOT /usr/sbin/nginx` in this
// machine's network namespace, so both nodes are on 127.0.0.1. Its prefix
// (configuration and error log) is made under TMPDIR, which must be the same
// directory inside the root (ci/debian13.sh bind-mounts it).
//
// Environment: DWRTC_TRIXIE_ROOT (required), DWRTC_TRIXIE_MODULE (default
// the package's /usr/lib/nginx/modules/ngx_http_dwrtc_module.so), and for
// the Debian 12 node DWRTC_MODULE and DWRTC_NGINX as in tests/lib/nginx.mjs.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';

import { NginxNode, NGINX, freeTcpPort, freePortRange } from '../lib/nginx.mjs';
import { openSession, nodeOf, terminateSessions } from '../lib/client.mjs';

const ROOT = process.env.DWRTC_TRIXIE_ROOT;
const TRIXIE_MODULE = process.env.DWRTC_TRIXIE_MODULE
    ?? '/usr/lib/nginx/modules/ngx_http_dwrtc_module.so';
const N = 300;
const ROUTE_WAIT = 60_000;

/** A node whose nginx is the one of the Debian 13 root. */
class TrixieNode extends NginxNode {
    command(args) {
        return ['chroot', [ROOT, '/usr/sbin/nginx', ...args]];
    }
}

function nginxVersion(cmd, args) {
    const r = spawnSync(cmd, [...args, '-v'], { encoding: 'utf8' });
    return (r.stderr.match(/nginx\/([\d.]+)/) ?? [])[1];
}

// dwrtc_rate off: the burst is the point, not the rate limit
const SIGNAL = 'dwrtc_rate off;';

async function ports() {
    return { httpPort: await freeTcpPort(), dhtPorts: await freePortRange(4),
             linkPorts: await freePortRange(4) };
}

describe('a Debian 13 node and a Debian 12 node', () => {
    let bookworm, trixie;

    before(async () => {
        assert.ok(ROOT, 'DWRTC_TRIXIE_ROOT names the Debian 13 root (ci/debian13.sh sets it)');
        bookworm = new NginxNode({ name: 'bookworm', signal: SIGNAL, ...await ports() });
        await bookworm.start();
        trixie = new TrixieNode({ name: 'trixie', module: TRIXIE_MODULE, signal: SIGNAL,
                                  webRoot: '/usr/share/dwrtc/web',
                                  bootstrap: [bookworm.bootstrapAddress()],
                                  ...await ports() });
        await trixie.start();
        await Promise.all([bookworm.waitPublished(), trixie.waitPublished()]);
    });

    after(async () => {
        terminateSessions();
        await Promise.all([trixie?.stop(), bookworm?.stop()]);
    });

    it('are two nginx versions', () => {
        const v12 = nginxVersion(NGINX, []);
        const v13 = nginxVersion('chroot', [ROOT, '/usr/sbin/nginx']);
        console.log(`# Debian 12 node: nginx ${v12}; Debian 13 node: nginx ${v13}`);
        assert.ok(v12 && v13, `nginx versions: ${v12}, ${v13}`);
        assert.notEqual(v12, v13);
    });

    it(`relay ${N} messages each way, complete and in order`, async () => {
        const a = await openSession(bookworm.wsUrl());
        const b = await openSession(trixie.wsUrl());
        assert.ok(bookworm.currentNodes().some((n) => n.nodeId === nodeOf(a.id)));
        assert.ok(trixie.currentNodes().some((n) => n.nodeId === nodeOf(b.id)));
        const bodies = (from) => Array.from({ length: N },
            (_, i) => JSON.stringify({ from, seq: i, text: 'naïve – 🎉 "q"'.repeat(1 + i % 5) }));
        const ab = bodies('bookworm');
        const ba = bodies('trixie');
        for (let i = 0; i < N; i++) {
            a.to(b, ab[i], 'relay');
            b.to(a, ba[i], 'relay');
        }
        const [atB, atA] = await Promise.all([
            a.unlessErrorFor(b.id, b.collect(N, (m) => m.type === 'relay',
                { timeout: ROUTE_WAIT, what: 'messages from the Debian 12 node' })),
            b.unlessErrorFor(a.id, a.collect(N, (m) => m.type === 'relay',
                { timeout: ROUTE_WAIT, what: 'messages from the Debian 13 node' })),
        ]);
        for (let i = 0; i < N; i++) {
            assert.deepEqual(atB[i], { type: 'relay', senderSessionId: a.id,
                                       recipientSessionId: b.id, messageBody: ab[i] });
            assert.deepEqual(atA[i], { type: 'relay', senderSessionId: b.id,
                                       recipientSessionId: a.id, messageBody: ba[i] });
        }
        await Promise.all([a.close(), b.close()]);
    });

    it('log no alerts', () => {
        bookworm.assertNoAlerts();
        trixie.assertNoAlerts();
    });
});

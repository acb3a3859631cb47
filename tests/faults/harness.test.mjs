// tests/lib/hosts.mjs itself: hosts on their own addresses that reach each
// other and the test through the bridge, a partition that cuts exactly one
// host off and heals, and nothing left behind: not by a network that was
// stopped, nor by a run that died before its teardown.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect } from 'node:net';
import { spawnSync } from 'node:child_process';

import { HostNetwork, ip, netnsExists, removeStale } from '../lib/hosts.mjs';

// Whether `from` (a Host, or null for the test process) opens a TCP
// connection to `to`:port within a second.
function reaches(from, to, port) {
    if (!from) {
        return new Promise((res) => {
            const s = connect({ host: to.address, port, timeout: 1000 });
            s.once('connect', () => { s.destroy(); res(true); });
            s.once('error', () => res(false));
            s.once('timeout', () => { s.destroy(); res(false); });
        });
    }
    const script = `require('net').connect({host:'${to.address}',port:${port},timeout:1000})`
        + `.on('connect',()=>process.exit(0)).on('error',()=>process.exit(1))`
        + `.on('timeout',()=>process.exit(2))`;
    const r = spawnSync('ip', ['netns', 'exec', from.netns, process.execPath, '-e', script],
                        { timeout: 10_000 });
    return Promise.resolve(r.status === 0);
}

// A TCP listener on `host`, in its namespace (a child process).
function listenIn(host, port) {
    const script = `require('net').createServer((s)=>s.end()).listen(${port},'${host.address}',`
        + `()=>console.log('up'))`;
    const child = spawnSync('ip', ['netns', 'exec', host.netns, 'sh', '-c',
                                   `${process.execPath} -e "${script}" >/dev/null 2>&1 & echo $!`],
                            { encoding: 'utf8' });
    return Number(child.stdout.trim());
}

describe('the host network harness', () => {
    it('gives every host its own address, reachable from the others and the test; '
       + 'a partition cuts one host off until healed', async (t) => {
        const net = HostNetwork.create(3);
        t.after(() => net.removeNetwork());
        const [h1, h2, h3] = net.hosts;
        assert.match(h1.address, /^10\.213\.\d+\.1$/);
        assert.ok(ip('-o', 'addr', 'show', 'dev', net.bridge).includes(`${net.bridgeAddress}/24`));
        const pids = net.hosts.map((h) => listenIn(h, 9000));
        t.after(() => pids.forEach((pid) => { try { process.kill(pid); } catch {} }));
        // the listeners start in the background
        for (let i = 0; i < 50 && !(await reaches(null, h3, 9000)); i++) {
            await new Promise((r) => setTimeout(r, 100));
        }
        assert.ok(await reaches(null, h1, 9000), 'the test reaches h1');
        assert.ok(await reaches(h1, h2, 9000), 'h1 reaches h2');
        assert.ok(await reaches(h3, h1, 9000), 'h3 reaches h1');

        h2.partition();
        assert.ok(!await reaches(h1, h2, 9000), 'h1 no longer reaches h2');
        assert.ok(!await reaches(h2, h3, 9000), 'h2 no longer reaches h3');
        assert.ok(await reaches(h1, h3, 9000), 'h1 still reaches h3');
        assert.ok(await reaches(null, h2, 9000), 'the test still reaches h2');
        h2.heal();
        assert.ok(await reaches(h1, h2, 9000), 'healed: h1 reaches h2 again');
        assert.ok(await reaches(h2, h3, 9000), 'healed: h2 reaches h3 again');

        net.removeNetwork();
        for (const h of net.hosts) {
            assert.ok(!netnsExists(h.netns), `${h.netns} removed`);
        }
        assert.ok(!ip('-o', 'link', 'show').includes(net.bridge), `${net.bridge} removed`);
    });

    it('removes what a run that no longer exists left behind', () => {
        // a pid that is certainly gone: a child that has exited
        const dead = spawnSync('true').pid;
        const ns = `dwrtc-f${dead}-h1`;
        const link = `dwf${dead}b`;
        ip('netns', 'add', ns);
        ip('link', 'add', link, 'type', 'bridge');
        removeStale();
        assert.ok(!netnsExists(ns), `stale ${ns} removed`);
        assert.ok(!ip('-o', 'link', 'show').includes(`${link}:`), `stale ${link} removed`);
    });
});

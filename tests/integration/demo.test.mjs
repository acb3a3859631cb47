// The main job, ci/demo.sh: three nginx nodes on 127.0.0.1:8081-8083 that
// form one network and serve the demo, stopped cleanly by Ctrl-C. Runs the
// script as the README says (without its install and build steps, which
// CTest has done), so it needs the demo's fixed ports free.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { join, dirname } from 'node:path';

import { REPO, MODULE, alive, childPids, waitUntil, withTimeout } from '../lib/nginx.mjs';
import { openSession, rawRequest, terminateSessions } from '../lib/client.mjs';

const PORTS = [8081, 8082, 8083];
const BUILD = dirname(dirname(MODULE));   // <build>/module/ngx_http_dwrtc_module.so
const RUN = join(BUILD, 'demo');

async function portTaken(port) {
    try {
        const r = await rawRequest(port, 'HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
                                   { timeout: 2000 });
        r.socket.destroy();
        return true;
    } catch {
        return false;
    }
}

/** The demo's nginx masters (their command line names RUN) and workers. */
function demoPids() {
    const masters = readdirSync('/proc').filter((n) => /^\d+$/.test(n)).filter((n) => {
        try {
            const cmd = readFileSync(`/proc/${n}/cmdline`, 'latin1');
            return cmd.startsWith('nginx: master') && cmd.includes(RUN) && alive(Number(n));
        } catch {
            return false;
        }
    }).map(Number);
    return masters.concat(masters.flatMap((m) => childPids(m)));
}

describe('ci/demo.sh', () => {
    it('starts three nodes that reach each other, and Ctrl-C stops them all', async (t) => {
        const busy = [];
        for (const p of PORTS) {
            if (await portTaken(p)) {
                busy.push(p);
            }
        }
        if (busy.length) {
            t.skip(`port(s) ${busy.join(', ')} on 127.0.0.1 are in use (a demo running?)`);
            return;
        }

        // its own process group, as in a terminal: Ctrl-C signals the group
        const demo = spawn(join(REPO, 'ci', 'demo.sh'), ['--no-build'], {
            cwd: REPO, env: { ...process.env, BUILD }, detached: true,
            stdio: ['ignore', 'pipe', 'pipe'],
        });
        let out = '';
        demo.stdout.on('data', (d) => { out += d; });
        demo.stderr.on('data', (d) => { out += d; });
        const exited = new Promise((resolve) => demo.on('exit', (code, sig) => resolve(code ?? sig)));
        t.after(() => {
            terminateSessions();
            try {
                process.kill(-demo.pid, 'SIGTERM');
            } catch {
                // already gone
            }
        });

        await waitUntil(() => out.includes('Press Ctrl-C') || demo.exitCode !== null, {
            timeout: 120_000, what: 'ci/demo.sh to start the network',
            detail: () => `output so far:\n${out}` });
        assert.equal(demo.exitCode, null, `ci/demo.sh exited early:\n${out}`);
        for (const p of PORTS) {
            assert.match(out, new RegExp(`http://127\\.0\\.0\\.1:${p}/`), `prints node ${p}'s URL`);
        }

        // every node serves web/ and signaling; node 1 and node 3 talk
        for (const p of PORTS) {
            const r = await rawRequest(p, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
            r.socket.destroy();
            assert.equal(r.status, 200, `http://127.0.0.1:${p}/`);
        }
        const a = await openSession(`ws://127.0.0.1:${PORTS[0]}/signal`);
        const c = await openSession(`ws://127.0.0.1:${PORTS[2]}/signal`);
        await a.deliver(c, 'node 1 to node 3', { timeout: 60_000 });
        await c.deliver(a, 'and back', { timeout: 60_000 });
        await Promise.all([a.close(), c.close()]);
        const pids = demoPids();
        assert.ok(pids.length >= 6, `three masters and their workers run (${pids.length})`);

        // Ctrl-C
        process.kill(-demo.pid, 'SIGINT');
        const code = await withTimeout(exited, 60_000, 'ci/demo.sh to stop after Ctrl-C');
        assert.equal(code, 0, `ci/demo.sh exit status after Ctrl-C; output:\n${out}`);
        assert.match(out, /stopped/);
        await waitUntil(() => pids.every((pid) => !alive(pid)), {
            timeout: 30_000, what: 'every demo nginx process to exit',
            detail: () => `alive: ${pids.filter(alive).join(', ')}` });
        for (const p of PORTS) {
            assert.equal(await portTaken(p), false, `port ${p} is free again`);
        }
        for (const i of [1, 2, 3]) {
            const log = join(RUN, `node${i}`, 'error.log');
            assert.ok(existsSync(log));
            const bad = readFileSync(log, 'utf8').split('\n')
                .filter((l) => /\[(alert|crit|emerg)\]/.test(l));
            assert.deepEqual(bad, [], `node ${i}'s error log`);
        }
    });
});

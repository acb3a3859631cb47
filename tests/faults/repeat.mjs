// Runs fault tests again and again and adds up what they counted: the long
// proof that reloads, a worker's kill -9, a node's restart and a node's
// kill -9 never answer "not found" for a live session and lose nothing,
// run by hand or in a nightly-style job (ctest runs each test once).
//
//   node tests/faults/repeat.mjs [--runs N] [test ...]
//
// Tests are names of tests/faults/*.test.mjs (default: reloads worker_kill
// restarts node_kill); N defaults to 10. Needs root and a build (DWRTC_MODULE, by
// default build/module/ngx_http_dwrtc_module.so). Prints each run's
// "# faults:" lines, then per test: runs passed, and from the reload test
// the first messages to fresh sessions on new workers (delivered, refused
// and why) with the time from welcome to delivery over every run. Exits
// nonzero when a run failed.

import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');

function parseArgs(argv) {
    let runs = 10;
    const tests = [];
    for (let i = 0; i < argv.length; i++) {
        if (argv[i] === '--runs') {
            runs = Number(argv[++i]);
            if (!Number.isInteger(runs) || runs < 1) {
                throw new Error('--runs takes a whole number of at least 1');
            }
        } else {
            tests.push(argv[i]);
        }
    }
    return { runs, tests: tests.length ? tests
        : ['reloads', 'worker_kill', 'restarts', 'node_kill'] };
}

function percentile(sorted, p) {
    if (!sorted.length) {
        return NaN;
    }
    return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

// First messages to fresh sessions on new workers: "1h1=6 1h2=9 2h1=not
// found ..." from the reload test's per-reload line (the restart test's
// "quit1=6 ... kill5=8" alike), and the worker_kill test's line about the
// respawned worker.
function firstMessages(lines) {
    const out = { delivered: [], refused: [] };
    for (const line of lines) {
        // the worker_kill test: one fresh session on the respawned worker
        const k = /first message to a session of the new worker: (delivered (\d+) ms|.*)/
            .exec(line);
        if (k) {
            if (k[2] !== undefined) {
                out.delivered.push(Number(k[2]));
            } else {
                out.refused.push(k[1]);
            }
            continue;
        }
        const m = /per (?:reload|restart), welcome to delivery \(ms\): (.*)$/.exec(line);
        if (!m) {
            continue;
        }
        for (const item of m[1].trim().split(/\s+(?=[a-z0-9]+=)/)) {
            const [, value] = item.split('=');
            const ms = Number(value);
            if (Number.isFinite(ms)) {
                out.delivered.push(ms);
            } else {
                out.refused.push(item);
            }
        }
    }
    return out;
}

function main() {
    const { runs, tests } = parseArgs(process.argv.slice(2));
    const env = { ...process.env };
    env.DWRTC_MODULE ??= join(root, 'build/module/ngx_http_dwrtc_module.so');
    if (!existsSync(env.DWRTC_MODULE)) {
        throw new Error(`no module at ${env.DWRTC_MODULE}: build first, or set DWRTC_MODULE`);
    }
    let failed = 0;
    const totals = [];
    for (const test of tests) {
        const file = join(here, `${test}.test.mjs`);
        if (!existsSync(file)) {
            throw new Error(`no test tests/faults/${test}.test.mjs`);
        }
        const total = { test, passed: 0, lines: [] };
        for (let run = 1; run <= runs; run++) {
            const r = spawnSync(process.execPath, ['--test', '--test-reporter=spec', file],
                                { cwd: root, env, encoding: 'utf8',
                                  maxBuffer: 64 * 1024 * 1024 });
            const lines = `${r.stdout}\n${r.stderr}`.split('\n')
                .filter((l) => l.includes('# faults:'))
                .map((l) => l.slice(l.indexOf('# faults:') + 9).trim());
            const ok = r.status === 0;
            total.passed += ok ? 1 : 0;
            failed += ok ? 0 : 1;
            total.lines.push(...lines);
            console.log(`== ${test}, run ${run} of ${runs}: ${ok ? 'passed' : 'FAILED'}`);
            for (const l of lines) {
                console.log(`   ${l}`);
            }
            if (!ok) {
                console.log(`${r.stdout}\n${r.stderr}`.split('\n').filter((l) => /✖|Error|assert/i
                    .test(l)).slice(0, 20).join('\n'));
            }
        }
        totals.push(total);
    }
    console.log('== in all');
    for (const t of totals) {
        console.log(`${t.test}: ${t.passed} of ${runs} runs passed`);
        const firsts = firstMessages(t.lines);
        const n = firsts.delivered.length + firsts.refused.length;
        if (n > 0) {
            const ms = firsts.delivered.sort((a, b) => a - b);
            console.log(`  first message to a fresh session on a new worker: ${ms.length} of ${n} `
                        + `delivered; welcome to delivery p50 ${percentile(ms, 50)} ms, `
                        + `p99 ${percentile(ms, 99)} ms, max ${ms[ms.length - 1]} ms`);
            if (firsts.refused.length) {
                console.log(`  not delivered: ${firsts.refused.join(' ')}`);
            }
        }
    }
    process.exitCode = failed ? 1 : 0;
}

main();

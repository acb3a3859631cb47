// The code in the web developers' docs is code that works: every ```js,
// ```ts and ```html block of docs/web-developers.md and web/README.md
// compiles on its own with `tsc --strict` (JavaScript with checkJs) against
// dwrtc.d.ts, as an app's editor and build would check it; the page names
// every export of dwrtc.js and every type of dwrtc.d.ts; and the blocks
// meant to be run are run: Part 2's video-call page and its data-only call
// in Chromium, each page on its own nginx node (both videos play, the data
// channel carries the text), and the Node.js block with `ws` against a node.
//
// Needs node_modules/typescript and node_modules/@types (npm ci at the
// repository root); the runs need the built module and Chromium.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync,
         writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import * as dwrtc from '../../web/dwrtc.js';
import { REPO, startNetwork } from '../lib/nginx.mjs';
import { openSession } from '../lib/client.mjs';
import { launchBrowser, newPage } from './browser.mjs';

const run = promisify(execFile);
const TSC = join(REPO, 'node_modules', 'typescript', 'bin', 'tsc');
const WEB = join(REPO, 'web');
const GUIDE = join(REPO, 'docs', 'web-developers.md');
const DOCS = [GUIDE, join(WEB, 'README.md')];
// the files of the package an app installs or copies beside its page
const CLIENT_FILES = ['dwrtc.js', 'dwrtc-e2e.js', 'dwrtc.d.ts', 'package.json'];
const WAIT = 60_000;

/**
 * The code blocks of a markdown file: { doc, line, lang, code, text }; for
 * an html block `code` is its module script and `text` the whole block.
 */
function codeBlocks(path) {
    const lines = readFileSync(path, 'utf8').split('\n');
    const blocks = [];
    for (let i = 0; i < lines.length; i++) {
        const open = lines[i].match(/^```(js|ts|html)\s*$/);
        if (!open) {
            continue;
        }
        const start = i;
        const body = [];
        for (i++; i < lines.length && lines[i] !== '```'; i++) {
            body.push(lines[i]);
        }
        const text = body.join('\n') + '\n';
        let code = text;
        if (open[1] === 'html') {
            const script = text.match(/<script type="module">\n([\s\S]*?)<\/script>/);
            if (!script) {
                continue;   // markup only
            }
            code = script[1];
        }
        blocks.push({ doc: path.slice(REPO.length + 1), line: start + 1, lang: open[1], code, text });
    }
    return blocks;
}

const BLOCKS = DOCS.flatMap(codeBlocks);
const where = (b) => `${b.doc}:${b.line}`;

/** The block of the guide that begins with `first` (its first code line). */
function guideBlock(first) {
    const found = BLOCKS.filter((b) => b.doc.endsWith('web-developers.md')
                                       && b.text.includes(first));
    assert.equal(found.length, 1, `one block of the guide holds ${JSON.stringify(first)}`);
    return found[0];
}

/** tsc over the app in `dir`; resolves to its report, '' when clean. */
async function tsc(dir) {
    try {
        await run(process.execPath, [TSC, '-p', dir], { cwd: dir });
        return '';
    } catch (err) {
        return `${err.stdout}${err.stderr}`;
    }
}

/** A directory an app would have: the client beside its pages and installed. */
function appDir(prefix) {
    const dir = mkdtempSync(join(tmpdir(), prefix));
    chmodSync(dir, 0o755);
    const installed = join(dir, 'node_modules', 'dwrtc');
    mkdirSync(installed, { recursive: true });
    for (const f of CLIENT_FILES) {
        cpSync(join(WEB, f), join(dir, f));
        cpSync(join(WEB, f), join(installed, f));
    }
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module', private: true }));
    return dir;
}

describe('the code of the web developers\' docs', () => {
    it('has the blocks this test knows, each a module of its own', () => {
        // a change that hides the blocks from this test fails here
        assert.ok(BLOCKS.length >= 10, `${BLOCKS.length} blocks found`);
        assert.ok(BLOCKS.some((b) => b.lang === 'ts'));
        assert.ok(BLOCKS.some((b) => b.lang === 'html'));
        for (const b of BLOCKS) {
            assert.match(b.code, /^import /m, `${where(b)} imports what it uses`);
        }
    });

    describe('compiled with tsc --strict', () => {
        let app;
        let report;

        before(async () => {
            app = appDir('dwrtc-docs-code.');
            // types that come with the test tools (ws's and Node.js's)
            symlinkSync(join(REPO, 'node_modules', '@types'), join(app, 'node_modules', '@types'));
            const files = BLOCKS.map((b, i) => {
                const name = `block${i}_${b.doc.replace(/\W/g, '_')}_${b.line}.${b.lang === 'ts' ? 'ts' : 'js'}`;
                writeFileSync(join(app, name), `// ${where(b)}\n${b.code}`);
                return name;
            });
            // a wrong call in JavaScript: checkJs must refuse it
            writeFileSync(join(app, 'wrong.js'), [
                "import { DwrtcClient } from './dwrtc.js';",
                "new DwrtcClient().call(42, { stream: 'camera' });",
                '',
            ].join('\n'));
            writeFileSync(join(app, 'tsconfig.json'), JSON.stringify({
                compilerOptions: {
                    strict: true,
                    noEmit: true,
                    allowJs: true,
                    checkJs: true,
                    target: 'es2022',
                    module: 'nodenext',
                    moduleResolution: 'nodenext',
                    lib: ['es2022', 'dom', 'dom.iterable'],
                    types: [],
                },
                files: [...files, 'wrong.js'],
            }, null, 2));
            report = await tsc(app);
        });

        after(() => {
            if (app) {
                rmSync(app, { recursive: true, force: true });
            }
        });

        it('finds no error in any block', () => {
            const errors = report.split('\n').filter((l) => /error TS/.test(l)
                                                            && !l.startsWith('wrong.js'));
            assert.deepEqual(errors, [], report);
        });

        it('refuses a wrong call in JavaScript: the check is not vacuous', () => {
            assert.match(report, /^wrong\.js\(2,\d+\): error TS2345/m, report);
        });
    });

    it('names every export of dwrtc.js and every type of dwrtc.d.ts', () => {
        const guide = readFileSync(GUIDE, 'utf8');
        const named = (name) => guide.includes(`\`${name}\``) || guide.includes(`\`${name}(`)
                                || guide.includes(`\`new ${name}(`);
        const types = [...readFileSync(join(WEB, 'dwrtc.d.ts'), 'utf8')
            .matchAll(/^export (?:declare )?(?:interface|type|class|const|function) (\w+)/gm)]
            .map((m) => m[1]);
        assert.ok(types.length > 20, `${types.length} declarations read`);
        const missing = [...new Set([...Object.keys(dwrtc), ...types])].filter((n) => !named(n));
        assert.deepEqual(missing, [], 'named nowhere in docs/web-developers.md');
    });

    describe('run', () => {
        let net, dir, browser;

        before(async () => {
            dir = appDir('dwrtc-docs-run.');
            // (the icon line keeps the browser from asking for /favicon.ico)
            const icon = '<link rel="icon" href="data:,">\n';
            writeFileSync(join(dir, 'call.html'),
                          icon + guideBlock("from './dwrtc.js';\n\nconst [localVideo").text);
            writeFileSync(join(dir, 'data.html'), `${icon}<script type="module">\n`
                          + guideBlock('autoAnswer: { receiveVideo: false').code + '</script>\n');
            net = await startNetwork(2, {
                name: 'docs-code',
                server: `location /docs/ {
                             alias ${dir}/;
                         }
                         location = /docs/signal {
                             dwrtc_signal;
                         }`,
            });
            ({ browser } = await launchBrowser());
        });

        after(async () => {
            await browser?.close().catch(() => {});
            await net?.stop();
            if (dir) {
                rmSync(dir, { recursive: true, force: true });
            }
        });

        /** A page of the docs on `node`; its console lines land in page.lines. */
        async function docPage(node, path, label) {
            const page = await newPage(browser, { label });
            page.lines = [];
            page.on('console', (m) => page.lines.push(m.text()));
            await page.goto(node.httpUrl(path));
            return page;
        }

        const said = (page, re) => page.lines.map((l) => l.match(re)).find(Boolean);

        async function idOf(page) {
            const start = Date.now();
            while (Date.now() - start < WAIT) {
                const m = said(page, /^my id: (\S+?);?(?: |$)/);
                if (m) {
                    return m[1];
                }
                await new Promise((r) => setTimeout(r, 50));
            }
            throw new Error(`${page.label} printed no id: ${page.lines.join(' | ')}`);
        }

        async function waitLine(page, re) {
            const start = Date.now();
            while (Date.now() - start < WAIT) {
                if (said(page, re)) {
                    return Date.now() - start;
                }
                await new Promise((r) => setTimeout(r, 50));
            }
            throw new Error(`${page.label} never printed ${re}: ${page.lines.join(' | ')}`);
        }

        it('Part 2\'s page: a call across two nodes, both videos play, "hi" arrives', async () => {
            const [n1, n2] = net.nodes;
            const t0 = Date.now();
            const callee = await docPage(n1, '/docs/call.html', 'callee');
            const id = await idOf(callee);
            assert.ok(dwrtc.isSessionId(id), id);
            const caller = await docPage(n2, `/docs/call.html#${id}`, 'caller');
            for (const page of [callee, caller]) {
                await page.waitForFunction(() => {
                    const v = document.querySelector('#remote');
                    return v instanceof HTMLVideoElement && v.videoWidth > 0 && v.currentTime > 0.5;
                }, null, { timeout: WAIT });
            }
            await waitLine(callee, /^partner: hi$/);
            console.log(`# both videos play ${Date.now() - t0} ms after the first page opened`);
            assert.deepEqual(callee.problems.concat(caller.problems), []);
        });

        it('the data-only call: no media, the text crosses the data channel', async () => {
            const [n1, n2] = net.nodes;
            const callee = await docPage(n2, '/docs/data.html', 'data-callee');
            const id = await idOf(callee);
            const caller = await docPage(n1, `/docs/data.html#${id}`, 'data-caller');
            const ms = await waitLine(callee, /^got hello$/);
            console.log(`# "hello" arrived ${ms} ms after the caller's page opened`);
            const media = await caller.evaluate(() => document.querySelectorAll('video').length);
            assert.equal(media, 0);
            assert.deepEqual(callee.problems.concat(caller.problems), []);
        });

        it('the Node.js block sends "hello" with ws, through a node', async (t) => {
            const [n1, n2] = net.nodes;
            const block = guideBlock("import WebSocket from 'ws';");
            const script = block.code.replace('ws://a.example/signal', n1.wsUrl())
                .replace('ws://b.example/signal', n2.wsUrl());
            assert.notEqual(script, block.code, 'the block names the two example nodes');
            symlinkSync(join(REPO, 'node_modules', 'ws'), join(dir, 'node_modules', 'ws'));
            writeFileSync(join(dir, 'hello.mjs'), script);
            const partner = await openSession(n2.wsUrl());
            t.after(() => partner.close());
            const child = spawn(process.execPath, [join(dir, 'hello.mjs'), partner.id],
                                { stdio: ['ignore', 'pipe', 'pipe'] });
            let out = '';
            child.stdout.on('data', (d) => { out += d; });
            child.stderr.on('data', (d) => { out += d; });
            t.after(() => child.kill());
            const m = await partner.waitFor((msg) => msg.type === 'chat',
                                            { what: `"hello" from the block (it printed: ${out})` });
            assert.equal(m.messageBody, 'hello');
            assert.match(out, /^my id: [0-9a-f]{32}-[0-9a-f]{16}$/m);
        });
    });
});

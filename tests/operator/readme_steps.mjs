// The README's "Add DWRTC to your nginx", followed literally on a scratch
// copy of Debian's layout, must give a working node, so the guide cannot
// rot.
//
//   node tests/operator/readme_steps.mjs REPO BUILD_DIR [NGINX]
//
// Every ```sh block of that section that follows an `<!-- operator-step -->`
// line runs as written, in order, with bash -e in the repository. Nothing
// outside a scratch directory S is written, and the system nginx is neither
// read from nor signalled:
//
//   - S/etc/nginx is a copy of this machine's Debian /etc/nginx (nginx.conf,
//     mime.types, sites-available/default...), with modules-enabled/,
//     conf.d/ and sites-enabled/ as a stock install has them (only the
//     default site); a scratch nginx on it runs before the steps, as the
//     system's would;
//   - in the steps, the paths /etc/nginx, /usr/share/nginx/modules-available,
//     /usr/lib/nginx/modules, /usr/share/dwrtc and /var/log/nginx are
//     those under S, and the build directory `build` is BUILD_DIR/operator;
//   - `sudo X` runs X; `cmake --install` gets DESTDIR=S; `nginx` is
//     /usr/sbin/nginx with S's nginx.conf; `systemctl reload|restart nginx`
//     signals the scratch nginx;
//   - in the configuration the steps write, the same paths lead into S,
//     `listen 80` becomes a free port on 127.0.0.1 (IPv6 listens go), so
//     does a `listen 127.0.0.1:PORT` (the status server), the DHT and link
//     ranges free ranges, and the node binds 127.0.0.1;
//     S/etc/nginx/conf.d/00-scratch.conf puts nginx's temporary files
//     under S.
//
// Then a WebSocket handshake to /call/signal with the site's Host gets 101
// and a welcome with a session id (which comes only from a running node),
// the demo page is served, the status page answers at the address the
// README gives (127.0.0.1:9422, at its free stand-in), and the error log has
// the node's start and no [alert], [crit] or [emerg].

import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync,
         writeFileSync, lstatSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { freeTcpPort, freePortRange } from '../lib/nginx.mjs';
import { openSession, rawRequest, terminateSessions } from '../lib/client.mjs';

const REPO = resolve(process.argv[2] ?? '.');
const BUILD = resolve(process.argv[3] ?? join(REPO, 'build'));
const NGINX = process.argv[4] ?? '/usr/sbin/nginx';
const SITE = 'call.example.com';

function fail(msg) {
    console.error(`operator_readme: FAIL: ${msg}`);
    process.exitCode = 1;
    throw new Error(msg);
}

/** The marked ```sh blocks of the README's "Add DWRTC to your nginx". */
function readmeSteps() {
    const text = readFileSync(join(REPO, 'README.md'), 'utf8');
    const start = text.indexOf('\n## Add DWRTC to your nginx\n');
    if (start < 0) fail('README.md has no "## Add DWRTC to your nginx" section');
    const rest = text.slice(start + 1);
    const next = rest.indexOf('\n## ', 3);
    const section = next < 0 ? rest : rest.slice(0, next);
    const steps = [];
    const re = /<!-- operator-step -->\s*\n(\s*)```sh\n([\s\S]*?)\n\s*```/g;
    for (let m; (m = re.exec(section));) {
        const indent = m[1].replace(/^\n+/, '');
        steps.push(m[2].split('\n').map((l) => (l.startsWith(indent) ? l.slice(indent.length) : l))
                       .join('\n'));
    }
    if (steps.length < 3) fail(`found ${steps.length} marked steps in the README's section`);
    return steps;
}

const S = mkdtempSync(join(tmpdir(), 'dwrtc-operator-'));
chmodSync(S, 0o755);   // nginx's workers (www-data when run as root) read S/usr/share/dwrtc
const OPBUILD = join(BUILD, 'operator');
const NGINX_CONF = join(S, 'etc/nginx/nginx.conf');
const ERROR_LOG = join(S, 'var/log/nginx/error.log');
const PID = join(S, 'run/nginx.pid');

// Paths of Debian's layout and where they are in S. A path is rewritten
// only where it starts (not inside a path already under S).
const PATHS = ['/etc/nginx', '/usr/share/nginx/modules-available', '/usr/lib/nginx/modules',
               '/usr/share/dwrtc', '/var/log/nginx', '/run/nginx.pid'];
function intoScratch(text) {
    for (const p of PATHS) {
        const re = new RegExp(`(^|[^\\w./-])${p.replace(/[./]/g, '\\$&')}(?=[/;\\s'"*]|$)`, 'gm');
        text = text.replace(re, `$1${S}${p}`);
    }
    return text;
}

let port, dht, link;
const loopbackPorts = new Map();   // listen 127.0.0.1:PORT -> its free stand-in

/** Rewrites the configuration under S (see the header); idempotent. */
async function rewriteConfig() {
    const files = [];
    const walk = (dir) => {
        if (!existsSync(dir)) return;
        for (const name of readdirSync(dir)) {
            const path = join(dir, name);
            const st = lstatSync(path);
            if (st.isDirectory()) walk(path);
            else if (st.isFile()) files.push(path);
        }
    };
    walk(join(S, 'etc/nginx'));
    walk(join(S, 'usr/share/nginx/modules-available'));
    for (const file of files) {
        const before = readFileSync(file, 'utf8');
        for (const m of before.matchAll(/^\s*listen\s+127\.0\.0\.1:(\d+)\b/gm)) {
            // (`port`, the stand-in of listen 80, and stand-ins already
            // written stay as they are: this runs after every step)
            const p = Number(m[1]);
            if (p !== port && !loopbackPorts.has(p) && ![...loopbackPorts.values()].includes(p)) {
                loopbackPorts.set(p, await freeTcpPort());
            }
        }
        let text = intoScratch(before)
            .replace(/^(\s*listen\s+127\.0\.0\.1:)(\d+)\b/gm,
                     (all, pre, p) => `${pre}${loopbackPorts.get(Number(p)) ?? p}`)
            .replace(/^(\s*listen\s+)80(?=[\s;])/gm, `$1127.0.0.1:${port}`)
            .replace(/^\s*listen\s+\[::\]:80[^;]*;.*\n/gm, '')
            .replace(/^(\s*dwrtc_dht_port\s+)\d+-\d+;/gm, `$1${dht[0]}-${dht[1]};`)
            .replace(/^(\s*dwrtc_link_port\s+)\d+-\d+;/gm, `$1${link[0]}-${link[1]};`);
        if (/^\s*dwrtc_public_address\s/m.test(text) && !/dwrtc_bind_address/.test(text)) {
            text += '\ndwrtc_bind_address 127.0.0.1;   # operator_readme: loopback only\n';
        }
        if (text !== before) writeFileSync(file, text);
    }
}

/** A copy of Debian's /etc/nginx as a stock install has it. */
async function scratchLayout() {
    if (!existsSync('/etc/nginx/nginx.conf')) fail('no /etc/nginx/nginx.conf (Debian: apt-get install nginx)');
    cpSync('/etc/nginx', join(S, 'etc/nginx'), { recursive: true, verbatimSymlinks: true });
    for (const dir of ['modules-enabled', 'conf.d', 'sites-enabled']) {
        rmSync(join(S, 'etc/nginx', dir), { recursive: true, force: true });
        mkdirSync(join(S, 'etc/nginx', dir));
    }
    if (existsSync(join(S, 'etc/nginx/sites-available/default'))) {
        spawnSync('ln', ['-s', '/etc/nginx/sites-available/default',
                         join(S, 'etc/nginx/sites-enabled/default')]);
    }
    for (const d of ['var/log/nginx', 'run', 'var/lib/nginx']) mkdirSync(join(S, d), { recursive: true });
    writeFileSync(join(S, 'etc/nginx/conf.d/00-scratch.conf'), [
        '# operator_readme: nginx\'s temporary files in the scratch directory',
        ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map(
            (k) => `${k}_temp_path ${S}/var/lib/nginx/${k};`),
        ''].join('\n'));
    // the link of the default site points into /etc/nginx: into S
    const def = join(S, 'etc/nginx/sites-enabled/default');
    if (existsSync(join(S, 'etc/nginx/sites-available/default'))) {
        rmSync(def, { force: true });
        spawnSync('ln', ['-s', join(S, 'etc/nginx/sites-available/default'), def]);
    }
    await rewriteConfig();
}

function nginx(...args) {
    return spawnSync(NGINX, ['-c', NGINX_CONF, '-e', ERROR_LOG, ...args], { encoding: 'utf8' });
}

/** What the steps run: the commands the README names, on S. */
function prelude() {
    const q = (s) => `'${s.replace(/'/g, `'\\''`)}'`;
    return `
set -euo pipefail
export DWRTC_SCRATCH=${q(S)}
sudo() { "$@"; }
nginx() { ${q(NGINX)} -c ${q(NGINX_CONF)} -e ${q(ERROR_LOG)} "$@"; }
cmake() {
    local args=() a install=
    for a in "$@"; do
        [ "$a" = build ] && a=${q(OPBUILD)}
        [ "$a" = --install ] && install=1
        args+=("$a")
    done
    if [ -n "$install" ]; then DESTDIR=${q(S)} command cmake "\${args[@]}"
    else command cmake "\${args[@]}"; fi
}
systemctl() {
    case "$1 $2" in
        "reload nginx") nginx -s reload ;;
        "restart nginx") nginx -s quit; sleep 2; nginx ;;
        *) echo "operator_readme: systemctl $* is not simulated" >&2; return 1 ;;
    esac
}
`;
}

async function waitFor(what, check, timeout = 30_000) {
    const end = Date.now() + timeout;
    while (Date.now() < end) {
        if (await check()) return;
        await sleep(100);
    }
    fail(`timed out waiting for ${what}`);
}

function log() {
    return existsSync(ERROR_LOG) ? readFileSync(ERROR_LOG, 'utf8') : '';
}

function stopScratchNginx() {
    if (!existsSync(PID)) return;
    const pid = Number(readFileSync(PID, 'utf8'));
    if (!pid) return;
    try { process.kill(pid, 'SIGTERM'); } catch { /* gone */ }
}

async function main() {
    port = await freeTcpPort();
    dht = await freePortRange(8);
    link = await freePortRange(8);
    const steps = readmeSteps();
    await scratchLayout();

    // The system's nginx as it runs before the module: here, the scratch one.
    const t = nginx('-t');
    if (t.status !== 0) fail(`nginx -t of the stock scratch layout failed:\n${t.stderr}`);
    const started = nginx();
    if (started.status !== 0) fail(`the scratch nginx did not start:\n${started.stderr}`);
    await waitFor('the scratch nginx pid file', () => existsSync(PID));
    console.log(`operator_readme: scratch layout ${S}, nginx on 127.0.0.1:${port}`);

    for (const [i, step] of steps.entries()) {
        const script = prelude() + intoScratch(step);
        console.log(`operator_readme: step ${i + 1}:\n${step.replace(/^/gm, '    ')}`);
        const r = spawnSync('bash', ['-c', script], { cwd: REPO, encoding: 'utf8',
                                                    maxBuffer: 64 << 20 });
        const out = (r.stdout + r.stderr).trim();
        if (out) console.log(out.split('\n').slice(-15).join('\n').replace(/^/gm, '  | '));
        if (r.status !== 0) fail(`step ${i + 1} exited with ${r.status}`);
        await rewriteConfig();
        if (/systemctl (reload|restart) nginx/.test(step)) {
            await waitFor('the node to start after the reload (dwrtc: node ... started)',
                          () => /dwrtc: node [0-9a-f]+ started/.test(log()));
        }
    }

    const installed = join(S, 'usr/lib/nginx/modules/ngx_http_dwrtc_module.so');
    if (!existsSync(installed)) fail(`the steps installed no ${installed}`);
    if (!existsSync(join(S, 'etc/nginx/modules-enabled/50-mod-http-dwrtc.conf'))) {
        fail('the steps enabled no modules-enabled/50-mod-http-dwrtc.conf');
    }

    // Right after a reload an old worker (without the site) may still take a
    // connection or two, as for any nginx reload; a few tries are allowed.
    let session;
    for (let attempt = 1; !session; attempt++) {
        try {
            session = await openSession(`ws://127.0.0.1:${port}/call/signal`,
                                        { headers: { Host: SITE } });
        } catch (err) {
            if (attempt >= 20 || !/answered 404/.test(err.message)) throw err;
            await sleep(250);
        }
    }
    console.log(`operator_readme: 101 and a welcome, session ${session.id}`);
    await session.close();

    const page = await rawRequest(port, `GET /call/ HTTP/1.1\r\nHost: ${SITE}\r\n`
                                        + 'Connection: close\r\n\r\n');
    page.socket.destroy();
    if (page.status !== 200) fail(`GET /call/ answered ${page.status}`);
    console.log('operator_readme: the demo is served at /call/');

    // the status page where the README sends the operator
    const statusUrl = /`curl (http:\/\/127\.0\.0\.1:(\d+)(\/[^`\s]*))`/
        .exec(readFileSync(join(REPO, 'README.md'), 'utf8'));
    if (!statusUrl) fail('the README gives no curl of the status page');
    const statusPort = loopbackPorts.get(Number(statusUrl[2]));
    if (!statusPort) fail(`the site the steps installed listens on no 127.0.0.1:${statusUrl[2]}`);
    let status;
    await waitFor(`${statusUrl[1]} to answer 200`, async () => {
        status = await rawRequest(statusPort, `GET ${statusUrl[3]} HTTP/1.1\r\n`
                                              + 'Host: 127.0.0.1\r\nConnection: close\r\n\r\n');
        status.socket.destroy();
        return status.status === 200;
    });
    console.log(`operator_readme: ${statusUrl[1]} answers 200`);

    // The log lines the section quotes after "says" are the real ones: the
    // quote with its id (8 hex digits and "...") and numbers as patterns.
    const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
    const quoted = [...readme.matchAll(/says `(dwrtc: [^`]+)`/g)].map((m) => m[1]);
    if (quoted.length === 0) fail('the README quotes no log line after "says"');
    for (const q of quoted) {
        const re = new RegExp(q.split(/[0-9a-f]{8}\.\.\./).map((part) => part
            .replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
            .replace(/\d+(?:\\\.\d+)*/g, '[0-9.]+')).join('[0-9a-f]{32}'));
        if (!re.test(log())) fail(`the README quotes "${q}", which the log does not have (${re})`);
        console.log(`operator_readme: the log has the README's "${q}"`);
    }

    const bad = log().split('\n').filter((l) => /\[(alert|crit|emerg)\]/.test(l));
    if (bad.length) fail(`the error log has:\n${bad.join('\n')}`);
    console.log('operator_readme: PASS');
}

let ok = false;
try {
    await main();
    ok = true;
} catch (err) {
    if (!process.exitCode) console.error(`operator_readme: FAIL: ${err.stack ?? err}`);
    process.exitCode = 1;
    console.error(`operator_readme: the error log (${ERROR_LOG}):\n${log().split('\n').slice(-20).join('\n')}`);
} finally {
    terminateSessions();
    stopScratchNginx();
    await waitFor('the scratch nginx to exit', () => !existsSync(PID), 30_000).catch(() => {});
    if (ok || !process.env.DWRTC_KEEP_TMP) rmSync(S, { recursive: true, force: true });
    else console.error(`operator_readme: kept ${S}`);
}

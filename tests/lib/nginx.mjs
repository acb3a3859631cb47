// Real nginx processes with the DWRTC module, for integration tests.
//
// Every node is a stock /usr/sbin/nginx (master and workers, `daemon off`)
// with its own temporary prefix, configuration and free loopback ports; it
// loads the built module with `load_module`. Nothing is mocked.
//
//   import { startNode, startNetwork } from '../lib/nginx.mjs';
//
//   test('...', async (t) => {
//     const net = await startNetwork(3, { t });   // stopped when t ends
//     const url = net.nodes[1].wsUrl();           // ws://127.0.0.1:P/signal
//   });
//
// Environment:
//   DWRTC_MODULE   path of ngx_http_dwrtc_module.so (set by CTest);
//                  default <repo>/build/module/ngx_http_dwrtc_module.so
//   DWRTC_REPO     repository root (set by CTest); default: found from here
//   DWRTC_NGINX    nginx binary; default /usr/sbin/nginx
//   DWRTC_KEEP_TMP set to keep every node's prefix directory (configuration
//                  and error log) after the test; they are always kept, and
//                  their path printed, when a node fails to start.
//
// A node may also run on another address than 127.0.0.1 (option `address`:
// it listens, binds its DHT and link ports and publishes there) and inside
// a network namespace (option `netns`: every nginx command is run as
// `ip netns exec NS nginx ...`); tests/lib/hosts.mjs uses both.
//
// Nodes are stopped when the test given as `t` ends (also on failure), and
// a watchdog process kills a node's nginx if this Node.js process dies
// without stopping it (a CTest timeout, say), so no nginx outlives a run.

import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { createServer, connect as tcpConnect } from 'node:net';
import { createSocket } from 'node:dgram';
import { mkdtempSync, writeFileSync, readFileSync, rmSync, mkdirSync, readdirSync,
         chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

export const REPO = resolve(process.env.DWRTC_REPO
    ?? join(dirname(fileURLToPath(import.meta.url)), '..', '..'));
export const MODULE = resolve(process.env.DWRTC_MODULE
    ?? join(REPO, 'build', 'module', 'ngx_http_dwrtc_module.so'));
export const NGINX = process.env.DWRTC_NGINX ?? '/usr/sbin/nginx';
export const WEB_ROOT = join(REPO, 'web');
// `dwrtc_link_transport` of the nodes whose configuration does not say
// (DWRTC_LINK_TRANSPORT=nginx runs a suite over the worker's own links);
// unset: the module's default.
export const LINK_TRANSPORT = process.env.DWRTC_LINK_TRANSPORT ?? null;

// Bounded waits. They only limit how long a broken node can hold a test;
// a healthy node answers far sooner.
export const START_TIMEOUT = 30_000;
export const PUBLISH_TIMEOUT = 60_000;
export const STOP_TIMEOUT = 30_000;

// ---------------------------------------------------------------------------
// Waiting

/**
 * Polls `check` (sync or async) until it returns a truthy value, which is
 * returned. After `timeout` ms throws an Error saying what was awaited, plus
 * whatever `detail()` adds (for example the tail of an error log).
 */
export async function waitUntil(check, { timeout = 10_000, interval = 50,
                                         what = 'condition',
                                         detail } = {}) {
    const deadline = Date.now() + timeout;
    for (;;) {
        const v = await check();
        if (v) {
            return v;
        }
        if (Date.now() > deadline) {
            let msg = `timed out after ${timeout} ms waiting for ${what}`;
            if (detail) {
                msg += '\n' + await detail();
            }
            throw new Error(msg);
        }
        await sleep(interval);
    }
}

/** `promise`, or a rejection naming `what` after `timeout` ms. */
export async function withTimeout(promise, timeout, what) {
    let timer;
    try {
        return await Promise.race([promise, new Promise((_, reject) => {
            timer = setTimeout(() => reject(new Error(
                `timed out after ${timeout} ms waiting for ${what}`)), timeout);
        })]);
    } finally {
        clearTimeout(timer);
    }
}

// ---------------------------------------------------------------------------
// Ports

// Ports handed out by this process and not yet known to be bound.
const handedOut = new Set();

function tcpFree(port) {
    return new Promise((res) => {
        const srv = createServer();
        srv.once('error', () => res(false));
        srv.listen({ port, host: '127.0.0.1', exclusive: true },
                   () => srv.close(() => res(true)));
    });
}

function udpFree(port) {
    return new Promise((res) => {
        const sock = createSocket('udp4');
        sock.once('error', () => { sock.close(); res(false); });
        sock.bind({ port, address: '127.0.0.1', exclusive: true },
                  () => sock.close(() => res(true)));
    });
}

/** A TCP port on 127.0.0.1 that is free now (the system picks it). */
export function freeTcpPort() {
    return new Promise((res, rej) => {
        const srv = createServer();
        srv.once('error', rej);
        srv.listen({ port: 0, host: '127.0.0.1', exclusive: true }, () => {
            const { port } = srv.address();
            srv.close(() => {
                if (handedOut.has(port)) {
                    freeTcpPort().then(res, rej);
                } else {
                    handedOut.add(port);
                    res(port);
                }
            });
        });
    });
}

/**
 * `count` consecutive ports that are free for TCP and UDP on 127.0.0.1,
 * as [from, to]. Picked at random below the system's ephemeral range
 * (32768 and up on Linux), so outgoing connections do not take them.
 */
export async function freePortRange(count, { low = 20000, high = 32000 } = {}) {
    for (let attempt = 0; attempt < 200; attempt++) {
        const from = low + Math.floor(Math.random() * (high - low - count));
        let ok = true;
        for (let p = from; ok && p < from + count; p++) {
            ok = !handedOut.has(p) && await tcpFree(p) && await udpFree(p);
        }
        if (ok) {
            for (let p = from; p < from + count; p++) {
                handedOut.add(p);
            }
            return [from, from + count - 1];
        }
    }
    throw new Error(`no ${count} consecutive free ports in ${low}-${high}`);
}

// ---------------------------------------------------------------------------
// Processes

/** Pids of the live children of `pid` (from /proc). */
export function childPids(pid) {
    const out = [];
    for (const name of readdirSync('/proc')) {
        if (!/^\d+$/.test(name)) {
            continue;
        }
        let stat;
        try {
            stat = readFileSync(`/proc/${name}/stat`, 'latin1');
        } catch {
            continue;
        }
        // pid (comm) state ppid ...; comm may hold spaces and parentheses
        const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        if (rest[0] !== 'Z' && Number(rest[1]) === pid) {
            out.push(Number(name));
        }
    }
    return out.sort((a, b) => a - b);
}

/** True while a process with this pid exists and is not a zombie. */
export function alive(pid) {
    try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
        return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
    } catch {
        return false;
    }
}

function cmdline(pid) {
    try {
        return readFileSync(`/proc/${pid}/cmdline`, 'latin1')
            .replace(/\0+$/, '').replace(/\0/g, ' ');
    } catch {
        return '';
    }
}

// Nodes still running, killed if this process exits without stopping them.
const running = new Set();

process.on('exit', () => {
    for (const node of running) {
        node.kill();
    }
});

// ---------------------------------------------------------------------------
// Configuration

/**
 * The nginx.conf of a test node. `o` holds: module, prefix, workers,
 * httpPort, dhtPorts [from, to], linkPorts [from, to], bootstrap (array of
 * "host:port"), address (default 127.0.0.1: where it listens, binds and
 * what it publishes), publicAddress (what it publishes, if not address),
 * and extra text for the main context (`main`), the http
 * block (`http`), the server block (`server`) and the signal location
 * (`signal`). `signalPath` names the location (default /signal).
 */
export function nodeConfig(o) {
    const range = ([from, to]) => (from === to ? `${from}` : `${from}-${to}`);
    const address = o.address ?? '127.0.0.1';
    const indent = (text, n) => (text ?? '').split('\n')
        .map((l) => (l.trim() ? ' '.repeat(n) + l.trim() : '')).join('\n');
    return `# DWRTC test node (written by tests/lib/nginx.mjs)
load_module ${o.module};

daemon off;
master_process on;
worker_processes ${o.workers};
error_log ${o.prefix}/error.log info;
pid ${o.prefix}/nginx.pid;
# bounds how long a graceful stop waits for open sessions
worker_shutdown_timeout ${o.shutdownTimeout ?? '10s'};
${o.main ?? ''}

events {
    worker_connections 1024;
}

http {
    access_log ${o.prefix}/access.log;

    # Debian's defaults point to /var/lib/nginx; keep everything in the prefix.
    client_body_temp_path ${o.prefix}/tmp/client_body;
    proxy_temp_path ${o.prefix}/tmp/proxy;
    fastcgi_temp_path ${o.prefix}/tmp/fastcgi;
    uwsgi_temp_path ${o.prefix}/tmp/uwsgi;
    scgi_temp_path ${o.prefix}/tmp/scgi;

    types {
        text/html html;
        text/javascript js mjs;
        text/css css;
        application/json json;
    }
    default_type application/octet-stream;

    dwrtc_dht_port ${range(o.dhtPorts)};
    dwrtc_link_port ${range(o.linkPorts)};
    dwrtc_bind_address ${address};
    dwrtc_public_address ${o.publicAddress ?? address};
    # the nodes of a test network share few addresses: no per-IP DHT limit
    dwrtc_dht_rate_limit off off;
${LINK_TRANSPORT && !/dwrtc_link_transport/.test(o.http ?? '')
        ? `    dwrtc_link_transport ${LINK_TRANSPORT};\n` : ''}${o.bootstrap?.length ? `    dwrtc_bootstrap ${o.bootstrap.join(' ')};\n` : ''}${indent(o.http, 4)}

    server {
        listen ${address}:${o.httpPort}${o.reuseport ? ' reuseport' : ''};

        location ${o.signalPath ?? '/signal'} {
            dwrtc_signal;
${indent(o.signal, 12)}
        }

        location / {
            root ${o.webRoot ?? WEB_ROOT};
        }
${indent(o.server, 8)}
    }
}
`;
}

// ---------------------------------------------------------------------------
// A node

// `2024/01/02 03:04:05 [notice] 1234#1234: *5 message`
const LOG_LINE = /^\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d \[(\w+)\] (\d+)#\d+: (?:\*\d+ )?(.*)$/;
const STARTED = /^dwrtc: node ([0-9a-f]+) started, dht port (\d+), link port (\d+)/;
const PUBLISHED = /^dwrtc: node ([0-9a-f]+) published its record/;
const NOT_STARTED = /^dwrtc: node did not start/;

export class NginxNode {
    /**
     * Writes the prefix and configuration; start() runs nginx.
     * opts: name, workers (1), http/server/signal/main (extra config text),
     * bootstrap (["127.0.0.1:PORT"]), reuseport, conf (a whole
     * configuration, replacing the template; then httpPort is required and
     * `{{PREFIX}}` in it is replaced by the prefix), httpPort, dhtPorts,
     * linkPorts (set by create()), address (default 127.0.0.1), netns (a
     * network namespace to run nginx in).
     */
    constructor(opts) {
        this.opts = opts;
        this.name = opts.name ?? 'node';
        this.workers = opts.workers ?? 1;
        this.httpPort = opts.httpPort;
        this.dhtPorts = opts.dhtPorts;
        this.linkPorts = opts.linkPorts;
        this.address = opts.address ?? '127.0.0.1';
        this.netns = opts.netns ?? null;
        this.prefix = mkdtempSync(join(tmpdir(), `dwrtc-${this.name}-`));
        chmodSync(this.prefix, 0o755);
        mkdirSync(join(this.prefix, 'tmp'));
        this.confPath = join(this.prefix, 'nginx.conf');
        this.errorLogPath = join(this.prefix, 'error.log');
        this.conf = opts.conf !== undefined
            ? opts.conf.replaceAll('{{PREFIX}}', this.prefix)
            : nodeConfig({ ...opts, module: opts.module ?? MODULE,
                           prefix: this.prefix, workers: this.workers });
        // As root, nginx's workers would run as "nobody", who cannot read
        // web/ when the checkout lives in a private directory (a mktemp -d
        // clone, say); like ci/demo.sh, run them as root too.
        if (process.getuid?.() === 0 && !/^\s*user\s/m.test(this.conf)) {
            this.conf = `user root;\n${this.conf}`;
        }
        writeFileSync(this.confPath, this.conf);
        this.master = null;
        this.pids = new Set();     // every nginx pid seen, for stop checks
        this.output = '';
        this.keep = !!process.env.DWRTC_KEEP_TMP;
    }

    /** Allocates free ports for a node with opts.workers workers. */
    static async create(opts = {}) {
        const workers = opts.workers ?? 1;
        // old and new workers of a reload are alive at once, plus spare
        const n = opts.portsPerNode ?? 2 * workers + 2;
        return new NginxNode({
            ...opts,
            httpPort: opts.httpPort ?? await freeTcpPort(),
            dhtPorts: opts.dhtPorts ?? await freePortRange(n),
            linkPorts: opts.linkPorts ?? await freePortRange(n),
        });
    }

    /** ws:// URL of a path on this node (default the signal location). */
    wsUrl(path = '/signal') {
        return `ws://${this.address}:${this.httpPort}${path}`;
    }

    httpUrl(path = '/') {
        return `http://${this.address}:${this.httpPort}${path}`;
    }

    // [command, args] that run nginx with `args`, in this node's namespace.
    command(args) {
        return this.netns ? ['ip', ['netns', 'exec', this.netns, NGINX, ...args]]
            : [NGINX, args];
    }

    /** Runs `nginx -t` on the configuration; returns { ok, output }. */
    configTest() {
        const r = spawnSync(...this.command(['-t', '-p', this.prefix, '-c', this.confPath,
                                             '-e', this.errorLogPath]),
                            { encoding: 'utf8', timeout: 30_000 });
        return { ok: r.status === 0, output: (r.stdout ?? '') + (r.stderr ?? '') };
    }

    /**
     * Starts nginx and waits until the HTTP port accepts connections and
     * every worker's node has started (its "dwrtc: node ... started" line).
     * waitWorkers: false skips the latter (for configurations without
     * dwrtc_signal).
     */
    async start({ timeout = START_TIMEOUT, waitWorkers = true } = {}) {
        // `ip netns exec` execs nginx in place: the child is still the master
        const child = spawn(...this.command(['-p', this.prefix, '-c', this.confPath,
                                             '-e', this.errorLogPath]),
                            { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
        this.master = child;
        this.masterPid = child.pid;
        this.pids.add(child.pid);
        this.exited = false;
        this.exitCode = null;
        child.on('exit', (code, signal) => {
            this.exited = true;
            this.exitCode = code ?? signal;
            running.delete(this);
        });
        child.on('error', (err) => {
            this.exited = true;
            this.output += String(err);
        });
        for (const s of [child.stdout, child.stderr]) {
            s.setEncoding('utf8');
            s.on('data', (d) => { this.output += d; });
            s.unref?.();
        }
        child.unref();
        running.add(this);
        this.watchdog();

        try {
            await waitUntil(async () => {
                if (this.exited) {
                    throw new Error(`nginx exited (${this.exitCode}) while starting`);
                }
                return portAccepts(this.httpPort, this.address);
            }, { timeout, what: `${this.name} to accept on port ${this.httpPort}` });
            if (waitWorkers) {
                await this.waitWorkersStarted({ timeout });
            }
        } catch (err) {
            this.keep = true;
            err.message += `\n${this.describe()}`;
            throw err;
        }
    }

    // Kills this node's nginx if the test process dies without stopping it.
    watchdog() {
        const script = `
            while kill -0 ${process.pid} 2>/dev/null && kill -0 ${this.masterPid} 2>/dev/null; do
                sleep 1
            done
            if kill -0 ${this.masterPid} 2>/dev/null; then
                kill -TERM ${this.masterPid} 2>/dev/null
                sleep 3
                kill -KILL -${this.masterPid} 2>/dev/null
            fi`;
        const w = spawn('/bin/sh', ['-c', script], { detached: true, stdio: 'ignore' });
        w.unref();
    }

    /** Text for failure messages: where the node lives and its log's tail. */
    describe(lines = 40) {
        const log = this.errorLog().split('\n').filter(Boolean).slice(-lines);
        return `[${this.name}: prefix ${this.prefix} kept, port ${this.httpPort}]`
            + (this.output ? `\nnginx output:\n${this.output}` : '')
            + `\nerror.log (last ${lines} lines):\n${log.join('\n')}`;
    }

    /** The whole error log (startup errors included). */
    errorLog() {
        try {
            return readFileSync(this.errorLogPath, 'utf8');
        } catch {
            return '';
        }
    }

    /** Parsed error log lines: { level, pid, text }. */
    logLines() {
        const out = [];
        for (const line of this.errorLog().split('\n')) {
            const m = LOG_LINE.exec(line);
            if (m) {
                out.push({ level: m[1], pid: Number(m[2]), text: m[3], line });
            }
        }
        return out;
    }

    /** Lines at [alert], [crit] or [emerg]. */
    alerts() {
        return this.errorLog().split('\n')
            .filter((l) => /\[(alert|crit|emerg)\]/.test(l));
    }

    /** Throws (with the lines) if the error log holds [alert], [crit] or [emerg]. */
    assertNoAlerts() {
        const bad = this.alerts();
        if (bad.length) {
            this.keep = true;
            throw new Error(`${this.name}: error log has ${bad.length} `
                + `[alert]/[crit]/[emerg] line(s):\n${bad.slice(0, 20).join('\n')}`
                + `\n(prefix ${this.prefix} kept)`);
        }
    }

    /**
     * Pids of the master's worker processes. Workers of an earlier
     * generation that are still finishing after a reload ("worker process
     * is shutting down") are left out unless { shuttingDown: true }.
     */
    workerPids({ shuttingDown = false } = {}) {
        if (!this.masterPid || !alive(this.masterPid)) {
            return [];
        }
        const pids = childPids(this.masterPid).filter((pid) => {
            const cmd = cmdline(pid);
            if (!cmd.includes('worker process')) {
                return false;   // cache manager/loader: not nodes
            }
            return shuttingDown || !cmd.includes('shutting down');
        });
        for (const pid of pids) {
            this.pids.add(pid);
        }
        return pids;
    }

    /**
     * The nodes (one per worker) started by this nginx, from the error log,
     * keyed by worker pid: { pid, nodeId, dhtPort, linkPort, published }.
     */
    nodes() {
        const byPid = new Map();
        const published = new Set();
        for (const l of this.logLines()) {
            let m = STARTED.exec(l.text);
            if (m) {
                byPid.set(l.pid, { pid: l.pid, nodeId: m[1],
                                   dhtPort: Number(m[2]), linkPort: Number(m[3]) });
            }
            m = PUBLISHED.exec(l.text);
            if (m) {
                published.add(m[1]);
            }
        }
        for (const n of byPid.values()) {
            n.published = published.has(n.nodeId);
        }
        return byPid;
    }

    /** The nodes of the current (not shutting down) workers. */
    currentNodes() {
        const nodes = this.nodes();
        return this.workerPids().map((pid) => nodes.get(pid)).filter(Boolean);
    }

    /** Waits until every current worker has started its node. */
    async waitWorkersStarted({ timeout = START_TIMEOUT } = {}) {
        return waitUntil(() => {
            if (this.exited) {
                throw new Error(`nginx exited (${this.exitCode})`);
            }
            const failed = this.logLines().find((l) => NOT_STARTED.test(l.text));
            if (failed) {
                throw new Error(`a worker's node did not start: ${failed.line}`);
            }
            const pids = this.workerPids();
            const nodes = this.nodes();
            return pids.length === this.workers
                && pids.every((pid) => nodes.has(pid))
                && pids.map((pid) => nodes.get(pid));
        }, { timeout, what: `${this.workers} worker node(s) of ${this.name} to start`,
             detail: () => this.describe() });
    }

    /**
     * Waits until every current worker's node has published its record in
     * the DHT (other nodes can then find it). A node alone in its network
     * cannot publish: there is no one to store the record.
     */
    async waitPublished({ timeout = PUBLISH_TIMEOUT } = {}) {
        return waitUntil(() => {
            const nodes = this.currentNodes();
            return nodes.length === this.workers && nodes.every((n) => n.published)
                && nodes;
        }, { timeout, what: `the nodes of ${this.name} to publish their DHT records`,
             detail: () => this.describe() });
    }

    /** DHT address of this nginx's first worker, for dwrtc_bootstrap. */
    bootstrapAddress() {
        const n = this.currentNodes()[0];
        if (!n) {
            throw new Error(`${this.name} has no running node`);
        }
        return `${this.address}:${n.dhtPort}`;
    }

    /** Runs `nginx -s SIGNAL` for this node's prefix and configuration. */
    signal(sig) {
        return execFileSync(...this.command(['-p', this.prefix, '-c', this.confPath,
                                             '-e', this.errorLogPath, '-s', sig]),
                            { encoding: 'utf8', stdio: 'pipe', timeout: 30_000 });
    }

    /**
     * `nginx -s reload`: waits until the new workers' nodes have started
     * (and, with { published: true }, published). Returns { oldPids,
     * newPids }. Old workers may still be finishing their sessions.
     */
    async reload({ timeout = START_TIMEOUT, published = false } = {}) {
        const oldPids = this.workerPids();
        this.signal('reload');
        await waitUntil(() => {
            if (this.exited) {
                throw new Error(`nginx exited (${this.exitCode}) during reload`);
            }
            const pids = this.workerPids();
            const nodes = this.nodes();
            return pids.length === this.workers
                && pids.every((pid) => !oldPids.includes(pid) && nodes.has(pid));
        }, { timeout, what: `new workers of ${this.name} after reload`,
             detail: () => this.describe() });
        if (published) {
            await this.waitPublished();
        }
        return { oldPids, newPids: this.workerPids() };
    }

    /**
     * `nginx -s quit` (graceful) and waits until the master and every worker
     * it ever had are gone. Throws if a process is left behind.
     */
    async quit({ timeout = STOP_TIMEOUT } = {}) {
        this.workerPids({ shuttingDown: true });
        if (this.exited) {
            throw new Error(`${this.name}: nginx had already exited (${this.exitCode})`);
        }
        this.signal('quit');
        await this.waitGone({ timeout, what: 'nginx -s quit' });
    }

    async waitGone({ timeout, what }) {
        await waitUntil(() => {
            this.workerPids({ shuttingDown: true });
            return [...this.pids].every((pid) => !alive(pid));
        }, { timeout, what: `every process of ${this.name} to exit after ${what} `
                            + `(pids ${[...this.pids].join(', ')})`,
             detail: () => `still alive: ${[...this.pids].filter(alive)
                 .map((p) => `${p} ${cmdline(p)}`).join('; ')}\n${this.describe()}` });
        running.delete(this);
    }

    /** Kills the whole process group at once (no cleanup by nginx). */
    kill() {
        if (this.masterPid && !this.exited) {
            try {
                process.kill(-this.masterPid, 'SIGKILL');
            } catch {
                // already gone
            }
        }
        running.delete(this);
    }

    /**
     * Stops the node if it runs (graceful quit; if that fails, kill) and
     * removes its prefix unless it is to be kept. Never throws.
     */
    async stop() {
        if (this.masterPid && !this.exited && alive(this.masterPid)) {
            try {
                this.signal('quit');
                await this.waitGone({ timeout: STOP_TIMEOUT, what: 'stop' });
            } catch (err) {
                this.keep = true;
                console.error(`# ${this.name}: graceful stop failed, killing: ${err.message}`);
                this.kill();
            }
        }
        running.delete(this);
        if (this.keep) {
            console.error(`# ${this.name}: prefix kept at ${this.prefix}`);
        } else {
            rmSync(this.prefix, { recursive: true, force: true });
        }
    }
}

function portAccepts(port, host = '127.0.0.1') {
    return new Promise((res) => {
        const s = tcpConnect({ port, host });
        s.once('connect', () => { s.destroy(); res(true); });
        s.once('error', () => res(false));
    });
}

// ---------------------------------------------------------------------------
// Entry points

/**
 * Creates and starts one node; with `t` (a node:test context) it is stopped
 * when that test ends. Options as NginxNode, plus timeout. With several
 * workers (a network of their own) it also waits until every worker's node
 * has published its record: before that, sessions on one worker may not
 * find those on another.
 */
export async function startNode(opts = {}) {
    const node = await NginxNode.create(opts);
    if (opts.t) {
        opts.t.after(() => node.stop());
    }
    await node.start({ timeout: opts.timeout });
    if (node.workers > 1 || opts.bootstrap?.length) {
        await node.waitPublished();
    }
    return node;
}

/**
 * Starts `n` nodes; the first one is the DHT bootstrap node of the others
 * (and the others of it: a node alone cannot store its record). Waits until
 * every worker of every node has published its DHT record. opts are passed
 * to every node; opts.nodes[i] adds options for node i (workers, http...).
 * Returns { nodes, stop(), assertNoAlerts() }.
 */
export async function startNetwork(n, opts = {}) {
    const { t, nodes: perNode = [], ...common } = opts;
    const nodes = [];
    const net = {
        nodes,
        async stop() {
            await Promise.all(nodes.map((node) => node.stop()));
        },
        assertNoAlerts() {
            for (const node of nodes) {
                node.assertNoAlerts();
            }
        },
    };
    if (t) {
        t.after(() => net.stop());
    }
    const first = await NginxNode.create({ ...common, ...perNode[0], name: `${common.name ?? 'node'}1` });
    nodes.push(first);
    await first.start();
    const bootstrap = [first.bootstrapAddress()];
    const rest = [];
    for (let i = 1; i < n; i++) {
        const node = await NginxNode.create({ ...common, ...perNode[i], bootstrap,
                                              name: `${common.name ?? 'node'}${i + 1}` });
        nodes.push(node);
        rest.push(node);
    }
    await Promise.all(rest.map((node) => node.start()));
    await Promise.all(nodes.map((node) => node.waitPublished()));
    return net;
}

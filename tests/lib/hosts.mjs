// DWRTC nodes on hosts of their own: one Linux network namespace per host,
// each a real nginx with the module (tests/lib/nginx.mjs) on its own
// address, for tests that break the network or kill processes.
//
//   import { startHostNetwork } from '../lib/hosts.mjs';
//
//   test('...', async (t) => {
//     const net = await startHostNetwork(3, { t });  // removed when t ends
//     const [h1, h2, h3] = net.hosts;
//     h1.wsUrl();              // ws://10.213.S.1:8080/signal
//     h2.partition();          // h2 no longer reaches h1 and h3 (nor they h2)
//     h2.heal();
//     h3.killNginx();          // kill -9 of master and workers
//   });
//
// The network: a bridge in the root namespace with address 10.213.S.254/24,
// and per host a namespace with one veth pair, the host's end (`eth0`,
// address 10.213.S.i, i = 1..n) inside the namespace, the other end on the
// bridge. S is picked per run among the /24s of 10.213.0.0/16 that no
// interface of the root namespace uses, so the test only ever sends to
// addresses it created. The test process (root namespace) reaches every
// host through the bridge; nginx runs as `ip netns exec NS nginx ...` and
// listens, binds its DHT and link ports and publishes on its host's
// address, with fixed ports (the namespace is fresh: nothing else holds
// them).
//
// Names carry this process's pid: namespaces `dwrtc-f<pid>-h<i>`, the
// bridge `dwf<pid>b`, the root ends of the veths `dwf<pid>h<i>`. Everything
// is removed when the test given as `t` ends (also on failure), when this
// process exits, and by a watchdog if it is killed; what an earlier run of
// a pid that no longer exists left behind is removed before a network is
// made.
//
// It needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN: `ip netns add`, veth
// pairs, a bridge). Without them createHosts() fails and says so: the fault
// tests are not skipped.
//
// Faults a host can suffer:
//   partition() / heal()   blackhole routes between this host and every
//                          other host, in both directions (inside the
//                          namespaces; the test process still reaches it)
//   linkDown() / linkUp()  its veth down: cut from everyone, test included
//   killNginx()            SIGKILL to nginx's master and workers at once
//   killWorker(pid)        SIGKILL to one worker (the master respawns it)
//
// Environment: as tests/lib/nginx.mjs (DWRTC_MODULE, DWRTC_NGINX,
// DWRTC_KEEP_TMP).

import { execFileSync, spawn } from 'node:child_process';
import { NginxNode, alive } from './nginx.mjs';

export const HTTP_PORT = 8080;
export const DHT_PORTS = [4200, 4215];
export const LINK_PORTS = [4300, 4315];

const NETNS_PREFIX = 'dwrtc-f';
const LINK_PREFIX = 'dwf';

// ---------------------------------------------------------------------------
// Commands

/** Runs `ip ARGS...`; throws with ip's own message on failure. */
export function ip(...args) {
    try {
        return execFileSync('ip', args, { encoding: 'utf8', stdio: 'pipe', timeout: 30_000 });
    } catch (err) {
        const why = (err.stderr ?? '').trim() || err.message;
        throw new Error(`ip ${args.join(' ')}: ${why}`);
    }
}

// ip, but failures are ignored (teardown: remove what is there).
function ipQuiet(...args) {
    try {
        ip(...args);
    } catch {
        // already gone
    }
}

function netnsNames() {
    return ip('netns', 'list').split('\n').map((l) => l.split(' ')[0]).filter(Boolean);
}

function linkNames() {
    return ip('-o', 'link', 'show').split('\n')
        .map((l) => /^\d+: ([^:@ ]+)/.exec(l)?.[1]).filter(Boolean);
}

// Kills every process left in a namespace (by pid), then removes it.
function removeNetns(name) {
    let pids = [];
    try {
        pids = ip('netns', 'pids', name).split('\n').filter(Boolean).map(Number);
    } catch {
        // no such namespace
    }
    for (const pid of pids) {
        try {
            process.kill(pid, 'SIGKILL');
        } catch {
            // gone already
        }
    }
    ipQuiet('netns', 'del', name);
}

/**
 * Removes namespaces and links of earlier runs whose process no longer
 * exists (a run killed before its teardown).
 */
export function removeStale() {
    const stale = (pid) => Number(pid) !== process.pid && !alive(Number(pid));
    for (const name of netnsNames()) {
        const m = new RegExp(`^${NETNS_PREFIX}(\\d+)-h\\d+$`).exec(name);
        if (m && stale(m[1])) {
            removeNetns(name);
        }
    }
    for (const name of linkNames()) {
        const m = new RegExp(`^${LINK_PREFIX}(\\d+)(b|[hp]\\d+)$`).exec(name);
        if (m && stale(m[1])) {
            ipQuiet('link', 'del', name);
        }
    }
}

// A /24 of 10.213.0.0/16 on no interface of the root namespace.
function freeSubnet() {
    const used = new Set();
    for (const m of ip('-4', '-o', 'addr', 'show').matchAll(/inet 10\.213\.(\d+)\./g)) {
        used.add(Number(m[1]));
    }
    for (const m of ip('-4', 'route', 'show').matchAll(/^10\.213\.(\d+)\./gm)) {
        used.add(Number(m[1]));
    }
    for (let k = 0; k < 250; k++) {
        const s = 1 + (process.pid + k) % 250;
        if (!used.has(s)) {
            return s;
        }
    }
    throw new Error('no free /24 in 10.213.0.0/16 for the test network');
}

// What went wrong when the first command failed, in words.
function capabilityError(err) {
    const root = process.getuid?.() === 0;
    return new Error('the fault tests run nginx nodes in network namespaces of their own and '
        + 'need root (CAP_NET_ADMIN, CAP_SYS_ADMIN) and the `ip` tool (iproute2) with veth '
        + `and bridge support; ${root ? 'running as root, but ' : 'not running as root, and '}`
        + `creating the network failed: ${err.message}`);
}

// Networks made by this process and not yet removed.
const networks = new Set();

process.on('exit', () => {
    for (const net of networks) {
        net.removeNetwork();
    }
});

// ---------------------------------------------------------------------------
// A host

export class Host {
    constructor(net, index) {
        this.net = net;
        this.index = index;                       // 1..n
        this.name = `h${index}`;
        this.netns = `${NETNS_PREFIX}${process.pid}-h${index}`;
        this.veth = `${LINK_PREFIX}${process.pid}h${index}`;   // root end
        this.address = `${net.prefix}.${index}`;
        this.node = null;                         // NginxNode, once started
        this.partitioned = false;
    }

    /** Runs `ip ARGS...` inside this host's namespace. */
    ip(...args) {
        return ip('-n', this.netns, ...args);
    }

    wsUrl(path = '/signal') {
        return `ws://${this.address}:${HTTP_PORT}${path}`;
    }

    /** Creates the nginx node of this host (not started). */
    async createNode(opts = {}) {
        this.node = await NginxNode.create({
            ...opts,
            name: `${opts.name ?? 'fault'}-${this.name}`,
            address: this.address,
            netns: this.netns,
            httpPort: HTTP_PORT,
            dhtPorts: DHT_PORTS,
            linkPorts: LINK_PORTS,
        });
        return this.node;
    }

    /**
     * Cuts this host off from every other host, both ways: blackhole routes
     * to their addresses here and to this one in theirs. Packets already
     * on the way are dropped, new connections fail, open TCP connections
     * stall. The test process (bridge address) still reaches the host.
     */
    partition() {
        for (const other of this.net.hosts) {
            if (other !== this) {
                this.ip('route', 'add', 'blackhole', `${other.address}/32`);
                other.ip('route', 'add', 'blackhole', `${this.address}/32`);
            }
        }
        this.partitioned = true;
    }

    /** Undoes partition(). */
    heal() {
        for (const other of this.net.hosts) {
            if (other !== this) {
                this.ip('route', 'del', 'blackhole', `${other.address}/32`);
                other.ip('route', 'del', 'blackhole', `${this.address}/32`);
            }
        }
        this.partitioned = false;
    }

    /** Sets the host's veth down: nothing reaches it, the test neither. */
    linkDown() {
        ip('link', 'set', this.veth, 'down');
    }

    linkUp() {
        ip('link', 'set', this.veth, 'up');
    }

    /**
     * `kill -9` of nginx: SIGKILL to the master and to every worker at
     * once. Returns the pids killed.
     */
    killNginx() {
        const pids = [this.node.masterPid, ...this.node.workerPids({ shuttingDown: true })];
        for (const pid of pids) {
            try {
                process.kill(pid, 'SIGKILL');
            } catch {
                // gone already
            }
        }
        return pids;
    }

    /** `kill -9` of one worker process; its master starts a new one. */
    killWorker(pid) {
        if (!this.node.workerPids().includes(pid)) {
            throw new Error(`${pid} is not a worker of ${this.node.name}`);
        }
        process.kill(pid, 'SIGKILL');
    }
}

// ---------------------------------------------------------------------------
// The network

export class HostNetwork {
    constructor(n) {
        this.subnet = freeSubnet();
        this.prefix = `10.213.${this.subnet}`;
        this.bridge = `${LINK_PREFIX}${process.pid}b`;
        this.bridgeAddress = `${this.prefix}.254`;
        this.hosts = Array.from({ length: n }, (_, i) => new Host(this, i + 1));
        this.removed = false;
    }

    /** Makes the namespaces, veths and bridge (see the top of this file). */
    static create(n) {
        try {
            ip('netns', 'list');
        } catch (err) {
            throw capabilityError(err);
        }
        removeStale();
        const net = new HostNetwork(n);
        networks.add(net);
        try {
            ip('link', 'add', net.bridge, 'type', 'bridge');
        } catch (err) {
            net.removeNetwork();
            throw capabilityError(err);
        }
        net.watchdog();
        try {
            ip('addr', 'add', `${net.bridgeAddress}/24`, 'dev', net.bridge);
            ip('link', 'set', net.bridge, 'up');
            for (const h of net.hosts) {
                const peer = `${LINK_PREFIX}${process.pid}p${h.index}`;
                ip('netns', 'add', h.netns);
                ip('link', 'add', h.veth, 'type', 'veth', 'peer', 'name', peer);
                ip('link', 'set', peer, 'netns', h.netns);
                h.ip('link', 'set', peer, 'name', 'eth0');
                h.ip('addr', 'add', `${h.address}/24`, 'dev', 'eth0');
                h.ip('link', 'set', 'lo', 'up');
                h.ip('link', 'set', 'eth0', 'up');
                ip('link', 'set', h.veth, 'master', net.bridge);
                ip('link', 'set', h.veth, 'up');
            }
        } catch (err) {
            net.removeNetwork();
            throw capabilityError(err);
        }
        return net;
    }

    // Removes this network if the test process dies without doing so.
    watchdog() {
        const names = this.hosts.map((h) => h.netns).join(' ');
        const script = `
            while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done
            sleep 4   # nginx's own watchdog stops the nodes first
            for ns in ${names}; do
                for pid in $(ip netns pids $ns 2>/dev/null); do kill -KILL $pid; done
                ip netns del $ns 2>/dev/null
            done
            ip link del ${this.bridge} 2>/dev/null`;
        spawn('/bin/sh', ['-c', script], { detached: true, stdio: 'ignore' }).unref();
    }

    /**
     * Starts nginx on every host: host 1 first, then the others with host
     * 1 as DHT bootstrap node; waits until every worker's node published
     * its record. opts go to every node (NginxNode options: workers,
     * signal, http, shutdownTimeout, reuseport, ...); opts.hosts[i] adds
     * options for host i + 1.
     */
    async startNodes(opts = {}) {
        const { hosts: perHost = [], ...common } = opts;
        const [first, ...rest] = this.hosts;
        await first.createNode({ ...common, ...perHost[0] });
        await first.node.start();
        const bootstrap = [first.node.bootstrapAddress()];
        for (const h of rest) {
            await h.createNode({ ...common, ...perHost[h.index - 1], bootstrap });
        }
        await Promise.all(rest.map((h) => h.node.start()));
        await Promise.all(this.hosts.map((h) => h.node.waitPublished()));
        return this;
    }

    /** The host whose node has this node id (32 hex digits), if any. */
    hostOfNode(nodeId) {
        return this.hosts.find((h) => h.node && [...h.node.nodes().values()]
            .some((n) => n.nodeId === nodeId));
    }

    /** Throws if a node's error log has [alert], [crit] or [emerg] lines. */
    assertNoAlerts({ except = [] } = {}) {
        for (const h of this.hosts) {
            if (!h.node || except.includes(h)) {
                continue;
            }
            h.node.assertNoAlerts();
        }
    }

    /** Stops every node (gracefully, else by kill), then removes the network. */
    async stop() {
        await Promise.all(this.hosts.map((h) => h.node?.stop()));
        this.removeNetwork();
    }

    /** Removes namespaces (killing what still runs in them) and the bridge. */
    removeNetwork() {
        if (this.removed) {
            return;
        }
        for (const h of this.hosts) {
            if (h.node) {
                h.node.kill();
            }
            removeNetns(h.netns);
            ipQuiet('link', 'del', h.veth);
        }
        ipQuiet('link', 'del', this.bridge);
        this.removed = true;
        networks.delete(this);
    }
}

/**
 * Makes a network of `n` hosts and starts a DWRTC node on each; with `t`
 * (a node:test context) everything is stopped and removed when it ends.
 * opts: as HostNetwork.startNodes.
 */
export async function startHostNetwork(n, opts = {}) {
    const { t, ...nodeOpts } = opts;
    const net = HostNetwork.create(n);
    if (t) {
        t.after(() => net.stop());
    }
    try {
        await net.startNodes(nodeOpts);
    } catch (err) {
        if (!t) {
            await net.stop();
        }
        throw err;
    }
    return net;
}

/** The kernel's view: is `name` a namespace right now? (for tests of this file) */
export function netnsExists(name) {
    return netnsNames().includes(name);
}

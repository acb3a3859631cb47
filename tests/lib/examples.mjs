// Loads the configurations in config-examples/ on a test machine.
//
// The examples are complete nginx.conf files written for an operator's
// Debian server. To run them here, a few things are rewritten, and nothing
// else (config-examples/README.md lists the same):
//
//   /usr/lib/nginx/modules/ngx_http_dwrtc_module.so  -> the built module
//   /usr/share/dwrtc/web                             -> the repository's web/
//   /var/www/html                                    -> a temporary site
//   /etc/ssl/dwrtc                                   -> a temporary
//                                                       self-signed certificate
//   /etc/nginx/dwrtc-network.key                     -> a temporary key file
//                                                       (openssl rand -hex 32)
//   /var/log/nginx/                                  -> the node's prefix
//   listen [ADDR:]PORT                               -> listen 127.0.0.1:FREE
//   proxy_pass http://127.0.0.1:PORT                 -> 127.0.0.1:FREE, where
//                                                       the test runs the
//                                                       application
//   dwrtc_dht_port / dwrtc_link_port ranges          -> free ranges
//   dwrtc_bootstrap 127.0.0.1:PORT[-LAST]            -> the same node's new port(s)
//   listen [::]:PORT                                 -> (dropped: the IPv4
//                                                       one stands for it)
//   user                                             -> (dropped: NginxNode
//                                                       names the workers'
//                                                       user, root as root)
//   pid, error_log (main context)                    -> in the node's prefix,
//                                                       the log at info
//   (added) daemon off; pid and error_log where the example has none,
//           access_log and temporary paths in the node's prefix;
//           dwrtc_bind_address 127.0.0.1 unless set
//
// Port numbers are mapped consistently across the files given to one
// ExampleSite, so a local network's bootstrap address still names the node
// it named in the example.

import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, mkdirSync, writeFileSync, chmodSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir, availableParallelism } from 'node:os';
import { join, basename } from 'node:path';

import { MODULE, WEB_ROOT, NginxNode, freePortRange, freeTcpPort } from './nginx.mjs';

export const SITE_INDEX = '<!doctype html><title>the existing site</title>'
    + '<p>the existing site</p>\n';

/** Test stand-ins for an operator's files, and the port mapping. */
export class ExampleSite {
    constructor() {
        this.dir = mkdtempSync(join(tmpdir(), 'dwrtc-examples-'));
        chmodSync(this.dir, 0o755);
        // the existing site of beside-existing-site.conf
        this.siteRoot = join(this.dir, 'html');
        mkdirSync(this.siteRoot);
        writeFileSync(join(this.siteRoot, 'index.html'), SITE_INDEX);
        // the certificate of tls.conf: self-signed for 127.0.0.1 and localhost
        this.certDir = join(this.dir, 'ssl');
        mkdirSync(this.certDir);
        this.cert = join(this.certDir, 'cert.pem');
        this.key = join(this.certDir, 'key.pem');
        execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes',
                                 '-keyout', this.key, '-out', this.cert, '-days', '2',
                                 '-subj', '/CN=localhost',
                                 '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'],
                     { stdio: 'pipe' });
        chmodSync(this.key, 0o644);   // read by the master only, but be plain
        // the private network key of private-network-auth.conf, made as its
        // comment says, readable by its owner only
        this.networkKey = join(this.dir, 'dwrtc-network.key');
        writeFileSync(this.networkKey, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
        this.ports = new Map();      // example port -> test port
    }

    async mapRange(text) {
        const [from, to = from] = text.split('-').map(Number);
        if (this.ports.has(from)) {
            const nf = this.ports.get(from);
            return from === to ? `${nf}` : `${nf}-${nf + to - from}`;
        }
        const [nf, nt] = await freePortRange(to - from + 1);
        for (let p = from; p <= to; p++) {
            this.ports.set(p, nf + (p - from));
        }
        return nf === nt ? `${nf}` : `${nf}-${nt}`;
    }

    async mapPort(port) {
        if (!this.ports.has(port)) {
            this.ports.set(port, await freeTcpPort());
        }
        return this.ports.get(port);
    }

    /**
     * The example's text rewritten for this machine. Returns { conf,
     * httpPort (the first listen), listens (example port -> test port),
     * upstreams (example port -> test port of proxy_pass 127.0.0.1:PORT),
     * workers (what worker_processes starts) }. `{{PREFIX}}` in conf is
     * replaced by NginxNode.
     */
    async rewrite(text) {
        let out = text
            .replaceAll('/usr/lib/nginx/modules/ngx_http_dwrtc_module.so', MODULE)
            .replaceAll('/usr/share/dwrtc/web', WEB_ROOT)
            .replaceAll('/var/www/html', this.siteRoot)
            .replaceAll('/etc/ssl/dwrtc', this.certDir)
            .replaceAll('/etc/nginx/dwrtc-network.key', this.networkKey)
            .replaceAll('/var/log/nginx/', '{{PREFIX}}/');

        // tests listen on IPv4 loopback only; an example's IPv6 twin of a
        // listen would become a duplicate of it
        out = out.replace(/^\s*listen\s+\[[^\]]*\]:\d+[^;]*;[^\n]*\n/gm, '');

        const listens = new Map();
        const listenRe = /^(\s*listen\s+)(?:[\w.]+:|\[[^\]]*\]:)?(\d+)\b/gm;
        for (const m of out.matchAll(listenRe)) {
            listens.set(Number(m[2]), await this.mapPort(Number(m[2])));
        }
        out = out.replace(listenRe, (_, pre, port) =>
            `${pre}127.0.0.1:${listens.get(Number(port))}`);

        // upstreams on this host: the test runs a stand-in on the new port
        const upstreams = new Map();
        const upstreamRe = /^(\s*proxy_pass\s+https?:\/\/127\.0\.0\.1:)(\d+)\b/gm;
        for (const m of out.matchAll(upstreamRe)) {
            upstreams.set(Number(m[2]), await this.mapPort(Number(m[2])));
        }
        out = out.replace(upstreamRe, (_, pre, port) => `${pre}${upstreams.get(Number(port))}`);

        for (const directive of ['dwrtc_dht_port', 'dwrtc_link_port']) {
            const re = new RegExp(`^(\\s*${directive}\\s+)([\\d-]+);`, 'gm');
            for (const m of [...out.matchAll(re)]) {
                out = out.replace(m[0], `${m[1]}${await this.mapRange(m[2])};`);
            }
        }
        // bootstrap addresses on this host name nodes of the same example set
        // (rewrite the node they name first, so its whole range is mapped)
        const bootRe = /^(\s*dwrtc_bootstrap\s+)([^;#]+);/gm;
        for (const m of [...out.matchAll(bootRe)]) {
            const addrs = [];
            for (const a of m[2].trim().split(/\s+/)) {
                const hp = /^127\.0\.0\.1:(\d+)(-\d+)?$/.exec(a);
                const mapped = hp && await this.mapRange(`${hp[1]}${hp[2] ?? ''}`);
                addrs.push(hp ? `127.0.0.1:${hp[2] ? mapped : mapped.split('-')[0]}` : a);
            }
            out = out.replace(m[0], `${m[1]}${addrs.join(' ')};`);
        }

        // runtime files in the node's prefix (the operator's are in /run,
        // /var/log/nginx and /var/lib/nginx); the log at info, which tests
        // read. The example's own lines are replaced where it has them
        // (a second pid is an error), so that they are checked to be there.
        const user = /^user\s+[^;]+;[^\n]*\n/m;
        out = out.replace(user, "# (user: tests/lib/nginx.mjs names the workers' user)\n");
        const pid = /^pid\s+[^;]+;/m;
        const errorLog = /^error_log\s+[^;]+;/m;
        const hadPid = pid.test(out), hadErrorLog = errorLog.test(out);
        out = out.replace(pid, 'pid {{PREFIX}}/nginx.pid;')
            .replace(errorLog, 'error_log {{PREFIX}}/error.log info;');
        out = out.replace(/^(load_module [^\n]*\n)/m, `$1
# added by tests/lib/examples.mjs: runtime files in the test's prefix
daemon off;
${hadPid ? '' : 'pid {{PREFIX}}/nginx.pid;\n'}\
${hadErrorLog ? '' : 'error_log {{PREFIX}}/error.log info;\n'}\
worker_shutdown_timeout 10s;
`);
        const bind = /^\s*dwrtc_bind_address\s/m.test(out) ? ''
            : '    dwrtc_bind_address 127.0.0.1;   # tests stay on loopback\n';
        out = out.replace(/^http \{\n/m, `http {
    # added by tests/lib/examples.mjs
    access_log {{PREFIX}}/access.log;
    client_body_temp_path {{PREFIX}}/tmp/client_body;
    proxy_temp_path {{PREFIX}}/tmp/proxy;
    fastcgi_temp_path {{PREFIX}}/tmp/fastcgi;
    uwsgi_temp_path {{PREFIX}}/tmp/uwsgi;
    scgi_temp_path {{PREFIX}}/tmp/scgi;
${bind}
`);

        const wp = /^\s*worker_processes\s+(\w+);/m.exec(out);
        const workers = !wp ? 1 : wp[1] === 'auto' ? availableParallelism() : Number(wp[1]);
        return { conf: out, httpPort: [...listens.values()][0], listens, upstreams, workers };
    }

    /**
     * An NginxNode for an example file (not started); `text` in place of
     * the file's own (a layout made of snippets).
     */
    async node(file, { name, text } = {}) {
        const r = await this.rewrite(text ?? readFileSync(file, 'utf8'));
        const node = new NginxNode({ name: name ?? basename(file, '.conf'), conf: r.conf,
                                     httpPort: r.httpPort, workers: r.workers });
        node.listens = r.listens;
        node.upstreams = r.upstreams;
        return node;
    }

    remove() {
        rmSync(this.dir, { recursive: true, force: true });
    }
}

/**
 * The server blocks of an nginx configuration (a whole nginx.conf or a
 * snippet included in http), as written: [{ listens: [{ port, ssl }],
 * names (server_name), origins (dwrtc_allowed_origins of the server or any
 * of its locations, else of http) }]. A commented-out
 * dwrtc_allowed_origins counts too: it is a line an operator uncomments.
 */
export function servers(text) {
    const src = text.replace(/^(\s*)#\s*(dwrtc_allowed_origins\s[^;#]*;)/gm, '$1$2')
        .replace(/#[^\n]*/g, '');
    const out = [];
    const stack = [];
    const httpOrigins = [];
    let words = [];
    for (const tok of src.match(/[{};]|[^\s{};]+/g) ?? []) {
        if (tok === '{') {
            stack.push(words[0]);
            if (words[0] === 'server') {
                out.push({ listens: [], names: [], origins: [] });
            }
            words = [];
        } else if (tok === '}') {
            stack.pop();
            words = [];
        } else if (tok === ';') {
            const [name, ...args] = words;
            const server = stack.includes('server') ? out.at(-1) : null;
            const top = stack.at(-1);
            if (name === 'listen' && top === 'server') {
                server.listens.push({ port: Number(/(\d+)$/.exec(args[0])[1]),
                                      ssl: args.includes('ssl') });
            } else if (name === 'server_name' && top === 'server') {
                server.names.push(...args);
            } else if (name === 'dwrtc_allowed_origins') {
                (server ? server.origins : httpOrigins).push(...args);
            }
            words = [];
        } else {
            words.push(tok);
        }
    }
    for (const s of out) {
        if (s.origins.length === 0) {
            s.origins.push(...httpOrigins);
        }
    }
    return out;
}

/**
 * Where a configuration's dwrtc_allowed_origins disagree with the address
 * of the server they stand in: every origin must be one that a page of the
 * server sends (scheme from ssl, a server_name, a listen port, the port
 * left out when it is the scheme's default, as browsers do), and every
 * such address must be allowed, or the site's own pages get 403. Returns
 * one sentence per disagreement; none means they agree.
 */
export function originMismatches(text) {
    const problems = [];
    for (const s of servers(text)) {
        if (s.origins.length === 0 || (s.origins.length === 1 && s.origins[0] === '*')) {
            continue;
        }
        const at = `server { listen ${s.listens.map((l) => l.port).join(', ')} }`;
        if (s.names.length === 0) {
            problems.push(`${at} allows origins but has no server_name to match them`);
            continue;
        }
        const own = new Set();
        for (const l of s.listens) {
            const scheme = l.ssl ? 'https' : 'http';
            const port = l.port === (l.ssl ? 443 : 80) ? '' : `:${l.port}`;
            for (const n of s.names) {
                own.add(`${scheme}://${n}${port}`);
            }
        }
        for (const o of s.origins) {
            if (!own.has(o)) {
                problems.push(`${at}: origin ${o} is not an address of the server `
                              + `(${[...own].join(' ')})`);
            }
        }
        for (const o of own) {
            if (!s.origins.includes(o)) {
                problems.push(`${at}: its own pages at ${o} are not in dwrtc_allowed_origins`);
            }
        }
    }
    return problems;
}

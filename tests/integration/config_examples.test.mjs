// Every file in config-examples/ is a configuration an operator copies, so
// every one passes `nginx -t` with the built module and is started here and
// talked to. What is rewritten to run on a test machine (module and web
// paths, ports, runtime files) is listed in tests/lib/examples.mjs and
// config-examples/README.md.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, statSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { createServer } from 'node:http';
import { createHmac } from 'node:crypto';

import WebSocket from 'ws';

import { REPO, WEB_ROOT, waitUntil } from '../lib/nginx.mjs';
import { ExampleSite, SITE_INDEX, servers, originMismatches } from '../lib/examples.mjs';
import { openSession, rawRequest, handshakeRequest, terminateSessions } from '../lib/client.mjs';

const EXAMPLES = join(REPO, 'config-examples');

function confFiles(dir = EXAMPLES) {
    return readdirSync(dir).sort().flatMap((name) => {
        const path = join(dir, name);
        return statSync(path).isDirectory() ? confFiles(path)
            : name.endsWith('.conf') ? [path] : [];
    });
}

/**
 * GET over plain HTTP or HTTPS (trusting `ca`), with Host `host`:
 * { status, headers, body }.
 */
async function get(port, path, { tls, ca, host = '127.0.0.1' } = {}) {
    const res = await rawRequest(port, `GET ${path} HTTP/1.1\r\nHost: ${host}\r\n`
                                       + 'Connection: close\r\n\r\n', { tls, ca });
    let body = res.rest;
    await new Promise((resolve) => {
        res.socket.on('data', (d) => { body = Buffer.concat([body, d]); });
        res.socket.on('end', resolve);
        res.socket.on('close', resolve);
    });
    return { status: res.status, headers: res.headers, body: body.toString() };
}

/** Asserts a 301 to `to` (nginx makes the path absolute with the Host). */
async function assertRedirect(port, from, to, { host = '127.0.0.1' } = {}) {
    const r = await get(port, from, { host });
    assert.equal(r.status, 301, `GET ${from}`);
    assert.equal(new URL(r.headers.location, `http://${host}/`).pathname, to,
                 `GET ${from} redirects to ${r.headers.location}`);
}

const files = confFiles();

// Debian's snippets (not whole files): config-examples/debian/.
const DEBIAN_HTTP = join(EXAMPLES, 'debian', 'dwrtc-http');
const DEBIAN_SITE = join(EXAMPLES, 'debian', 'dwrtc-site');

// The examples an operator copies as a whole /etc/nginx/nginx.conf (the
// local network's nodes are started by ci/demo.sh, which names their
// runtime files, as several nginx on one machine need).
const COMPLETE = ['beside-existing-site.conf', 'one-node.conf', 'peerjs.conf',
                  'private-network-auth.conf', 'tls.conf'];

/**
 * Debian's nginx.conf and default site as far as they matter here (nginx
 * 1.22's /etc/nginx/nginx.conf and sites-available/default, comments
 * left out), with the two snippets where the README's steps put them:
 * conf.d/dwrtc.conf and sites-enabled/dwrtc. Inlined rather than included,
 * so that tests/lib/examples.mjs rewrites their ports and paths as well.
 */
function debianLayout() {
    return `load_module /usr/lib/nginx/modules/ngx_http_dwrtc_module.so;
user www-data;
worker_processes auto;
pid /run/nginx.pid;
error_log /var/log/nginx/error.log;

events {
    worker_connections 768;
}

http {
    include /etc/nginx/mime.types;

    # conf.d/dwrtc.conf
${readFileSync(DEBIAN_HTTP, 'utf8')}

    # sites-enabled/default
    server {
        listen 80 default_server;
        listen [::]:80 default_server;
        root /var/www/html;
        index index.html index.htm index.nginx-debian.html;
        server_name _;
        location / {
            try_files $uri $uri/ =404;
        }
    }

    # sites-enabled/dwrtc
${readFileSync(DEBIAN_SITE, 'utf8')}
}
`;
}

describe('config-examples/', () => {
    let site;
    const nodes = [];

    before(() => {
        site = new ExampleSite();
    });

    after(async () => {
        terminateSessions();
        await Promise.all(nodes.map((n) => n.stop()));
        site?.remove();
    });

    /** The example as a started node; its checks run first. */
    async function start(file, opts) {
        const node = await site.node(join(EXAMPLES, file), opts);
        nodes.push(node);
        const t = node.configTest();
        assert.ok(t.ok, `nginx -t failed for ${file}:\n${t.output}`);
        await node.start();
        return node;
    }

    /** Stops the node gracefully and checks its log. */
    async function finish(node, ...sessions) {
        await Promise.all(sessions.map((s) => s.close()));
        await node.quit();
        node.assertNoAlerts();
    }

    it('has examples, and every one passes nginx -t with the built module', async () => {
        assert.ok(files.length >= 4, `found ${files.map((f) => relative(EXAMPLES, f))}`);
        // a separate site each: only syntax and directives are checked here
        const own = new ExampleSite();
        try {
            for (const file of files) {
                const node = await own.node(file);
                const t = node.configTest();
                assert.ok(t.ok, `nginx -t failed for ${relative(REPO, file)}:\n${t.output}`);
                assert.match(t.output, /test is successful/);
                await node.stop();
            }
        } finally {
            own.remove();
        }
    });

    it('one-node.conf: serves the demo at / and signaling at /signal', async () => {
        const node = await start('one-node.conf');
        const page = await get(node.httpPort, '/');
        assert.equal(page.status, 200);
        assert.equal(page.body, readFileSync(join(WEB_ROOT, 'index.html'), 'utf8'));
        const a = await openSession(node.wsUrl('/signal'));
        const b = await openSession(node.wsUrl('/signal'));
        await a.deliver(b, 'hello');
        await finish(node, a, b);
    });

    it('peerjs.conf: a PeerJS client gets an id at /peerjs/peerjs/id and OPEN under it',
       async () => {
        const node = await start('peerjs.conf');
        const id = await get(node.httpPort, '/peerjs/peerjs/id');
        assert.equal(id.status, 200);
        assert.match(id.body, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
        const ws = new WebSocket(node.wsUrl(`/peerjs/peerjs?key=peerjs&id=${id.body}&token=t`));
        const first = await new Promise((resolve, reject) => {
            ws.once('message', (d) => resolve(JSON.parse(d.toString())));
            ws.once('error', reject);
        });
        assert.deepEqual(first, { type: 'OPEN' });
        ws.close();
        await new Promise((resolve) => ws.once('close', resolve));
        await finish(node);
    });

    it('beside-existing-site.conf: the site keeps /, the demo lives under /dwrtc/', async () => {
        const node = await start('beside-existing-site.conf');
        const port = node.httpPort;
        const root = await get(port, '/');
        assert.equal(root.status, 200);
        assert.equal(root.body, SITE_INDEX, 'the existing site still serves /');
        const demo = await get(port, '/dwrtc/');
        assert.equal(demo.status, 200);
        assert.equal(demo.body, readFileSync(join(WEB_ROOT, 'index.html'), 'utf8'));
        const js = await get(port, '/dwrtc/dwrtc.js');
        assert.equal(js.body, readFileSync(join(WEB_ROOT, 'dwrtc.js'), 'utf8'));
        // /signal is not taken from the site; the demo's own is /dwrtc/signal
        assert.equal((await get(port, '/signal')).status, 404);
        // /dwrtc without the slash is sent to the page, not to the site's 404
        await assertRedirect(port, '/dwrtc', '/dwrtc/');

        // a page of the site, at the address the example gives it, may open
        // sessions (the example's own port is what a browser there sends)
        const [{ origins }] = servers(readFileSync(join(EXAMPLES, 'beside-existing-site.conf'),
                                                   'utf8'));
        assert.ok(origins.length > 0, 'the example allows only its own origins');
        const a = await openSession(node.wsUrl('/dwrtc/signal'), { origin: origins[0] });
        const b = await openSession(node.wsUrl('/dwrtc/signal'), { origin: origins.at(-1) });
        await a.deliver(b, 'beside the site');
        await assert.rejects(openSession(node.wsUrl('/dwrtc/signal'),
                                         { origin: 'https://elsewhere.example' }), /403/);
        await finish(node, a, b);
    });

    it('tls.conf: wss with the certificate it names, and the demo over https', async () => {
        const node = await start('tls.conf');
        const ca = readFileSync(site.cert);
        const page = await get(node.httpPort, '/', { tls: true, ca });
        assert.equal(page.status, 200);
        const url = `wss://127.0.0.1:${node.httpPort}/signal`;
        // the demo of this site may open sessions; a page elsewhere may not
        const a = await openSession(url, { ca, origin: 'https://localhost' });
        const b = await openSession(url, { ca });
        await a.deliver(b, 'over TLS');
        await assert.rejects(openSession(url, { ca, origin: 'https://localhost:8443' }), /403/);
        // a client that does not trust the certificate is refused by TLS
        await assert.rejects(openSession(url), /certificate/i);
        // plain HTTP sends browsers to HTTPS
        const httpPort = node.listens.get(80);
        assert.ok(httpPort, 'tls.conf also listens on port 80');
        const redirect = await rawRequest(httpPort, 'GET /x HTTP/1.1\r\nHost: node.example\r\n'
                                                    + 'Connection: close\r\n\r\n');
        redirect.socket.destroy();
        assert.equal(redirect.status, 301);
        assert.equal(redirect.headers.location, 'https://node.example/x');
        await finish(node, a, b);
    });

    it('private-network-auth.conf: a node with a network key; sessions and TURN credentials '
       + 'only past auth_request, their user in the access log', async () => {
        const file = join(EXAMPLES, 'private-network-auth.conf');
        const text = readFileSync(file, 'utf8');
        const node = await start('private-network-auth.conf');
        // the node took the key (a refused key would be an [alert] and no node)
        assert.equal(node.currentNodes().length, node.workers);
        const key = readFileSync(site.networkKey, 'utf8').trim();
        assert.ok(!node.errorLog().includes(key), 'the network key is in the error log');

        // the site's application: signed in means the cookie "session=good"
        const appPort = node.upstreams.get(9000);
        assert.ok(appPort, 'the example asks an application on 127.0.0.1:9000');
        const app = createServer((req, res) => {
            const signedIn = req.url === '/auth/check'
                && /(^|;\s*)session=good(;|$)/.test(req.headers.cookie ?? '');
            res.writeHead(signedIn ? 204 : 401, signedIn ? { 'X-User': 'alice' } : {});
            res.end();
        });
        await new Promise((resolve) => app.listen(appPort, '127.0.0.1', resolve));
        try {
            const refused = await rawRequest(node.httpPort,
                handshakeRequest({ port: node.httpPort, path: '/signal' }));
            refused.socket.destroy();
            assert.equal(refused.status, 401, 'no session cookie, no session');

            const url = node.wsUrl('/signal');
            const opts = { headers: { Cookie: 'theme=dark; session=good' } };
            const a = await openSession(url, opts);
            const b = await openSession(url, opts);
            await a.deliver(b, 'signed in');

            const secret = /^\s*secret=(\S+)/m.exec(text)[1];
            const turn = a.welcome.iceServers.find((s) => s.urls.some((u) => u.startsWith('turn:')));
            assert.ok(turn, JSON.stringify(a.welcome));
            assert.match(turn.username, new RegExp(`^\\d+:${a.id}$`));
            assert.equal(turn.credential,
                         createHmac('sha1', secret).update(turn.username).digest('base64'));

            await finish(node, a, b);
            // the example's own log, by its log_format
            const log = readFileSync(join(node.prefix, 'dwrtc-access.log'), 'utf8');
            for (const s of [a, b]) {
                assert.match(log, new RegExp(`"GET /signal HTTP/1.1" 101 \\S+ `
                                             + `session=${s.id} user="alice"`));
            }
            assert.match(log, /"GET \/signal HTTP\/1.1" 401 \S+ session=- user="-"/);
        } finally {
            await new Promise((resolve) => app.close(resolve));
        }
    });

    it('local-3-node/: three nginx form one network; every node reaches the others',
       async () => {
        const net = [];
        for (const i of [1, 2, 3]) {
            net.push(await start(`local-3-node/node${i}.conf`, { name: `local${i}` }));
        }
        await Promise.all(net.map((n) => n.waitPublished()));
        const sessions = await Promise.all(net.map((n) => openSession(n.wsUrl('/signal'))));
        for (const from of sessions) {
            for (const to of sessions) {
                if (from !== to) {
                    await from.deliver(to, 'across the local network', { timeout: 60_000 });
                }
            }
        }
        for (const [i, n] of net.entries()) {
            assert.equal((await get(n.httpPort, '/')).status, 200, `node ${i + 1} serves web/`);
        }
        await Promise.all(sessions.map((s) => s.close()));
        for (const n of net) {
            await finish(n);
        }
    });

    it('the complete nginx.conf examples name user, pid and error_log as Debian does',
       () => {
        for (const file of COMPLETE) {
            const text = readFileSync(join(EXAMPLES, file), 'utf8');
            assert.match(text, /^user www-data;$/m, `${file}: user`);
            assert.match(text, /^pid \/run\/nginx\.pid;$/m, `${file}: pid`);
            assert.match(text, /^error_log \/var\/log\/nginx\/error\.log( notice)?;$/m,
                         `${file}: error_log`);
        }
    });

    it('every example allows exactly the origins of its own site address', () => {
        const all = [...files, DEBIAN_HTTP, DEBIAN_SITE];
        let checked = 0;
        for (const file of all) {
            const text = readFileSync(file, 'utf8');
            assert.deepEqual(originMismatches(text), [], relative(EXAMPLES, file));
            checked += servers(text).filter((s) => s.origins.length > 0).length;
        }
        assert.ok(checked >= 3, `only ${checked} servers with origins were checked`);
        // the check itself: a listen port or a server_name changed alone is
        // found, and so is an origin with the default port written out
        const beside = readFileSync(join(EXAMPLES, 'beside-existing-site.conf'), 'utf8');
        assert.equal(originMismatches(beside.replace(/listen 80;/, 'listen 8080;')).length, 2);
        assert.equal(originMismatches(beside.replace(/server_name \S+;/,
                                                     'server_name www.example.org;')).length, 2);
        assert.equal(originMismatches(beside.replace(/(dwrtc_allowed_origins http:\/\/\w+)/,
                                                     '$1:80')).length, 2);
    });

    it('debian/: the snippets in Debian\'s layout beside its default site: the demo at '
       + '/call/ (and /call sent there), signaling, and the status page at its own port',
       async () => {
        const node = await site.node(join(EXAMPLES, 'debian', 'dwrtc-site'),
                                     { name: 'debian', text: debianLayout() });
        nodes.push(node);
        const t = node.configTest();
        assert.ok(t.ok, `nginx -t failed for Debian's layout:\n${t.output}`);
        await node.start();
        const port = node.httpPort;
        const host = 'call.example.com';

        // port 80's default server is Debian's static site
        const other = await get(port, '/');
        assert.equal(other.body, SITE_INDEX, "a request for another name reaches the default site");
        assert.equal((await get(port, '/dwrtc-status')).status, 404,
                     'the status page is not in the default site');
        // the site by its server_name
        const page = await get(port, '/call/', { host });
        assert.equal(page.status, 200);
        assert.equal(page.body, readFileSync(join(WEB_ROOT, 'index.html'), 'utf8'));
        await assertRedirect(port, '/call', '/call/', { host });
        const a = await openSession(node.wsUrl('/call/signal'), { headers: { Host: host } });
        const b = await openSession(node.wsUrl('/call/signal'), { headers: { Host: host } });
        await a.deliver(b, 'in the Debian layout');

        // the status page: any Host at its own port, as a scrape sends it
        const statusPort = node.listens.get(9422);
        assert.ok(statusPort, 'dwrtc-site has a status server on 127.0.0.1:9422');
        // (each worker writes its figures to the page now and then: the
        // two sessions show within a few seconds)
        let status;
        await waitUntil(async () => {
            status = await get(statusPort, '/dwrtc-status', { host: `127.0.0.1:${statusPort}` });
            return status.status === 200
                && JSON.parse(status.body).workers.reduce((n, w) => n + w.sessions, 0) === 2;
        }, { what: 'the status page to answer 200 with the two sessions',
             detail: () => `${status?.status} ${status?.body}` });
        assert.equal(JSON.parse(status.body).workers.length, node.workers);
        const prom = await get(statusPort, '/dwrtc-status?format=prometheus');
        assert.equal(prom.status, 200);
        assert.match(prom.body, /^dwrtc_sessions\b/m);
        await finish(node, a, b);
    });

    it('starts every example file above', () => {
        assert.deepEqual(files.map((f) => relative(EXAMPLES, f)).sort(),
                         ['beside-existing-site.conf', 'local-3-node/node1.conf',
                          'local-3-node/node2.conf', 'local-3-node/node3.conf',
                          'one-node.conf', 'peerjs.conf', 'private-network-auth.conf', 'tls.conf'],
                         'a new example needs its own case in this file');
    });
});

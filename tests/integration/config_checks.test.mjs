// What `nginx -t` catches before browsers or workers would: origins no
// browser sends (refused with what to write, or written as browsers send
// them), a bind address that is not this host's, port ranges too narrow
// for the workers (with the width they need), bootstrap entries that name
// a node's DHT range, and every such message names
// the file and line of the directive, not the end of the http block. A 403
// for an origin is logged at notice with the origin it got.

import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';

import { NginxNode } from '../lib/nginx.mjs';
import { openSession, rawRequest, handshakeRequest, terminateSessions } from '../lib/client.mjs';

const nodes = [];
after(async () => {
    terminateSessions();
    await Promise.all(nodes.map((n) => n.stop()));
});

/**
 * A node whose configuration is the test harness's, with `edit` applied to
 * its text (opts.edit), for lines the harness writes itself.
 */
async function node({ edit, ...opts } = {}) {
    const n = await NginxNode.create({ name: 'checks', ...opts });
    nodes.push(n);
    if (edit) {
        n.conf = edit(n.conf);
        writeFileSync(n.confPath, n.conf);
    }
    return n;
}

const replace = (re, text) => (conf) => {
    assert.match(conf, re);
    return conf.replace(re, text);
};

/** The 1-based line of the configuration that holds `text`. */
function lineOf(n, text) {
    const i = n.conf.split('\n').findIndex((l) => l.includes(text));
    assert.ok(i >= 0, `"${text}" is in the configuration`);
    return i + 1;
}

async function refused(opts, pattern, directive) {
    const n = await node(opts);
    const t = n.configTest();
    assert.equal(t.ok, false, `nginx -t passes, it should not:\n${t.output}`);
    assert.match(t.output, pattern);
    if (directive) {
        assert.match(t.output, new RegExp(`in ${n.confPath}:${lineOf(n, directive)}\\b`),
                     `the message names the directive's line:\n${t.output}`);
    }
    return t.output;
}

describe('nginx -t: origins as browsers send them', () => {
    it('refuses "null", with why and what to write', async () => {
        const out = await refused({ signal: 'dwrtc_allowed_origins null;' },
                                  /takes no "null": .*any page on any site/,
                                  'dwrtc_allowed_origins null');
        assert.match(out, /\[emerg\]/);
    });

    it('refuses wildcards: origins match exactly', async () => {
        await refused({ signal: 'dwrtc_allowed_origins https://*.example.com;' },
                      /origins are matched exactly, there are no wildcards/,
                      'dwrtc_allowed_origins https://*');
    });

    it('refuses a port out of range', async () => {
        await refused({ signal: 'dwrtc_allowed_origins https://call.example.com:99999;' },
                      /the port must be a number from 1 to 65535/);
    });

    it('refuses a path', async () => {
        await refused({ signal: 'dwrtc_allowed_origins https://call.example.com/app;' },
                      /is not an origin: .*SCHEME:\/\/HOST\[:PORT\] with no path/);
    });

    it('drops default ports and case, so the browser\'s Origin matches; logs a refusal at '
       + 'notice with the origin', async () => {
        const n = await node({ signal: 'dwrtc_allowed_origins HTTPS://Call.Example.COM:443 '
                                       + 'http://127.0.0.1:80 http://127.0.0.1:8080/;' });
        const t = n.configTest();
        assert.equal(t.ok, true, t.output);
        await n.start();
        for (const origin of ['https://call.example.com', 'http://127.0.0.1',
                              'http://127.0.0.1:8080']) {
            const s = await openSession(n.wsUrl(), { origin });
            s.terminate();
        }
        const res = await rawRequest(n.httpPort, handshakeRequest({
            port: n.httpPort, headers: { Origin: 'https://evil.example' } }));
        res.socket.destroy();
        assert.equal(res.status, 403);
        const lines = n.logLines().filter((l) => /origin "https:\/\/evil\.example" is not in /
                                                    .test(l.text));
        assert.equal(lines.length, 1, n.errorLog());
        assert.equal(lines[0].level, 'notice');
    });
});

describe('nginx -t: addresses and ports, at the directive\'s own line', () => {
    it('refuses a bind address that is not this host\'s, with the cause', async () => {
        await refused({ edit: replace(/dwrtc_bind_address .*;/, 'dwrtc_bind_address 192.0.2.1;') },
                      /"dwrtc_bind_address 192\.0\.2\.1" is not an address of this host.*\(99: /,
                      'dwrtc_bind_address 192.0.2.1');
    });

    it('names the line of a wrong dwrtc_public_address', async () => {
        await refused({ edit: replace(/dwrtc_public_address .*;/,
                                      'dwrtc_public_address wss://call.example.com:4230;') },
                      /"dwrtc_public_address" takes the host name or IP address/,
                      'dwrtc_public_address wss://');
    });

    it('says how wide a port range must be for the workers', async () => {
        await refused({ workers: 16, dhtPorts: [31000, 31003] },
                      /"dwrtc_dht_port 31000-31003" has 4 ports for 16 workers: .*give it 32 ports, such as "dwrtc_dht_port 31000-31031"/,
                      'dwrtc_dht_port 31000-31003');
    });

    it('refuses a reversed range', async () => {
        await refused({ dhtPorts: [31010, 31000] }, /invalid port range "31010-31000"/,
                      'dwrtc_dht_port 31010-31000');
    });

    it('takes a bootstrap entry that names a node\'s DHT range, of at most 64 ports',
       async () => {
        const ok = await node({ bootstrap: ['127.0.0.1:31100-31163', '[::1]:31100-31101',
                                            'node-1.dwrtc.test:31100'] });
        const t = ok.configTest();
        assert.equal(t.ok, true, t.output);
        await refused({ bootstrap: ['127.0.0.1:31100-31164'] },
                      /invalid bootstrap node "127\.0\.0\.1:31100-31164": a range goes from its first port to its last, at most 64 ports, such as "127\.0\.0\.1:31100-31163"/,
                      'dwrtc_bootstrap 127.0.0.1:31100-31164');
        await refused({ bootstrap: ['127.0.0.1:31110-31100'] },
                      /invalid bootstrap node "127\.0\.0\.1:31110-31100": a range goes/);
        await refused({ bootstrap: ['127.0.0.1:31100-'] },
                      /invalid bootstrap node "127\.0\.0\.1:31100-", expected HOST:PORT, HOST:FIRST-LAST/);
    });
});

describe('nginx -t: dwrtc_max_sessions and worker_connections', () => {
    it('the default fits worker_connections: no warning with Debian\'s 768', async () => {
        const n = await node({ edit: replace(/worker_connections \d+;/, 'worker_connections 768;') });
        const t = n.configTest();
        assert.equal(t.ok, true, t.output);
        assert.doesNotMatch(t.output, /dwrtc_max_sessions/);
    });

    it('a value written above worker_connections is warned about', async () => {
        const n = await node({ signal: 'dwrtc_max_sessions 10000;',
                               edit: replace(/worker_connections \d+;/, 'worker_connections 768;') });
        const t = n.configTest();
        assert.equal(t.ok, true, t.output);
        assert.match(t.output, /\[warn\].*"dwrtc_max_sessions 10000" is not below "worker_connections 768"/);
    });
});

describe('nginx -t: the hold budget', () => {
    it('takes dwrtc_session_hold and dwrtc_worker_hold within their bounds', async () => {
        const n = await node({ http: 'dwrtc_session_hold 32 256k;\ndwrtc_worker_hold 16m;' });
        const t = n.configTest();
        assert.equal(t.ok, true, t.output);
    });

    it('refuses a session share of no messages or below 1k, at its line', async () => {
        await refused({ http: 'dwrtc_session_hold 0 1m;' },
                      /"dwrtc_session_hold" messages must be from 1 to 100000, not "0"/,
                      'dwrtc_session_hold 0');
        await refused({ http: 'dwrtc_session_hold 64 100;' },
                      /"dwrtc_session_hold" size must be from 1k to 1g, not "100"/,
                      'dwrtc_session_hold 64');
    });

    it('takes dwrtc_lookup_rate with a burst or off, and refuses a burst of 0', async () => {
        for (const value of ['5 burst=20', '1', 'off']) {
            const n = await node({ http: `dwrtc_lookup_rate ${value};` });
            const t = n.configTest();
            assert.equal(t.ok, true, `${value}: ${t.output}`);
        }
        await refused({ http: 'dwrtc_lookup_rate 5 burst=0;' },
                      /"dwrtc_lookup_rate" burst must be from 1 to 100000, not "burst=0"/,
                      'dwrtc_lookup_rate 5');
        await refused({ http: 'dwrtc_lookup_rate fast;' },
                      /"dwrtc_lookup_rate" rate must be from 1 to 100000 lookups per second, or off, not "fast"/);
    });

    it('takes dwrtc_dht_max_searches from 64 and refuses fewer', async () => {
        const n = await node({ http: 'dwrtc_dht_max_searches 64;' });
        const t = n.configTest();
        assert.equal(t.ok, true, t.output);
        await refused({ http: 'dwrtc_dht_max_searches 10;' },
                      /"dwrtc_dht_max_searches" must be from 64 to 1000000/);
    });

    it('refuses a worker total smaller than one session\'s share', async () => {
        await refused({ http: 'dwrtc_session_hold 64 2m;\ndwrtc_worker_hold 1m;' },
                      /"dwrtc_worker_hold" must be from the size of "dwrtc_session_hold" \(2097152\) to 64g, not 1048576/);
    });

    it('takes dwrtc_link_transport lws or nginx and refuses anything else, at its line',
       async () => {
        for (const value of ['lws', 'nginx']) {
            const n = await node({ http: `dwrtc_link_transport ${value};` });
            const t = n.configTest();
            assert.equal(t.ok, true, `${value}: ${t.output}`);
        }
        await refused({ http: 'dwrtc_link_transport libwebsockets;' },
                      /invalid value "libwebsockets"/, 'dwrtc_link_transport');
    });
});

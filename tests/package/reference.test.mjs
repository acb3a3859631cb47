// The directive reference is complete and says the same everywhere: every
// directive of the module's ngx_command_t table
// (module/ngx_http_dwrtc_module.c) has an entry, with its Syntax, Default
// and Context, in the man page the package installs
// (docs/ngx_http_dwrtc_module.5) and in module/README.md; the two agree
// line for line; the contexts are those the table allows; neither names a
// directive the module does not have; and the man page renders without a
// warning.
//
//   node --test tests/package/reference.test.mjs

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';

const REPO = resolve(process.env.DWRTC_REPO ?? join(import.meta.dirname, '../..'));
const SOURCE = join(REPO, 'module/ngx_http_dwrtc_module.c');
const MAN = join(REPO, 'docs/ngx_http_dwrtc_module.5');
const README = join(REPO, 'module/README.md');

/** name -> context ("http, server, location") from the commands table. */
function sourceDirectives() {
    const text = readFileSync(SOURCE, 'utf8');
    const table = /ngx_command_t\s+ngx_http_dwrtc_commands\[\]\s*=\s*\{([\s\S]*?)ngx_null_command/
        .exec(text);
    assert.ok(table, `no ngx_http_dwrtc_commands table in ${SOURCE}`);
    const out = new Map();
    for (const m of table[1].matchAll(/\{\s*ngx_string\("(\w+)"\),\s*([\w|\s]+),/g)) {
        const flags = m[2];
        const where = [['NGX_HTTP_MAIN_CONF', 'http'], ['NGX_HTTP_SRV_CONF', 'server'],
                       ['NGX_HTTP_LOC_CONF', 'location']]
            .filter(([flag]) => flags.includes(flag)).map(([, name]) => name);
        out.set(m[1], where.join(', '));
    }
    return out;
}

/**
 * Entries of a reference: heading (one or more directive names) ->
 * { syntax: [lines], default: [lines], context }. `lines` are the lines of
 * the block under each heading, `heading(line)` the names a line heads, or
 * null.
 */
function entries(lines, heading) {
    const out = new Map();
    let names = null;
    let field = null;
    let entry = null;
    for (const line of lines) {
        const h = heading(line);
        if (h) {
            names = h;
            entry = { syntax: [], default: [], context: null };
            field = null;
            continue;
        }
        if (!names) {
            continue;
        }
        const m = /^(Syntax|Default|Context):\s+(.*)$/.exec(line);
        if (m) {
            field = m[1].toLowerCase();
            if (field === 'context') {
                entry.context = m[2].trim();
            } else {
                entry[field].push(m[2].trim());
            }
            if (field === 'context') {
                for (const n of names) {
                    out.set(n, entry);
                }
                names = null;
            }
        } else if (field && /^\s+\S/.test(line) && field !== 'context') {
            entry[field].push(line.trim());
        } else if (line.trim() !== '' && !/^\.(nf|fi)$/.test(line)) {
            field = null;
        }
    }
    return out;
}

function manEntries() {
    const roff = readFileSync(MAN, 'utf8')
        .replaceAll('\\-', '-').replaceAll('\\(em', '—');
    return entries(roff.split('\n'), (line) => {
        const m = /^\.SS (dwrtc_[\w, ]+)$/.exec(line);
        return m && m[1].split(/,\s*/);
    });
}

function readmeEntries() {
    const md = readFileSync(README, 'utf8');
    const section = md.slice(md.indexOf('\n## Directives\n'));
    return entries(section.split('\n').map((l) => l.replace(/^ {4}/, '')), (line) => {
        const m = /^### (dwrtc_[\w, ]+)$/.exec(line);
        return m && m[1].split(/,\s*/);
    });
}

describe('the directive reference', () => {
    const source = sourceDirectives();
    const man = manEntries();
    const readme = readmeEntries();

    it('reads the module\'s directives from its source', () => {
        assert.ok(source.size >= 25, `only ${[...source.keys()]}`);
        assert.equal(source.get('dwrtc_signal'), 'location');
        assert.equal(source.get('dwrtc_dht_port'), 'http');
        assert.equal(source.get('dwrtc_rate'), 'http, server, location');
    });

    for (const [name, doc] of [['the man page', man], ['module/README.md', readme]]) {
        it(`${name} has every directive with Syntax, Default and the Context the module `
           + 'allows, and no other', () => {
            for (const [directive, context] of source) {
                const e = doc.get(directive);
                assert.ok(e, `${directive} is missing from ${name}`);
                assert.ok(e.syntax.some((s) => s.startsWith(`${directive} `)
                                                || s.startsWith(`${directive};`)),
                          `${name}: no Syntax line of ${directive}: ${e.syntax}`);
                assert.ok(e.default.length > 0, `${name}: no Default of ${directive}`);
                assert.equal(e.context, context, `${name}: the Context of ${directive}`);
            }
            const extra = [...doc.keys()].filter((d) => !source.has(d));
            assert.deepEqual(extra, [], `${name} documents directives the module lacks`);
        });
    }

    it('the man page and module/README.md say the same Syntax, Default and Context', () => {
        for (const directive of source.keys()) {
            assert.deepEqual(man.get(directive), readme.get(directive), directive);
        }
    });

    it('the man page renders without a warning', () => {
        const r = spawnSync('groff', ['-man', '-Tutf8', '-ww', '-z', MAN],
                            { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C.UTF-8' } });
        assert.equal(r.error, undefined, 'groff is missing (Debian: apt-get install groff-base)');
        assert.equal(r.status, 0, r.stderr);
        assert.equal(r.stderr, '', 'groff warned');
    });
});

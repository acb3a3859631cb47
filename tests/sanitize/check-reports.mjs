// Reads the report files of AddressSanitizer, LeakSanitizer and UBSan that
// sanitized nginx processes wrote (run-checked.sh gives them a log_path) and
// fails on every report that is not a known one.
//
// usage: node check-reports.mjs KNOWN_FILE REPORT_FILE...
//
// Exit status 0 when every report in the files is known (or there is none),
// 1 when one is not (the files are printed), 2 on a bad KNOWN_FILE.
//
// A known report is named by its kind and the innermost frames of its stack,
// which must match in that order from the first frame that is not the
// sanitizer's own (its malloc interceptor, say). KNOWN_FILE holds one per
// line, each after a comment that says why it is known and harmless:
//
//   # why this is not a bug of ours ...
//   leak: ngx_memalign < ngx_create_pool < main
//   ubsan: ngx_pstrdup < ngx_init_cycle
//
// `a < b` reads "a, called by b". A name may use * for any characters. This
// is narrower than LeakSanitizer's own suppressions, which match a name in
// any frame of the stack: `leak:ngx_create_pool` there would hide every
// pool the module forgets to destroy. Everything else a sanitizer writes -
// an ASan error (overflow, use after free...), a crash - is never known.

import { readFileSync } from 'node:fs';

function parseKnown(path) {
    const entries = [];
    let comment = [];
    const lines = readFileSync(path, 'utf8').split('\n');
    for (let i = 0; i < lines.length; i++) {
        const line = lines[i].trim();
        if (line.startsWith('#')) {
            comment.push(line);
            continue;
        }
        if (line === '') {
            comment = [];
            continue;
        }
        const m = /^(leak|ubsan):\s*(.+)$/.exec(line);
        if (!m) {
            throw new Error(`${path}:${i + 1}: expected "leak: f < g" or "ubsan: f < g"`);
        }
        if (comment.length === 0) {
            throw new Error(`${path}:${i + 1}: entry without a comment saying why`);
        }
        const frames = m[2].split('<').map((f) => f.trim());
        const globs = frames.map((f) => new RegExp('^'
            + f.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*') + '$'));
        entries.push({ kind: m[1], text: line, globs, used: 0 });
    }
    return entries;
}

// `    #3 0x55d0 in ngx_init_cycle src/core/ngx_cycle.c:118` -> function name
const FRAME = /^\s*#\d+ 0x[0-9a-f]+ (?:in (.+?))?(?: (?:\S+:\d+(?::\d+)?|\(.*\+0x[0-9a-f]+\)))?$/;

const SANITIZER_FRAME = /^(__interceptor_|__asan_|__lsan_|__ubsan_|__sanitizer_|operator new|operator delete|(malloc|calloc|realloc|free|posix_memalign|aligned_alloc|memalign|strdup|strndup)$)/;

/** Splits a report file into items: { kind, head, frames, lines }. */
function parseReports(text) {
    const items = [];
    let cur = null;
    const close = () => {
        if (cur) {
            items.push(cur);
            cur = null;
        }
    };
    for (const line of text.split('\n')) {
        const frame = FRAME.exec(line);
        if (frame && cur) {
            // a frame without a symbol is named by its library
            const lib = /\(([^()]*\/)?([^/()+]+)\+0x[0-9a-f]+\)$/.exec(line);
            cur.lines.push(line);
            cur.frames.push(frame[1] ?? (lib ? lib[2] : '?'));
            continue;
        }
        close();
        if (/^\s*$/.test(line) || /^=+$/.test(line)
            || /^==.*==ERROR: LeakSanitizer: detected memory leaks$/.test(line)
            || /^SUMMARY: AddressSanitizer: \d+ byte\(s\) leaked in \d+ allocation\(s\)\.$/.test(line)
            || /^SUMMARY: UndefinedBehaviorSanitizer: /.test(line)) {
            // framing of the items, not a report of its own
            continue;
        }
        if (/^(Direct|Indirect) leak of \d+ byte/.test(line)) {
            cur = { kind: 'leak', head: line, frames: [], lines: [line] };
        } else if (/: runtime error: /.test(line)) {
            cur = { kind: 'ubsan', head: line, frames: [], lines: [line] };
        } else {
            // an ASan error, a crash, anything else: never known
            items.push({ kind: 'other', head: line, frames: [], lines: [line] });
        }
    }
    close();
    return items;
}

function known(item, entries) {
    const frames = item.frames.filter((f) => !SANITIZER_FRAME.test(f));
    return entries.find((e) => e.kind === item.kind
        && e.globs.length <= frames.length
        && e.globs.every((g, i) => g.test(frames[i])));
}

function main() {
    const [knownPath, ...files] = process.argv.slice(2);
    if (!knownPath) {
        console.error('usage: node check-reports.mjs KNOWN_FILE REPORT_FILE...');
        process.exit(2);
    }
    let entries;
    try {
        entries = parseKnown(knownPath);
    } catch (err) {
        console.error(`check-reports: ${err.message}`);
        process.exit(2);
    }
    let bad = 0;
    for (const file of files) {
        const text = readFileSync(file, 'utf8');
        const unknown = [];
        for (const item of parseReports(text)) {
            const e = known(item, entries);
            if (e) {
                e.used++;
            } else {
                unknown.push(item);
            }
        }
        if (unknown.length) {
            bad++;
            console.log(`==== ${file}: ${unknown.length} report(s) not known`);
            for (const item of unknown) {
                console.log(item.lines.join('\n'));
            }
            console.log(`---- the whole file:\n${text}`);
        }
    }
    for (const e of entries.filter((x) => x.used)) {
        console.log(`check-reports: known, ${e.used} time(s): ${e.text}`);
    }
    if (bad) {
        console.log(`check-reports: ${bad} of ${files.length} report file(s) hold `
                    + 'reports that are not known');
        process.exit(1);
    }
    console.log(`check-reports: ${files.length} report file(s), no unknown report`);
}

main();

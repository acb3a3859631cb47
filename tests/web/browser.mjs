// Headless Debian Chromium for the browser tests, driven by playwright-core.
// Never downloads a browser: it runs /usr/bin/chromium (DWRTC_CHROMIUM to
// override) with a fake camera and microphone that need no permission prompt.

import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

export const CHROMIUM = process.env.DWRTC_CHROMIUM ?? '/usr/bin/chromium';
export const ARTIFACTS = join(dirname(fileURLToPath(import.meta.url)), 'artifacts');

// What headless Chromium needs as root in a container, nothing that talks
// to the Internet, and fake media devices.
export const CHROMIUM_ARGS = [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
    '--disable-quic',
    '--use-fake-device-for-media-stream',
    '--use-fake-ui-for-media-stream',
    '--autoplay-policy=no-user-gesture-required',
    '--allow-loopback-in-peer-connection',
];

/**
 * Launches Chromium; closed when the node:test context `t` ends, if given.
 * noFakeUi leaves out --use-fake-ui-for-media-stream (then the page's
 * camera permission is up to the browser's prompt policy).
 * playwright's launch() gives every browser a fresh temporary profile
 * (--user-data-dir) and removes it on close.
 */
export async function launchBrowser({ t, args = [], noFakeUi = false } = {}) {
    const base = noFakeUi
        ? CHROMIUM_ARGS.filter((a) => a !== '--use-fake-ui-for-media-stream') : CHROMIUM_ARGS;
    const browser = await chromium.launch({
        executablePath: CHROMIUM,
        headless: true,
        args: [...base, ...args],
    });
    const close = () => browser.close().catch(() => {});
    t?.after(close);
    return { browser, close };
}

/**
 * A new page in its own browser context (its own cookies and permissions),
 * whose uncaught exceptions and console errors (except those matching
 * ignoreConsole) are collected in page.problems.
 */
export async function newPage(browser, { viewport = { width: 1280, height: 800 },
                                         label = 'page', ignoreConsole = null,
                                         ...contextOptions } = {}) {
    const context = await browser.newContext({ viewport, ...contextOptions });
    const page = await context.newPage();
    page.problems = [];
    page.label = label;
    page.on('pageerror', (err) => page.problems.push(`${label}: uncaught ${err.stack ?? err}`));
    page.on('console', (msg) => {
        if (msg.type() === 'error' && !ignoreConsole?.test(msg.text())) {
            page.problems.push(`${label}: console error: ${msg.text()}`);
        }
        if (process.env.DWRTC_BROWSER_LOG) {
            console.log(`# [${label}] ${msg.type()}: ${msg.text()}`);
        }
    });
    return page;
}

/** Saves a screenshot under tests/web/artifacts/ and returns its path. */
export async function screenshot(page, name, options = {}) {
    mkdirSync(ARTIFACTS, { recursive: true });
    const path = join(ARTIFACTS, name);
    await page.screenshot({ path, ...options });
    return path;
}

/** Video frames decoded so far by the page's current call (getStats). */
export function framesDecoded(page) {
    return page.evaluate(async () => {
        const pc = window.dwrtcDemo?.pc;
        if (!pc) {
            return 0;
        }
        let n = 0;
        (await pc.getStats()).forEach((s) => {
            if (s.type === 'inbound-rtp' && s.kind === 'video') {
                n += s.framesDecoded ?? 0;
            }
        });
        return n;
    });
}

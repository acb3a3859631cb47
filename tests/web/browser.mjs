// The browsers of the browser tests: Debian's chromium, driven by
// playwright-core, and Debian's firefox-esr, driven over WebDriver BiDi by
// puppeteer-core. Never downloads a browser: it runs /usr/bin/chromium
// (DWRTC_CHROMIUM to override) and /usr/bin/firefox-esr (DWRTC_FIREFOX),
// each with a fake camera and microphone that need no permission prompt.
//
// launchBrowser({ kind }) starts either; newPage() gives a page with the
// same methods for both (Playwright's Page; in Firefox a FirefoxPage with
// the part of that API the tests use). The kind a test file runs in is
// DWRTC_BROWSER (chromium, the default, or firefox): tests/web/CMakeLists.txt
// runs some files again as web_firefox_<name> with DWRTC_BROWSER=firefox.

import { chromium } from 'playwright-core';
import puppeteer from 'puppeteer-core';
import { it as nodeIt, after as nodeAfter } from 'node:test';
import { existsSync, mkdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

export const CHROMIUM = process.env.DWRTC_CHROMIUM ?? '/usr/bin/chromium';
export const FIREFOX = process.env.DWRTC_FIREFOX ?? '/usr/bin/firefox-esr';
export const ARTIFACTS = join(dirname(fileURLToPath(import.meta.url)), 'artifacts');

export const BROWSER_KINDS = ['chromium', 'firefox'];
/** The browser a test file runs in when it names none: DWRTC_BROWSER. */
export const BROWSER_KIND = process.env.DWRTC_BROWSER || 'chromium';
if (!BROWSER_KINDS.includes(BROWSER_KIND)) {
    throw new Error(`DWRTC_BROWSER=${BROWSER_KIND}: use one of ${BROWSER_KINDS.join(', ')}`);
}
/** The other one, for calls between a Chromium page and a Firefox page. */
export const OTHER_KIND = BROWSER_KIND === 'chromium' ? 'firefox' : 'chromium';
/** What a test says its browser is, in case names and logs. */
export const BROWSER_NAME = { chromium: 'Chromium', firefox: 'Firefox' };

/**
 * node:test's `it` for a file that runs in both browsers: in Chromium it
 * registers every case, in Firefox those whose names match one of
 * `firefoxCases` (regular expressions); the others use Chromium's switches,
 * or exercise nothing a second browser would answer differently and would
 * cost CI time twice. A pattern that matches no case fails the run, so a
 * renamed case is not dropped from Firefox unnoticed.
 */
export function casesFor(firefoxCases) {
    if (BROWSER_KIND === 'chromium') {
        return nodeIt;
    }
    const matched = new Set();
    nodeAfter(() => {
        const unmatched = firefoxCases.filter((p) => !matched.has(p));
        if (unmatched.length) {
            throw new Error(`no case matches ${unmatched.join(', ')}: `
                            + 'rename the pattern with the case');
        }
    });
    return (name, ...rest) => {
        const hits = firefoxCases.filter((p) => p.test(name));
        if (hits.length === 0) {
            return undefined;
        }
        hits.forEach((p) => matched.add(p));
        return nodeIt(name, ...rest);
    };
}

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

// Firefox's counterparts, as preferences of the fresh profile puppeteer
// makes for each launch (a profile of its own is what lets Firefox start
// headless as root; puppeteer removes it on close). puppeteer's own profile
// already turns off updates, telemetry, safe browsing and the like; these
// add what a call on loopback needs and the rest of what would go out.
export const FIREFOX_PREFS = {
    // a fake camera and microphone, granted without a prompt
    'media.navigator.streams.fake': true,
    'media.navigator.permission.disabled': true,
    // remote video plays without a click
    'media.autoplay.default': 0,
    'media.autoplay.blocking_policy': 0,
    // ICE between two pages of this machine: loopback candidates, and host
    // addresses as they are (not mDNS names, which nothing here resolves)
    'media.peerconnection.ice.loopback': true,
    'media.peerconnection.ice.obfuscate_host_addresses': false,
    // nothing that talks to the Internet
    'network.captive-portal-service.enabled': false,
    'network.connectivity-service.enabled': false,
    'network.dns.disablePrefetch': true,
    'network.prefetch-next': false,
    'media.gmp-manager.updateEnabled': false,
    'media.gmp-provider.enabled': false,
    'toolkit.telemetry.enabled': false,
    'browser.ping-centre.telemetry': false,
    'dom.push.connection.enabled': false,
    'network.trr.mode': 5,                  // no DNS over HTTPS
    'browser.region.network.url': '',
    'browser.region.update.enabled': false,
};

/**
 * Launches a browser of `kind` ('chromium' or 'firefox'; DWRTC_BROWSER
 * when not given); closed when the node:test context `t` ends, if given.
 * Chromium: `args` are extra switches; noFakeUi leaves out
 * --use-fake-ui-for-media-stream (then the page's camera permission is up
 * to the browser's prompt policy). playwright's launch() gives every
 * browser a fresh temporary profile and removes it on close.
 * Firefox: `prefs` are extra preferences; Chromium's switches mean nothing
 * to it, so `args` and noFakeUi are refused rather than ignored.
 * Returns { browser, close, kind }: browser.close() and newPage(browser)
 * work the same for both.
 */
export async function launchBrowser({ t, kind = BROWSER_KIND, args = [], noFakeUi = false,
                                      prefs = {} } = {}) {
    let browser;
    if (kind === 'firefox') {
        if (args.length || noFakeUi) {
            throw new Error('launchBrowser: args and noFakeUi are Chromium switches; '
                            + 'give Firefox prefs instead');
        }
        browser = await FirefoxBrowser.launch(prefs);
    } else if (kind === 'chromium') {
        const base = noFakeUi
            ? CHROMIUM_ARGS.filter((a) => a !== '--use-fake-ui-for-media-stream') : CHROMIUM_ARGS;
        browser = await chromium.launch({
            executablePath: CHROMIUM,
            headless: true,
            args: [...base, ...args],
        });
    } else {
        throw new Error(`launchBrowser: no browser of kind "${kind}" (${BROWSER_KINDS.join(', ')})`);
    }
    const close = () => browser.close().catch(() => {});
    t?.after(close);
    return { browser, close, kind };
}

/** The kind of a browser launchBrowser() started. */
export function kindOf(browser) {
    return browser instanceof FirefoxBrowser ? 'firefox' : 'chromium';
}

/**
 * A new page in its own browser context (its own cookies, storage and
 * permissions), whose uncaught exceptions and console errors (except those
 * matching ignoreConsole) are collected in page.problems. page.label names
 * it in messages, page.browserKind says which browser it is in.
 */
export async function newPage(browser, { viewport = { width: 1280, height: 800 },
                                         label = 'page', ignoreConsole = null,
                                         ...contextOptions } = {}) {
    const kind = kindOf(browser);
    const page = kind === 'firefox'
        ? await browser.newPage({ viewport })
        : await (await browser.newContext({ viewport, ...contextOptions })).newPage();
    page.problems = [];
    page.label = label;
    page.browserKind = kind;
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

/**
 * Headless firefox-esr over WebDriver BiDi (puppeteer-core). Each page
 * opens in a user context of its own (Firefox's browser contexts) and in a
 * window of its own, so that every page is visible: a background tab's
 * timers and frames would be throttled, which a page in a call is not.
 */
class FirefoxBrowser {
    static async launch(prefs) {
        if (!existsSync(FIREFOX)) {
            throw new Error(`no Firefox at ${FIREFOX}: ci/install-deps.sh installs Debian's `
                            + 'firefox-esr (or set DWRTC_FIREFOX)');
        }
        const browser = await puppeteer.launch({
            browser: 'firefox',
            executablePath: FIREFOX,
            headless: true,
            extraPrefsFirefox: { ...FIREFOX_PREFS, ...prefs },
        });
        return new FirefoxBrowser(browser);
    }

    constructor(browser) {
        this.puppeteer = browser;
    }

    version() {
        return this.puppeteer.version();
    }

    /**
     * A FirefoxPage of `viewport` size. Playwright's device emulation
     * (isMobile, hasTouch) has no counterpart here: a phone is a narrow page.
     */
    async newPage({ viewport }) {
        const context = await this.puppeteer.createBrowserContext();
        const page = await context.newPage({ type: 'window' });
        await page.setViewport(viewport);
        return new FirefoxPage(page);
    }

    close() {
        return this.puppeteer.close();
    }
}

/** Playwright's "visible": a non-empty box and no visibility: hidden. */
function elementVisible(el) {
    if (!el) {
        return false;
    }
    const box = el.getBoundingClientRect();
    return box.width > 0 && box.height > 0 && getComputedStyle(el).visibility !== 'hidden';
}

/**
 * A puppeteer page with the methods of Playwright's Page that the browser
 * tests use, with Playwright's meaning (arguments in its order, its
 * defaults: waitForSelector waits until visible unless state says
 * otherwise; click and fill wait until the element can take them), so a
 * test is written once for both browsers. The puppeteer page is
 * page.puppeteer, for what this does not cover.
 */
export class FirefoxPage {
    constructor(page) {
        this.puppeteer = page;
    }

    on(event, listener) {
        this.puppeteer.on(event, listener);
        return this;
    }

    goto(url) {
        return this.puppeteer.goto(url);
    }

    reload() {
        return this.puppeteer.reload();
    }

    evaluate(fn, arg) {
        return this.puppeteer.evaluate(fn, arg);
    }

    /** Polled every 50 ms: a page in a call is never idle long enough for a frame-based wait to matter. */
    waitForFunction(fn, arg, { timeout } = {}) {
        return this.puppeteer.waitForFunction(fn, { timeout, polling: 50 }, arg);
    }

    waitForSelector(selector, { timeout, state = 'visible' } = {}) {
        const wanted = { attached: {}, visible: { visible: true }, hidden: { hidden: true },
                         detached: { hidden: true } }[state];
        if (!wanted) {
            throw new Error(`waitForSelector: no state "${state}"`);
        }
        return this.puppeteer.waitForSelector(selector, { timeout, ...wanted });
    }

    #locator(selector, timeout) {
        const locator = this.puppeteer.locator(selector);
        return timeout === undefined ? locator : locator.setTimeout(timeout);
    }

    click(selector, { timeout } = {}) {
        return this.#locator(selector, timeout).click();
    }

    fill(selector, value, { timeout } = {}) {
        return this.#locator(selector, timeout).fill(value);
    }

    async #property(selector, read, arg, timeout) {
        const element = await this.puppeteer.waitForSelector(selector, { timeout });
        try {
            return await element.evaluate(read, arg);
        } finally {
            await element.dispose();
        }
    }

    textContent(selector, { timeout } = {}) {
        return this.#property(selector, (el) => el.textContent, undefined, timeout);
    }

    inputValue(selector, { timeout } = {}) {
        return this.#property(selector, (el) => el.value, undefined, timeout);
    }

    getAttribute(selector, name, { timeout } = {}) {
        return this.#property(selector, (el, n) => el.getAttribute(n), name, timeout);
    }

    /** At once, as Playwright's: false when there is no such element. */
    isVisible(selector) {
        return this.puppeteer.evaluate(
            `(${elementVisible})(document.querySelector(${JSON.stringify(selector)}))`);
    }

    /** The part of Playwright's Locator that the tests' error messages use. */
    locator(selector) {
        return {
            getAttribute: (name, options) => this.getAttribute(selector, name, options),
            textContent: (options) => this.textContent(selector, options),
        };
    }

    screenshot({ path, fullPage = false } = {}) {
        return this.puppeteer.screenshot({ path, fullPage });
    }

    /**
     * Closes the page; with runBeforeUnload its beforeunload, pagehide and
     * unload handlers run first, as when a person closes the tab.
     */
    close({ runBeforeUnload = false } = {}) {
        return this.puppeteer.close({ runBeforeUnload });
    }
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

// What the browser tests of the demo page share: waiting for a state the
// page shows, opening the demo until it is connected, and asking the page
// which node it is on.

export const WAIT = 60_000;

/** Waits until the page's element `sel` has data-state `state`. */
export async function waitState(page, sel, state, timeout = WAIT) {
    try {
        await page.waitForSelector(`${sel}[data-state="${state}"]`, { timeout, state: 'attached' });
    } catch (err) {
        const now = await page.locator(sel).getAttribute('data-state').catch(() => '?');
        const error = await page.locator('#error-text').textContent().catch(() => '');
        throw new Error(`${page.label}: ${sel} did not reach "${state}" (it is "${now}"; `
                        + `error shown: "${error}"): ${err.message.split('\n')[0]}`);
    }
}

/** Opens the demo and waits until it is connected to its node; returns its id. */
export async function openDemo(page, url) {
    await page.goto(url);
    await waitState(page, '#conn-state', 'open');
    return page.evaluate(() => window.dwrtcDemo.client.id);
}

/** The node the page is on: the demo owns its id by a key, which names none. */
export function nodeOfPage(page) {
    return page.evaluate(() => window.dwrtcDemo.client.nodeId);
}

// Browser test of B7 (issue 12, defect 6: cross-site key presses), driven by
// test/interop/security_http_test.go. The user is logged in to the web
// phone console of line DN; a page of another site (ATTACKER_URL, served by
// the test on another loopback address) tries to press that line's keys
// and read the API with the user's browser. Steps:
//
//  1. The browser logs in as the user would, with its own HTTP
//     authentication cache (no help from Playwright): an API URL opened
//     with the line's credentials in it. The console /phone/DN opens and
//     its event stream connects (the browser answers the 401 from its
//     cache). Prints "CONSOLE live".
//  2. In the same browser each attacker page runs its attacks (fetch
//     no-cors with text/plain and typeless bodies, a CORS fetch with JSON,
//     HTML forms with enctype text/plain, an empty form POST, sendBeacon,
//     reads of registrations and events) and reports what its script could
//     see. Prints "ATTACKED <JSON>" and waits for "GO" on stdin (the test
//     checks through the API that nothing was pressed).
//  3. The user presses CallBack on the console: the screen changes. Prints
//     "PRESSED <screen kind>".
//
// Every wait has a deadline (STEP_TIMEOUT ms). Exit 0 on success, 1 with
// the reason on stderr. Environment: CALLBACKD_URL, ATTACKER_URLS (pages of
// other origins, comma-separated), DN,
// PASSWORD, OUT_DIR, STEP_TIMEOUT (15000), GO_TIMEOUT (60000), CHROMIUM.
import { env, launch, logger, say, screenshots, stdinLines } from './driver.mjs';


const base = env('CALLBACKD_URL').replace(/\/+$/, '');
const attackers = env('ATTACKER_URLS').split(',');
const dn = env('DN');
const password = env('PASSWORD');
const outDir = env('OUT_DIR', 'test-output/browser-b7');
const stepTimeout = Number(env('STEP_TIMEOUT', '15000'));
const goTimeout = Number(env('GO_TIMEOUT', '60000'));

const log = logger('crosssite.mjs');

const nextLine = stdinLines();

const screenshot = screenshots(outDir, log);

function watch(page, who) {
  page.setDefaultTimeout(stepTimeout);
  page.on('pageerror', (e) => log(`page error on ${who}:`, e.message));
  page.on('console', (m) => log(`console ${m.type()} on ${who}:`, m.text()));
  page.on('response', (r) => {
    const u = new URL(r.url());
    if (u.pathname.startsWith('/api/')) log(`${who}: ${r.request().method()} ${u.origin}${u.pathname}${u.search} -> ${r.status()}`);
  });
}

async function consoleLive(page, who) {
  try {
    await page.waitForSelector('#conn[data-state="open"]', { state: 'attached' });
  } catch (e) {
    await screenshot(page, `failed-${who}`);
    throw new Error(`${who}: the console's event stream did not connect within ${stepTimeout} ms`);
  }
}

async function main() {
  const browser = await launch();
  try {
    // 1. Logged in the browser's own way: its HTTP authentication cache,
    // filled by opening an API URL with the credentials in it (no help from
    // Playwright). The console's event stream is answered from the cache.
    const ctx = await browser.newContext({ viewport: { width: 520, height: 560 } });
    const login = await ctx.newPage();
    watch(login, 'login');
    const u = new URL(`${base}/api/v1/callbacks`);
    u.username = dn;
    u.password = password;
    const lr = await login.goto(u.href);
    if (!lr || lr.status() !== 200) throw new Error(`login through ${base}/api/v1/callbacks with the credentials in the URL: ${lr && lr.status()}`);
    await login.close();
    const consolePage = await ctx.newPage();
    watch(consolePage, 'console');
    const res = await consolePage.goto(`${base}/phone/${dn}`);
    if (!res || res.status() !== 200) throw new Error(`GET /phone/${dn}: ${res && res.status()}`);
    await consoleLive(consolePage, 'console');
    await screenshot(consolePage, 'console-live');
    say('CONSOLE live');

    // 2. The other origins' pages, in the same browser, one after the other.
    const results = {};
    for (const [i, attacker] of attackers.entries()) {
      const evil = await ctx.newPage();
      watch(evil, `attacker ${attacker}`);
      await evil.goto(attacker);
      try {
        await evil.waitForFunction(() => window.attackDone === true, null, { timeout: stepTimeout });
        results[attacker] = await evil.evaluate(() => window.attackResults);
      } catch (e) {
        await screenshot(evil, `failed-attacker-${i + 1}`);
        throw new Error(`the attacker page ${attacker} did not finish within ${stepTimeout} ms: ${e.message}`);
      }
      await screenshot(evil, `attacker-${i + 1}`);
      await evil.close();
    }
    await screenshot(consolePage, 'console-after-attack');
    say('ATTACKED ' + JSON.stringify(results));
    const go = await nextLine(goTimeout);
    if (go.trim() !== 'GO') throw new Error(`the test said ${JSON.stringify(go)}, not GO`);

    // 3. The user presses CallBack on the console itself.
    const before = await consolePage.evaluate(() => document.getElementById('screen').dataset.kind);
    await consolePage.locator('#softkeys button[data-key="CallBack"]').click();
    try {
      await consolePage.waitForFunction((k) => document.getElementById('screen').dataset.kind !== k || document.getElementById('status').textContent !== '', before);
    } catch (e) {
      await screenshot(consolePage, 'failed-press');
      throw new Error(`CallBack on the console changed nothing within ${stepTimeout} ms`);
    }
    const status = await consolePage.locator('#status').textContent();
    if (status) throw new Error(`pressing CallBack on the console failed: ${status}`);
    await screenshot(consolePage, 'console-pressed');
    say('PRESSED ' + (await consolePage.evaluate(() => document.getElementById('screen').dataset.kind)));
  } finally {
    await browser.close();
  }
}

main().then(() => process.exit(0), (e) => {
  console.error('[crosssite.mjs] FAIL:', e && e.stack ? e.stack : e);
  process.exit(1);
});

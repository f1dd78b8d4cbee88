// Browser test of the web phone console (issue 7 "Show", docs/features.md B4, F4,
// F12, F14, F34): two consoles, A and B, in separate browser contexts, each
// logged in with its line's SIP credentials (HTTP Basic, Playwright's
// httpCredentials). Driven by test/interop/browser_test.go, which plays the
// phones (SIPp) and makes B busy and free; this script is the user at the
// two consoles:
//
//  1. opens /phone/A and /phone/B, waits until both are live (SSE), B busy;
//  2. presses CallBack on A, waits for the activation screen (exact text
//     EXPECT_ACTIVATED, in A's locale) with the screen's softkeys, and sees
//     the request on /admin;
//  3. prints "READY activated" and waits for a line on stdin (the test
//     frees B meanwhile);
//  4. waits for the availability screen on A (EXPECT_AVAILABLE, a regexp
//     with the time in A's locale) and prints "AVAILABLE <text as JSON>";
//  5. presses Dial and waits for the screen to close or change; prints
//     "DONE <kind>".
//
// Every wait has a deadline (STEP_TIMEOUT ms). Screenshots of every step go
// to OUT_DIR. Exit 0 on success, 1 with the reason on stderr.
//
// Environment: CALLBACKD_URL (http://127.0.0.1:8080), A_DN, A_PASSWORD,
// B_DN, B_PASSWORD, ADMIN_TOKEN (entered on the admin page: its call
// backs need it), EXPECT_ACTIVATED, EXPECT_AVAILABLE, OUT_DIR,
// STEP_TIMEOUT (15000), GO_TIMEOUT (60000: how long to wait on stdin),
// CHROMIUM (/usr/bin/chromium).
import { env, launch, logger, say, screenshots, stdinLines } from './driver.mjs';


const base = env('CALLBACKD_URL', 'http://127.0.0.1:8080').replace(/\/+$/, '');
const A = { dn: env('A_DN'), password: env('A_PASSWORD') };
const B = { dn: env('B_DN'), password: env('B_PASSWORD') };
const adminToken = env('ADMIN_TOKEN');
const expectActivated = env('EXPECT_ACTIVATED');
const expectAvailable = new RegExp(env('EXPECT_AVAILABLE'));
const outDir = env('OUT_DIR', 'test-output/browser');
const stepTimeout = Number(env('STEP_TIMEOUT', '15000'));
const goTimeout = Number(env('GO_TIMEOUT', '60000'));

const log = logger('console.mjs');

const nextLine = stdinLines();

const screenshot = screenshots(outDir, log);

const pageErrors = [];
async function openConsole(browser, who) {
  const context = await browser.newContext({
    baseURL: base,
    httpCredentials: { username: who.dn, password: who.password },
    viewport: { width: 520, height: 560 },
    locale: 'en-US',
  });
  const page = await context.newPage();
  page.setDefaultTimeout(stepTimeout);
  page.on('pageerror', (e) => { pageErrors.push(`${who.dn}: ${e.message}`); log(`page error on ${who.dn}:`, e.message); });
  // Every key press and its answer, for the failure report.
  page.on('response', async (r) => {
    if (r.request().method() !== 'POST') return;
    let body = '';
    try { body = await r.text(); } catch (e) { body = `(${e.message})`; }
    log(`${who.dn}: POST ${new URL(r.url()).pathname} ${r.request().postData()} -> ${r.status()} ${body}`);
  });
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') log(`console ${m.type()} on ${who.dn}:`, m.text()); });
  const res = await page.goto(`/phone/${who.dn}`);
  if (!res || res.status() !== 200) throw new Error(`GET /phone/${who.dn}: ${res && res.status()}`);
  return { page, context, who };
}

// screenOf returns the console's screen: text, kind, key buttons and labels.
function screenOf(page) {
  return page.evaluate(() => {
    const s = document.getElementById('screen');
    return {
      text: s.textContent, kind: s.dataset.kind,
      keys: [...document.querySelectorAll('#softkeys button[data-key]')].map((b) => b.dataset.key),
      labels: Object.fromEntries([...document.querySelectorAll('#softkeys button[data-key]')].map((b) => [b.dataset.key, b.textContent])),
      status: document.getElementById('status').textContent,
    };
  });
}

// waitScreen waits until the console's screen satisfies pred(text, kind).
async function waitScreen(c, what, pred) {
  const deadline = Date.now() + stepTimeout;
  let last;
  for (;;) {
    last = await screenOf(c.page);
    if (pred(last.text, last.kind)) return last;
    if (last.status) log(`${c.who.dn} status:`, last.status);
    if (Date.now() > deadline) {
      await screenshot(c.page, `failed-${c.who.dn}`);
      throw new Error(`${c.who.dn}: ${what} did not show within ${stepTimeout} ms; the screen shows ${JSON.stringify(last)}`);
    }
    await c.page.waitForFunction(
      ([text, kind]) => {
        const s = document.getElementById('screen');
        return s.textContent !== text || s.dataset.kind !== kind || document.getElementById('status').textContent !== '';
      },
      [last.text, last.kind], { timeout: Math.max(1, deadline - Date.now()), polling: 'raf' },
    ).catch(() => {});
  }
}

// checkKeys: the softkeys are CallBack and exactly the keys the API lists
// for the screen, labelled as the API says (the line's locale).
async function checkKeys(c, shown) {
  const api = await c.page.evaluate(async (dn) => (await fetch(`/api/v1/lines/${dn}/screen`)).json(), c.who.dn);
  const want = ['CallBack', ...api.keys.filter((k) => k !== 'CallBack')];
  if (JSON.stringify(shown.keys) !== JSON.stringify(want)) {
    throw new Error(`${c.who.dn}: softkeys ${JSON.stringify(shown.keys)}, the API lists ${JSON.stringify(want)} for screen ${api.kind}`);
  }
  for (const k of want) {
    const label = (api.labels && api.labels[k]) || k;
    if (shown.labels[k] !== label) throw new Error(`${c.who.dn}: key ${k} labelled ${JSON.stringify(shown.labels[k])}, want ${JSON.stringify(label)} (locale ${api.locale})`);
  }
  return api;
}

async function waitAttr(c, selector, what) {
  try {
    await c.page.waitForSelector(selector, { state: 'attached' });
  } catch (e) {
    await screenshot(c.page, `failed-${c.who.dn}`);
    throw new Error(`${c.who.dn}: ${what} (${selector}) within ${stepTimeout} ms`);
  }
}

async function press(c, key) {
  const button = c.page.locator(`#softkeys button[data-key="${key}"]`);
  await button.click();
  // The click is done when the POST is answered: the buttons are enabled again.
  await c.page.waitForFunction(() => [...document.querySelectorAll('#softkeys button')].every((b) => !b.disabled));
  const status = await c.page.locator('#status').textContent();
  if (status) throw new Error(`${c.who.dn}: pressing ${key} failed: ${status}`);
}

async function main() {
  const browser = await launch();
  try {
    // 1. Both consoles, live; B is busy.
    const a = await openConsole(browser, A);
    const b = await openConsole(browser, B);
    for (const c of [a, b]) await waitAttr(c, '#conn[data-state="open"]', 'the event stream is not connected');
    await waitAttr(b, '#state[data-state="busy"]', 'B is not shown busy');
    const startA = await screenOf(a.page);
    if (startA.kind !== 'None' || startA.text !== '') log(`note: A's console starts with screen ${startA.kind}`);
    await screenshot(a.page, `a-${A.dn}-start`);
    await screenshot(b.page, `b-${B.dn}-busy`);

    // 2. CallBack on A: the activation screen (F4) in A's locale.
    await press(a, 'CallBack');
    const act = await waitScreen(a, 'the activation screen', (text) => text === expectActivated);
    const apiAct = await checkKeys(a, act);
    if (apiAct.kind !== 'Activated') throw new Error(`A: the API says screen ${apiAct.kind}, want Activated`);
    await screenshot(a.page, `a-${A.dn}-activated`);

    // The admin page lists the open request.
    const adminCtx = await browser.newContext({ baseURL: base, viewport: { width: 1280, height: 900 } });
    const admin = await adminCtx.newPage();
    admin.setDefaultTimeout(stepTimeout);
    admin.on('pageerror', (e) => { pageErrors.push(`admin: ${e.message}`); log('page error on admin:', e.message); });
    await admin.goto('/admin');
    await admin.fill('#token', adminToken);
    await admin.click('#token-form button[type="submit"]');
    const row = `#callbacks tbody tr[data-caller="${A.dn}"][data-callee="${B.dn}"]`;
    try {
      await admin.waitForSelector(row);
      await admin.waitForSelector('#lines tbody tr[data-dn]');
      await admin.waitForSelector('#status dd');
      await admin.waitForSelector('#conn[data-state="open"]'); // the event stream, with the token
    } catch (e) {
      await screenshot(admin, 'failed-admin');
      throw new Error(`admin page: no row ${row} or no lines/status within ${stepTimeout} ms (message: ${await admin.locator('#message').textContent()})`);
    }
    await screenshot(admin, 'admin-activated');
    await adminCtx.close();

    // 3. The test frees B.
    say('READY activated');
    const go = await nextLine(goTimeout);
    if (go.trim() !== 'GO') throw new Error(`the test said ${JSON.stringify(go)}, not GO`);

    // 4. The availability screen (F12) in A's locale, with Dial.
    const avail = await waitScreen(a, 'the availability screen', (text) => expectAvailable.test(text));
    await checkKeys(a, avail);
    if (!avail.keys.includes('Dial')) throw new Error(`A: the availability screen offers no Dial: ${JSON.stringify(avail.keys)}`);
    say('AVAILABLE ' + JSON.stringify(avail.text));
    await waitAttr(b, '#state[data-state="idle"]', 'B is not shown idle');
    await screenshot(a.page, `a-${A.dn}-available`);
    await screenshot(b.page, `b-${B.dn}-free`);

    // 5. Dial (F14): the screen closes or changes.
    await press(a, 'Dial');
    const after = await waitScreen(a, 'a change of the screen after Dial', (text, kind) => kind !== 'Available' || text !== avail.text);
    await screenshot(a.page, `a-${A.dn}-dialed`);
    await screenshot(b.page, `b-${B.dn}-dialed`);

    if (pageErrors.length) throw new Error('JavaScript errors in the pages:\n' + pageErrors.join('\n'));
    say('DONE ' + (after.kind || 'None'));
  } finally {
    await browser.close();
  }
}

main().then(() => process.exit(0), (e) => {
  console.error('[console.mjs] FAIL:', e && e.stack ? e.stack : e);
  process.exit(1);
});

// Browser test of the admin page (issue 18; docs/features.md B4, B7, F36, F37):
// driven by test/interop/browser_admin_test.go, which starts the real
// server, makes some calls and one failed login (an alarm), and waits
// until the server's history has sampled the calls. This script is the
// admin at a 1280x800 window:
//
//  1. opens /admin with the API's answers held back: the tables say
//     "loading", not "none"; without a token the admin-only tables say
//     they need it;
//  2. enters a wrong token: the page says "Not authorized", and no answer
//     carries a Basic challenge (which pops a login box);
//  3. enters the right token: lines, call backs, alarms, the live stream;
//  4. every column of every table is visible: no section scrolls
//     sideways (scrollWidth <= clientWidth), nor the page;
//  5. the alarm of the failed login shows its attributes (account, reason);
//  6. a bad parameter shows an error; a good save clears it;
//  7. the charts have points: the calls, and the open request.
//
// Prints "DONE <json summary>" and exits 0, or exits 1 with the reason on
// stderr. Screenshots of every step go to OUT_DIR. Every wait has a
// deadline (STEP_TIMEOUT ms).
//
// Environment: CALLBACKD_URL, ADMIN_TOKEN, ALARM_ACCOUNT and ALARM_REASON
// (the attributes the failed login's alarm must show), MIN_CALLS (the
// calls the charts must show), OUT_DIR, STEP_TIMEOUT (15000), CHROMIUM.
import { env, launch, logger, screenshots } from './driver.mjs';


const base = env('CALLBACKD_URL').replace(/\/+$/, '');
const adminToken = env('ADMIN_TOKEN');
const alarmAccount = env('ALARM_ACCOUNT');
const alarmReason = env('ALARM_REASON');
const minCalls = Number(env('MIN_CALLS', '1'));
const outDir = env('OUT_DIR', 'test-output/browser-admin');
const stepTimeout = Number(env('STEP_TIMEOUT', '15000'));

const log = logger('admin.mjs');
const screenshot = screenshots(outDir, log);

// emptyText is what an empty table shows (its tbody's ::after).
function emptyText(page, table) {
  return page.evaluate((id) => getComputedStyle(document.querySelector(`#${id} tbody`), '::after').content, table);
}

async function main() {
  const browser = await launch();
  const summary = {};
  try {
    const context = await browser.newContext({ baseURL: base, viewport: { width: 1280, height: 800 }, locale: 'en-US' });
    const page = await context.newPage();
    page.setDefaultTimeout(stepTimeout);
    const pageErrors = [];
    page.on('pageerror', (e) => { pageErrors.push(e.message); log('page error:', e.message); });
    // Every 401 and its challenge: a Basic one makes a browser ask for a
    // user and password, which the admin page never wants.
    const basic = [];
    let unauthorized = 0;
    page.on('response', async (r) => {
      if (r.status() !== 401) return;
      unauthorized++;
      const ch = (await r.headerValue('www-authenticate')) || '';
      if (/^\s*basic/i.test(ch)) basic.push(`${r.request().method()} ${new URL(r.url()).pathname}: ${ch}`);
    });
    page.on('dialog', (d) => { basic.push('dialog: ' + d.message()); d.dismiss(); });

    // 1. Loading: the lines are held back until the page has been seen.
    let release;
    const held = new Promise((resolve) => { release = resolve; });
    await page.route('**/api/v1/lines', async (route) => { await held; await route.continue(); });
    await page.goto('/admin');
    await page.waitForSelector('#lines[data-state="loading"]', { state: 'attached' });
    const loading = await emptyText(page, 'lines');
    if (!/loading/.test(loading) || /none/.test(loading)) throw new Error(`the lines table says ${loading} while loading, want "loading…"`);
    summary.loading = loading;
    await screenshot(page, 'loading');
    release();
    await page.waitForSelector('#lines tbody tr[data-dn]');
    await page.unroute('**/api/v1/lines');
    // Without a token the admin-only tables say so, not "none".
    await page.waitForSelector('#callbacks[data-state="locked"]', { state: 'attached' });
    const locked = await emptyText(page, 'callbacks');
    if (!/token/.test(locked)) throw new Error(`without a token the call backs say ${locked}`);

    // 2. A wrong token: "Not authorized", no Basic challenge.
    await page.fill('#token', 'not-the-token');
    await page.click('#token-form button[type="submit"]');
    await page.waitForFunction(() => /Not authorized/.test(document.getElementById('message').textContent));
    await screenshot(page, 'wrong-token');
    if (!unauthorized) throw new Error('the wrong token got no 401');
    summary.wrongTokenMessage = await page.locator('#message').textContent();

    // 3. The right token.
    await page.fill('#token', adminToken);
    await page.click('#token-form button[type="submit"]');
    try {
      await page.waitForSelector('#conn[data-state="open"]', { timeout: 3 * stepTimeout });
      await page.waitForSelector('#callbacks[data-state="loaded"]', { state: 'attached' });
      await page.waitForSelector('#alarms tbody tr');
      await page.waitForFunction(() => document.getElementById('message').dataset.kind !== 'error', null, { timeout: 3 * stepTimeout });
    } catch (e) {
      await screenshot(page, 'failed-token');
      throw new Error(`with the right token: ${e.message}; message: ${await page.locator('#message').textContent()}`);
    }
    if (basic.length) throw new Error('Basic challenges sent to the admin page:\n' + basic.join('\n'));

    // 4. Nothing hidden sideways at 1280x800.
    const layout = await page.evaluate(() => {
      const out = { page: { scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth }, overflow: [], hidden: [] };
      for (const s of document.querySelectorAll('main section')) {
        if (s.scrollWidth > s.clientWidth) out.overflow.push(`${s.querySelector('h2').textContent}: scrollWidth ${s.scrollWidth} > clientWidth ${s.clientWidth}`);
      }
      for (const t of document.querySelectorAll('main table')) {
        const box = t.closest('section').getBoundingClientRect();
        for (const th of t.querySelectorAll('thead th')) {
          const r = th.getBoundingClientRect();
          if (r.left < box.left - 0.5 || r.right > box.right + 0.5 || r.right > window.innerWidth) {
            out.hidden.push(`#${t.id} column "${th.textContent}" at ${Math.round(r.left)}-${Math.round(r.right)}, section ${Math.round(box.left)}-${Math.round(box.right)}`);
          }
        }
      }
      out.linesColumns = [...document.querySelectorAll('#lines thead th')].map((th) => th.textContent);
      return out;
    });
    summary.layout = layout;
    if (layout.page.scroll > layout.page.client) layout.overflow.push(`the page: scrollWidth ${layout.page.scroll} > ${layout.page.client}`);
    if (layout.overflow.length || layout.hidden.length) {
      await screenshot(page, 'failed-layout');
      throw new Error('hidden at 1280x800:\n' + [...layout.overflow, ...layout.hidden].join('\n'));
    }
    for (const want of ['Notification', 'Kind', 'Forwarding', 'Max devices']) {
      if (!layout.linesColumns.includes(want)) throw new Error(`the lines table has no column ${want}: ${layout.linesColumns}`);
    }

    // 5. The failed login's alarm with its attributes.
    const alarm = await page.evaluate(([account, reason]) => {
      for (const tr of document.querySelectorAll('#alarms tbody tr')) {
        const attrs = Object.fromEntries([...tr.querySelectorAll('.attrs [data-attr]')].map((d) => [d.dataset.attr, d.querySelector('dd').textContent]));
        if (attrs.account === account && attrs.reason === reason) return { text: tr.innerText, attrs };
      }
      return null;
    }, [alarmAccount, alarmReason]);
    if (!alarm) {
      await screenshot(page, 'failed-alarm');
      throw new Error(`no alarm shows account=${alarmAccount} reason=${alarmReason}: ${await page.locator('#alarms').innerText()}`);
    }
    summary.alarm = alarm;
    const visible = await page.locator('#alarms .attrs [data-attr="reason"]').first().isVisible();
    if (!visible) throw new Error('the alarm\'s reason is not visible');

    // 6. A bad parameter: an error; then a good save clears it.
    const t3 = page.locator('#param-t3');
    const good = await t3.inputValue();
    await t3.fill('soon');
    await page.click('#params button[type="submit"]');
    await page.waitForFunction(() => document.getElementById('message').dataset.kind === 'error');
    summary.badSave = await page.locator('#message').textContent();
    await screenshot(page, 'bad-save');
    await t3.fill(good === '50s' ? '55s' : '50s');
    await page.click('#params button[type="submit"]');
    await page.waitForFunction(() => /^Saved/.test(document.querySelector('#params .form-status').textContent));
    const after = await page.evaluate(() => ({ text: document.getElementById('message').textContent, invalid: document.querySelectorAll('#params .field.invalid').length }));
    if (after.text !== '' || after.invalid) throw new Error(`after a good save the page still shows ${JSON.stringify(after)}`);
    summary.goodSave = await page.locator('#params .form-status').textContent();

    // 7. The charts: the calls the test made, and the open request.
    try {
      await page.waitForFunction((n) => {
        const calls = document.getElementById('chart-calls');
        const open = document.getElementById('chart-open');
        return Number(calls.dataset.points) >= 1 && Number(calls.dataset.max) >= n &&
          Number(open.dataset.points) >= 2 && Number(open.dataset.max) >= 1 && calls.querySelector('path.series');
      }, minCalls);
    } catch (e) {
      await screenshot(page, 'failed-charts');
      throw new Error('the charts show no calls or no open request: ' + JSON.stringify(await page.evaluate(() =>
        [...document.querySelectorAll('#charts .chart')].map((f) => ({ id: f.id, points: f.dataset.points, max: f.dataset.max })))));
    }
    summary.charts = await page.evaluate(() => Object.fromEntries([...document.querySelectorAll('#charts .chart')].map((f) =>
      [f.dataset.series, { points: Number(f.dataset.points), max: Number(f.dataset.max), path: !!f.querySelector('path.series') }])));
    await page.locator('#charts').scrollIntoViewIfNeeded();
    await screenshot(page, 'charts', false);
    await page.evaluate(() => window.scrollTo(0, 0));
    await screenshot(page, 'admin-1280x800', false);
    await screenshot(page, 'admin-full');

    if (pageErrors.length) throw new Error('JavaScript errors in the page:\n' + pageErrors.join('\n'));
    process.stdout.write('DONE ' + JSON.stringify(summary) + '\n');
  } finally {
    await browser.close();
  }
}

main().then(() => process.exit(0), (e) => {
  console.error('[admin.mjs] FAIL:', e && e.stack ? e.stack : e);
  process.exit(1);
});

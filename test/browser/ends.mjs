// Browser walk of every way a call back request ends (issue 18, docs/features.md
// F14, F18, F19, F25, F29, B4): the web phone console of one or more lines
// in headless chromium, driven step by step by
// test/interop/browser_ends_test.go, which plays the phones (SIPp), the
// callee and the clock. After each end the test asks this script to check
// the console's screen: its kind, its text (a regexp), its softkeys (CallBack
// and exactly the screen's keys, as GET /api/v1/lines/{dn}/screen lists
// them) and takes a screenshot.
//
// Protocol: one JSON command per line on stdin, one answer per line on
// stdout ("OK <op> ..." or, on failure, the script exits 1 with the reason
// on stderr):
//
//   {"op":"open","dn":"1001","password":"demo1001"}     open /phone/1001, wait until live
//   {"op":"wait","dn":"1001","name":"activated","kind":"Activated","text":"^CallBack is ...$","keys":["Cancel","Exit"],"timeout":15000}
//   {"op":"press","dn":"1001","key":"Dial"}
//   {"op":"quit"}
//
// Environment: CALLBACKD_URL, OUT_DIR (screenshots), STEP_TIMEOUT (15000),
// GO_TIMEOUT (120000: how long to wait for the next command), CHROMIUM.
import { env, launch, logger, say, screenshots, stdinLines } from './driver.mjs';

const base = env('CALLBACKD_URL', 'http://127.0.0.1:8080').replace(/\/+$/, '');
const outDir = env('OUT_DIR', 'test-output/browser-ends');
const stepTimeout = Number(env('STEP_TIMEOUT', '15000'));
const goTimeout = Number(env('GO_TIMEOUT', '120000'));

const log = logger('ends.mjs');

const nextLine = stdinLines();

const screenshot = screenshots(outDir, log);

const pageErrors = [];
const consoles = new Map(); // dn -> { page, context, dn }

async function open(browser, dn, password) {
  const context = await browser.newContext({
    baseURL: base,
    httpCredentials: { username: dn, password },
    viewport: { width: 520, height: 560 },
    locale: 'en-US',
  });
  const page = await context.newPage();
  page.setDefaultTimeout(stepTimeout);
  page.on('pageerror', (e) => { pageErrors.push(`${dn}: ${e.message}`); log(`page error on ${dn}:`, e.message); });
  page.on('response', async (r) => {
    if (r.request().method() !== 'POST') return;
    let body = '';
    try { body = await r.text(); } catch (e) { body = `(${e.message})`; }
    log(`${dn}: POST ${new URL(r.url()).pathname} ${r.request().postData()} -> ${r.status()} ${body}`);
  });
  const res = await page.goto(`/phone/${dn}`);
  if (!res || res.status() !== 200) throw new Error(`GET /phone/${dn}: ${res && res.status()}`);
  await page.waitForSelector('#conn[data-state="open"]', { state: 'attached' });
  const c = { page, context, dn };
  consoles.set(dn, c);
  return c;
}

function screenOf(page) {
  return page.evaluate(() => {
    const s = document.getElementById('screen');
    return {
      text: s.textContent, kind: s.dataset.kind || 'None',
      keys: [...document.querySelectorAll('#softkeys button[data-key]')].map((b) => b.dataset.key),
      status: document.getElementById('status').textContent,
    };
  });
}

// wait: until the console shows the screen, then check its softkeys.
async function wait(cmd) {
  const c = consoles.get(cmd.dn);
  if (!c) throw new Error(`wait: console ${cmd.dn} is not open`);
  const re = new RegExp(cmd.text);
  const deadline = Date.now() + (cmd.timeout || stepTimeout);
  let last;
  for (;;) {
    last = await screenOf(c.page);
    if (last.kind === cmd.kind && re.test(last.text)) break;
    if (Date.now() > deadline) {
      await screenshot(c.page, `failed-${cmd.name}`);
      throw new Error(`${cmd.dn} ${cmd.name}: want ${cmd.kind} ${re}; the console shows ${JSON.stringify(last)}`);
    }
    await c.page.waitForFunction(
      ([text, kind]) => {
        const s = document.getElementById('screen');
        return s.textContent !== text || (s.dataset.kind || 'None') !== kind;
      },
      [last.text, last.kind], { timeout: Math.max(1, Math.min(1000, deadline - Date.now())), polling: 'raf' },
    ).catch(() => {});
  }
  // The console shows CallBack and exactly the screen's keys, as the API
  // lists them (issue 18: every screen has a way out; no Dial once ended).
  const want = ['CallBack', ...(cmd.keys || [])];
  const api = await c.page.evaluate(async (dn) => (await fetch(`/api/v1/lines/${dn}/screen`)).json(), c.dn);
  const apiKeys = ['CallBack', ...(api.keys || []).filter((k) => k !== 'CallBack')];
  if (JSON.stringify(last.keys) !== JSON.stringify(want) || JSON.stringify(apiKeys) !== JSON.stringify(want) || (api.kind || 'None') !== cmd.kind) {
    await screenshot(c.page, `failed-${cmd.name}`);
    throw new Error(`${cmd.dn} ${cmd.name}: softkeys ${JSON.stringify(last.keys)}, API ${api.kind} ${JSON.stringify(apiKeys)}, want ${cmd.kind} ${JSON.stringify(want)}`);
  }
  await screenshot(c.page, `${cmd.dn}-${cmd.name}`);
  return last;
}

async function press(cmd) {
  const c = consoles.get(cmd.dn);
  if (!c) throw new Error(`press: console ${cmd.dn} is not open`);
  await c.page.locator(`#softkeys button[data-key="${cmd.key}"]`).click();
  await c.page.waitForFunction(() => [...document.querySelectorAll('#softkeys button')].every((b) => !b.disabled));
  const status = await c.page.locator('#status').textContent();
  if (status) throw new Error(`${cmd.dn}: pressing ${cmd.key} failed: ${status}`);
}

async function main() {
  const browser = await launch();
  try {
    say('READY');
    for (;;) {
      const cmd = JSON.parse(await nextLine(goTimeout));
      switch (cmd.op) {
        case 'open':
          await open(browser, cmd.dn, cmd.password);
          say(`OK open ${cmd.dn}`);
          break;
        case 'wait': {
          const s = await wait(cmd);
          say(`OK wait ${cmd.name} ${JSON.stringify(s.text)}`);
          break;
        }
        case 'press':
          await press(cmd);
          say(`OK press ${cmd.key}`);
          break;
        case 'quit':
          if (pageErrors.length) throw new Error('JavaScript errors in the pages:\n' + pageErrors.join('\n'));
          say('OK quit');
          return;
        default:
          throw new Error(`unknown command ${JSON.stringify(cmd)}`);
      }
    }
  } finally {
    await browser.close();
  }
}

main().then(() => process.exit(0), (e) => {
  console.error('[ends.mjs] FAIL:', e && e.stack ? e.stack : e);
  process.exit(1);
});

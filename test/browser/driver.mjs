// What every browser script the Go tests run shares: settings from the
// environment, log lines on stderr and answers on stdout, commands from the
// Go test on stdin, screenshots, and Chromium launched as this machine
// allows (headless, no sandbox as root, no background networking: the
// network is closed).
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';

// env is the setting name; without a default a missing one is an error.
export function env(name, def) {
  const v = process.env[name];
  if (v === undefined || v === '') {
    if (def === undefined) throw new Error(`environment variable ${name} is required`);
    return def;
  }
  return v;
}

// logger writes lines tagged with the script's name to stderr.
export const logger = (script) => (...a) => console.error(`[${script}]`, ...a);

// say answers the Go test, one line on stdout.
export const say = (line) => process.stdout.write(line + '\n');

// stdinLines returns nextLine(ms): the next line the Go test wrote, or a
// failure after ms.
export function stdinLines() {
  const lines = [];
  const waiters = [];
  readline.createInterface({ input: process.stdin }).on('line', (l) => {
    const w = waiters.shift();
    if (w) w(l); else lines.push(l);
  });
  return function nextLine(ms) {
    if (lines.length) return Promise.resolve(lines.shift());
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no line on stdin within ${ms} ms`)), ms);
      waiters.push((l) => { clearTimeout(timer); resolve(l); });
    });
  };
}

// screenshots returns screenshot(page, name, fullPage = true), which saves
// numbered PNGs into outDir and logs each path.
export function screenshots(outDir, log) {
  mkdirSync(outDir, { recursive: true });
  let shot = 0;
  return async function screenshot(page, name, fullPage = true) {
    shot++;
    const file = path.join(outDir, `${String(shot).padStart(2, '0')}-${name.replace(/[^A-Za-z0-9_.-]+/g, '-')}.png`);
    await page.screenshot({ path: file, fullPage });
    log('screenshot', file);
  };
}

// launch starts Debian's Chromium (CHROMIUM overrides the path).
export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
}

// What the end-to-end tests share: Debian's Chromium launched through
// playwright-core (never a downloaded browser), and typing a message.
import { spawn } from 'node:child_process';
import { chromium } from 'playwright-core';

// `env`: the browser's environment (tls.test.mjs gives it a HOME whose NSS
// database trusts a test CA).
export function launchBrowser(env = process.env) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    env,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
}

export async function say(page, text) {
  await page.fill('#text', text);
  await page.press('#text', 'Enter');
}

// Starts the picochat binary on an ephemeral port with `args`; resolves with
// the child and its port once it listens.
export function startPicochat(bin, args) {
  return new Promise((ok, fail) => {
    const child = spawn(bin, ['--listen', '127.0.0.1:0', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    const timer = setTimeout(() => fail(new Error(`server did not start:\n${log}`)), 10000);
    child.stderr.on('data', (d) => {
      log += d;
      const m = /listening on [\d.]+:(\d+)/.exec(log);
      if (m) { clearTimeout(timer); ok({ child, port: Number(m[1]), log: () => log }); }
    });
    child.on('exit', (code) => fail(new Error(`server exited ${code}:\n${log}`)));
  });
}

// A new browser context on the chat page at `port`, joined as `name`;
// `errors` collects the page's uncaught errors.
export async function joinChat(browser, port, name, contextOptions = { viewport: { width: 1000, height: 640 } }) {
  const page = await (await browser.newContext(contextOptions)).newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e));
  await page.goto(`http://127.0.0.1:${port}/`);
  await page.fill('#join-username', name);
  await page.click('#join-form button[type=submit]');
  await page.waitForSelector('#status[data-state=online]');
  return { page, errors };
}

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

// Pastes into the composer a JPEG drawn in the page, with an EXIF block
// (Orientation, and a GPS position a phone would write) spliced in after SOI.
export async function pastePhoto(page) {
  await page.evaluate(async () => {
    const canvas = document.createElement('canvas');
    canvas.width = 320;
    canvas.height = 200;
    const g = canvas.getContext('2d');
    g.fillStyle = '#f4a340';
    g.fillRect(0, 0, 320, 200);
    g.fillStyle = '#2f6fde';
    g.fillRect(0, 120, 320, 80);
    const jpeg = new Uint8Array(await (await new Promise((ok) => canvas.toBlob(ok, 'image/jpeg', 0.9))).arrayBuffer());
    const enc = new TextEncoder();
    const tiff = [0x4d, 0x4d, 0, 42, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0,
      ...enc.encode('GPS 48.8566 N 2.3522 E, Pixel 8')];
    const body = [...enc.encode('Exif\0\0'), ...tiff];
    const app1 = [0xff, 0xe1, (body.length + 2) >> 8, (body.length + 2) & 0xff, ...body];
    const photo = new Uint8Array([...jpeg.slice(0, 2), ...app1, ...jpeg.slice(2)]);
    const file = new File([photo], 'IMG_0042.jpg', { type: 'image/jpeg' });
    const data = new DataTransfer();
    data.items.add(file);
    const text = document.querySelector('#text');
    text.focus();
    text.dispatchEvent(new ClipboardEvent('paste', { clipboardData: data, bubbles: true, cancelable: true }));
  });
}

// Pastes that photo, captions it and sends it; the selector of the picture
// as the chat pages show it (its caption is its alt text).
export async function sendPhoto(page, caption) {
  await pastePhoto(page);
  await page.waitForSelector('#attachment img');
  await page.fill('#text', caption);
  await page.press('#text', 'Enter');
  return `#messages li.msg .picture img[alt="${caption}"]`;
}

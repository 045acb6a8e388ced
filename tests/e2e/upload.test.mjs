// End-to-end: pictures in Chromium. A page pastes a phone photo (a real
// JPEG whose EXIF carries a GPS position); the preview shows, the caption
// goes with it, and the other page shows the image inline at its size with
// the caption as alt text. The served bytes have no GPS left. Deleting the
// message removes the image from both pages and its URL answers 404. On a
// phone the picture fits the screen.
//
// PICOCHAT_BIN: the server binary (default: target/release/picochat).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchBrowser, startPicochat, joinChat } from './browser.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const bin = process.env.PICOCHAT_BIN || join(root, 'target/release/picochat');
let server;
let port;
let browser;

before(async () => {
  ({ child: server, port } = await startPicochat(bin, ['--msg-rate', '0']));
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  server?.kill('SIGTERM');
});

// Pastes into the composer a JPEG drawn in the page, with an EXIF block
// (Orientation, and a GPS position a phone would write) spliced in after SOI.
async function pastePhoto(page) {
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

test('a pasted photo reaches the other page without its location, and delete removes it', async () => {
  const ann = await joinChat(browser, port, 'ann');
  const bob = await joinChat(browser, port, 'bob');
  await pastePhoto(ann.page);
  await ann.page.waitForSelector('#attachment img');
  await ann.page.fill('#text', 'sunset');
  await ann.page.press('#text', 'Enter');
  const img = '#messages li.msg .picture img[alt="sunset"]';
  await bob.page.waitForSelector(img);
  await bob.page.waitForFunction((sel) => document.querySelector(sel).naturalWidth === 320, img);
  assert.deepEqual(
    await bob.page.$eval(img, (e) => [e.getAttribute('width'), e.getAttribute('height')]),
    ['320', '200'],
    'its size known before it loads'
  );
  assert.equal(await ann.page.$('#attachment img'), null, 'the preview went with it');
  const src = await bob.page.$eval(img, (e) => e.getAttribute('src'));
  assert.match(src, /^\/u\/[A-Za-z0-9_-]{22}\.jpg$/);
  const served = await bob.page.evaluate(async (u) => {
    const r = await fetch(u);
    const bytes = new Uint8Array(await r.arrayBuffer());
    return { status: r.status, type: r.headers.get('content-type'), nosniff: r.headers.get('x-content-type-options'), text: new TextDecoder('latin1').decode(bytes) };
  }, src);
  assert.equal(served.status, 200);
  assert.equal(served.type, 'image/jpeg');
  assert.equal(served.nosniff, 'nosniff');
  assert.ok(!served.text.includes('GPS') && !served.text.includes('Pixel 8'), 'no location, no device');
  assert.ok(served.text.includes('Exif'), 'the orientation kept');
  // Ann deletes it: gone from both pages, and from the server.
  ann.page.on('dialog', (d) => d.accept());
  await ann.page.hover('#messages li.msg');
  await ann.page.click('#messages li.msg .delete');
  await bob.page.waitForFunction((sel) => !document.querySelector(sel), img);
  const after = await bob.page.evaluate(async (u) => (await fetch(u, { cache: 'no-store' })).status, src);
  assert.equal(after, 404);
  // On a phone the picture fits the screen.
  const phone = await joinChat(browser, port, 'cy', { viewport: { width: 390, height: 760 }, isMobile: true, colorScheme: 'dark' });
  await pastePhoto(ann.page);
  await ann.page.waitForSelector('#attachment img');
  await ann.page.press('#text', 'Enter');
  await phone.page.waitForSelector('#messages li.msg .picture img');
  await phone.page.waitForFunction(() => document.querySelector('#messages li.msg .picture img').naturalWidth > 0);
  const width = await phone.page.$eval('#messages li.msg .picture img', (e) => e.getBoundingClientRect().width);
  assert.ok(width > 100 && width <= 390, `${width}`);
  await phone.page.screenshot({ path: join(root, 'tests/artifacts/upload-phone.png') });
  for (const who of [ann, bob, phone]) assert.deepEqual(who.errors, []);
});

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
import { launchBrowser, startPicochat, joinChat, pastePhoto, sendPhoto } from './browser.mjs';

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

test('a pasted photo reaches the other page without its location, and delete removes it', async () => {
  const ann = await joinChat(browser, port, 'ann');
  const bob = await joinChat(browser, port, 'bob');
  const img = await sendPhoto(ann.page, 'sunset');
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

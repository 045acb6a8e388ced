// End-to-end: the admin page (/admin) with Debian's Chromium. A wrong token is
// refused; the right one shows live charts drawn from the server's samples,
// the rooms and the people in them; a moderator deletes a message and bans its
// sender while another page watches the message disappear and the sender go;
// the room's topic set there reaches the chat page; a picture posted in the
// chat is listed under the recent images, and its delete there takes it off
// the chat page and the server. Saves screenshots of the
// admin page (desktop, and a phone in dark mode).
//
// PICOCHAT_BIN: the server binary (default: target/release/picochat).
// SCREENSHOT_OUT: with it, the desktop screenshot is also copied beside it as -admin.png.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { joinChat, launchBrowser, say, sendPhoto, startPicochat } from './browser.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const bin = process.env.PICOCHAT_BIN || join(root, 'target/release/picochat');
const artifacts = join(root, 'tests/artifacts');
const dir = mkdtempSync(join(tmpdir(), 'picochat-e2e-admin-'));
const TOKEN = 'admin-token-for-the-e2e-test';
let server;
let port;
let browser;

before(async () => {
  writeFileSync(join(dir, 'token'), `${TOKEN}\n`);
  ({ child: server, port } = await startPicochat(bin, ['--admin-token-file', join(dir, 'token'),
    '--data-dir', join(dir, 'data'), '--msg-rate', '0']));
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  server?.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
});

const chatAs = (name) => joinChat(browser, port, name);

async function adminPage(contextOptions) {
  const page = await (await browser.newContext(contextOptions)).newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e));
  await page.goto(`http://127.0.0.1:${port}/admin`);
  return { page, errors };
}

async function signIn(page, token) {
  await page.fill('#token', token);
  await page.click('#token-form button[type=submit]');
}

test('a moderator deletes a message and bans its sender from /admin while another page watches', async () => {
  const watcher = await chatAs('Wendy');
  const mallory = await chatAs('Mallory');
  await say(watcher.page, 'hello everyone');
  await say(mallory.page, 'buy cheap pills at spam.example');
  await watcher.page.waitForSelector('#messages li.msg .text >> text=buy cheap pills');

  const admin = await adminPage({ viewport: { width: 1280, height: 900 } });
  await signIn(admin.page, 'not-the-token');
  await admin.page.waitForSelector('#token-error >> text=wrong admin token');
  assert.equal(await admin.page.isVisible('#dashboard'), false);
  await signIn(admin.page, TOKEN);
  await admin.page.waitForSelector('#status[data-state=online]');

  // Live charts: the server samples once a second.
  // Drawn once two samples are in. A line can be flat (the same count every
  // second) and so have no height, which Playwright calls hidden: wait for it
  // to be there, not to be visible.
  await admin.page.waitForSelector('.chart[data-series=connections] polyline', { state: 'attached', timeout: 10000 });
  // The newest sample may be from the second before both pages were in: the next one counts them.
  await admin.page.waitForFunction(
    () => document.querySelector('.chart[data-series=connections] .now')?.textContent === '2',
    null,
    { timeout: 5000 },
  );
  assert.match(await admin.page.textContent('.chart[data-series=rss_kib] .now'), /^\d+(\.\d)? MiB$/);

  // The room, its people, its messages.
  await admin.page.waitForSelector('#rooms button[data-room=lobby][aria-current=true]');
  await admin.page.waitForSelector('#people li[data-user=Mallory]');
  const spam = admin.page.locator('#recent li', { hasText: 'buy cheap pills' });
  await spam.waitFor();
  admin.page.once('dialog', (d) => d.accept());
  await spam.locator('button.delete').click();
  await watcher.page.locator('#messages li.msg', { hasText: 'buy cheap pills' }).waitFor({ state: 'detached' });
  await spam.waitFor({ state: 'detached' });

  // Ban the sender: the page is disconnected and sent back to the join screen.
  await admin.page.locator('#people li[data-user=Mallory] button.ban').click();
  await watcher.page.waitForSelector('#messages li.system >> text=Mallory left');
  await mallory.page.waitForSelector('#join-error >> text=banned', { timeout: 15000 });
  await admin.page.waitForSelector('#bans li >> text=mallory');

  // A topic set here reaches the chat page.
  await admin.page.fill('#topic', 'Be kind; no ads.');
  await admin.page.click('#settings-form button[type=submit]');
  await watcher.page.waitForSelector('#topic >> text=Be kind; no ads.');

  await admin.page.waitForTimeout(1500); // one more sample after the ban, for the picture
  mkdirSync(artifacts, { recursive: true });
  await admin.page.screenshot({ path: join(artifacts, 'admin.png'), fullPage: true });
  if (process.env.SCREENSHOT_OUT) copyFileSync(join(artifacts, 'admin.png'), process.env.SCREENSHOT_OUT.replace(/\.png$/, '-admin.png'));

  // The phone layout, dark.
  const phone = await adminPage({ viewport: { width: 390, height: 800 }, colorScheme: 'dark', isMobile: true });
  await phone.page.waitForSelector('#token-form');
  await signIn(phone.page, TOKEN);
  await phone.page.waitForSelector('.chart[data-series=deliveries] polyline', { timeout: 10000 });
  const width = await phone.page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 390, `no sideways scrolling on a phone (${width}px)`);
  await phone.page.screenshot({ path: join(artifacts, 'admin-phone.png') });

  for (const { errors } of [watcher, mallory, admin, phone]) assert.deepEqual(errors, [], 'no page errors');
});

test('the admin page lists a posted picture among the recent images, and its delete removes it everywhere', async () => {
  const ann = await chatAs('Annie');
  const shown = await sendPhoto(ann.page, 'holiday snap');
  await ann.page.waitForSelector(shown);
  const src = await ann.page.$eval(shown, (e) => e.getAttribute('src'));

  const admin = await adminPage({ viewport: { width: 1280, height: 900 } });
  await signIn(admin.page, TOKEN);
  await admin.page.waitForSelector('#rooms button[data-room=lobby][aria-current=true]');
  const listed = admin.page.locator('#images li', { has: admin.page.locator(`img[src="${src}"]`) });
  await listed.waitFor();
  assert.equal(await listed.locator('img').getAttribute('alt'), 'holiday snap');
  assert.match(await listed.locator('.meta').textContent(), /^Annie · \d+ KB$/);
  assert.equal(await admin.page.isVisible('#no-images'), false);
  // It loads there too (the admin page is served from the same origin).
  await admin.page.waitForFunction((u) => document.querySelector(`#images img[src="${u}"]`)?.naturalWidth === 320, src);

  admin.page.once('dialog', (d) => d.accept());
  await listed.locator('button.delete').click();
  await listed.waitFor({ state: 'detached' });
  await ann.page.waitForFunction((sel) => !document.querySelector(sel), shown);
  const status = await ann.page.evaluate(async (u) => (await fetch(u, { cache: 'no-store' })).status, src);
  assert.equal(status, 404, 'the file went with its message');
  for (const { errors } of [ann, admin]) assert.deepEqual(errors, [], 'no page errors');
});

// End-to-end: scrollback and search in Chromium. 1,000 messages are sent,
// the server restarts with --data-dir, and a page scrolls back through all
// of them to "start of #general" with none missing or twice (the view does
// not jump while older pages come in). A search finds an old message and
// jumps to it, highlighted in place, with "Jump to latest" back. On a phone
// the search box takes the header.
//
// PICOCHAT_BIN: the server binary (default: target/release/picochat).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchBrowser, startPicochat } from './browser.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const bin = process.env.PICOCHAT_BIN || join(root, 'target/release/picochat');
const dataDir = mkdtempSync(join(tmpdir(), 'picochat-e2e-scroll-'));
const args = ['--data-dir', dataDir, '--msg-rate', '0', '--history', '50'];
let server;
let port;
let browser;

before(async () => {
  ({ child: server, port } = await startPicochat(bin, args));
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  server?.kill('SIGTERM');
  rmSync(dataDir, { recursive: true, force: true });
});

function stop(child) {
  return new Promise((ok) => { child.once('exit', ok); child.kill('SIGTERM'); });
}

async function joinAs(name, contextOptions = { viewport: { width: 1000, height: 640 } }) {
  const context = await browser.newContext(contextOptions);
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e));
  await page.goto(`http://127.0.0.1:${port}/r/general`);
  await page.fill('#join-username', name);
  await page.click('#join-form button[type=submit]');
  await page.waitForSelector('#status[data-state=online]');
  return { page, errors, context };
}

const ids = (page) => page.$$eval('#messages li.msg', (els) => els.map((e) => Number(e.dataset.id)));

test('after a restart, scroll back through 1,000 messages; search jumps to an old one', async () => {
  // 1,000 messages from a browser's own WebSocket, each acknowledged.
  const seed = await browser.newPage();
  await seed.goto(`http://127.0.0.1:${port}/healthz`);
  const sent = await seed.evaluate(async (port) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
    await new Promise((ok) => { ws.onopen = ok; });
    const got = [];
    const done = new Promise((ok) => {
      ws.onmessage = (e) => {
        const m = JSON.parse(e.data);
        if (m.type === 'message') { got.push(m.id); if (got.length === 1000) ok(); }
      };
    });
    ws.send(JSON.stringify({ type: 'join', room: 'general', username: 'seeder' }));
    for (let i = 0; i < 1000; i++) {
      const n = String(i).padStart(4, '0');
      ws.send(JSON.stringify({ type: 'message', room: 'general', message: `line ${n} needle-${n}` }));
    }
    await done;
    ws.close();
    return got;
  }, port);
  await seed.close();
  assert.equal(sent.length, 1000);

  await stop(server);
  ({ child: server, port } = await startPicochat(bin, args));

  const { page, errors } = await joinAs('Ann');
  await page.waitForSelector('#messages li.msg');
  // Scroll to the top until the start: each page comes in above, the view holds still.
  for (let guard = 0; guard < 100; guard++) {
    if (await page.isVisible('#messages li.start')) break;
    const anchor = await page.$eval('#messages li.msg', (li) => Number(li.dataset.id));
    // Scrolled to the top, the first message shows at the top of the list ...
    await page.$eval('#messages', (l) => { l.scrollTop = 0; });
    const at = (id) => page.$eval(`#messages li.msg[data-id="${id}"]`, (li) =>
      li.getBoundingClientRect().top - document.getElementById('messages').getBoundingClientRect().top);
    const before = await at(anchor);
    await page.waitForFunction((a) => {
      const first = document.querySelector('#messages li.msg');
      return document.querySelector('#messages li.start') || (first && Number(first.dataset.id) < a);
    }, anchor);
    // ... and stays exactly there when the previous page comes in above it.
    await page.waitForFunction(() => !document.querySelector('#messages li.loading'));
    const after = await at(anchor);
    assert.ok(Math.abs(after - before) <= 1, `the message on screen held still: ${before} -> ${after}`);
  }
  assert.equal(await page.textContent('#messages li.start'), 'start of #general');
  const all = await ids(page);
  assert.deepEqual(all, sent, 'every message once, in order');

  // Search: an old message, found and jumped to.
  await page.click('#search-open');
  await page.fill('#search-q', 'NEEDLE-0042');
  await page.press('#search-q', 'Enter');
  await page.waitForSelector('#search-results li');
  assert.equal(await page.textContent('#search-results li mark'), 'needle-0042');
  assert.match(await page.textContent('#search-status'), /1 message/);
  await page.click('#search-results li');
  await page.waitForSelector(`#messages li.msg.hit[data-id="${sent[42]}"]`);
  assert.ok(await page.isVisible('#jump-latest'), 'away from the newest: Jump to latest');
  const box = await page.$eval(`#messages li.msg.hit`, (li) => {
    const r = li.getBoundingClientRect();
    const l = document.getElementById('messages').getBoundingClientRect();
    return r.top >= l.top && r.bottom <= l.bottom;
  });
  assert.ok(box, 'the result is in view');
  const around = await ids(page);
  assert.deepEqual(around, sent.slice(42 - 24, 42 + 26), "25 up to it and 25 after");
  await page.click('#jump-latest');
  await page.waitForFunction(() => document.getElementById('jump-latest').hidden);
  assert.equal((await ids(page)).at(-1), sent.at(-1), 'back at the newest');
  await page.screenshot({ path: join(root, 'tests/artifacts/scrollback.png') });
  assert.deepEqual(errors, []);
});

test('on a phone the search box takes the header', async () => {
  const { page, errors } = await joinAs('Dana', { viewport: { width: 390, height: 740 }, isMobile: true });
  await page.click('#search-open');
  assert.ok(await page.isVisible('#search-q'));
  assert.equal(await page.isVisible('#users-toggle'), false, 'the rest of the header steps aside');
  const width = await page.$eval('#search-q', (e) => e.getBoundingClientRect().width);
  assert.ok(width > 250, `the box is wide: ${width}`);
  await page.fill('#search-q', 'line 0999');
  await page.press('#search-q', 'Enter');
  await page.waitForSelector('#search-results li');
  await page.screenshot({ path: join(root, 'tests/artifacts/scrollback-phone.png') });
  await page.click('#search-close');
  assert.ok(await page.isVisible('#users-toggle'));
  assert.deepEqual(errors, []);
});

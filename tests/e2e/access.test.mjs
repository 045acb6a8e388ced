// End-to-end: a server with --auth password. The page asks for the password
// only when the server wants it, says when it is wrong, joins with the right
// one and keeps it for the tab (a reload joins by itself); a client that never
// joined with it (the Go tutorial's frames) is refused.
//
// PICOCHAT_BIN: the server binary (default: target/release/picochat).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchBrowser, say } from './browser.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const bin = process.env.PICOCHAT_BIN || join(root, 'target/release/picochat');
const dir = mkdtempSync(join(tmpdir(), 'picochat-e2e-auth-'));
let server;
let port;
let browser;

before(async () => {
  writeFileSync(join(dir, 'password'), 'family chat\n');
  ({ server, port } = await new Promise((ok, fail) => {
    const child = spawn(bin, ['--listen', '127.0.0.1:0', '--auth', 'password',
      '--password-file', join(dir, 'password'), '--msg-rate', '0'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    const timer = setTimeout(() => fail(new Error(`server did not start:\n${log}`)), 10000);
    child.stderr.on('data', (d) => {
      log += d;
      const m = /listening on [\d.]+:(\d+)/.exec(log);
      if (m) { clearTimeout(timer); ok({ server: child, port: Number(m[1]) }); }
    });
  }));
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  server?.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
});

test('a password join: asked for, wrong, right, kept for the tab; others refused', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e));
  await page.goto(`http://127.0.0.1:${port}/`);
  assert.equal(await page.isVisible('#join-password'), false, 'no password field until the server asks');
  await page.fill('#join-username', 'Ann');
  await page.click('#join-form button[type=submit]');
  await page.waitForSelector('#join-error >> text=This chat needs its password.');
  assert.equal(await page.isVisible('#join-password'), true);

  await page.fill('#join-password', 'family');
  await page.click('#join-form button[type=submit]');
  await page.waitForSelector('#join-error >> text=Wrong password.');

  await page.fill('#join-password', 'family chat');
  await page.click('#join-form button[type=submit]');
  await page.waitForSelector('#status[data-state=online]');
  await say(page, 'in with the password');
  await page.waitForSelector('#messages li.msg >> text=in with the password');

  // A reload in the same tab joins again by itself.
  await page.reload();
  await page.waitForSelector('#status[data-state=online]');
  await page.waitForSelector('#messages li.msg >> text=in with the password');

  // A client that never joined with the password: its message is refused, not shown.
  const reply = await page.evaluate((p) => new Promise((ok) => {
    const ws = new WebSocket(`ws://127.0.0.1:${p}/ws`);
    ws.onopen = () => ws.send(JSON.stringify({ username: 'gopher', message: 'let me in' }));
    ws.onmessage = (e) => { ok(JSON.parse(e.data)); ws.close(); };
  }), port);
  assert.equal(reply.code, 'bad_password');
  await page.waitForTimeout(200);
  assert.equal(await page.$$eval('#messages li.msg', (els) => els.filter((e) => e.textContent.includes('let me in')).length), 0);
  assert.deepEqual(errors, [], 'no page errors');
});

// End-to-end: a server with --auth token. Tokens are signed here the way an
// operator's web app would (HS256 with the shared secret, node's own crypto).
// A page opened with /#token=... goes straight into the chat under the
// token's name with a verified mark, and the token leaves the address bar;
// another user sees the mark on messages and in the people list; a page
// embedded in an iframe gets its token by postMessage; an expired token
// lands on the join screen with an explanation.
//
// PICOCHAT_BIN: the server binary (default: target/release/picochat).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer } from 'node:http';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchBrowser, say, startPicochat } from './browser.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const bin = process.env.PICOCHAT_BIN || join(root, 'target/release/picochat');
const artifacts = join(root, 'tests/artifacts');
const dir = mkdtempSync(join(tmpdir(), 'picochat-e2e-token-'));
const SECRET = 'the-site-and-picochat-share-this';
let server;
let port;
let browser;
let site;          // the operator's own site, on another origin, embedding the chat
let sitePort;

const b64url = (s) => Buffer.from(s).toString('base64url');

function sign(claims, secret = SECRET) {
  const head = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const body = b64url(JSON.stringify(claims));
  const sig = createHmac('sha256', secret).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}

const inAnHour = () => Math.floor(Date.now() / 1000) + 3600;

before(async () => {
  site = createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html' });
    res.end(`<!doctype html><title>site</title><iframe id="chat" src="http://127.0.0.1:${port}/" style="width:900px;height:600px"></iframe>`);
  });
  await new Promise((ok) => site.listen(0, '127.0.0.1', ok));
  sitePort = site.address().port;
  writeFileSync(join(dir, 'jwt'), `${SECRET}\n`);
  ({ child: server, port } = await startPicochat(bin, ['--auth', 'token', '--jwt-secret-file', join(dir, 'jwt'), '--msg-rate', '0',
    '--frame-ancestors', `http://127.0.0.1:${sitePort}`]));
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  server?.kill('SIGTERM');
  site?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function open(path) {
  const page = await (await browser.newContext({ viewport: { width: 1000, height: 640 } })).newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e));
  await page.goto(`http://127.0.0.1:${port}${path}`);
  return { page, errors };
}

test('a token join: the name from the token, a verified mark, no token left in the URL', async () => {
  const ada = await open(`/#token=${sign({ sub: 'site-user-1', name: 'Ada Lovelace', exp: inAnHour() })}`);
  await ada.page.waitForSelector('#status[data-state=online]');
  assert.equal(await ada.page.isVisible('#join-screen'), false, 'no join form');
  assert.ok(!ada.page.url().includes('token'), `the token left the address bar: ${ada.page.url()}`);

  const bob = await open(`/#token=${sign({ sub: 'site-user-2', name: 'Bob', exp: inAnHour() })}`);
  await bob.page.waitForSelector('#status[data-state=online]');
  await say(ada.page, 'signed in through the site');
  const seen = bob.page.locator('#messages li.msg', { hasText: 'signed in through the site' });
  await seen.waitFor();
  assert.equal(await seen.locator('.name').textContent(), 'Ada Lovelace');
  assert.equal(await seen.locator('.verified').count(), 1);
  await bob.page.waitForSelector('#user-list li:has-text("Ada Lovelace") .verified');

  // Embedded: the site hands the token over by postMessage.
  const host = await (await browser.newContext()).newPage();
  const hostErrors = [];
  host.on('pageerror', (e) => hostErrors.push(e));
  await host.goto(`http://127.0.0.1:${sitePort}/`);
  const frame = await (await host.waitForSelector('#chat')).contentFrame();
  await frame.waitForSelector('#join-screen');
  const token = sign({ sub: 'site-user-3', name: 'Cy', exp: inAnHour() });
  await host.evaluate((t) => document.getElementById('chat').contentWindow.postMessage({ type: 'picochat-token', token: t }, '*'), token);
  await frame.waitForSelector('#status[data-state=online]');
  await ada.page.waitForSelector('#user-list li:has-text("Cy") .verified');

  // An expired token: back to the join screen, told why.
  const late = await open(`/#token=${sign({ sub: 'site-user-4', name: 'Dee', exp: Math.floor(Date.now() / 1000) - 3600 })}`);
  await late.page.waitForSelector('#join-error >> text=sign-in link is missing, expired or not valid');

  mkdirSync(artifacts, { recursive: true });
  await bob.page.screenshot({ path: join(artifacts, 'token.png') });
  for (const { errors } of [ada, bob, late]) assert.deepEqual(errors, [], 'no page errors');
  assert.deepEqual(hostErrors, []);
});

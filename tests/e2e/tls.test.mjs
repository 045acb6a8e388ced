// End-to-end over native TLS: picochat with --tls-cert/--tls-key from a test
// CA made here with openssl. Chromium trusts that CA the way a machine's
// administrator would make it trusted, through the user's NSS database
// (certutil, $HOME/.pki/nssdb): no --ignore-certificate-errors. Two pages
// chat over https:// and wss:// (a secure context, so the browser's
// secure-only features are on); a browser without the CA refuses the page.
//
// PICOCHAT_BIN: the server binary (default: target/release/picochat).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchBrowser, say, startPicochat } from './browser.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const bin = process.env.PICOCHAT_BIN || join(root, 'target/release/picochat');
const dir = mkdtempSync(join(tmpdir(), 'picochat-e2e-tls-'));
let server;
let port;
let trusting;   // Chromium with the test CA in its NSS database
let stranger;   // Chromium without it

const openssl = (...args) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });

before(async () => {
  openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '30', '-subj', '/CN=picochat e2e test CA');
  writeFileSync(join(dir, 'ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost');
  openssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key',
    '-set_serial', '0x2a', '-out', 'server.pem', '-days', '10', '-extfile', 'ext');
  const home = join(dir, 'home');
  const nssdb = join(home, '.pki/nssdb');
  mkdirSync(nssdb, { recursive: true });
  execFileSync('certutil', ['-d', `sql:${nssdb}`, '-N', '--empty-password']);
  execFileSync('certutil', ['-d', `sql:${nssdb}`, '-A', '-n', 'picochat e2e test CA', '-t', 'C,,',
    '-i', join(dir, 'ca.pem')]);

  ({ child: server, port } = await startPicochat(bin, [
    '--tls-cert', join(dir, 'server.pem'), '--tls-key', join(dir, 'server.key')]));
  trusting = await launchBrowser({ ...process.env, HOME: home });
  stranger = await launchBrowser();
});

after(async () => {
  await trusting?.close();
  await stranger?.close();
  server?.kill();
  rmSync(dir, { recursive: true, force: true });
});

async function join_(name) {
  const page = await (await trusting.newContext({ viewport: { width: 1000, height: 640 } })).newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e));
  const sockets = [];
  page.on('websocket', (ws) => sockets.push(ws.url()));
  await page.goto(`https://localhost:${port}/`);
  await page.fill('#join-username', name);
  await page.click('#join-form button[type=submit]');
  await page.waitForSelector('#status[data-state=online]');
  return { page, errors, sockets };
}

test('two pages chat over https and wss with a certificate from a CA the browser trusts', async () => {
  const alice = await join_('alice');
  const bob = await join_('bob');
  assert.equal(await alice.page.evaluate(() => window.isSecureContext), true);
  assert.ok(alice.sockets.length > 0 && alice.sockets.every((u) => u.startsWith(`wss://localhost:${port}/`)),
    `the page's WebSockets: ${alice.sockets.join(', ')}`);
  await say(alice.page, 'hello over TLS');
  await bob.page.waitForSelector('#messages li.msg >> text=hello over TLS');
  await say(bob.page, 'and back');
  await alice.page.waitForSelector('#messages li.msg >> text=and back');
  assert.deepEqual([...alice.errors, ...bob.errors], []);
});

test('a browser without the test CA refuses the page', async () => {
  const page = await (await stranger.newContext()).newPage();
  await assert.rejects(page.goto(`https://localhost:${port}/`), /ERR_CERT_AUTHORITY_INVALID/);
});

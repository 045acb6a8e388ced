// End-to-end on Redis: two picochat nodes sharing one Debian redis-server, a
// page on each. Messages cross with the same ids, each page lists the other's
// user (presence across nodes), a room made on one node is listed and joined
// on the other, and when one node is killed and started again its page
// reconnects by itself and catches up with no gap and no duplicate.
//
// PICOCHAT_BIN: the server binary (default: target/release/picochat).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { joinChat, launchBrowser, say } from './browser.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const bin = process.env.PICOCHAT_BIN || join(root, 'target/release/picochat');
const dir = mkdtempSync(join(tmpdir(), 'picochat-e2e-redis-'));
const socket = join(dir, 'redis.sock');
let redis;
let browser;
const nodes = [];

function waitFor(check, ms, what) {
  return new Promise((ok, fail) => {
    const end = Date.now() + ms;
    const tick = () => (check() ? ok() : Date.now() > end ? fail(new Error(what)) : setTimeout(tick, 20));
    tick();
  });
}

function startNode(listen) {
  return new Promise((ok, fail) => {
    const child = spawn(bin, ['--listen', listen, '--redis', `unix://${socket}`, '--msg-rate', '0'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let log = '';
    const timer = setTimeout(() => fail(new Error(`node did not start:\n${log}`)), 10000);
    child.stderr.on('data', (d) => {
      log += d;
      const m = /listening on [\d.]+:(\d+)/.exec(log);
      if (m && /redis: connected/.test(log)) { clearTimeout(timer); ok({ child, port: Number(m[1]) }); }
    });
    child.on('exit', (code) => fail(new Error(`node exited ${code}:\n${log}`)));
  });
}

before(async () => {
  redis = spawn('redis-server', ['--port', '0', '--save', '', '--unixsocket', socket, '--dir', dir, '--logfile', ''],
    { stdio: 'ignore' });
  await waitFor(() => existsSync(socket), 10000, 'redis-server did not start (is Debian\'s redis-server installed?)');
  nodes.push(await startNode('127.0.0.1:0'), await startNode('127.0.0.1:0'));
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  for (const { child } of nodes) if (child.exitCode === null) child.kill('SIGKILL');
  redis?.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

const joinAs = (name, port) => joinChat(browser, port, name);


const ids = (page) => page.$$eval('#messages li.msg', (els) => els.map((e) => Number(e.dataset.id)));
const texts = (page) => page.$$eval('#messages li.msg .text', (els) => els.map((e) => e.textContent));

test('two nodes on Redis: one chat, presence across nodes, a node restarted loses nothing', async () => {
  const alice = await joinAs('Alice', nodes[0].port);
  const bob = await joinAs('Bob', nodes[1].port);

  // Each page lists both users, though they are on different processes.
  for (const { page } of [alice, bob]) {
    await page.waitForFunction(() => document.querySelector('#online-count').textContent === '2');
  }
  await alice.page.waitForSelector('#messages li.system >> text=Bob joined');

  await say(alice.page, 'from node one');
  await say(bob.page, 'from node two');
  for (const { page } of [alice, bob]) await page.waitForSelector('#messages li.msg >> text=from node two');
  assert.deepEqual(await texts(alice.page), await texts(bob.page), 'the same messages in the same order');
  assert.deepEqual(await ids(alice.page), await ids(bob.page), 'the same ids on both nodes');

  // A room made on node one is listed on node two and joined there.
  await alice.page.fill('#room-name', 'ops');
  await alice.page.click('#room-form button[type=submit]');
  await alice.page.waitForSelector('#room-list .room-link[data-room="ops"][aria-current="true"]', { state: 'attached' });
  await say(alice.page, 'in ops');
  await bob.page.waitForFunction(async () => {
    const body = await (await fetch('/api/rooms')).json();
    return body.rooms.some((r) => r.room === 'ops' && r.online === 1);
  }, null, { timeout: 5000, polling: 200 });
  await bob.page.goto(`http://127.0.0.1:${nodes[1].port}/r/ops`);
  await bob.page.waitForSelector('#messages li.msg >> text=in ops');

  // Node one dies and comes back on its port: Alice's page reconnects by itself.
  const before = await ids(alice.page);
  nodes[0].child.kill('SIGKILL');
  await alice.page.waitForSelector('#status[data-state=offline]');
  await say(bob.page, 'while node one was down');
  nodes[0] = await startNode(`127.0.0.1:${nodes[0].port}`);
  await alice.page.waitForSelector('#status[data-state=online]', { timeout: 20000 });
  await alice.page.waitForSelector('#messages li.msg >> text=while node one was down');
  const afterIds = await ids(alice.page);
  assert.deepEqual(afterIds.slice(0, before.length), before, 'history kept');
  assert.equal(new Set(afterIds).size, afterIds.length, 'no duplicates');
  assert.deepEqual(afterIds, afterIds.map((_, i) => before[0] + i), 'no gap');
  await say(alice.page, 'back');
  await bob.page.waitForSelector('#messages li.msg >> text=back');
  for (const { errors } of [alice, bob]) assert.deepEqual(errors, [], 'no page errors');
});

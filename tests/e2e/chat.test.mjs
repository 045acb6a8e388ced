// End-to-end: the real picochat binary and Debian's Chromium driven by playwright-core.
// Two users chat, hostile markup stays text, the server restarts with --data-dir and
// the pages reconnect by themselves with no gap and no duplicate. Then rooms: two
// users in two rooms, unread counts, /r/NAME, a mention and its notification,
// remembered rooms, leaving, and the room drawer on a phone. Saves screenshots.
//
// PICOCHAT_BIN: the server binary (default: target/release/picochat).
// SCREENSHOT_OUT: extra path for the screenshot (the README's copy).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchBrowser, say } from './browser.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const bin = process.env.PICOCHAT_BIN || join(root, 'target/release/picochat');
const artifacts = join(root, 'tests/artifacts');
const dataDir = mkdtempSync(join(tmpdir(), 'picochat-e2e-'));
let server;
let port;
let browser;

function startServer(listen) {
  return new Promise((ok, fail) => {
    const child = spawn(bin, ['--listen', listen, '--data-dir', dataDir, '--max-text', '500', '--msg-rate', '0'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let log = '';
    const timer = setTimeout(() => fail(new Error(`server did not start:\n${log}`)), 10000);
    child.stderr.on('data', (d) => {
      log += d;
      const m = /listening on [\d.]+:(\d+)/.exec(log);
      if (m) { clearTimeout(timer); ok({ child, port: Number(m[1]) }); }
    });
    child.on('exit', (code) => fail(new Error(`server exited ${code}:\n${log}`)));
  });
}

function stopServer(child) {
  return new Promise((ok) => { child.once('exit', ok); child.kill('SIGTERM'); });
}

before(async () => {
  ({ child: server, port } = await startServer('127.0.0.1:0'));
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  if (server && server.exitCode === null) await stopServer(server);
  rmSync(dataDir, { recursive: true, force: true });
});

async function joinAs(name, email, contextOptions = { viewport: { width: 1000, height: 640 } }, path = '/') {
  const context = await browser.newContext(contextOptions);
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e));
  await page.goto(`http://127.0.0.1:${port}${path}`);
  await page.fill('#join-username', name);
  if (email) await page.fill('#join-email', email);
  await page.click('#join-form button[type=submit]');
  await page.waitForSelector('#status[data-state=online]');
  return { page, errors };
}


const texts = (page) => page.$$eval('#messages li.msg .text', (els) => els.map((e) => e.textContent));
const ids = (page) => page.$$eval('#messages li.msg', (els) => els.map((e) => Number(e.dataset.id)));

test('two users chat, see presence, hostile markup stays text, restart loses nothing', async () => {
  const alice = await joinAs('Alice', 'alice@example.org');
  const bob = await joinAs('Bob');

  // Chromium offered permessage-deflate and the server took it: what follows runs compressed.
  assert.match(await alice.page.evaluate(() => document.documentElement.dataset.wsExtensions), /^permessage-deflate/);

  // Presence: each sees the other.
  await alice.page.waitForFunction(() => document.querySelector('#online-count').textContent === '2');
  const people = await alice.page.$$eval('#user-list li .user-name', (els) => els.map((e) => e.textContent));
  assert.deepEqual(people, ['Alice', 'Bob']);
  await alice.page.waitForSelector('#messages li.system >> text=Bob joined');

  await say(alice.page, 'Hello Bob, see https://example.org/docs');
  await bob.page.waitForSelector('#messages li.msg >> text=Hello Bob');
  // Shift+Enter starts a new line, Enter sends.
  await bob.page.click('#text');
  await bob.page.keyboard.type('Hi Alice!');
  await bob.page.keyboard.press('Shift+Enter');
  await bob.page.keyboard.type('Second line');
  assert.equal(await bob.page.inputValue('#text'), 'Hi Alice!\nSecond line', 'Shift+Enter did not send');
  await bob.page.keyboard.press('Enter');
  await alice.page.waitForSelector('#messages li.msg >> text=Second line');
  assert.equal(await bob.page.inputValue('#text'), '', 'Enter sent and cleared the box');
  assert.ok((await texts(alice.page)).includes('Hi Alice!\nSecond line'));
  assert.equal(await alice.page.$$eval('#messages li.mine', (els) => els.length), 1, 'own message marked');
  const link = await bob.page.$eval('#messages a', (a) => [a.href, a.rel, a.target]);
  assert.deepEqual(link, ['https://example.org/docs', 'noopener noreferrer', '_blank']);

  // Hostile markup is shown literally and runs nothing.
  const img = '<img src=x onerror="window.__pwned=1">';
  const script = '<script>window.__pwned=2</script>';
  await say(bob.page, img);
  await say(bob.page, script);
  await alice.page.waitForFunction((s) => [...document.querySelectorAll('#messages .text')].some((e) => e.textContent === s), script);
  for (const { page } of [alice, bob]) {
    assert.ok((await texts(page)).includes(img));
    assert.equal(await page.evaluate(() => window.__pwned), undefined);
    assert.equal(await page.$$eval('#messages img:not(.avatar img), #messages script', (els) => els.length), 0);
  }

  // Too long for the server (--max-text 500): refused in the page, nothing sent.
  await alice.page.fill('#text', 'x'.repeat(600));
  await alice.page.press('#text', 'Enter');
  await alice.page.waitForSelector('#hint.bad >> text=Too long');
  await alice.page.fill('#text', '');

  const before = await ids(alice.page);
  assert.equal(before.length, 4);

  // Restart the server with the same data dir and port: pages reconnect on their own.
  await stopServer(server);
  await alice.page.waitForSelector('#status[data-state=offline]');
  ({ child: server } = await startServer(`127.0.0.1:${port}`));
  for (const { page } of [alice, bob]) await page.waitForSelector('#status[data-state=online]', { timeout: 20000 });
  await say(bob.page, 'After the restart');
  await alice.page.waitForSelector('#messages li.msg >> text=After the restart');
  const afterIds = await ids(alice.page);
  assert.deepEqual(afterIds.slice(0, before.length), before, 'history kept');
  assert.equal(new Set(afterIds).size, afterIds.length, 'no duplicates');
  assert.deepEqual(afterIds, afterIds.map((_, i) => before[0] + i), 'no gap');
  assert.equal(await alice.page.$$eval('#messages li.system', (els) => els.filter((e) => e.textContent === 'Bob joined').length), 1,
    'a reconnect is not announced as a new join');

  // A fresh visitor sees the history from the durable log.
  const carol = await joinAs('Carol');
  await carol.page.waitForSelector('#messages li.msg >> text=After the restart');
  assert.deepEqual(await ids(carol.page), afterIds);

  mkdirSync(artifacts, { recursive: true });
  const shot = join(artifacts, 'chat.png');
  await alice.page.screenshot({ path: shot });
  if (process.env.SCREENSHOT_OUT) copyFileSync(shot, process.env.SCREENSHOT_OUT);

  // Scrolled up: a new message does not yank the view, a hint appears instead.
  for (let i = 0; i < 12; i++) await say(bob.page, `filler ${i}`);
  await alice.page.waitForSelector('#messages li.msg >> text=filler 11');
  await alice.page.$eval('#messages', (el) => { el.scrollTop = 0; });
  await say(bob.page, 'while you were reading');
  await alice.page.waitForSelector('#new-below:not([hidden])');
  assert.equal(await alice.page.$eval('#messages', (el) => el.scrollTop), 0, 'view stayed where the reader was');
  await alice.page.click('#new-below');
  await alice.page.waitForSelector('#new-below', { state: 'hidden' });

  // A hidden tab counts unread messages in its title, and clears them when shown.
  await carol.page.evaluate(() => {
    Object.defineProperty(document, 'hidden', { configurable: true, get: () => true });
    document.dispatchEvent(new Event('visibilitychange'));
  });
  await say(bob.page, 'one');
  await say(bob.page, 'two');
  await carol.page.waitForFunction(() => document.title === '(2) #lobby · picochat');
  await carol.page.evaluate(() => {
    Object.defineProperty(document, 'hidden', { configurable: true, get: () => false });
    document.dispatchEvent(new Event('visibilitychange'));
  });
  await carol.page.waitForFunction(() => document.title === '#lobby · picochat');

  // On a phone, in dark mode: the users panel folds away behind the "online" button.
  const { page: mobile, errors: mobileErrors } =
    await joinAs('Dana', null, { viewport: { width: 390, height: 740 }, colorScheme: 'dark', isMobile: true });
  assert.equal(await mobile.isVisible('#users'), false, 'users panel folded on a phone');
  await mobile.click('#users-toggle');
  assert.equal(await mobile.isVisible('#users'), true);
  const bg = await mobile.evaluate(() => getComputedStyle(document.body).backgroundColor);
  assert.equal(bg, 'rgb(20, 22, 26)', 'dark colour scheme');
  await mobile.screenshot({ path: join(artifacts, 'phone-dark.png') });
  for (const { errors } of [alice, bob, carol, { errors: mobileErrors }]) assert.deepEqual(errors, [], 'no page errors');
});

const roomNames = (page) => page.$$eval('#room-list .room-link .room-name', (els) => els.map((e) => e.textContent));
const badge = (page, room) => page.$eval(`#room-list .room-link[data-room="${room}"]`, (b) => {
  const u = b.querySelector('.unread');
  return u ? { n: Number(u.textContent), mention: u.classList.contains('mention') } : null;
});

async function joinRoomByName(page, name) {
  await page.fill('#room-name', name);
  await page.click('#room-form button[type=submit]');
  await page.waitForSelector(`#room-list .room-link[data-room="${name}"][aria-current="true"]`, { state: 'attached' });
}

test('rooms: two users in two rooms, unread counts, /r/NAME, mentions, phone drawer', async () => {
  // Erin opens a link to a room; Frank too, with notifications granted by the browser.
  const erin = await joinAs('Erin', null, undefined, '/r/Homework');
  await erin.page.waitForSelector('#room-list .room-link[data-room="homework"][aria-current="true"]');
  assert.equal(new URL(erin.page.url()).pathname, '/r/homework', 'the address names the room');
  assert.equal(await erin.page.textContent('#room-title'), '#homework');
  const frankContext = await browser.newContext({ viewport: { width: 1000, height: 640 } });
  await frankContext.grantPermissions(['notifications']);
  await frankContext.addInitScript(() => {
    // Record notifications as the page raises them (the real constructor still runs).
    window.__notes = [];
    const Real = window.Notification;
    window.Notification = class extends Real {
      constructor(title, opts) { super(title, opts); window.__notes.push({ title, body: opts?.body }); }
    };
  });
  const frank = { page: await frankContext.newPage(), errors: [] };
  frank.page.on('pageerror', (e) => frank.errors.push(e));
  await frank.page.goto(`http://127.0.0.1:${port}/r/homework`);
  await frank.page.fill('#join-username', 'Frank');
  await frank.page.click('#join-form button[type=submit]');
  await frank.page.waitForSelector('#status[data-state=online]');
  await frank.page.waitForSelector('#room-list .room-link[data-room="homework"]');
  assert.equal(await frank.page.isVisible('#notify'), false, 'permission already granted: nothing to ask');
  assert.equal(await erin.page.isVisible('#notify'), true, 'permission is asked only when the user clicks');
  assert.equal(await erin.page.evaluate(() => Notification.permission), 'default', 'and not before');
  await erin.page.waitForSelector('#user-list li >> text=Frank');

  // Frank also joins #random and stays there.
  await joinRoomByName(frank.page, 'random');
  assert.deepEqual(await roomNames(frank.page), ['#homework', '#random']);
  assert.equal(await frank.page.$$eval('#messages li.msg', (els) => els.length), 0, 'random is empty');

  // Erin writes in #homework: Frank, in #random, sees unread counts; a mention is marked.
  await say(erin.page, 'page 42 please');
  await say(erin.page, 'thanks @frank, see https://example.org/hw');
  await frank.page.waitForFunction(() => document.querySelector('#room-list .room-link[data-room="homework"] .unread')?.textContent === '2');
  assert.deepEqual(await badge(frank.page, 'homework'), { n: 2, mention: true });
  assert.equal(await frank.page.title(), '(2) #random · picochat');
  assert.equal(await frank.page.$$eval('#messages li.msg', (els) => els.length), 0, 'not shown in #random');

  // Frank switches: the messages are there, the mention highlighted, the count gone.
  await frank.page.click('#room-list .room-link[data-room="homework"]');
  await frank.page.waitForSelector('#messages li.msg.mention >> text=thanks @frank');
  assert.deepEqual(await texts(frank.page), ['page 42 please', 'thanks @frank, see https://example.org/hw']);
  assert.equal(await badge(frank.page, 'homework'), null);
  assert.equal(new URL(frank.page.url()).pathname, '/r/homework');
  assert.equal(await frank.page.$$eval('#messages li.mention', (els) => els.length), 1, 'only the mention is marked');
  const link = await frank.page.$eval('#messages a', (a) => [a.href, a.rel, a.target]);
  assert.deepEqual(link, ['https://example.org/hw', 'noopener noreferrer', '_blank']);

  // Hidden page: a mention raises a notification; a plain message does not.
  await frank.page.evaluate(() => {
    Object.defineProperty(document, 'hidden', { configurable: true, get: () => true });
    document.dispatchEvent(new Event('visibilitychange'));
  });
  await say(erin.page, 'no mention here');
  await say(erin.page, '@Frank are you there?');
  await frank.page.waitForFunction(() => window.__notes.length === 1);
  assert.deepEqual(await frank.page.evaluate(() => window.__notes), [{ title: 'Erin in #homework', body: '@Frank are you there?' }]);
  await frank.page.waitForFunction(() => document.title === '(2) #homework · picochat');
  await frank.page.evaluate(() => {
    Object.defineProperty(document, 'hidden', { configurable: true, get: () => false });
    document.dispatchEvent(new Event('visibilitychange'));
  });
  await frank.page.waitForFunction(() => document.title === '#homework · picochat');

  // Rooms are remembered: a visit to / rejoins both, in the room last shown.
  await frank.page.goto(`http://127.0.0.1:${port}/`);
  await frank.page.waitForSelector('#room-list .room-link[data-room="random"]');
  await frank.page.waitForSelector('#room-list .room-link[data-room="homework"][aria-current="true"]');
  assert.deepEqual((await roomNames(frank.page)).sort(), ['#homework', '#random']);
  await frank.page.waitForSelector('#messages li.msg >> text=@Frank are you there?');

  // The server restarts: the pages rejoin every room with its own `since`, and
  // nothing is lost or shown twice.
  const homeBefore = await ids(frank.page);
  await stopServer(server);
  await frank.page.waitForSelector('#status[data-state=offline]');
  ({ child: server } = await startServer(`127.0.0.1:${port}`));
  for (const p of [erin.page, frank.page]) await p.waitForSelector('#status[data-state=online]', { timeout: 20000 });
  await say(erin.page, 'after the restart, in homework');
  await frank.page.waitForSelector('#messages li.msg >> text=after the restart, in homework');
  const homeAfter = await ids(frank.page);
  assert.deepEqual(homeAfter.slice(0, homeBefore.length), homeBefore, 'homework kept');
  assert.equal(homeAfter.length, homeBefore.length + 1, 'one new message, none twice');
  assert.deepEqual((await roomNames(frank.page)).sort(), ['#homework', '#random'], 'both rooms rejoined');

  // Erin joins #random; Frank leaves it: Erin sees him go.
  await joinRoomByName(erin.page, 'random');
  await erin.page.waitForSelector('#user-list li >> text=Frank');
  await frank.page.click('#room-list button[aria-label="Leave #random"]');
  await erin.page.waitForSelector('#messages li.system >> text=Frank left');
  assert.deepEqual(await roomNames(frank.page), ['#homework']);
  // A message in #random no longer reaches Frank; one in #homework does.
  await say(erin.page, 'only for random');
  await erin.page.click('#room-list .room-link[data-room="homework"]');
  await say(erin.page, 'back in homework');
  await frank.page.waitForSelector('#messages li.msg >> text=back in homework');
  assert.equal((await texts(frank.page)).includes('only for random'), false);

  // Names the server refuses are explained; the page checks the obvious ones itself.
  await erin.page.fill('#room-name', 'no spaces!');
  await erin.page.click('#room-form button[type=submit]');
  await erin.page.waitForSelector('#room-error >> text=Room names are');
  // A link to a room no server would accept: said so, and the default room instead.
  const lost = await joinAs('Hal', null, undefined, '/r/no%20spaces!');
  await lost.page.waitForSelector('#room-list .room-link[data-room="lobby"][aria-current="true"]');
  assert.match(await lost.page.textContent('#room-error'), /“no spaces!” is not a room name/);
  assert.equal(new URL(lost.page.url()).pathname, '/r/lobby');

  // The room list on a phone is a drawer.
  const phone = await joinAs('Gina', null, { viewport: { width: 390, height: 740 }, colorScheme: 'dark', isMobile: true }, '/r/homework');
  await phone.page.waitForSelector('#room-list .room-link[data-room="homework"]', { state: 'attached' });
  assert.equal(await phone.page.isVisible('#rooms'), false, 'the room list is folded away');
  await phone.page.click('#rooms-toggle');
  assert.equal(await phone.page.isVisible('#rooms'), true);
  await joinRoomByName(phone.page, 'random');
  assert.equal(await phone.page.isVisible('#rooms'), false, 'choosing a room closes the drawer');
  await phone.page.click('#rooms-toggle');
  mkdirSync(artifacts, { recursive: true });
  await phone.page.screenshot({ path: join(artifacts, 'phone-rooms.png') });
  await frank.page.screenshot({ path: join(artifacts, 'rooms.png') });
  if (process.env.SCREENSHOT_OUT) copyFileSync(join(artifacts, 'rooms.png'), process.env.SCREENSHOT_OUT.replace(/\.png$/, '-rooms.png'));
  for (const { errors } of [erin, frank, phone, lost]) assert.deepEqual(errors, [], 'no page errors');
});

test('a name is held for the browser that took it', async () => {
  const zed = await joinAs('Zed');
  // Another browser (its own storage, so its own secret) asks for the same name.
  const context = await browser.newContext();
  const other = await context.newPage();
  await other.goto(`http://127.0.0.1:${port}/`);
  await other.fill('#join-username', 'zed');
  await other.click('#join-form button[type=submit]');
  await other.waitForSelector('#join-error >> text=That name is someone else\'s here');
  assert.equal(await other.isVisible('#join-screen'), true, 'back on the join screen');
  await other.fill('#join-username', 'Zed Two');
  await other.click('#join-form button[type=submit]');
  await other.waitForSelector('#status[data-state=online]');
  // The browser that holds it keeps it across a reload.
  await zed.page.reload();
  await zed.page.waitForSelector('#status[data-state=online]');
  assert.deepEqual(zed.errors, []);
});

test('a user edits and deletes an own message; the other page follows, and a reload agrees', async () => {
  const ivy = await joinAs('Ivy');
  const jon = await joinAs('Jon');
  await say(ivy.page, 'teh plan');
  await say(ivy.page, 'oops, wrong room');
  await jon.page.waitForSelector('#messages li.msg .text >> text=oops, wrong room');
  // Only one's own messages offer the actions.
  const jonsView = jon.page.locator('#messages li.msg', { hasText: 'teh plan' });
  assert.equal(await jonsView.locator('.actions').count(), 0);

  const mine = ivy.page.locator('#messages li.msg', { hasText: 'teh plan' });
  await mine.hover();
  await mine.locator('button.edit').click();
  assert.equal(await ivy.page.inputValue('#text'), 'teh plan');
  await ivy.page.fill('#text', 'the plan');
  await ivy.page.press('#text', 'Enter');
  const edited = jon.page.locator('#messages li.msg', { hasText: 'the plan' });
  await edited.locator('.edited').waitFor();
  assert.equal(await edited.locator('.text').textContent(), 'the plan');

  ivy.page.once('dialog', (d) => d.accept());
  const wrong = ivy.page.locator('#messages li.msg', { hasText: 'oops, wrong room' });
  await wrong.hover();
  await wrong.locator('button.delete').click();
  await jon.page.locator('#messages li.msg', { hasText: 'oops, wrong room' }).waitFor({ state: 'detached' });
  await wrong.waitFor({ state: 'detached' });

  // A page loaded afterwards gets the same result from the server's history.
  await jon.page.reload();
  await jon.page.waitForSelector('#status[data-state=online]');
  await jon.page.locator('#messages li.msg', { hasText: 'the plan' }).locator('.edited').waitFor();
  assert.ok(!(await texts(jon.page)).includes('oops, wrong room'));
  assert.ok(!(await texts(jon.page)).includes('teh plan'));
  for (const { errors } of [ivy, jon]) assert.deepEqual(errors, [], 'no page errors');
});

// End-to-end: the everyday chat in Chromium. Two pages write to each other
// directly (a "Message" button in the online list, the conversation showing
// up with an unread count on the other side), react with the picker and see
// the chip, see "is typing…", and turn `:smile:` into 😄 with suggestions
// while typing `:thu`. A page opened "on another device" (a second browser
// context with the same name and page secret) shows the same unread counts
// as the first, from the read marker the server keeps.
//
// PICOCHAT_BIN: the server binary (default: target/release/picochat).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchBrowser, startPicochat, joinChat, say } from './browser.mjs';

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

const texts = (page) => page.$$eval('#messages li.msg .text', (els) => els.map((e) => e.textContent));

test('two pages write to each other, react, see typing and use shortcodes', async () => {
  const ann = await joinChat(browser, port, 'ann');
  const bob = await joinChat(browser, port, 'bob');
  // Bob writes to Ann from the online list.
  await bob.page.click('#user-list button[aria-label="Message ann"]');
  await bob.page.waitForSelector('#room-title:has-text("@ann")');
  // Suggestions while typing `:thu`, and `:smile:` turned into its emoji.
  await bob.page.focus('#text');
  await bob.page.keyboard.type('hi :thu');
  await bob.page.waitForSelector('#emoji-suggest li[aria-selected="true"]:has-text("👍")');
  // Arrows move the choice; a click (or Tab, or Enter) takes it.
  await bob.page.keyboard.press('ArrowDown');
  await bob.page.waitForSelector('#emoji-suggest li[aria-selected="true"]:has-text("👎")');
  await bob.page.keyboard.press('ArrowUp');
  await bob.page.click('#emoji-suggest li[aria-selected="true"]');
  assert.equal(await bob.page.inputValue('#text'), 'hi 👍');
  await say(bob.page, 'hello ann :smile:');
  await bob.page.waitForFunction(() => [...document.querySelectorAll('#messages .text')].some((e) => e.textContent === 'hello ann 😄'));
  // Ann was not in the conversation: it shows up under Direct messages, unread.
  const dm = '#dm-list .room-link[data-room="@bob"]';
  await ann.page.waitForSelector(`${dm} .unread.mention:has-text("1")`);
  assert.equal(await ann.page.textContent('#room-title'), '#lobby', 'her view stays where it was');
  await ann.page.click(dm);
  await ann.page.waitForSelector('#room-title:has-text("@bob")');
  assert.deepEqual(await texts(ann.page), ['hello ann 😄']);
  assert.equal(await ann.page.$(`${dm} .unread`), null, 'read now');
  // Typing shows on the other side, then goes when the message comes.
  await ann.page.fill('#text', 'typing a reply');
  await ann.page.dispatchEvent('#text', 'input');
  await bob.page.waitForSelector('#typing:has-text("ann is typing…")');
  // A reaction from the picker, seen on both sides; a click on the chip takes it back.
  await ann.page.hover('#messages li.msg');
  await ann.page.click('#messages li.msg .add-reaction');
  await ann.page.click('.emoji-picker .emoji-choice:has-text("👍")');
  for (const p of [ann.page, bob.page]) {
    await p.waitForSelector('#messages li.msg .chip:has-text("👍 1")');
  }
  assert.match(await ann.page.getAttribute('#messages li.msg .chip:has-text("👍 1")', 'class'), /mine/);
  await say(ann.page, 'typing a reply');
  await bob.page.waitForFunction(() => document.querySelector('#typing').textContent === '');
  // Search by shortcode in the picker.
  await bob.page.hover('#messages li.msg');
  await bob.page.click('#messages li.msg >> nth=0 >> .add-reaction');
  await bob.page.fill('.emoji-picker input', 'tada');
  await bob.page.click('.emoji-picker .emoji-choice:has-text("🎉")');
  await ann.page.waitForSelector('#messages li.msg .chip:has-text("🎉 1")');
  await ann.page.click('#messages li.msg .chip:has-text("👍 1")');
  await bob.page.waitForFunction(() => ![...document.querySelectorAll('#messages li.msg .chip')].some((c) => c.textContent.startsWith('👍')));
  for (const who of [ann, bob]) assert.deepEqual(who.errors, []);
});

test('a page opened on another device shows the same unread counts', async () => {
  const me = await joinChat(browser, port, 'cleo');
  const other = await joinChat(browser, port, 'dan');
  for (const p of [me.page, other.page]) {
    await p.fill('#room-name', 'random');
    await p.click('#room-form button[type=submit]');
    await p.waitForSelector('#room-title:has-text("#random")');
  }
  // Cleo reads #random up to its third message, then looks at #lobby.
  for (const t of ['one', 'two', 'three']) await say(other.page, t);
  await me.page.waitForFunction(() => document.querySelectorAll('#messages li.msg').length === 3);
  // Past the page's second between read markers: the last one has gone, so
  // the other device learns it from its welcome, not from a late live notice.
  await me.page.waitForTimeout(1500);
  await me.page.click('#room-list .room-link[data-room="lobby"]');
  for (const t of ['four', 'five']) await say(other.page, t);
  const badge = '#room-list .room-link[data-room="random"] .unread';
  await me.page.waitForSelector(`${badge}:has-text("2")`);
  // The same person on another device: the same name and page secret.
  const stored = await me.page.evaluate(() => ({ ...localStorage }));
  const context = await browser.newContext({ viewport: { width: 1000, height: 640 } });
  await context.addInitScript((s) => {
    if (!localStorage.getItem('picochat.secret')) {
      for (const [k, v] of Object.entries(s)) localStorage.setItem(k, v);
    }
  }, stored);
  const device = await context.newPage();
  const errors = [];
  device.on('pageerror', (e) => errors.push(e));
  await device.goto(`http://127.0.0.1:${port}/r/lobby`);
  await device.waitForSelector('#status[data-state=online]');
  await device.waitForSelector(`${badge}:has-text("2")`);
  // Reading #random there clears it here too.
  await device.click('#room-list .room-link[data-room="random"]');
  await me.page.waitForFunction((sel) => !document.querySelector(sel), badge);
  assert.deepEqual(errors, []);
  assert.deepEqual(me.errors, []);
});

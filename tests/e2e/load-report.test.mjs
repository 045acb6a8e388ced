// End-to-end: a report written by `picochat-load --report` read in Debian's
// Chromium with JavaScript off. A short run against a real server and a step
// run whose last step cannot connect every client; each page shows its
// charts, the numbers of the run's own JSON, and makes no request beyond the
// file itself. Saves screenshots (desktop, and a phone in dark mode).
//
// PICOCHAT_BIN: the server binary (default: target/release/picochat);
// picochat-load is taken from beside it.
// SCREENSHOT_OUT: with it, the desktop screenshot is also copied beside it as -load-report.png.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, copyFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { launchBrowser, startPicochat } from './browser.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const bin = process.env.PICOCHAT_BIN || join(root, 'target/release/picochat');
const loadBin = join(dirname(bin), 'picochat-load');
const artifacts = join(root, 'tests/artifacts');
const dir = mkdtempSync(join(tmpdir(), 'picochat-e2e-report-'));
let server;
let port;
let browser;

before(async () => {
  // 45 connections at most: a step test of 20 more clients each time fails at 60.
  ({ child: server, port } = await startPicochat(bin, ['--msg-rate', '0', '--max-connections', '45']));
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  server?.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
});

function load(args, report) {
  const out = execFileSync(loadBin, ['--url', `ws://127.0.0.1:${port}/ws`, '--server-pid', String(server.pid),
    ...args, '--report', report, '--json', '--quiet'], { encoding: 'utf8' });
  return JSON.parse(out);
}

// Opens a report with JavaScript off, recording every request the page makes.
async function open(file, contextOptions = { viewport: { width: 1200, height: 900 } }) {
  const context = await browser.newContext({ ...contextOptions, javaScriptEnabled: false });
  const page = await context.newPage();
  const requests = [];
  const problems = [];
  page.on('request', (r) => requests.push(r.url()));
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') problems.push(m.text()); });
  const url = pathToFileURL(file).href;
  await page.goto(url);
  return { page, requests, problems, url };
}

const number = (n) => Math.round(n).toLocaleString('en-US');

test('a run report shows its charts and numbers and loads nothing but itself', async () => {
  const file = join(dir, 'run.html');
  const r = load(['--clients', '40', '--senders', '4', '--rate', '100', '--duration', '3s'], file);
  assert.equal(r.lost, 0);
  const { page, requests, problems, url } = await open(file);
  assert.deepEqual(requests, [url], 'no request leaves the file');
  assert.deepEqual(problems, [], 'no CSP or other console complaint');
  assert.match(await page.title(), /open loop, 40 clients/);
  for (const id of ['chart-deliveries', 'chart-latency', 'chart-open', 'chart-cpu', 'chart-rss']) {
    const chart = page.locator(`#${id}`);
    assert.ok(await chart.locator('svg polyline').count() >= 1, `${id} has a line`);
    const box = await chart.locator('svg').boundingBox();
    assert.ok(box.width > 300 && box.height > 100, `${id} is drawn: ${JSON.stringify(box)}`);
  }
  assert.equal(await page.locator('#chart-latency .series').count(), 3, 'p50, p95, p99');
  assert.equal(await page.locator('#summary td[data-key=received]').textContent(), number(r.received));
  assert.equal(await page.locator('#summary td[data-key="latency_ms.p99"]').textContent(), `${r.latency_ms.p99.toFixed(2)} ms`);
  assert.equal(JSON.parse(await page.locator('#report-json').textContent()).received, r.received);
  mkdirSync(artifacts, { recursive: true });
  await page.screenshot({ path: join(artifacts, 'load-report.png'), fullPage: true });
  if (process.env.SCREENSHOT_OUT) copyFileSync(join(artifacts, 'load-report.png'), process.env.SCREENSHOT_OUT.replace(/\.png$/, '-load-report.png'));

  // A phone in dark mode: dark background, nothing wider than the screen.
  const phone = await open(file, { viewport: { width: 390, height: 844 }, colorScheme: 'dark', isMobile: true });
  const bg = await phone.page.locator('body').evaluate((b) => getComputedStyle(b).backgroundColor);
  assert.equal(bg, 'rgb(16, 19, 26)');
  for (const id of ['chart-deliveries', 'chart-latency']) {
    const box = await phone.page.locator(`#${id}`).boundingBox();
    assert.ok(box.x >= 0 && box.x + box.width <= 390, `${id} fits the phone: ${JSON.stringify(box)}`);
  }
  await phone.page.screenshot({ path: join(artifacts, 'load-report-phone.png'), fullPage: false });
});

test('a step report marks passing and failing steps against the threshold', async () => {
  const file = join(dir, 'step.html');
  const r = load(['--step', '20', '--clients', '80', '--rate', '20', '--step-duration', '1s', '--threshold', '2s'], file);
  assert.deepEqual(r.steps.map((s) => s.pass), [true, true, false]);
  const { page, requests, url } = await open(file);
  assert.deepEqual(requests, [url]);
  const chart = page.locator('#chart-steps');
  assert.equal(await chart.locator('.mark.pass').count(), 2);
  assert.equal(await chart.locator('.mark.fail').count(), 1);
  assert.equal(await chart.locator('line.threshold').count(), 1);
  assert.match(await chart.locator('.mark.fail title').textContent(), /failed$/);
  assert.equal(await page.locator('.verdict li').first().locator('b').textContent(), '40');
  await page.screenshot({ path: join(artifacts, 'load-report-step.png'), fullPage: true });
  assert.ok(readFileSync(file, 'utf8').length < 200_000, 'a small file');
});

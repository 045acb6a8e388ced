// What the end-to-end tests share: Debian's Chromium launched through
// playwright-core (never a downloaded browser), and typing a message.
import { chromium } from 'playwright-core';

export function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
}

export async function say(page, text) {
  await page.fill('#text', text);
  await page.press('#text', 'Enter');
}

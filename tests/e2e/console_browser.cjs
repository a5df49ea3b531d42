// Drives Debian's Chromium through the web console with Playwright (playwright-core): signs in,
// visits every page, holds and releases one message, deletes another, follows the live feed, and
// takes a screenshot of each page. Prints one JSON object of what it saw; test_console_browser.py
// checks it and the queue. Environment: CONSOLE_URL, ADMIN_TOKEN, SCREENSHOT_DIR, HOSTILE_ID,
// HOLD_ID, DELETE_ID, BOUNCED_ID, SMTP_PORT.
'use strict';
const { chromium } = require('playwright-core');
const { execFileSync } = require('child_process');
const path = require('path');

const env = process.env;
const base = env.CONSOLE_URL;
const shot = (page, name) => page.screenshot({ path: path.join(env.SCREENSHOT_DIR, `console-${name}.png`), fullPage: true });

(async () => {
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    chromiumSandbox: false,
    args: ['--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
           '--disable-component-update', '--disable-sync'],
  });
  const seen = { dialogs: [], cspViolations: [], pageErrors: [] };
  try {
    const context = await browser.newContext({ viewport: { width: 1200, height: 800 } });
    const page = await context.newPage();
    page.setDefaultTimeout(20000);
    page.on('dialog', (dialog) => { seen.dialogs.push(dialog.message()); dialog.dismiss(); });
    page.on('pageerror', (error) => seen.pageErrors.push(String(error)));
    page.on('console', (message) => {
      if (/Content Security Policy/i.test(message.text())) seen.cspViolations.push(message.text());
    });

    await page.goto(base + '/');
    seen.loginUrl = page.url();
    await shot(page, 'login');
    await page.fill('input[name=operator]', 'alice');
    await page.fill('input[name=token]', env.ADMIN_TOKEN);
    await Promise.all([page.waitForURL(base + '/'), page.click('button[type=submit]')]);
    seen.cookies = (await context.cookies()).map((c) => ({ name: c.name, httpOnly: c.httpOnly, sameSite: c.sameSite, secure: c.secure }));
    seen.overviewDeferred = await page.textContent('[data-state=deferred]');
    seen.overviewHold = await page.textContent('[data-state=hold]');
    seen.overviewSparklines = await page.locator('svg.spark').count();
    await shot(page, 'overview');

    await page.goto(base + '/messages?state=deferred');
    seen.listIds = await page.locator('tr[data-queue-id]').evaluateAll((rows) => rows.map((r) => r.dataset.queueId));
    await shot(page, 'list');
    const ids = () => page.locator('tr[data-queue-id]').evaluateAll((rows) => rows.map((r) => r.dataset.queueId));
    await page.goto(base + '/messages?state=hold');
    seen.heldIds = await ids();
    await page.goto(base + '/messages?state=done&order=newest');
    seen.doneIds = await ids();
    await page.goto(base + '/message/' + env.BOUNCED_ID);
    seen.bouncedStates = await page.locator('table.recipients td.state').allTextContents();

    await page.goto(base + '/message/' + env.HOSTILE_ID);
    seen.hostileHeaders = await page.textContent('pre.headers');
    seen.hostileBody = await page.textContent('pre.body');
    seen.pwned = await page.evaluate(() => typeof window.__pwned !== 'undefined');
    seen.injectedElements = await page.locator('main img, main b, main iframe, body script:not([src])').count();
    await shot(page, 'message');

    // Hold, then release, through the buttons and their confirmation pages.
    await page.goto(base + '/message/' + env.HOLD_ID);
    await page.click('a.button:text("Hold…")');
    seen.confirmTitle = await page.textContent('h1');
    await shot(page, 'confirm');
    await Promise.all([page.waitForURL(/done=hold/), page.click('button:text("Hold")')]);
    seen.afterHold = await page.textContent('h1 .state');
    seen.holdNotice = await page.textContent('.notice');
    await page.click('a.button:text("Release…")');
    await Promise.all([page.waitForURL(/done=release/), page.click('button:text("Release")')]);
    seen.afterRelease = await page.textContent('h1 .state');

    await page.goto(base + '/message/' + env.DELETE_ID);
    await page.click('a.button:text("Delete…")');
    await Promise.all([page.waitForURL(base + '/?deleted=1'), page.click('button:text("Delete")')]);
    seen.deleteNotice = await page.textContent('.notice');

    // The live feed: wait until every replica's watch is in place, then send a message to the domain.
    await page.goto(base + '/events?domain=feed.example');
    await page.waitForFunction(() => document.getElementById('feed-status').textContent.startsWith('Connected'));
    execFileSync('swaks', ['--server', `127.0.0.1:${env.SMTP_PORT}`, '--from', 'foo@mail169.com', '--to', 'watch@feed.example',
                           '--header', 'Subject: <script>window.__pwned=2</script>', '--silent', '2']);
    await page.waitForFunction(() => document.querySelectorAll('#events tbody tr').length >= 2);
    seen.eventRows = await page.locator('#events tbody tr').evaluateAll((rows) => rows.map((r) => [...r.cells].map((c) => c.textContent)));
    seen.pwnedAfterFeed = await page.evaluate(() => typeof window.__pwned !== 'undefined');
    await shot(page, 'events');
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(seen) + '\n');
})().catch((error) => {
  process.stderr.write(String(error && error.stack || error) + '\n');
  process.exit(1);
});

// A React page using useRealtimeEvents, in headless Chromium against the real server (SQLite;
// the event path is the same on PostgreSQL, which console.test.ts covers): it renders events
// posted through the webhook, drops the events a reorg rolls back, and across a server
// killed mid-stream and restarted on the same database it loses and repeats nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import type { Page } from 'playwright-core';
import type { Server } from './harness.js';
import { DEADLINE_MS, fixture, kill, launch, loggedEvents, post, rollbackOf, skipReason, sqliteDatabase, startServer } from './harness.js';

/** The page's script: react-page.js bundled with React (development build: StrictMode's double mount runs). */
async function bundle(): Promise<string> {
  const result = await build({
    entryPoints: [fileURLToPath(new URL('./react-page.js', import.meta.url))],
    bundle: true,
    write: false,
    format: 'iife',
    define: { 'process.env.NODE_ENV': '"development"' },
    logLevel: 'warning',
  });
  const file = result.outputFiles[0];
  assert.ok(file !== undefined);
  return file.text;
}

/**
 * Serves the dApp page from its own origin on loopback, as a dApp's development server
 * would (Chromium lets only a local page open a connection to 127.0.0.1).
 */
async function servePage(script: string): Promise<{ origin: string; close(): void }> {
  const server = createServer((req, res) => {
    if (req.url === '/app.js') {
      res.writeHead(200, { 'Content-Type': 'text/javascript' }).end(script);
    } else if (req.url?.startsWith('/?') === true || req.url === '/') {
      res.writeHead(200, { 'Content-Type': 'text/html' }).end('<!doctype html><link rel="icon" href="data:,"><div id="root"></div><script src="/app.js"></script>');
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const address = server.address() as AddressInfo;
  return { origin: `http://127.0.0.1:${address.port}`, close: () => server.close() };
}

/** Opens the dApp page against `server`, subscribed and caught up. */
async function openPage(page: Page, origin: string, server: Server): Promise<void> {
  page.setDefaultTimeout(DEADLINE_MS);
  page.on('pageerror', (e) => console.error('page error:', e.message));
  await page.goto(`${origin}/?ws=${encodeURIComponent(`ws://127.0.0.1:${server.port}/ws`)}`);
  await page.locator('#status[data-connected="true"]').waitFor();
  // Live-only subscriptions: post only once the server has taken the subscription.
  await page.waitForFunction(() => {
    const subs = window.realtimeClient.activeSubscriptions;
    return subs.length === 1 && subs.every((s) => s.caughtUp);
  });
}

/** Waits until the page shows exactly the log's canonical events, in `seq` order. */
async function showsCanonicalLog(page: Page, server: Server): Promise<number[]> {
  const canonical = (await loggedEvents(server.base)).filter((e) => e.rolledBack !== true).map((e) => e.seq);
  await page.waitForFunction(
    (want) => JSON.stringify([...document.querySelectorAll('#events li')].map((li) => Number((li as HTMLElement).dataset['seq']))) === JSON.stringify(want),
    canonical,
  );
  return canonical;
}

const skip = skipReason();

test('a React page renders posted events and drops the ones a reorg rolls back', { skip }, async () => {
  const db = sqliteDatabase();
  const server = await startServer(db.url);
  const browser = await launch();
  const dapp = await servePage(await bundle());
  try {
    const page = await browser.newPage();
    await openPage(page, dapp.origin, server);

    const kept = '04_devnet_print_event_decoded_value.json';
    const reorged = '05_devnet_stx_transfer_with_operations.json';
    await post(server.base, fixture(kept));
    await post(server.base, fixture(reorged));
    const before = await showsCanonicalLog(page, server);

    const answer = await post(server.base, rollbackOf(reorged));
    assert.equal(answer['rolledBackBlocks'], 1);
    const after = await showsCanonicalLog(page, server);
    const removed = before.filter((s) => !after.includes(s));
    assert.ok(removed.length > 0, 'the reorg removed events from the page');
    assert.ok(after.length > 0, 'the events of the other block stay');
    assert.equal(await page.locator('#events li', { hasText: '13 stx_transfer_event' }).count(), 0);
  } finally {
    dapp.close();
    await browser.close();
    await kill(server);
    db.drop();
  }
});

test('a React page loses and repeats nothing across a server restart mid-stream', { skip }, async () => {
  const db = sqliteDatabase();
  let server = await startServer(db.url);
  const browser = await launch();
  const dapp = await servePage(await bundle());
  try {
    const page = await browser.newPage();
    await openPage(page, dapp.origin, server);

    // Two blocks, and the server dies as soon as the second is committed, while the page may
    // still be receiving it.
    await post(server.base, fixture('02_testnet_bns_name_revoke_print_events_and_failed_tx.json'));
    await page.locator('#events li').first().waitFor();
    await post(server.base, fixture('04_devnet_print_event_decoded_value.json'));
    await kill(server);

    // A new server starts on the same database and port, and a block arrives before the page
    // is back (it reconnects with backoff), then another one live.
    await page.locator('#status[data-connected="false"]').waitFor();
    server = await startServer(db.url, server.port);
    await post(server.base, fixture('03_mainnet_arkadiko_print_ftmint_stxtransfer_operations.json'));
    await page.locator('#status[data-connected="true"]').waitFor();
    await post(server.base, fixture('06_devnet_block_height_coinbase_stxmint_and_deploys.json'));

    const shown = await showsCanonicalLog(page, server);
    const added = await page.evaluate(() => window.addedSeqs);
    assert.deepEqual(added, shown, 'each event was added to the page once, in seq order');
  } finally {
    dapp.close();
    await browser.close();
    await kill(server);
    db.drop();
  }
});

// The offline queue and the optimistic manager in headless Chromium against the real server
// (SQLite; the ops path is the same on PostgreSQL, which the server's own tests cover). Ops
// made while the page's WebSocket cannot connect survive a reload in IndexedDB and reach the
// log exactly once when it can again; executeWithOptimistic shows its value at once and calls
// onConfirm / onRevert as the blocks posted through the webhook decide.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import type { BrowserContext, Page } from 'playwright-core';
import { WebSocket as WsSocket } from 'ws';
import { RealtimeClient } from '../../src/client.js';
import { OpsChannel } from '../../src/ops/channel.js';
import type { Server } from './harness.js';
import { DEADLINE_MS, clientToken, kill, launch, post, repoRoot, skipReason, sqliteDatabase, startServer } from './harness.js';

/** The sender of the transactions of docs/examples/blocks.json's block 101. */
const BOB = 'ST1SJ3DTE5DN7X54YDH5D64R3BCB6A2AG2ZQ8YPD5';

type Block = {
  block_identifier: { index: number; hash: string };
  parent_block_identifier: { index: number; hash: string };
  transactions: Array<{ transaction_identifier: { hash: string }; metadata: { sender: string; success: boolean } }>;
};
const blocks = (): Block[] => (JSON.parse(readFileSync(join(repoRoot, 'docs/examples/blocks.json'), 'utf8')) as { apply: Block[] }).apply;
const apply = (block: Block): string => JSON.stringify({ apply: [block], rollback: [] });

async function bundle(): Promise<string> {
  const result = await build({
    entryPoints: [fileURLToPath(new URL('./offline-page.js', import.meta.url))],
    bundle: true,
    write: false,
    format: 'iife',
    logLevel: 'warning',
  });
  const file = result.outputFiles[0];
  assert.ok(file !== undefined);
  return file.text;
}

/** Serves the page from its own loopback origin (see react.test.ts). */
async function servePage(script: string): Promise<{ origin: string; close(): void }> {
  const server = createServer((req, res) => {
    if (req.url === '/app.js') res.writeHead(200, { 'Content-Type': 'text/javascript' }).end(script);
    else if (req.url?.startsWith('/?') === true) res.writeHead(200, { 'Content-Type': 'text/html' }).end('<!doctype html><link rel="icon" href="data:,"><body><script src="/app.js"></script></body>');
    else res.writeHead(404).end();
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return { origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => server.close() };
}

async function openPage(context: BrowserContext, origin: string, server: Server): Promise<Page> {
  const page = await context.newPage();
  page.setDefaultTimeout(DEADLINE_MS);
  page.on('pageerror', (e) => console.error('page error:', e.message));
  await page.goto(`${origin}/?ws=${encodeURIComponent(`ws://127.0.0.1:${server.port}/ws`)}&token=${clientToken(BOB)}`);
  return page;
}

async function until(cond: () => boolean, what: string): Promise<void> {
  const end = Date.now() + DEADLINE_MS;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Every op status the server's log holds for BOB, in `seq` order, read by a new `ops` subscription from seq 0. */
async function loggedStatuses(server: Server): Promise<Array<{ opId: string; status: string }>> {
  const client = new RealtimeClient({ url: `ws://127.0.0.1:${server.port}/ws`, WebSocket: WsSocket, token: clientToken(BOB) });
  const channel = new OpsChannel(client, { since: { seq: 0 } });
  const seen: Array<{ opId: string; status: string }> = [];
  channel.onStatus((s) => seen.push({ opId: s.opId, status: s.status }));
  try {
    await until(() => channel.subscription.caughtUp, 'the ops subscription from seq 0');
  } finally {
    channel.close();
    client.disconnect();
  }
  return seen;
}

const skip = skipReason();

test('ops queued while the socket is cut survive a reload and reach the server exactly once', { skip }, async () => {
  const db = sqliteDatabase();
  const server = await startServer(db.url);
  const browser = await launch();
  const dapp = await servePage(await bundle());
  try {
    const context = await browser.newContext();
    // The page's WebSocket is refused while `cut`; otherwise it goes to the server untouched.
    let cut = true;
    await context.routeWebSocket((url) => url.pathname === '/ws', (ws) => {
      if (cut) void ws.close();
      else ws.connectToServer();
    });
    const page = await openPage(context, dapp.origin, server);
    const opIds: string[] = [];
    for (const n of [1, 2, 3]) opIds.push(await page.evaluate((n) => window.app.enqueue(`exchange:${n}`, n), n));
    assert.equal(await page.locator('#status').getAttribute('data-connected'), 'false');
    assert.equal(await page.locator('#queued li').count(), 3);

    // A reload, still offline: the queue is read back from IndexedDB.
    await page.reload();
    await page.waitForFunction((want) => JSON.stringify([...document.querySelectorAll<HTMLElement>('#queued li')].map((li) => li.dataset['key'])) === JSON.stringify(want), opIds);
    assert.deepEqual(await loggedStatuses(server), [], 'nothing reached the server yet');

    cut = false;
    // The page drains its queue and ends showing the server's status of each op.
    await page.locator('#queued li').first().waitFor({ state: 'detached' });
    await page.waitForFunction((n) => document.querySelectorAll('#statuses li').length === n, opIds.length);
    const logged = await loggedStatuses(server);
    assert.deepEqual(logged.map((s) => s.opId), opIds, 'one op entry per op, in queue order');
    const shown = await page.locator('#statuses li').evaluateAll((lis) => lis.map((li) => [(li as HTMLElement).dataset['key'], li.textContent]));
    assert.deepEqual(shown, logged.map((s) => [s.opId, s.status]));
    await context.close();
  } finally {
    dapp.close();
    await browser.close();
    await kill(server);
    db.drop();
  }
});

test('executeWithOptimistic shows its value at once, then onConfirm on the confirming block and onRevert on a failed transaction', { skip }, async () => {
  const db = sqliteDatabase();
  const server = await startServer(db.url);
  const browser = await launch();
  const dapp = await servePage(await bundle());
  try {
    const [b100, b101] = blocks();
    assert.ok(b100 !== undefined && b101 !== undefined);
    await post(server.base, apply(b100));
    const context = await browser.newContext();
    const page = await openPage(context, dapp.origin, server);
    await page.waitForFunction(() => window.app.ready());
    assert.equal(await page.locator('#view-exchange\\:1').textContent(), 'open');

    // Confirmed: Bob's transaction in block 101.
    const confirmTx = b101.transactions[0]!.transaction_identifier.hash;
    const first = await page.evaluate((tx) => window.app.execute('exchange:1', tx), confirmTx);
    assert.equal(first.shown, 'accepted', 'the optimistic value is on the page right after the call');
    await page.waitForFunction((id) => window.app.opStatus(id) === 'pending', first.opId);

    // Reverted: a transaction of Bob's that fails, in block 102.
    const failTx = `0x${'fa11'.repeat(16)}`;
    const second = await page.evaluate((tx) => window.app.execute('exchange:2', tx), failTx);
    assert.equal(second.shown, 'accepted');
    await page.waitForFunction((id) => window.app.opStatus(id) === 'pending', second.opId);

    await post(server.base, apply(b101));
    await page.locator('#calls li', { hasText: 'confirm confirmed 101' }).waitFor();
    assert.equal(await page.locator('#view-exchange\\:1').textContent(), 'accepted');

    const b102: Block = structuredClone(b101);
    b102.block_identifier = { index: 102, hash: `0x${'102'.padStart(64, '0')}` };
    b102.parent_block_identifier = { ...b101.block_identifier };
    b102.transactions = [{ ...b102.transactions[0]!, transaction_identifier: { hash: failTx }, metadata: { ...b102.transactions[0]!.metadata, sender: BOB, success: false } }];
    await post(server.base, apply(b102));
    await page.locator('#calls li', { hasText: 'revert reverted tx_failed 102' }).waitFor();
    await page.waitForFunction(() => document.getElementById('view-exchange:2')?.textContent === 'open');
    assert.deepEqual(await page.locator('#calls li').allTextContents(), ['confirm confirmed 101', 'revert reverted tx_failed 102'], 'each callback once');
    await context.close();
  } finally {
    dapp.close();
    await browser.close();
    await kill(server);
    db.drop();
  }
});

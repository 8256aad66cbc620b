// The console the server serves at /console, in headless Chromium, on both backends: events
// posted through the webhook appear live, a reorg shows as rollback rows with the undone
// events struck out, the head is the log's, and a signed-in user is told who they are and
// sees their ops (on a server that takes ops) and nobody else's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { WebSocket } from 'ws';
import type { Database } from './harness.js';
import {
  DEADLINE_MS, clientToken, fixture, head, kill, launch, loggedEvents, post, postgresDatabase, rollbackOf, skipReason,
  sqliteDatabase, startServer,
} from './harness.js';

const ALICE = 'ST1PQHQKV0RJXZFY1DGX8MNSNYVE3VGZJSRTPGZGM';
const BOB = 'ST1SJ3DTE5DN7X54YDH5D64R3BCB6A2AG2ZQ8YPD5';

async function consoleShowsTheLiveLog(db: Database): Promise<void> {
  const server = await startServer(db.url);
  const browser = await launch();
  try {
    const page = await browser.newPage();
    page.setDefaultTimeout(DEADLINE_MS);
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });

    // Given the console open on an empty log, subscribed to everything from seq 0.
    await page.goto(`${server.base}/console?since=0`);
    await page.locator('#state[data-state="connected"]').waitFor();
    await page.locator('#filter-note', { hasText: 'since seq 0' }).waitFor();

    // When a testnet block arrives through the webhook, its events show, newest first.
    const applied = await post(server.base, fixture('02_testnet_bns_name_revoke_print_events_and_failed_tx.json'));
    assert.ok((applied['events'] ?? 0) > 0);
    const logged = await loggedEvents(server.base);
    const rows = page.locator('#stream tbody tr.event');
    await assert.doesNotReject(page.waitForFunction((n) => document.querySelectorAll('#stream tbody tr.event').length === n, logged.length));
    const shownSeqs = (await rows.evaluateAll((trs) => trs.map((tr) => Number((tr as HTMLElement).dataset['seq'])))).reverse();
    assert.deepEqual(shownSeqs, logged.map((e) => e.seq));
    await page.locator('#head-block', { hasText: '100458' }).waitFor();

    // When a second block is applied and then rolled back, each undone event is struck out
    // and a rollback row names it.
    const second = '03_mainnet_arkadiko_print_ftmint_stxtransfer_operations.json';
    await post(server.base, fixture(second));
    const reorg = await post(server.base, rollbackOf(second));
    assert.equal(reorg['rolledBackBlocks'], 1);
    const after = await loggedEvents(server.base);
    const undone = after.filter((e) => e.rolledBack === true).map((e) => e.seq);
    assert.ok(undone.length > 0);
    await page.locator('#head-seq', { hasText: String(reorg['headSeq']) }).waitFor();
    await page.waitForFunction((n) => document.querySelectorAll('#stream tbody tr.rollback').length === n, undone.length);
    const struck = await page.locator('#stream tbody tr.event.rolled-back').evaluateAll((trs) => trs.map((tr) => Number((tr as HTMLElement).dataset['seq'])));
    assert.deepEqual(struck.sort((a, b) => a - b), undone);
    const rollbackOfs = await page.locator('#stream tbody tr.rollback').evaluateAll((trs) => trs.map((tr) => Number((tr as HTMLElement).dataset['rollbackOf'])));
    assert.deepEqual(rollbackOfs.sort((a, b) => a - b), undone);
    const h = await head(server.base);
    assert.equal(await page.locator('#head-seq').textContent(), String(h.headSeq));
    assert.equal(await page.locator('#head-block').textContent(), String(h.headBlockHeight));

    // A filter narrows the stream to one event type, resubscribing from seq 0.
    await page.locator('select[name="eventType"]').selectOption('stx_transfer_event');
    await page.locator('#filter button').click();
    const transfers = after.filter((e) => (e as { eventType?: string }).eventType === 'stx_transfer_event');
    await page.waitForFunction((n) => document.querySelectorAll('#stream tbody tr.event').length === n, transfers.length);
    assert.match(page.url(), /eventType=stx_transfer_event/);

    // A signed-in user is named; a bad token is refused plainly.
    await page.locator('#signin input[name="token"]').fill(clientToken(ALICE));
    await page.locator('#signin button').click();
    await page.locator(`#ops-state[data-address="${ALICE}"]`).waitFor();
    await page.locator('#signin input[name="token"]').fill('not-a-token');
    await page.locator('#signin button').click();
    await page.locator('#ops-state.error', { hasText: 'unauthorized' }).waitFor();
    assert.equal(await page.locator('#ops-state').getAttribute('data-address'), null);

    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
    await kill(server);
    db.drop();
  }
}

const skip = skipReason();

test('console shows the live log (SQLite)', { skip }, async () => {
  await consoleShowsTheLiveLog(sqliteDatabase());
});

test('console shows the live log (PostgreSQL)', { skip: skip || (process.env['TEST_DATABASE_URL'] ? false : 'TEST_DATABASE_URL not set') }, async () => {
  const db = postgresDatabase();
  assert.ok(db !== null);
  await consoleShowsTheLiveLog(db);
});

/** Sends ops as `address` over its own connection (the console only reads them). */
async function opsConnection(base: string, address: string): Promise<{ send(msg: object): Promise<Record<string, unknown>>; close(): void }> {
  const socket = new WebSocket(`${base.replace(/^http/, 'ws')}/ws?token=${clientToken(address)}`);
  await new Promise<void>((done, fail) => {
    socket.once('open', () => done());
    socket.once('error', fail);
  });
  return {
    send: (msg) => new Promise((done) => {
      const onMessage = (data: Buffer): void => {
        const frame = JSON.parse(data.toString()) as Record<string, unknown>;
        if (frame['type'] === 'op-ack' || frame['type'] === 'error') {
          socket.off('message', onMessage);
          done(frame);
        }
      };
      socket.on('message', onMessage);
      socket.send(JSON.stringify(msg));
    }),
    close: () => socket.close(),
  };
}

test("console shows a signed-in user's ops and their statuses, and no one else's", { skip }, async (t) => {
  const db = sqliteDatabase();
  const server = await startServer(db.url);
  const browser = await launch();
  const alice = await opsConnection(server.base, ALICE);
  const bob = await opsConnection(server.base, BOB);
  try {
    const page = await browser.newPage();
    page.setDefaultTimeout(DEADLINE_MS);
    await page.goto(`${server.base}/console`);
    await page.locator('#signin input[name="token"]').fill(clientToken(ALICE));
    await page.locator('#signin button').click();
    await page.locator(`#ops-state[data-address="${ALICE}"]`).waitFor();
    const first = await alice.send({ type: 'op', opId: randomUUID(), kind: 'create-exchange', entity: 'exchange:1', data: { status: 'open' } });
    if (first['type'] === 'error') {
      t.skip(`this server does not take ops yet: ${String(first['message'])}`);
      return;
    }

    // An op made before and one after the console subscribed both show, with their status;
    // a cancel moves one to reverted. Another address's op never reaches the page.
    const opId = randomUUID();
    await bob.send({ type: 'op', opId: randomUUID(), kind: 'create-exchange', entity: 'exchange:2', data: { status: 'open' } });
    await alice.send({ type: 'op', opId, kind: 'create-exchange', entity: 'exchange:3', data: { hours: 2 } });
    await page.locator(`#ops tr[data-op-id="${first['opId']}"][data-status="${first['status']}"]`).waitFor();
    await page.locator(`#ops tr[data-op-id="${opId}"][data-status="pending"]`).waitFor();
    await alice.send({ type: 'op-cancel', opId });
    await page.locator(`#ops tr[data-op-id="${opId}"][data-status="reverted"]`, { hasText: 'cancelled' }).waitFor();
    assert.equal(await page.locator('#ops tbody tr').count(), 2);
  } finally {
    alice.close();
    bob.close();
    await browser.close();
    await kill(server);
    db.drop();
  }
});

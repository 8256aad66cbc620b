// Ops against the real server binary (TIMEBANK_BIN, default ../../target/debug/timebank-realtime):
// sign-in by token, the `ops` subscription, executeWithOptimistic through confirm, a reorg and a
// revert, and a resend answered without a second append. A server that does not know `op`
// yet answers `unknown_type`: then the op tests are skipped, saying so.
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocket as WsSocket } from 'ws';
import { RealtimeClient } from '../src/client.js';
import { OpsChannel, OpError } from '../src/ops/channel.js';
import { OptimisticStateManager } from '../src/optimistic.js';
import type { Settlement } from '../src/optimistic.js';
import { AuthError, signInWithWallet, tokenExpiry } from '../src/auth.js';
import { IDBFactory } from 'fake-indexeddb';
import { OfflineQueue } from '../src/offline.js';
import type { OpStatusEntry, ServerFrame } from '../src/types.js';

const packageDir = resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const repoRoot = resolve(packageDir, '..', '..');
const BIN = process.env['TIMEBANK_BIN'] ?? resolve(repoRoot, 'target/debug/timebank-realtime');
const WEBHOOK_SECRET = 'test-secret';
const JWT_SECRET = 'a-test-secret-for-client-tokens-of-40-bytes';
const DEADLINE_MS = 20_000;
const BOB = 'ST1SJ3DTE5DN7X54YDH5D64R3BCB6A2AG2ZQ8YPD5';

interface Server {
  base: string;
  child: ChildProcess;
  dir: string;
}

async function startServer(): Promise<Server> {
  const dir = mkdtempSync(join(tmpdir(), 'timebank-ts-ops-'));
  const child = spawn(BIN, ['serve'], {
    env: {
      ...process.env, BIND_ADDR: '127.0.0.1:0', DATABASE_URL: `sqlite://${join(dir, 'log.db')}`,
      CHAINHOOK_WEBHOOK_SECRET: WEBHOOK_SECRET, AUTH_JWT_SECRET: JWT_SECRET, RUST_LOG: 'warn',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const base = await new Promise<string>((ok, fail) => {
    let out = '';
    const timer = setTimeout(() => fail(new Error(`server did not print its address: ${out}`)), DEADLINE_MS);
    child.on('error', fail);
    child.on('exit', (code) => fail(new Error(`server exited with ${code}: ${out}`)));
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const m = /listening on (http:\/\/[^\s]+)/.exec(out);
      if (m?.[1] !== undefined) {
        clearTimeout(timer);
        ok(m[1]);
      }
    });
  });
  return { base, child, dir };
}

async function stop(server: Server): Promise<void> {
  if (server.child.exitCode === null && server.child.signalCode === null) {
    await new Promise<void>((done) => {
      server.child.once('exit', () => done());
      server.child.kill('SIGKILL');
    });
  }
  rmSync(server.dir, { recursive: true, force: true });
}

function token(sub: string, exp = Math.floor(Date.now() / 1000) + 3600): string {
  const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const body = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub, exp })}`;
  return `${body}.${createHmac('sha256', JWT_SECRET).update(body).digest('base64url')}`;
}

async function post(base: string, payload: unknown): Promise<void> {
  const res = await fetch(`${base}/api/webhooks/chainhook`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${WEBHOOK_SECRET}`, 'Content-Type': 'application/json' },
    body: JSON.stringify(payload),
  });
  assert.equal(res.status, 200, await res.clone().text());
}

async function until(cond: () => boolean, what: string): Promise<void> {
  const end = Date.now() + DEADLINE_MS;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

type Block = { block_identifier: { index: number; hash: string }; parent_block_identifier: { index: number; hash: string }; timestamp: number; transactions: Array<{ transaction_identifier: { hash: string } }> };
const example = (name: string) => JSON.parse(readFileSync(join(repoRoot, 'docs/examples', name), 'utf8')) as { apply: Block[]; rollback: Block[] };

/** Connects with Bob's token and waits for `authenticated`; null when the server has no ops (`unknown_type`). */
async function connect(base: string): Promise<{ client: RealtimeClient; frames: ServerFrame[]; ops: boolean }> {
  const frames: ServerFrame[] = [];
  const client = new RealtimeClient({ url: base.replace(/^http/, 'ws') + '/ws', WebSocket: WsSocket, token: token(BOB), minReconnectDelay: 50, maxReconnectDelay: 200 });
  client.onFrame((f) => frames.push(f));
  await until(() => frames.some((f) => f.type === 'authenticated'), 'authenticated');
  // An op-cancel of an op that does not exist appends nothing: `invalid_op` where ops exist.
  client.sendMessage({ type: 'op-cancel', opId: 'probe-00000000' });
  await until(() => frames.some((f) => f.type === 'error' || f.type === 'op-ack'), 'the answer to op-cancel');
  const ops = !frames.some((f) => f.type === 'error' && f.code === 'unknown_type');
  return { client, frames, ops };
}

function skipWithoutOps(t: TestContext, ops: boolean): boolean {
  if (!ops) t.skip('the server answers unknown_type to op frames: server-side ops (PROTOCOL §4) are not in this binary yet');
  return !ops;
}

test('sign-in: the token is sent as auth on connect and the server names its address', async () => {
  const server = await startServer();
  try {
    const { client, frames } = await connect(server.base);
    const auth = frames.find((f) => f.type === 'authenticated');
    assert.equal(auth?.type === 'authenticated' ? auth.address : null, BOB);
    assert.equal(tokenExpiry(token(BOB, 2_000_000_000)), 2_000_000_000);
    client.disconnect();
  } finally {
    await stop(server);
  }
});

test('sign-in with a wallet: the challenge comes from the server; a bad signature is refused with its error code', async () => {
  const server = await startServer();
  try {
    let signed = '';
    const attempt = signInWithWallet(server.base.replace(/^http/, 'ws') + '/ws', BOB, async (message) => {
      signed = message;
      return { signature: '00'.repeat(65), publicKey: '02'.padEnd(66, '1') };
    });
    await assert.rejects(attempt, (e: unknown) => e instanceof AuthError && e.status >= 400 && e.code !== 'http_error');
    assert.match(signed, new RegExp(BOB), 'the challenge message names the address');
  } finally {
    await stop(server);
  }
});

test('ops: executeWithOptimistic confirms with the block, goes back to pending on a reorg, and reverts when it expires', async (t) => {
  const server = await startServer();
  const { client, ops } = await connect(server.base);
  try {
    if (skipWithoutOps(t, ops)) return;
    const blocks = example('blocks.json');
    const reorg = example('reorg.json');
    const [b100, b101] = blocks.apply;
    assert.ok(b100 !== undefined && b101 !== undefined);
    const bobTx = b101.transactions[0]!.transaction_identifier.hash;

    const channel = new OpsChannel(client);
    const statuses: OpStatusEntry[] = [];
    channel.onStatus((s) => statuses.push(s));
    await until(() => channel.subscription.caughtUp, 'the ops subscription');
    await post(server.base, { apply: [b100], rollback: [] });

    const manager = new OptimisticStateManager(channel);
    const calls: string[] = [];
    const onConfirm = (s: Settlement) => calls.push(`confirm ${s.status} ${s.blockHeight}`);
    const onRevert = (s: Settlement) => calls.push(`revert ${s.reason}`);
    const opId = await manager.executeWithOptimistic('update-exchange', { entity: 'exchange:1', data: { status: 'accepted' } }, async () => bobTx, onConfirm, onRevert);
    assert.deepEqual(manager.view('exchange:1', { status: 'open' }), { status: 'accepted' }, 'shown at once');
    await until(() => manager.getSnapshot()[0]?.status === 'pending', 'the op-ack');

    await post(server.base, { apply: [b101], rollback: [] });
    await until(() => calls.length === 1, 'onConfirm');
    assert.deepEqual(calls, ['confirm confirmed 101']);

    await post(server.base, reorg);
    await until(() => statuses.some((s) => s.reason === 'rolled_back'), 'pending rolled_back');
    assert.equal(manager.getSnapshot()[0]?.status, 'pending', 'still shown while its transaction may come back');

    // A block far later on the new fork, without Bob's transaction: the op expires.
    const late = structuredClone(reorg.apply[0]!);
    late.block_identifier = { index: 102, hash: `0x${'102'.padStart(64, '0')}` };
    late.parent_block_identifier = { ...reorg.apply[0]!.block_identifier };
    late.timestamp += 100_000;
    await post(server.base, { apply: [late], rollback: [] });
    await until(() => calls.length === 2, 'onRevert');
    assert.deepEqual(calls, ['confirm confirmed 101', 'revert expired']);
    assert.deepEqual(manager.getSnapshot(), []);
    const lifecycle = statuses.filter((s) => s.opId === opId).map((s) => `${s.status}${s.reason === null ? '' : ` ${s.reason}`}`);
    assert.deepEqual(lifecycle.filter((s) => s !== 'pending'), ['confirmed', 'pending rolled_back', 'reverted expired']);

    // A resend of the settled op is answered with its status, nothing appended; a changed one is refused.
    const ack = await channel.send({ opId, kind: 'update-exchange', entity: 'exchange:1', data: { status: 'accepted' }, txHash: bobTx });
    assert.equal(ack.status, 'reverted');
    await assert.rejects(channel.send({ opId, kind: 'update-exchange', entity: 'exchange:1', data: { status: 'other' } }), (e: unknown) => e instanceof OpError && e.code === 'op_mismatch');

    // A new connection resuming the ops subscription from 0 learns the whole lifecycle again.
    const { client: other } = await connect(server.base);
    const replay = new OpsChannel(other, { since: { seq: 0 } });
    const replayed: string[] = [];
    replay.onStatus((s) => s.opId === opId && replayed.push(s.status));
    await until(() => replay.subscription.caughtUp, 'the replay');
    assert.deepEqual(replayed.filter((s, i) => i > 0 || s !== 'pending'), ['confirmed', 'pending', 'reverted']);
    other.disconnect();
    manager.close();
    channel.close();
  } finally {
    client.disconnect();
    await stop(server);
  }
});

test('offline queue: ops queued offline, the page reloaded, two tabs back online: each op reaches the log once, in order', async (t) => {
  const server = await startServer();
  const probe = await connect(server.base);
  probe.client.disconnect();
  try {
    if (skipWithoutOps(t, probe.ops)) return;
    const browser = { indexedDB: new IDBFactory(), name: 'ops-e2e', leaseMs: 2000 };
    // Offline: a client that never connects, its queue keeps the ops.
    const offline = new RealtimeClient({ url: 'ws://127.0.0.1:9/ws', WebSocket: WsSocket, autoConnect: false });
    const before = new OfflineQueue({ ...browser, transport: new OpsChannel(offline) });
    const opIds: string[] = [];
    for (const n of [1, 2, 3]) opIds.push((await before.enqueue({ kind: 'log-hours', entity: `exchange:${n}`, data: { hours: n } })).opId);
    before.close(); // the reload

    // Back online in two tabs at once.
    const tabs = await Promise.all([connect(server.base), connect(server.base)]);
    const queues = tabs.map(({ client }) => new OfflineQueue({ ...browser, transport: new OpsChannel(client) }));
    await until(() => queues.every((q) => q.getSnapshot().queuedItems.length === 0), 'both tabs to drain the queue');

    // A late resend of a drained op is answered with its status and appends nothing.
    await queues[0]!.enqueue({ opId: opIds[0]!, kind: 'log-hours', entity: 'exchange:1', data: { hours: 1 } });
    await until(() => queues[0]!.getSnapshot().queuedItems.length === 0, 'the resend');

    const { client: reader } = await connect(server.base);
    const replay = new OpsChannel(reader, { since: { seq: 0 } });
    const appended: string[] = [];
    replay.onStatus((s) => appended.push(s.opId));
    await until(() => replay.subscription.caughtUp, 'the replay');
    assert.deepEqual(appended, opIds, 'one op entry per op, in queue order');
    for (const q of queues) q.close();
    for (const { client } of [...tabs, { client: reader }]) client.disconnect();
  } finally {
    await stop(server);
  }
});

test('ops: an ops subscription made before sign-in starts once the client authenticates', async (t) => {
  const server = await startServer();
  const probe = await connect(server.base);
  probe.client.disconnect();
  const client = new RealtimeClient({ url: server.base.replace(/^http/, 'ws') + '/ws', WebSocket: WsSocket });
  try {
    if (skipWithoutOps(t, probe.ops)) return;
    const channel = new OpsChannel(client);
    await until(() => channel.subscription.lastError?.code === 'unauthorized', 'the refusal without a token');
    client.authenticate(token(BOB));
    await until(() => channel.subscription.caughtUp, 'the ops subscription after auth');
    channel.close();
  } finally {
    client.disconnect();
    await stop(server);
  }
});

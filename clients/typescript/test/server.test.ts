// Integration tests against the real server binary (TIMEBANK_BIN, default
// ../../target/debug/timebank-realtime), on an embedded SQLite file in a temp folder.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocket as WsSocket } from 'ws';
import { RealtimeClient } from '../src/client.js';
import type { ChainEvent, Filter } from '../src/types.js';

const here = fileURLToPath(new URL('.', import.meta.url)); // build/test/
const packageDir = resolve(here, '..', '..');
const repoRoot = resolve(packageDir, '..', '..');
const BIN = process.env['TIMEBANK_BIN'] ?? resolve(packageDir, '../../target/debug/timebank-realtime');
const SECRET = 'test-secret';
const DEADLINE_MS = 20_000;
const CONTRACT = 'ST1PQHQKV0RJXZFY1DGX8MNSNYVE3VGZJSRTPGZGM.timebank-foundation';
const BOB = 'ST1SJ3DTE5DN7X54YDH5D64R3BCB6A2AG2ZQ8YPD5';

interface Server {
  base: string;
  child: ChildProcess;
}

function startServer(dbPath: string, bind = '127.0.0.1:0'): Promise<Server> {
  const child = spawn(BIN, ['serve'], {
    env: { ...process.env, BIND_ADDR: bind, DATABASE_URL: `sqlite://${dbPath}`, CHAINHOOK_WEBHOOK_SECRET: SECRET, RUST_LOG: 'warn' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolvePromise, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`server did not print its address: ${out}`)), DEADLINE_MS);
    child.on('error', reject);
    child.on('exit', (code) => reject(new Error(`server exited with ${code}: ${out}`)));
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const m = /listening on (http:\/\/[^\s]+)/.exec(out);
      if (m?.[1] !== undefined) {
        clearTimeout(timer);
        resolvePromise({ base: m[1], child });
      }
    });
  });
}

function kill(server: Server): Promise<void> {
  return new Promise((done) => {
    if (server.child.exitCode !== null || server.child.signalCode !== null) return done();
    server.child.once('exit', () => done());
    server.child.kill('SIGKILL');
  });
}

async function post(base: string, body: string): Promise<Record<string, number>> {
  const res = await fetch(`${base}/api/webhooks/chainhook`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${SECRET}`, 'Content-Type': 'application/json' },
    body,
  });
  assert.equal(res.status, 200, await res.clone().text());
  return (await res.json()) as Record<string, number>;
}

interface LoggedEvent extends ChainEvent {
  rolledBack?: boolean;
}

async function serverEvents(base: string, query: string): Promise<LoggedEvent[]> {
  const res = await fetch(`${base}/api/events?limit=1000&${query}`);
  assert.equal(res.status, 200);
  return ((await res.json()) as { events: LoggedEvent[] }).events;
}

async function until(cond: () => boolean, what: string): Promise<void> {
  const end = Date.now() + DEADLINE_MS;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Every event/rollback frame the client received, per subscription id, before the client's dedupe. */
const frames = new Map<string, number[]>();
class RecordingSocket extends WsSocket {
  constructor(url: string) {
    super(url);
    this.on('message', (data: Buffer) => {
      const frame = JSON.parse(data.toString()) as { type: string; sub?: string; event?: { seq: number }; rollback?: { seq: number } };
      const seq = frame.event?.seq ?? frame.rollback?.seq;
      if (frame.sub !== undefined && seq !== undefined) {
        const list = frames.get(frame.sub) ?? [];
        list.push(seq);
        frames.set(frame.sub, list);
      }
    });
  }
}

/** A new block 102 on top of reorg.json's block 101: blocks.json's block 101 with a new identity. */
function block102(): string {
  const blocks = JSON.parse(readFileSync(join(repoRoot, 'docs/examples/blocks.json'), 'utf8')) as { apply: Array<Record<string, unknown>> };
  const reorg = JSON.parse(readFileSync(join(repoRoot, 'docs/examples/reorg.json'), 'utf8')) as { apply: Array<{ block_identifier: { hash: string } }> };
  const block = structuredClone(blocks.apply[1]!);
  block['block_identifier'] = { index: 102, hash: `0x${'102'.padStart(64, '0')}` };
  block['parent_block_identifier'] = { index: 101, hash: reorg.apply[0]!.block_identifier.hash };
  return JSON.stringify({ apply: [block], rollback: [] });
}

test('events, a reorg and a server restart reach the client without loss or duplicate', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'timebank-ts-'));
  const db = join(dir, 'log.db');
  let server = await startServer(db);
  let url = server.base.replace(/^http/, 'ws') + '/ws';
  const client = new RealtimeClient({
    url: () => url,
    WebSocket: RecordingSocket,
    minReconnectDelay: 50,
    maxReconnectDelay: 200,
  });
  try {
    const filters: Array<[Filter, string]> = [
      [{ type: 'all' }, ''],
      [{ type: 'contract', contractId: CONTRACT }, `contractId=${CONTRACT}`],
      [{ type: 'user', address: BOB }, `address=${BOB}`],
      [{ type: 'event-type', eventType: 'ft_transfer_event' }, 'eventType=ft_transfer_event'],
    ];
    const subs = filters.map(([f]) => client.subscribe(f));
    await until(() => client.state === 'connected' && subs.every((s) => s.caughtUp), 'connected and caught up');
    const [all] = subs;
    assert.ok(all !== undefined);
    const rolledBackSeqs: number[] = [];
    all.onEntry((entry) => {
      if (entry.kind === 'rollback') rolledBackSeqs.push(entry.rollback.rollbackOf);
    });

    // Given blocks 100 and 101 posted through the webhook, every subscription shows their events.
    const applied = await post(server.base, readFileSync(join(repoRoot, 'docs/examples/blocks.json'), 'utf8'));
    assert.equal(applied['events'], 5);
    await until(() => all.events.length === 5, 'the five events of blocks.json');
    assert.deepEqual(new Set(all.events.map((e) => e.blockHeight)), new Set([100, 101]));

    // When a reorg replaces block 101, its events leave the store and the new fork's arrive.
    const oldHash = all.events.find((e) => e.blockHeight === 101)?.blockHash;
    const reorged = await post(server.base, readFileSync(join(repoRoot, 'docs/examples/reorg.json'), 'utf8'));
    assert.equal(reorged['rolledBackBlocks'], 1);
    await until(() => all.lastSeq === reorged['headSeq'], 'the reorg entries');
    assert.equal(all.events.filter((e) => e.blockHash === oldHash).length, 0, 'rolled-back events removed');
    assert.equal(rolledBackSeqs.length, 2);
    assert.equal(all.events.length, 5);

    // A subscription from seq 0 after the reorg replays the history, rollbacks included, and
    // ends up holding only the canonical events.
    const late = client.subscribe({ type: 'all' }, { since: { seq: 0 } });
    await until(() => late.caughtUp, 'the late subscription to catch up');
    assert.deepEqual(late.events.map((e) => e.seq), all.events.map((e) => e.seq));
    filters.push([{ type: 'all' }, '']);
    subs.push(late);

    // When the server dies and a new one starts on the same database (new port) with a block
    // committed while the client was away, the client resumes with nothing lost or repeated.
    await kill(server);
    await until(() => client.state !== 'connected', 'the client to notice the dead server');
    server = await startServer(db);
    const added = await post(server.base, block102());
    assert.equal(added['events'], 2);
    url = server.base.replace(/^http/, 'ws') + '/ws';
    await until(() => client.state === 'connected' && all.lastSeq !== null && all.lastSeq >= (added['headSeq'] ?? Infinity), 'the resume');

    for (const [i, [, query]] of filters.entries()) {
      const sub = subs[i]!;
      const logged = await serverEvents(server.base, query);
      await until(() => sub.lastSeq !== null && sub.lastSeq >= (logged.at(-1)?.seq ?? 0), `subscription ${sub.id} to catch up`);
      const received = frames.get(sub.id) ?? [];
      for (let k = 1; k < received.length; k++) {
        assert.ok(received[k]! > received[k - 1]!, `${sub.id}: frames in increasing seq, no repeat: ${received.join(',')}`);
      }
      const receivedSet = new Set(received);
      assert.deepEqual(logged.map((e) => e.seq).filter((s) => !receivedSet.has(s)), [], `${sub.id}: no event lost`);
      assert.deepEqual(
        sub.events.map((e) => e.seq),
        logged.filter((e) => e.rolledBack !== true).map((e) => e.seq),
        `${sub.id}: the store holds exactly the canonical events`,
      );
    }
    assert.equal(all.events.length, 7);
  } finally {
    client.disconnect();
    await kill(server);
    rmSync(dir, { recursive: true, force: true });
  }
});

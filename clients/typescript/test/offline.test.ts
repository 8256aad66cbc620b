// The offline queue's logic on fake-indexeddb (IndexedDB in memory): persistence across a
// reload, in-order drain, exactly one append per op, two tabs sharing one queue. The real
// browser runs are the browser suite's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IDBFactory } from 'fake-indexeddb';
import { OfflineQueue } from '../src/offline.js';
import { OpError } from '../src/ops/channel.js';
import type { OpMessage, OpsTransport } from '../src/ops/channel.js';
import type { OpAck, OpStatusEntry } from '../src/types.js';

/** A server's op handling reduced to what the queue sees: one append per opId, acks, refusals. */
class FakeServer {
  log: string[] = [];
  sends: string[] = [];
  refuse = new Map<string, string>();
  refuseOnce = new Map<string, string>();
  /** Sends to hold unanswered (a tab that dies before the ack). */
  hold = new Set<string>();
  append(op: OpMessage): Promise<OpAck> {
    this.sends.push(op.opId);
    if (this.hold.has(op.opId)) {
      this.hold.delete(op.opId);
      this.log.push(op.opId);
      return new Promise(() => {});
    }
    const once = this.refuseOnce.get(op.opId);
    if (once !== undefined) {
      this.refuseOnce.delete(op.opId);
      return Promise.reject(new OpError(once, 'not now', op.opId));
    }
    const code = this.refuse.get(op.opId);
    if (code !== undefined) return Promise.reject(new OpError(code, 'refused', op.opId));
    if (!this.log.includes(op.opId)) this.log.push(op.opId);
    return Promise.resolve({ opId: op.opId, seq: this.log.indexOf(op.opId) + 1, status: 'pending', reason: null, entity: op.entity, version: 0 });
  }
}

class Link implements OpsTransport {
  isConnected = false;
  private conn = new Set<(up: boolean) => void>();
  constructor(private readonly server: FakeServer) {}
  send(op: OpMessage): Promise<OpAck> {
    return this.server.append(op);
  }
  cancel(): Promise<OpAck> {
    return Promise.reject(new Error('unused'));
  }
  onStatus(_l: (op: OpStatusEntry) => void): () => void {
    return () => {};
  }
  onConnection(l: (up: boolean) => void): () => void {
    this.conn.add(l);
    return () => this.conn.delete(l);
  }
  set(up: boolean): void {
    this.isConnected = up;
    for (const l of this.conn) l(up);
  }
}

const op = (n: number, txHash?: string) => ({ opId: `op${n}`, kind: 'k', entity: 'exchange:1', data: { n }, ...(txHash === undefined ? {} : { txHash }) });
let dbs = 0;
const fresh = () => ({ indexedDB: new IDBFactory(), name: `q${++dbs}` });

async function until(cond: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const end = Date.now() + 5000;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

test('offline queue: ops queued offline survive a reload and drain in order, once, when online', async () => {
  const browser = fresh();
  const server = new FakeServer();
  const before = new OfflineQueue({ ...browser, transport: new Link(server) });
  for (const n of [1, 2, 3]) await before.enqueue(op(n));
  assert.deepEqual(before.getSnapshot().queuedItems.map((i) => i.opId), ['op1', 'op2', 'op3']);
  assert.equal(before.getSnapshot().isOnline, false);
  before.close(); // the page goes away

  const link = new Link(server);
  const after = new OfflineQueue({ ...browser, transport: link });
  await until(() => after.getSnapshot().queuedItems.length === 3, 'the reloaded page to see the queue');
  const acks: string[] = [];
  after.onAck((a) => acks.push(a.opId));
  link.set(true);
  await until(() => after.getSnapshot().queuedItems.length === 0, 'the drain');
  assert.deepEqual(server.sends, ['op1', 'op2', 'op3']);
  assert.deepEqual(server.log, ['op1', 'op2', 'op3']);
  assert.deepEqual(acks, ['op1', 'op2', 'op3']);
  assert.equal(after.getSnapshot().isOnline, true);
  assert.deepEqual(await after.items(), []);
  after.close();
});

test('offline queue: two tabs of one origin share the queue; every op is sent once, in order', async () => {
  const browser = fresh();
  const server = new FakeServer();
  const linkA = new Link(server);
  const linkB = new Link(server);
  const a = new OfflineQueue({ ...browser, transport: linkA, useWebLocks: false, leaseMs: 2000 });
  const b = new OfflineQueue({ ...browser, transport: linkB, useWebLocks: false, leaseMs: 2000 });
  for (let n = 1; n <= 10; n++) await (n % 2 === 0 ? a : b).enqueue(op(n));
  linkA.set(true);
  linkB.set(true);
  for (let n = 11; n <= 20; n++) void (n % 2 === 0 ? a : b).enqueue(op(n));
  await until(async () => server.log.length === 20 && (await a.items()).length === 0, 'both tabs to drain');
  const expected = Array.from({ length: 20 }, (_, i) => `op${i + 1}`);
  assert.deepEqual(server.log, expected);
  assert.deepEqual(server.sends, expected, 'no op was sent twice');
  await until(() => a.getSnapshot().queuedItems.length === 0 && b.getSnapshot().queuedItems.length === 0, 'both tabs to show an empty queue');
  a.close();
  b.close();
});

/** Web Locks' exclusive mode in one process: requests for a name run one after another. */
class Locks {
  private tails = new Map<string, Promise<void>>();
  request(name: string, cb: () => Promise<void>): Promise<void> {
    const run = (this.tails.get(name) ?? Promise.resolve()).then(cb);
    this.tails.set(name, run.catch(() => {}));
    return run;
  }
}

test('offline queue: with Web Locks, two tabs draining at once send every op once, in order', async () => {
  const browser = fresh();
  const locks = new Locks();
  const server = new FakeServer();
  const linkA = new Link(server);
  const linkB = new Link(server);
  const a = new OfflineQueue({ ...browser, transport: linkA, locks });
  const b = new OfflineQueue({ ...browser, transport: linkB, locks });
  for (let n = 1; n <= 6; n++) await (n % 2 === 0 ? a : b).enqueue(op(n));
  linkA.set(true);
  linkB.set(true);
  await Promise.all([a.drain(), b.drain()]);
  const expected = ['op1', 'op2', 'op3', 'op4', 'op5', 'op6'];
  assert.deepEqual(server.sends, expected, 'no op was sent twice');
  assert.deepEqual(server.log, expected);
  a.close();
  b.close();
});

test('offline queue: a tab that dies after sending, before the ack, leaves the op to the next drainer; the log holds it once', async () => {
  const browser = fresh();
  const server = new FakeServer();
  server.hold.add('op1');
  const linkA = new Link(server);
  const a = new OfflineQueue({ ...browser, transport: linkA, useWebLocks: false, leaseMs: 100 });
  await a.enqueue(op(1));
  await a.enqueue(op(2));
  linkA.set(true);
  await until(() => server.sends.length === 1, 'the first send');
  a.close(); // the tab is gone with its lease still held

  const linkB = new Link(server);
  linkB.isConnected = true;
  const b = new OfflineQueue({ ...browser, transport: linkB, useWebLocks: false, leaseMs: 100 });
  await until(async () => (await b.items()).length === 0, 'the next tab to drain after the lease');
  assert.deepEqual(server.sends, ['op1', 'op1', 'op2'], 'the unanswered op is sent again');
  assert.deepEqual(server.log, ['op1', 'op2'], 'and appended once');
  b.close();
});

test('offline queue: a refused op leaves the queue with onFailed; unauthorized keeps it for later', async () => {
  const server = new FakeServer();
  const link = new Link(server);
  const q = new OfflineQueue({ ...fresh(), transport: link });
  const failed: string[] = [];
  q.onFailed((opId, e) => failed.push(`${opId} ${e.code}`));
  server.refuse.set('op1', 'op_mismatch');
  server.refuse.set('op2', 'unauthorized');
  for (const n of [1, 2, 3]) await q.enqueue(op(n));
  link.set(true);
  await until(() => failed.length === 1 && q.getSnapshot().queuedItems.length === 2, 'op1 to fail');
  await q.drain();
  assert.deepEqual(failed, ['op1 op_mismatch']);
  assert.deepEqual((await q.items()).map((i) => i.opId), ['op2', 'op3'], 'order kept behind the unauthorized op');
  server.refuse.delete('op2');
  await q.drain();
  assert.deepEqual(server.log, ['op2', 'op3']);
  q.close();
});

test('offline queue: an op the server cannot take yet (rate_limited) stays first and is retried by itself', async () => {
  const server = new FakeServer();
  const link = new Link(server);
  const q = new OfflineQueue({ ...fresh(), transport: link });
  server.refuseOnce.set('op1', 'rate_limited');
  await q.enqueue(op(1));
  await q.enqueue(op(2));
  link.set(true);
  await until(() => server.log.length === 2, 'the retry');
  assert.deepEqual(server.sends, ['op1', 'op1', 'op2']);
  assert.deepEqual(server.log, ['op1', 'op2']);
  q.close();
});

test('offline queue: re-enqueueing an opId keeps its place and adds a txHash it lacked; the limit refuses more', async () => {
  const q = new OfflineQueue({ ...fresh(), maxItems: 2 });
  await q.enqueue(op(1));
  await q.enqueue(op(2));
  const again = await q.enqueue(op(1, '0xt'));
  assert.equal(again.op.txHash, '0xt');
  assert.deepEqual((await q.items()).map((i) => [i.opId, i.op.txHash ?? null]), [['op1', '0xt'], ['op2', null]]);
  await assert.rejects(q.enqueue(op(3)), RangeError);
  const made = new OfflineQueue({ indexedDB: new IDBFactory() });
  const item = await made.enqueue({ kind: 'k', entity: 'exchange:2', data: { a: 1 } });
  assert.match(item.opId, /^[0-9a-f-]{36}$/, 'an opId is made when absent');
  q.close();
  made.close();
});

test('offline queue + optimistic manager: an op made offline shows at once, is sent once online, and settles by its ack', async () => {
  const { OptimisticStateManager } = await import('../src/optimistic.js');
  const server = new FakeServer();
  const link = new Link(server);
  const queue = new OfflineQueue({ ...fresh(), transport: link });
  const manager = new OptimisticStateManager(link, { queue, newId: () => 'op7' });
  server.refuse.set('op7', 'unauthorized'); // not yet: stays queued
  const calls: string[] = [];
  await manager.executeWithOptimistic('k', { entity: 'exchange:1', data: { a: 1 } }, () => '0xt', () => calls.push('confirm'), (s) => calls.push(`revert ${s.reason}`));
  assert.deepEqual(manager.view('exchange:1', {}), { a: 1 });
  assert.deepEqual(queue.getSnapshot().queuedItems.map((i) => [i.opId, i.op.txHash]), [['op7', '0xt']]);
  server.refuse.delete('op7');
  link.set(true);
  await until(() => manager.getSnapshot()[0]?.status === 'pending', 'the ack');
  assert.deepEqual(server.log, ['op7']);
  assert.deepEqual(calls, []);
  queue.close();
  manager.close();
});

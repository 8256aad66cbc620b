import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backoffDelay } from '../src/backoff.js';
import { EventStore } from '../src/store.js';
import { RealtimeClient } from '../src/client.js';
import type { WebSocketLike } from '../src/client.js';
import { SharedViews } from '../src/views.js';
import { FakeSocket } from './fake-socket.js';
import type { ChainEvent, Rollback } from '../src/types.js';

function event(seq: number): ChainEvent {
  return {
    seq, txHash: `0x${seq}`, txIndex: 0, eventIndex: seq, blockHeight: 100, blockHash: '0xb',
    contractId: 'ST1.c', eventType: 'print_event', data: {}, affectedAddresses: [], success: true, timestamp: 0,
  };
}
function rollback(seq: number, of: number): Rollback {
  return { seq, rollbackOf: of, txHash: `0x${of}`, blockHeight: 100, blockHash: '0xb', eventType: 'print_event', contractId: 'ST1.c', affectedAddresses: [] };
}

test('backoff: the ceiling doubles from minDelay up to maxDelay', () => {
  const top = () => 0.999999;
  assert.deepEqual([0, 1, 2, 3, 4, 5, 6].map((a) => backoffDelay(a, 500, 5000, top)), [499, 999, 1999, 3999, 4999, 4999, 4999]);
  assert.equal(backoffDelay(1000, 500, 5000, top), 4999, 'a huge attempt stays at maxDelay');
});

test('backoff: full jitter spans zero to the ceiling', () => {
  assert.equal(backoffDelay(3, 500, 20000, () => 0), 0);
  assert.equal(backoffDelay(3, 500, 20000, () => 0.5), 2000);
});

test('store: events are kept in seq order; an entry at or below the cursor is refused', () => {
  const store = new EventStore(10);
  assert.equal(store.applyEvent(event(2)), true);
  assert.equal(store.applyEvent(event(5)), true);
  assert.equal(store.applyEvent(event(5)), false);
  assert.equal(store.applyEvent(event(3)), false);
  assert.deepEqual(store.getSnapshot().map((e) => e.seq), [2, 5]);
  assert.equal(store.lastSeq, 5);
});

test('store: a rollback removes the event it undoes and only that one', () => {
  const store = new EventStore(10);
  for (const s of [1, 2, 3]) store.applyEvent(event(s));
  store.applyRollback(rollback(4, 2));
  assert.deepEqual(store.getSnapshot().map((e) => e.seq), [1, 3]);
  assert.equal(store.lastSeq, 4);
  store.applyRollback(rollback(5, 99));
  assert.deepEqual(store.getSnapshot().map((e) => e.seq), [1, 3], 'a rollback of an unknown event changes nothing');
});

test('store: the snapshot is a new array only when the events change', () => {
  const store = new EventStore(10);
  let notified = 0;
  store.subscribe(() => notified++);
  store.applyEvent(event(1));
  const first = store.getSnapshot();
  assert.equal(store.getSnapshot(), first);
  store.markDelivered(7);
  store.applyRollback(rollback(8, 42));
  assert.equal(store.getSnapshot(), first, 'cursor moves and no-op rollbacks keep the array');
  assert.equal(notified, 1);
  store.applyEvent(event(9));
  assert.notEqual(store.getSnapshot(), first);
  assert.ok(Object.isFrozen(store.getSnapshot()));
});

test('store: holds at most maxEvents, dropping the oldest', () => {
  const store = new EventStore(3);
  for (const s of [1, 2, 3, 4, 5]) store.applyEvent(event(s));
  assert.deepEqual(store.getSnapshot().map((e) => e.seq), [3, 4, 5]);
});

function fakeClient(): { client: RealtimeClient; socket: () => FakeSocket } {
  FakeSocket.all = [];
  const client = new RealtimeClient({ url: 'ws://fake/ws', WebSocket: FakeSocket, minReconnectDelay: 1, maxReconnectDelay: 2, pingInterval: 60_000 });
  return { client, socket: () => FakeSocket.all[FakeSocket.all.length - 1]! };
}

async function until(cond: () => boolean, what: string): Promise<void> {
  const end = Date.now() + 5000;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

test('client: resubscribes after a drop and after resync from the last delivered seq', async () => {
  const { client, socket } = fakeClient();
  const states: string[] = [];
  client.onStateChange((s) => states.push(s));
  const sub = client.subscribe({ type: 'all' });
  const first = socket();
  first.open();
  assert.deepEqual(first.sent, [{ type: 'subscribe', id: 's1', filter: { type: 'all' } }]);
  first.receive({ type: 'subscribed', id: 's1', headSeq: 10, headBlockHeight: 1 });
  first.receive({ type: 'caught-up', sub: 's1', seq: 10 });
  first.receive({ type: 'event', sub: 's1', event: event(12) });
  first.receive({ type: 'resync', sub: 's1', seq: 12, reason: 'slow_consumer' });
  assert.deepEqual(first.sent[1], { type: 'subscribe', id: 's1', filter: { type: 'all' }, since: { seq: 12 } });
  first.drop();
  assert.equal(client.state, 'connecting');
  await until(() => FakeSocket.all.length === 2, 'a reconnect');
  const second = socket();
  second.open();
  assert.deepEqual(second.sent, [{ type: 'subscribe', id: 's1', filter: { type: 'all' }, since: { seq: 12 } }]);
  second.receive({ type: 'caught-up', sub: 's1', seq: 20 });
  second.drop();
  await until(() => FakeSocket.all.length === 3, 'a second reconnect');
  socket().open();
  assert.deepEqual(socket().sent, [{ type: 'subscribe', id: 's1', filter: { type: 'all' }, since: { seq: 20 } }], 'a live-only subscription resumes from its handover seq');
  assert.deepEqual(sub.events.map((e) => e.seq), [12]);
  assert.equal(states[0], 'connected', 'the constructor already set connecting');
  assert.deepEqual(states, ['connected', 'connecting', 'connected', 'connecting', 'connected']);
  client.disconnect();
  assert.equal(client.state, 'disconnected');
});

test('client: a connection silent past the heartbeat timeout is closed and reopened', async () => {
  FakeSocket.all = [];
  const client = new RealtimeClient({ url: 'ws://fake/ws', WebSocket: FakeSocket, minReconnectDelay: 1, maxReconnectDelay: 2, pingInterval: 10, pongTimeout: 10 });
  FakeSocket.all[0]!.open();
  await until(() => FakeSocket.all.length === 2, 'a reconnect after silence');
  assert.deepEqual(FakeSocket.all[0]!.sent, [{ type: 'ping' }]);
  client.disconnect();
});

test('views: StrictMode mount-unmount-mount keeps one server subscription; the last unmount ends it', async () => {
  const { client, socket } = fakeClient();
  socket().open();
  const views = new SharedViews(client);
  const filters = [{ type: 'contract', contractId: 'ST1.c' } as const];
  const read = views.snapshotReader(filters);
  const empty = read();
  assert.equal(read(), empty, 'stable before any listener');
  const stop1 = views.listen(filters, () => {});
  stop1();
  const stop2 = views.listen(filters, () => {});
  const other = views.listen([{ type: 'contract', contractId: 'ST1.c' }], () => {});
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(views.size, 1);
  assert.deepEqual(socket().sent.filter((f) => f.type === 'subscribe').length, 1);
  socket().receive({ type: 'event', sub: 's1', event: event(3) });
  const withOne = read();
  assert.deepEqual(withOne.events.map((e) => e.seq), [3]);
  assert.equal(withOne.isConnected, true);
  assert.equal(read(), withOne, 'same snapshot object while nothing changes');
  stop2();
  other();
  await until(() => views.size === 0, 'the release');
  assert.deepEqual(socket().sent.at(-1), { type: 'unsubscribe', id: 's1' });
  client.disconnect();
});

test('views: several filters merge in seq order, an event matching two shows once', () => {
  const { client, socket } = fakeClient();
  socket().open();
  const views = new SharedViews(client);
  const filters = [{ type: 'all' } as const, { type: 'user', address: 'ST1A' } as const];
  const stop = views.listen(filters, () => {});
  socket().receive({ type: 'event', sub: 's1', event: event(5) });
  socket().receive({ type: 'event', sub: 's2', event: event(2) });
  socket().receive({ type: 'event', sub: 's2', event: event(5) });
  assert.deepEqual(views.snapshotReader(filters)().events.map((e) => e.seq), [2, 5]);
  stop();
  client.disconnect();
});

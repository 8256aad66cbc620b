// The socket side of ops with the server played by hand (the server half of PROTOCOL §4 is
// tested end to end in test/ops-server.test.ts): auth first on every connection, the `ops`
// subscription resumed from its last seq, op-ack and error matched to their op.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RealtimeClient } from '../src/client.js';
import { FakeSocket } from './fake-socket.js';
import { OfflineError, OpError, OpsChannel } from '../src/ops/channel.js';
import type { OpStatusEntry } from '../src/types.js';

const last = () => FakeSocket.all[FakeSocket.all.length - 1]!;
async function until(cond: () => boolean, what: string): Promise<void> {
  const end = Date.now() + 5000;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
const status = (seq: number, s: OpStatusEntry['status'], reason: string | null = null): OpStatusEntry =>
  ({ seq, opId: 'a', entity: 'exchange:1', kind: 'k', status: s, reason, txHash: '0xt', blockHeight: null, blockHash: null, data: {} });

test('ops channel: auth goes first on every connection; the ops subscription resumes from its last seq, each status once', async () => {
  FakeSocket.all = [];
  let token = 't1';
  const client = new RealtimeClient({ url: 'ws://fake/ws', WebSocket: FakeSocket, token: () => token, minReconnectDelay: 1, maxReconnectDelay: 2, pingInterval: 60_000 });
  const channel = new OpsChannel(client);
  const seen: string[] = [];
  channel.onStatus((s) => seen.push(`${s.seq} ${s.status}`));
  last().open();
  assert.deepEqual(last().sent, [{ type: 'auth', token: 't1' }, { type: 'subscribe', id: 's1', filter: { type: 'ops' } }]);
  last().receive({ type: 'op-status', sub: 's1', op: status(4, 'pending') });
  last().receive({ type: 'op-status', sub: 's1', op: status(7, 'confirmed') });
  last().receive({ type: 'op-status', sub: 's1', op: status(7, 'confirmed') });
  assert.equal(channel.lastSeq, 7);

  token = 't2';
  last().drop();
  await until(() => FakeSocket.all.length === 2, 'the reconnect');
  last().open();
  assert.deepEqual(last().sent, [{ type: 'auth', token: 't2' }, { type: 'subscribe', id: 's1', filter: { type: 'ops' }, since: { seq: 7 } }]);
  last().receive({ type: 'op-status', sub: 's1', op: status(9, 'pending', 'rolled_back') });
  last().receive({ type: 'resync', sub: 's1', seq: 9, reason: 'slow_consumer' });
  assert.deepEqual(last().sent.at(-1), { type: 'subscribe', id: 's1', filter: { type: 'ops' }, since: { seq: 9 } });
  assert.deepEqual(seen, ['4 pending', '7 confirmed', '9 pending']);

  client.authenticate('t3');
  assert.deepEqual(last().sent.at(-1), { type: 'auth', token: 't3' }, 'a new token is sent at once');
  client.disconnect();
});

test('ops channel: op-ack and error answer their op; a drop fails what is in flight; unknown_type fails every op', async () => {
  FakeSocket.all = [];
  const client = new RealtimeClient({ url: 'ws://fake/ws', WebSocket: FakeSocket, minReconnectDelay: 1, maxReconnectDelay: 2, pingInterval: 60_000 });
  const channel = new OpsChannel(client);
  await assert.rejects(channel.send({ opId: 'x', kind: 'k', entity: 'e:1', data: { a: 1 } }), OfflineError, 'not connected: nothing sent');
  last().open();
  const a = channel.send({ opId: 'a', kind: 'k', entity: 'e:1', data: { a: 1 }, txHash: '0xt' });
  const b = channel.send({ opId: 'b', kind: 'k', entity: 'e:1', data: { a: 2 } });
  const c = channel.cancel('c');
  assert.deepEqual(last().sent.slice(-3), [
    { type: 'op', opId: 'a', kind: 'k', entity: 'e:1', data: { a: 1 }, txHash: '0xt' },
    { type: 'op', opId: 'b', kind: 'k', entity: 'e:1', data: { a: 2 } },
    { type: 'op-cancel', opId: 'c' },
  ]);
  last().receive({ type: 'error', id: 'b', code: 'op_mismatch', message: 'differs' });
  last().receive({ type: 'op-ack', opId: 'a', seq: 12, status: 'pending', entity: 'e:1', version: 3 });
  assert.deepEqual(await a, { opId: 'a', seq: 12, status: 'pending', entity: 'e:1', version: 3 });
  await assert.rejects(b, (e: unknown) => e instanceof OpError && e.code === 'op_mismatch' && e.opId === 'b');
  last().drop();
  await assert.rejects(c, OfflineError);

  await until(() => FakeSocket.all.length === 2, 'the reconnect');
  last().open();
  const d = channel.send({ opId: 'd', kind: 'k', entity: 'e:1', data: { a: 1 } });
  last().receive({ type: 'error', code: 'unknown_type', message: 'unknown message type "op"' });
  await assert.rejects(d, (e: unknown) => e instanceof OpError && e.code === 'unknown_type');
  channel.close();
  client.disconnect();
});

test('ops channel: made before sign-in, the ops subscription is asked again once authenticated', () => {
  FakeSocket.all = [];
  const client = new RealtimeClient({ url: 'ws://fake/ws', WebSocket: FakeSocket, minReconnectDelay: 1, maxReconnectDelay: 2, pingInterval: 60_000 });
  const channel = new OpsChannel(client);
  last().open();
  assert.deepEqual(last().sent, [{ type: 'subscribe', id: 's1', filter: { type: 'ops' } }]);
  last().receive({ type: 'error', id: 's1', code: 'unauthorized', message: 'sign in first' });
  client.authenticate('t');
  last().receive({ type: 'authenticated', address: 'ST1', exp: 2_000_000_000 });
  assert.deepEqual(last().sent.slice(1), [{ type: 'auth', token: 't' }, { type: 'subscribe', id: 's1', filter: { type: 'ops' } }]);
  last().receive({ type: 'authenticated', address: 'ST1', exp: 2_000_000_100 });
  assert.equal(last().sent.length, 3, 'a token refresh does not subscribe again');
  channel.close();
  client.disconnect();
});

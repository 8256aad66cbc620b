// The optimistic manager's settlement logic, driven by a fake transport: the server's op
// frames are replayed by hand here; test/ops-server.test.ts runs the same flow against the
// real server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OptimisticStateManager } from '../src/optimistic.js';
import type { Settlement } from '../src/optimistic.js';
import { OfflineError, OpError } from '../src/ops/channel.js';
import type { OpMessage, OpsTransport } from '../src/ops/channel.js';
import type { OpAck, OpStatusEntry } from '../src/types.js';

class FakeTransport implements OpsTransport {
  isConnected = true;
  sent: OpMessage[] = [];
  answer: (op: OpMessage) => Promise<OpAck> = (op) => Promise.resolve(ack(op.opId, 'pending'));
  private status = new Set<(op: OpStatusEntry) => void>();
  private conn = new Set<(up: boolean) => void>();
  send(op: OpMessage): Promise<OpAck> {
    this.sent.push(op);
    return this.answer(op);
  }
  cancel(): Promise<OpAck> {
    return Promise.reject(new Error('unused'));
  }
  onStatus(l: (op: OpStatusEntry) => void): () => void {
    this.status.add(l);
    return () => this.status.delete(l);
  }
  onConnection(l: (up: boolean) => void): () => void {
    this.conn.add(l);
    return () => this.conn.delete(l);
  }
  emit(opId: string, seq: number, status: OpStatusEntry['status'], reason: string | null = null): void {
    const entry: OpStatusEntry = { seq, opId, entity: 'exchange:1', kind: 'k', status, reason, txHash: '0xt', blockHeight: status === 'pending' && reason === null ? null : 10, blockHash: '0xb', data: {} };
    for (const l of this.status) l(entry);
  }
  setConnected(up: boolean): void {
    this.isConnected = up;
    for (const l of this.conn) l(up);
  }
}

function ack(opId: string, status: OpAck['status'], reason: string | null = null): OpAck {
  return { opId, seq: 1, status, reason, entity: 'exchange:1', version: 0 };
}
const tick = () => new Promise((r) => setImmediate(r));

function setup() {
  const transport = new FakeTransport();
  let n = 0;
  const manager = new OptimisticStateManager(transport, { newId: () => `op${++n}` });
  const calls: string[] = [];
  const onConfirm = (s: Settlement) => calls.push(`confirm ${s.opId} ${s.status}`);
  const onRevert = (s: Settlement) => calls.push(`revert ${s.opId} ${s.reason}`);
  return { transport, manager, calls, onConfirm, onRevert };
}

test('optimistic: the value shows at once, before the action returns; confirmed calls onConfirm once, final removes it', async () => {
  const { transport, manager, calls, onConfirm, onRevert } = setup();
  let sign!: (tx: string) => void;
  const done = manager.executeWithOptimistic('update-exchange', { entity: 'exchange:1', data: { status: 'accepted' } }, () => new Promise<string>((r) => (sign = r)), onConfirm, onRevert);
  assert.deepEqual(manager.view('exchange:1', { status: 'open', hours: 2 }), { status: 'accepted', hours: 2 });
  assert.equal(manager.getSnapshot()[0]?.status, 'local');
  sign('0xt');
  assert.equal(await done, 'op1');
  assert.deepEqual(transport.sent, [{ opId: 'op1', kind: 'update-exchange', entity: 'exchange:1', data: { status: 'accepted' }, txHash: '0xt' }]);
  await tick();
  assert.equal(manager.getSnapshot()[0]?.status, 'pending');
  transport.emit('op1', 5, 'confirmed');
  transport.emit('op1', 6, 'final');
  assert.deepEqual(calls, ['confirm op1 confirmed']);
  assert.deepEqual(manager.getSnapshot(), []);
  assert.deepEqual(manager.view('exchange:1', { status: 'open' }), { status: 'open' });
});

test('optimistic: a reorg after the confirmation, then a revert, calls onRevert after onConfirm', async () => {
  const { transport, manager, calls, onConfirm, onRevert } = setup();
  await manager.executeWithOptimistic('k', { entity: 'exchange:1', data: { a: 1 } }, () => '0xt', onConfirm, onRevert);
  transport.emit('op1', 5, 'confirmed');
  transport.emit('op1', 6, 'pending', 'rolled_back');
  assert.equal(manager.getSnapshot()[0]?.reason, 'rolled_back', 'back to pending, still shown');
  transport.emit('op1', 7, 'confirmed');
  transport.emit('op1', 8, 'pending', 'rolled_back');
  transport.emit('op1', 9, 'reverted', 'expired');
  assert.deepEqual(calls, ['confirm op1 confirmed', 'revert op1 expired']);
  assert.deepEqual(manager.getSnapshot(), []);
});

test('optimistic: a failing action withdraws the prediction and sends nothing', async () => {
  const { transport, manager, calls, onConfirm, onRevert } = setup();
  await manager.executeWithOptimistic('k', { entity: 'exchange:1', data: { a: 1 } }, () => Promise.reject(new Error('user rejected')), onConfirm, onRevert);
  assert.deepEqual(calls, ['revert op1 cancelled']);
  assert.deepEqual(transport.sent, []);
  assert.deepEqual(manager.view('exchange:1', {}), {});
});

test('optimistic: an ack that is already terminal settles; a server error reverts with its code', async () => {
  const { transport, manager, calls, onConfirm, onRevert } = setup();
  transport.answer = (op) => op.opId === 'op1'
    ? Promise.resolve(ack(op.opId, 'reverted', 'conflict'))
    : Promise.reject(new OpError('op_mismatch', 'differs', op.opId));
  await manager.executeWithOptimistic('k', { entity: 'exchange:1', data: { a: 1 } }, () => '0xt1', onConfirm, onRevert);
  await manager.executeWithOptimistic('k', { entity: 'exchange:1', data: { a: 2 } }, () => '0xt2', onConfirm, onRevert);
  await tick();
  assert.deepEqual(calls, ['revert op1 conflict', 'revert op2 op_mismatch']);
});

test('optimistic: offline, the op is sent when the connection is back; a late ack does not undo a newer status', async () => {
  const { transport, manager, calls, onConfirm, onRevert } = setup();
  transport.isConnected = false;
  await manager.executeWithOptimistic('k', { entity: 'exchange:1', data: { a: 1 } }, () => '0xt', onConfirm, onRevert);
  assert.equal(transport.sent.length, 0);
  let answer!: (a: OpAck) => void;
  transport.answer = () => new Promise((r) => (answer = r));
  transport.setConnected(true);
  assert.equal(transport.sent.length, 1);
  transport.emit('op1', 5, 'confirmed');
  answer(ack('op1', 'pending'));
  await tick();
  assert.equal(manager.getSnapshot()[0]?.status, 'confirmed');
  assert.deepEqual(calls, ['confirm op1 confirmed']);
});

test('optimistic: a dropped connection before the ack resends on reconnect', async () => {
  const { transport, manager } = setup();
  transport.answer = () => Promise.reject(new OfflineError());
  await manager.executeWithOptimistic('k', { entity: 'exchange:1', data: { a: 1 } }, () => '0xt');
  await tick();
  transport.answer = (op) => Promise.resolve(ack(op.opId, 'pending'));
  transport.setConnected(true);
  await tick();
  assert.deepEqual(transport.sent.map((o) => o.opId), ['op1', 'op1']);
  assert.equal(manager.getSnapshot()[0]?.status, 'pending');
});

test('optimistic: later ops win overlapping fields in the view; the limit refuses more', async () => {
  const transport = new FakeTransport();
  let n = 0;
  const manager = new OptimisticStateManager(transport, { maxOps: 2, newId: () => `op${++n}` });
  await manager.executeWithOptimistic('k', { entity: 'exchange:1', data: { a: 1, b: 1 } }, () => '0x1');
  await manager.executeWithOptimistic('k', { entity: 'exchange:1', data: { b: 2 } }, () => '0x2');
  assert.deepEqual(manager.view('exchange:1', { c: 0 }), { a: 1, b: 2, c: 0 });
  await assert.rejects(manager.executeWithOptimistic('k', { entity: 'exchange:1', data: { a: 3 } }, () => '0x3'), RangeError);
});

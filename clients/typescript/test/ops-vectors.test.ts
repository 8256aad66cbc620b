// Every vector of the repository's tests/vectors/ops.json (docs/ops.md "Test vectors"),
// run against the TypeScript resolver: the same decisions, answers and views as the server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Resolver } from '../src/ops/resolver.js';
import type { Fields, OpsInput, ResolverConfig } from '../src/ops/types.js';

const packageDir = resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const file = JSON.parse(readFileSync(resolve(packageDir, '../../tests/vectors/ops.json'), 'utf8')) as {
  format: number;
  vectors: Array<{ name: string; config: ResolverConfig; steps: Array<Record<string, unknown>> }>;
};

/** Absent optional keys count as null (docs/ops.md): drop null-valued keys on both sides. */
function norm(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(norm);
  if (typeof v !== 'object' || v === null) return v;
  return Object.fromEntries(Object.entries(v).filter(([, x]) => x !== null).map(([k, x]) => [k, norm(x)]));
}

test('ops vectors: the file is format 1 and not empty', () => {
  assert.equal(file.format, 1);
  assert.ok(file.vectors.length > 0);
});

for (const vector of file.vectors) {
  test(`ops vector ${vector.name}`, () => {
    const r = new Resolver(vector.config);
    vector.steps.forEach((step, i) => {
      const where = `${vector.name}, step ${i}`;
      if ('entry' in step) {
        assert.deepEqual(norm(r.apply(step['entry'] as OpsInput)), norm(step['decisions']), where);
      } else if ('ask' in step) {
        const ask = step['ask'] as { type: string } & Parameters<Resolver['answerOp']>[0];
        const answer = ask.type === 'op-cancel' ? r.answerCancel(ask) : r.answerOp(ask);
        assert.deepEqual(norm(answer), norm(step['answer']), where);
      } else if ('view' in step) {
        const v = step['view'] as { address: string; entity: string; chain: Fields };
        assert.deepEqual(r.view(v.address, v.entity, v.chain), step['fields'], where);
      } else {
        assert.fail(`${where}: unknown step ${JSON.stringify(step)}`);
      }
    });
  });
}

test('resolver: settled ops beyond the retention are forgotten at the next entry, open ones never', () => {
  const r = new Resolver({ settledRetainedPerAddress: 1 });
  const op = (seq: number, opId: string) => ({ type: 'op' as const, seq, address: 'SP1', opId, entity: 'e:1', kind: 'k', data: { [opId]: 1 } });
  r.apply(op(1, 'a'));
  r.apply(op(2, 'b'));
  r.apply(op(3, 'c'));
  r.apply({ type: 'op-cancel', seq: 4, address: 'SP1', opId: 'a' });
  assert.deepEqual(r.apply({ type: 'op-cancel', seq: 5, address: 'SP1', opId: 'b' }).map((d) => d.opId), ['b']);
  assert.equal(r.op('SP1', 'a')?.status, 'reverted', 'still readable right after the entry that settled the next one');
  r.apply({ type: 'block', seq: 6, height: 1, hash: '0xb1', timestamp: 10, txs: [] });
  assert.equal(r.op('SP1', 'a'), undefined);
  assert.deepEqual(r.answerOp({ address: 'SP1', opId: 'a', entity: 'e:1', kind: 'k', data: { a: 1 } }), { action: 'append' });
  assert.equal(r.op('SP1', 'b')?.status, 'reverted');
  assert.equal(r.op('SP1', 'c')?.status, 'pending');
  assert.deepEqual(r.standing('SP1', 'e:1').map((o) => o.opId), ['c']);
});

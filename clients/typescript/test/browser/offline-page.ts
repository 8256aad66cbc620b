// A dApp page using the SDK's offline queue and optimistic manager, bundled by the browser
// tests. It shows the queued ops (#queued), the server's status of each of its address's ops
// (#statuses, from the `ops` subscription read from seq 0), the optimistic view of two
// exchanges (#view-<entity>), and every onConfirm / onRevert call (#calls). The server's
// WebSocket URL and the client token come in the query string (?ws=…&token=…).
import { RealtimeClient } from '../../src/client.js';
import { OfflineQueue } from '../../src/offline.js';
import { OpsChannel } from '../../src/ops/channel.js';
import { OptimisticStateManager } from '../../src/optimistic.js';
import type { Settlement } from '../../src/optimistic.js';

const params = new URLSearchParams(location.search);
const client = new RealtimeClient({ url: params.get('ws') ?? '', token: params.get('token') ?? '', minReconnectDelay: 50, maxReconnectDelay: 250 });
const channel = new OpsChannel(client, { since: { seq: 0 } });
const queue = new OfflineQueue({ name: 'offline-page', transport: channel });
const manager = new OptimisticStateManager(channel);
const statuses = new Map<string, string>();
const calls: string[] = [];
const ENTITIES = ['exchange:1', 'exchange:2'];

function el(id: string): HTMLElement {
  const e = document.getElementById(id);
  if (e === null) throw new Error(`no #${id}`);
  return e;
}

function list(id: string, rows: Array<[string, string]>): void {
  el(id).replaceChildren(...rows.map(([key, text]) => {
    const li = document.createElement('li');
    li.dataset['key'] = key;
    li.textContent = text;
    return li;
  }));
}

function render(): void {
  el('status').dataset['connected'] = String(client.state === 'connected');
  el('status').textContent = client.state;
  list('queued', queue.getSnapshot().queuedItems.map((it) => [it.opId, `${it.op.entity} ${JSON.stringify(it.op.data)}`]));
  list('statuses', [...statuses].map(([opId, s]) => [opId, s]));
  list('calls', calls.map((c, i) => [String(i), c]));
  for (const entity of ENTITIES) el(`view-${entity}`).textContent = String(manager.view(entity, { status: 'open' })['status']);
}

document.body.innerHTML = `<p id="status"></p><ul id="queued"></ul><ul id="statuses"></ul><ul id="calls"></ul>${ENTITIES.map((e) => `<p id="view-${e}"></p>`).join('')}`;
client.onStateChange(render);
channel.subscription.onEntry(render);
channel.onStatus((s) => {
  statuses.set(s.opId, `${s.status}${s.reason === null ? '' : ` ${s.reason}`}`);
  render();
});
queue.subscribe(render);
manager.subscribe(render);
render();

const settled = (what: string) => (s: Settlement): void => {
  calls.push(`${what} ${s.status}${s.reason === null ? '' : ` ${s.reason}`} ${s.blockHeight ?? '-'}`);
  render();
};

declare global {
  interface Window {
    app: {
      enqueue(entity: string, hours: number): Promise<string>;
      /** Starts executeWithOptimistic and answers what the page shows right after the call. */
      execute(entity: string, txHash: string): Promise<{ opId: string; shown: string }>;
      opStatus(opId: string): string | undefined;
      /** Connected, and the `ops` subscription caught up. */
      ready(): boolean;
    };
  }
}

window.app = {
  enqueue: async (entity, hours) => (await queue.enqueue({ kind: 'log-hours', entity, data: { hours } })).opId,
  execute: async (entity, txHash) => {
    const opId = manager.executeWithOptimistic('update-exchange', { entity, data: { status: 'accepted' } }, async () => txHash, settled('confirm'), settled('revert'));
    const shown = el(`view-${entity}`).textContent ?? '';
    return { opId: await opId, shown };
  },
  ready: () => client.state === 'connected' && channel.subscription.caughtUp,
  opStatus: (opId) => manager.getSnapshot().find((o) => o.opId === opId)?.status,
};

// A dApp page using the SDK's React hook, bundled by the browser tests. It renders every
// event useRealtimeEvents returns as an <li data-seq>, and records each <li> ever added, so a
// test can tell an event shown twice from one shown once. The server's WebSocket URL comes in
// the query string (?ws=ws://host:port/ws).
import { StrictMode, createElement as h } from 'react';
import type { ReactElement } from 'react';
import { createRoot } from 'react-dom/client';
import { RealtimeClient } from '../../src/client.js';
import { RealtimeProvider, useRealtimeEvents } from '../../src/react.js';

declare global {
  interface Window {
    realtimeClient: RealtimeClient;
    addedSeqs: number[];
  }
}

const url = new URLSearchParams(location.search).get('ws') ?? '';
const client = new RealtimeClient({ url, minReconnectDelay: 50, maxReconnectDelay: 250 });
window.realtimeClient = client;
window.addedSeqs = [];

function Events(): ReactElement {
  const { events, isConnected } = useRealtimeEvents({ subscriptions: [{ type: 'all' }] });
  return h('main', null,
    h('p', { id: 'status', 'data-connected': String(isConnected) }, isConnected ? 'live' : 'offline'),
    h('ul', { id: 'events' }, events.map((e) => h('li', { key: e.seq, 'data-seq': e.seq }, `#${e.seq} ${e.blockHeight} ${e.eventType} ${e.txHash}`))));
}

const root = document.getElementById('root');
if (root === null) throw new Error('no #root');
new MutationObserver((records) => {
  for (const r of records) {
    for (const node of r.addedNodes) {
      if (node instanceof HTMLLIElement) window.addedSeqs.push(Number(node.dataset['seq']));
    }
  }
}).observe(root, { childList: true, subtree: true });
createRoot(root).render(h(StrictMode, null, h(RealtimeProvider, { client }, h(Events))));

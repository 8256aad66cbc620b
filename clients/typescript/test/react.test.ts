// The hooks under real React. Without a DOM, only server rendering runs here: it checks the
// hooks' call shapes and the server snapshot; effects (subscribing) do not run in it. The
// subscribe/unsubscribe logic under the hooks is SharedViews, tested in unit.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StrictMode, createElement } from 'react';
import { renderToString } from 'react-dom/server';
import { RealtimeClient } from '../src/client.js';
import type { WebSocketLike } from '../src/client.js';
import { RealtimeProvider, sharedViews, useContractEvents, useRealtimeEvents, useUserEvents } from '../src/react.js';

class NeverOpens implements WebSocketLike {
  readyState = 0;
  onopen = null;
  onclose = null;
  onerror = null;
  onmessage = null;
  send(): void {}
  close(): void {}
}

test('hooks render under StrictMode with the seed call shapes and open no subscription on the server', () => {
  const client = new RealtimeClient({ url: 'ws://x/ws', WebSocket: NeverOpens, autoConnect: false });
  function View(): ReturnType<typeof createElement> {
    const all = useRealtimeEvents({ subscriptions: [{ type: 'all' }] });
    const contract = useContractEvents('ST1.c', { eventType: 'print_event' });
    const user = useUserEvents('ST1A');
    return createElement('p', null, `${all.events.length}/${contract.events.length}/${user.events.length}/${String(all.isConnected)}`);
  }
  const html = renderToString(createElement(StrictMode, null, createElement(RealtimeProvider, { client }, createElement(View))));
  assert.equal(html, '<p>0/0/0/false</p>');
  assert.equal(sharedViews(client).size, 0);
  assert.equal(client.activeSubscriptions.length, 0);
});

test('a hook without a client says how to provide one', () => {
  function View(): null {
    useRealtimeEvents({ subscriptions: [{ type: 'all' }] });
    return null;
  }
  assert.throws(() => renderToString(createElement(View)), /RealtimeProvider/);
});

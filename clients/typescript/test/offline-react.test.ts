// useOfflineSync and useOptimisticOps under real React (server rendering: the call shapes and
// the server snapshot; the stores under them are tested in offline.test.ts and optimistic.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StrictMode, createElement } from 'react';
import { renderToString } from 'react-dom/server';
import { IDBFactory } from 'fake-indexeddb';
import { OfflineQueue } from '../src/offline.js';
import { OptimisticStateManager } from '../src/optimistic.js';
import type { OpsTransport } from '../src/ops/channel.js';
import { useOfflineSync, useOptimisticOps } from '../src/react.js';

const idle: OpsTransport = {
  isConnected: false,
  send: () => Promise.reject(new Error('unused')),
  cancel: () => Promise.reject(new Error('unused')),
  onStatus: () => () => {},
  onConnection: () => () => {},
};

test('useOfflineSync and useOptimisticOps render with the seed call shapes', () => {
  const queue = new OfflineQueue({ indexedDB: new IDBFactory(), name: 'react' });
  const manager = new OptimisticStateManager(idle);
  function View(): ReturnType<typeof createElement> {
    const { isOnline, queuedItems, enqueue } = useOfflineSync(queue);
    const ops = useOptimisticOps(manager);
    return createElement('p', null, `${String(isOnline)}/${queuedItems.length}/${typeof enqueue}/${ops.length}`);
  }
  assert.equal(renderToString(createElement(StrictMode, null, createElement(View))), '<p>false/0/function/0</p>');
  queue.close();
});

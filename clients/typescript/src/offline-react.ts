import { useMemo, useSyncExternalStore } from 'react';
import { getOfflineQueue } from './offline.js';
import type { NewOp, OfflineQueue, OfflineSnapshot, QueuedItem } from './offline.js';
import { getOptimisticStateManager } from './optimistic.js';
import type { OptimisticOp, OptimisticStateManager } from './optimistic.js';

const OFFLINE: OfflineSnapshot = Object.freeze({ isOnline: false, queuedItems: Object.freeze([]) });
const NO_OPS: readonly OptimisticOp[] = Object.freeze([]);

export interface OfflineSync {
  isOnline: boolean;
  queuedItems: readonly QueuedItem[];
  enqueue: (op: NewOp) => Promise<QueuedItem>;
}

/** The offline queue (default: the page's `getOfflineQueue()`): online state, queued items, and `enqueue`. */
export function useOfflineSync(queue?: OfflineQueue): OfflineSync {
  const q = queue ?? getOfflineQueue();
  const snap = useSyncExternalStore(q.subscribe, q.getSnapshot, () => OFFLINE);
  return useMemo(() => ({ isOnline: snap.isOnline, queuedItems: snap.queuedItems, enqueue: q.enqueue }), [snap, q]);
}

/** The unsettled optimistic ops (default: the page's `getOptimisticStateManager()`), oldest first. */
export function useOptimisticOps(manager?: OptimisticStateManager): readonly OptimisticOp[] {
  const m = manager ?? getOptimisticStateManager();
  return useSyncExternalStore(m.subscribe, m.getSnapshot, () => NO_OPS);
}

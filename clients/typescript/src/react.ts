import { createContext, createElement, useContext, useMemo, useSyncExternalStore } from 'react';
import type { ReactNode } from 'react';
import type { RealtimeClient } from './client.js';
import type { ChainEvent, EventType, Filter } from './types.js';
import { SharedViews, filterKey } from './views.js';
import type { ViewSnapshot } from './views.js';

export type { ViewSnapshot } from './views.js';

const views = new WeakMap<RealtimeClient, SharedViews>();

/** The shared, listener-counted subscriptions of `client` (one per client). */
export function sharedViews(client: RealtimeClient): SharedViews {
  let v = views.get(client);
  if (v === undefined) {
    v = new SharedViews(client);
    views.set(client, v);
  }
  return v;
}

const ClientContext = createContext<RealtimeClient | null>(null);

/** Makes `client` the one the hooks below use. */
export function RealtimeProvider(props: { client: RealtimeClient; children?: ReactNode }): ReactNode {
  return createElement(ClientContext.Provider, { value: props.client }, props.children);
}

export interface UseRealtimeEventsOptions {
  subscriptions: readonly Filter[];
  /** Overrides the provider's client. */
  client?: RealtimeClient;
}

const SERVER_SNAPSHOT: ViewSnapshot = Object.freeze({ events: Object.freeze([]) as readonly ChainEvent[], isConnected: false });

/**
 * The events of `subscriptions`, merged in `seq` order with rolled-back ones removed, and
 * whether the client is connected. `events` is a new array only when the events change.
 */
export function useRealtimeEvents(options: UseRealtimeEventsOptions): ViewSnapshot {
  const fromContext = useContext(ClientContext);
  const client = options.client ?? fromContext;
  if (client === null) throw new Error('useRealtimeEvents: no client (wrap the tree in <RealtimeProvider client={…}>)');
  const key = options.subscriptions.map(filterKey).join('|');
  const store = useMemo(() => {
    const shared = sharedViews(client);
    const filters = options.subscriptions;
    return {
      subscribe: (onChange: () => void) => shared.listen(filters, onChange),
      getSnapshot: shared.snapshotReader(filters),
    };
    // The key stands for the filters: a new array of equal filters keeps the store.
  }, [client, key]);
  return useSyncExternalStore(store.subscribe, store.getSnapshot, () => SERVER_SNAPSHOT);
}

export interface ContractEventsOptions {
  eventType?: EventType;
  client?: RealtimeClient;
}

/** The events of one contract (optionally of one type). */
export function useContractEvents(contractId: string, options: ContractEventsOptions = {}): ViewSnapshot {
  const filter: Filter = options.eventType === undefined
    ? { type: 'contract', contractId }
    : { type: 'contract', contractId, eventType: options.eventType };
  return useRealtimeEvents(options.client === undefined ? { subscriptions: [filter] } : { subscriptions: [filter], client: options.client });
}

/** The events that touch one address (`affectedAddresses` contains it). */
export function useUserEvents(address: string, options: { client?: RealtimeClient } = {}): ViewSnapshot {
  const filter: Filter = { type: 'user', address };
  return useRealtimeEvents(options.client === undefined ? { subscriptions: [filter] } : { subscriptions: [filter], client: options.client });
}

export { useOfflineSync, useOptimisticOps } from './offline-react.js';
export type { OfflineSync } from './offline-react.js';

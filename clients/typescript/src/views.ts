import type { ConnectionState, RealtimeClient, Subscription } from './client.js';
import type { ChainEvent, Filter } from './types.js';

/** What a view of several filters shows: their events merged in `seq` order, and the connection. */
export interface ViewSnapshot {
  readonly events: readonly ChainEvent[];
  readonly isConnected: boolean;
}

/** A canonical key of a filter: equal filters share one server subscription. */
export function filterKey(filter: Filter): string {
  switch (filter.type) {
    case 'contract':
      return JSON.stringify(['contract', filter.contractId, filter.eventType ?? null]);
    case 'user':
      return JSON.stringify(['user', filter.address]);
    case 'event-type':
      return JSON.stringify(['event-type', filter.eventType]);
    case 'all':
      return JSON.stringify(['all']);
  }
}

interface Shared {
  sub: Subscription;
  listeners: number;
  releaseTimer: ReturnType<typeof setTimeout> | null;
}

const EMPTY: readonly ChainEvent[] = Object.freeze([]);

/**
 * Subscriptions of one client shared by key and counted by listener, the external store under
 * the React hooks. A server subscription opens with its first listener and closes a moment
 * (`releaseDelay`, default 0 ms: the next macrotask) after its last one leaves, so React
 * StrictMode's mount–unmount–mount, which runs within one task, keeps the one subscription
 * instead of closing and reopening it. Reading a snapshot never opens anything.
 */
export class SharedViews {
  private readonly shared = new Map<string, Shared>();

  constructor(readonly client: RealtimeClient, private readonly releaseDelay = 0) {}

  /** Server subscriptions currently held (for tests and diagnostics). */
  get size(): number {
    return this.shared.size;
  }

  /** Adds a listener to the subscriptions of `filters`; returns the function that removes it. */
  listen(filters: readonly Filter[], onChange: () => void): () => void {
    const keys = [...new Set(filters.map(filterKey))];
    const stops: Array<() => void> = [this.client.onStateChange(onChange)];
    for (const [i, key] of keys.entries()) {
      const filter = filters.find((f) => filterKey(f) === key) ?? filters[i];
      if (filter === undefined) continue;
      const entry = this.acquire(key, filter);
      const stopStore = entry.sub.store.subscribe(onChange);
      stops.push(() => {
        stopStore();
        this.releaseLater(key, entry);
      });
    }
    return () => {
      for (const stop of stops.splice(0)) stop();
    };
  }

  /** The current events of one filter (empty until a listener opened its subscription). */
  events(filter: Filter): readonly ChainEvent[] {
    return this.shared.get(filterKey(filter))?.sub.events ?? EMPTY;
  }

  /** Returns a function that reads the snapshot of `filters`, the same object until something changes. */
  snapshotReader(filters: readonly Filter[]): () => ViewSnapshot {
    const keys = [...new Set(filters.map(filterKey))];
    let parts: ReadonlyArray<readonly ChainEvent[]> = [];
    let last: ViewSnapshot = { events: EMPTY, isConnected: false };
    return () => {
      const isConnected = this.client.state === 'connected';
      const next = keys.map((key) => this.shared.get(key)?.sub.events ?? EMPTY);
      const same = next.length === parts.length && next.every((p, i) => p === parts[i]);
      if (same && isConnected === last.isConnected) return last;
      const events = same ? last.events : merge(next);
      parts = next;
      last = { events, isConnected };
      return last;
    };
  }

  private acquire(key: string, filter: Filter): Shared {
    let entry = this.shared.get(key);
    if (entry === undefined) {
      entry = { sub: this.client.subscribe(filter), listeners: 0, releaseTimer: null };
      this.shared.set(key, entry);
    }
    if (entry.releaseTimer !== null) {
      clearTimeout(entry.releaseTimer);
      entry.releaseTimer = null;
    }
    entry.listeners += 1;
    return entry;
  }

  private releaseLater(key: string, entry: Shared): void {
    entry.listeners -= 1;
    if (entry.listeners > 0 || entry.releaseTimer !== null) return;
    entry.releaseTimer = setTimeout(() => {
      entry.releaseTimer = null;
      if (entry.listeners > 0 || this.shared.get(key) !== entry) return;
      this.shared.delete(key);
      entry.sub.unsubscribe();
    }, this.releaseDelay);
  }
}

/** Merges per-filter event lists into one `seq`-ordered list; an event matching two filters shows once. */
function merge(parts: ReadonlyArray<readonly ChainEvent[]>): readonly ChainEvent[] {
  if (parts.length === 1) return parts[0] ?? EMPTY;
  const bySeq = new Map<number, ChainEvent>();
  for (const part of parts) for (const e of part) bySeq.set(e.seq, e);
  return Object.freeze([...bySeq.values()].sort((a, b) => a.seq - b.seq));
}

export type { ConnectionState };

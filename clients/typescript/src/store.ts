import type { ChainEvent, Rollback } from './types.js';

/** The number of events a store keeps by default; older ones are dropped first. */
export const DEFAULT_MAX_EVENTS = 1000;

type Listener = () => void;

/**
 * The events a view shows for one subscription, in `seq` order, without the rolled-back ones.
 *
 * The snapshot (`getSnapshot()`) is an immutable array replaced only when the events change,
 * so React's `useSyncExternalStore` re-renders exactly when something changed. It holds at
 * most `maxEvents` events: when a new one would exceed that, the oldest is dropped.
 */
export class EventStore {
  readonly maxEvents: number;
  private events: readonly ChainEvent[] = [];
  private cursor: number | null = null;
  private readonly listeners = new Set<Listener>();

  constructor(maxEvents: number = DEFAULT_MAX_EVENTS) {
    if (!Number.isInteger(maxEvents) || maxEvents < 1) {
      throw new RangeError(`maxEvents must be a positive integer, got ${maxEvents}`);
    }
    this.maxEvents = maxEvents;
  }

  /** The `seq` of the last entry applied (event or rollback), or null before the first. */
  get lastSeq(): number | null {
    return this.cursor;
  }

  getSnapshot = (): readonly ChainEvent[] => this.events;

  subscribe = (listener: Listener): (() => void) => {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  };

  /**
   * Applies an event. An entry at or below the last applied `seq` is refused (returns false):
   * the server never repeats one on a subscription, so this only guards the view.
   */
  applyEvent(event: ChainEvent): boolean {
    if (!this.advance(event.seq)) return false;
    const next = this.events.length >= this.maxEvents
      ? this.events.slice(this.events.length - this.maxEvents + 1)
      : this.events.slice();
    next.push(event);
    this.replace(next);
    return true;
  }

  /** Applies a rollback: the event it undoes leaves the view (if the view still holds it). */
  applyRollback(rollback: Rollback): boolean {
    if (!this.advance(rollback.seq)) return false;
    const index = this.events.findIndex((e) => e.seq === rollback.rollbackOf);
    if (index >= 0) {
      this.replace([...this.events.slice(0, index), ...this.events.slice(index + 1)]);
    }
    return true;
  }

  /** Moves the cursor without an entry (the handover `seq` of `subscribed`/`caught-up`). */
  markDelivered(seq: number): void {
    if (this.cursor === null || seq > this.cursor) this.cursor = seq;
  }

  private advance(seq: number): boolean {
    if (this.cursor !== null && seq <= this.cursor) return false;
    this.cursor = seq;
    return true;
  }

  private replace(next: readonly ChainEvent[]): void {
    this.events = Object.freeze(next) as readonly ChainEvent[];
    for (const listener of [...this.listeners]) listener();
  }
}

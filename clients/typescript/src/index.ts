export { RealtimeClient, Subscription, DEFAULTS } from './client.js';
export type {
  ConnectionState,
  Entry,
  RealtimeClientOptions,
  ServerError,
  SubscribeOptions,
  WebSocketConstructor,
  WebSocketLike,
} from './client.js';
export { EventStore, DEFAULT_MAX_EVENTS } from './store.js';
export { backoffDelay } from './backoff.js';
export { SharedViews, filterKey } from './views.js';
export type { ViewSnapshot } from './views.js';
export type { ChainEvent, EventType, Filter, Rollback, ServerFrame, Since } from './types.js';

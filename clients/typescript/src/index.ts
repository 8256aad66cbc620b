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
export type { OpAck, OpsFilter, OpStatusEntry } from './types.js';
export { Resolver, entityKind, jsonEq } from './ops/resolver.js';
export type { OpRecord } from './ops/resolver.js';
export type { Answer, Decision, Fields, OpReason, OpsInput, OpStatus, RejectDetail, ResolverConfig, Strategy, Tx } from './ops/types.js';
export { OpsChannel, OpError, OfflineError, MAX_IN_FLIGHT } from './ops/channel.js';
export type { OpMessage, OpsTransport } from './ops/channel.js';
export { signInWithWallet, fetchToken, tokenExpiry, httpBase, AuthError } from './auth.js';
export type { SignedIn, WalletSignature } from './auth.js';
export { OptimisticStateManager, getOptimisticStateManager } from './optimistic.js';
export type { OptimisticOp, OptimisticOptions, OptimisticValue, OpSender, Settlement } from './optimistic.js';
export { OfflineQueue, getOfflineQueue } from './offline.js';
export type { NewOp, OfflineQueueOptions, OfflineSnapshot, QueuedItem } from './offline.js';

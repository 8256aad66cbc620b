// Compiled by the type check only: the browser's WebSocket and the ws package's both fit the
// client's `WebSocket` option without a cast. (Nothing to run.)
import { WebSocket as WsSocket } from 'ws';
import type { RealtimeClientOptions } from '../src/client.js';

export const browser: RealtimeClientOptions = { url: 'ws://x/ws', WebSocket: globalThis.WebSocket };
export const node: RealtimeClientOptions = { url: 'ws://x/ws', WebSocket: WsSocket };

// The signed-in part of the console: its own connection, authenticated by
// {"type":"auth"} (so the token stays out of URLs and access logs), subscribed to the `ops`
// filter (protocol §4) and resumed from the last op-status `seq` after a reconnect.
import { backoffDelay } from '../src/index.js';

/** One op's state as an `op-status` frame carries it. */
export interface OpStatus {
  seq: number;
  opId: string;
  entity: string;
  kind: string;
  status: string;
  reason?: string | null;
  txHash?: string | null;
}

export interface OpsFeedHandlers {
  onStatus(text: string, isError: boolean): void;
  onAuthenticated(address: string): void;
  onOp(op: OpStatus): void;
}

type Frame =
  | { type: 'authenticated'; address: string; exp: number }
  | { type: 'op-status'; sub: string; op: OpStatus }
  | { type: 'caught-up'; sub: string; seq: number }
  | { type: 'resync'; sub: string; seq: number }
  | { type: 'error'; id?: string; code: string; message: string }
  | { type: string };

const SUB_ID = 'console-ops';

export class OpsFeed {
  private socket: WebSocket | null = null;
  private lastSeq = 0;
  private attempt = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private closed = false;
  private fatal = false;

  constructor(private readonly url: string, private readonly token: string, private readonly handlers: OpsFeedHandlers) {
    this.open();
  }

  close(): void {
    this.closed = true;
    if (this.timer !== null) clearTimeout(this.timer);
    const socket = this.socket;
    this.socket = null;
    socket?.close(1000, 'signed out');
  }

  private open(): void {
    if (this.closed) return;
    const socket = new WebSocket(this.url);
    this.socket = socket;
    this.handlers.onStatus('Signing in…', false);
    socket.onopen = () => {
      this.attempt = 0;
      socket.send(JSON.stringify({ type: 'auth', token: this.token }));
    };
    socket.onmessage = (ev: MessageEvent) => {
      if (this.socket !== socket || typeof ev.data !== 'string') return;
      let frame: Frame;
      try {
        frame = JSON.parse(ev.data) as Frame;
      } catch {
        return;
      }
      this.handle(socket, frame);
    };
    socket.onclose = () => {
      if (this.socket !== socket || this.closed || this.fatal) return;
      this.socket = null;
      this.handlers.onStatus('Connection lost; reconnecting…', true);
      this.timer = setTimeout(() => this.open(), backoffDelay(this.attempt++, 500, 20_000, Math.random));
    };
  }

  private handle(socket: WebSocket, frame: Frame): void {
    if (frame.type === 'authenticated' && 'address' in frame) {
      const until = new Date(frame.exp * 1000).toISOString().replace('.000Z', 'Z');
      this.handlers.onAuthenticated(frame.address);
      this.handlers.onStatus(`Signed in as ${frame.address} (until ${until}).`, false);
      socket.send(JSON.stringify({ type: 'subscribe', id: SUB_ID, filter: { type: 'ops' }, since: { seq: this.lastSeq } }));
    } else if (frame.type === 'op-status' && 'op' in frame) {
      if (frame.op.seq <= this.lastSeq) return;
      this.lastSeq = frame.op.seq;
      this.handlers.onOp(frame.op);
    } else if ((frame.type === 'caught-up' || frame.type === 'resync') && 'seq' in frame) {
      if (frame.seq > this.lastSeq) this.lastSeq = frame.seq;
      if (frame.type === 'resync') {
        socket.send(JSON.stringify({ type: 'subscribe', id: SUB_ID, filter: { type: 'ops' }, since: { seq: this.lastSeq } }));
      }
    } else if (frame.type === 'error' && 'code' in frame) {
      // A refused token or a server without the ops filter will not change by retrying.
      this.fatal = frame.code === 'unauthorized' || frame.code === 'invalid_filter';
      this.handlers.onStatus(`${frame.code}: ${frame.message}`, true);
      if (this.fatal) this.close();
    }
  }
}

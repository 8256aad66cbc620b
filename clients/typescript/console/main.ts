// The live console served by the server at /console: one subscription chosen by the filter
// form, the stream it delivers (rollbacks shown as such), the log's head, and the ops of a
// signed-in user. Plain DOM on top of the SDK's RealtimeClient, to stay small.
import { RealtimeClient } from '../src/index.js';
import type { ChainEvent, Entry, EventType, Filter, Rollback, Subscription } from '../src/index.js';
import { OpsFeed } from './ops-feed.js';
import type { OpStatus } from './ops-feed.js';

/** Rows kept in the stream table and in the ops table; older ones are removed first. */
const MAX_ROWS = 500;

const EVENT_TYPES: readonly EventType[] = [
  'print_event', 'contract_event', 'stx_transfer_event', 'stx_mint_event', 'stx_burn_event', 'stx_lock_event',
  'ft_transfer_event', 'ft_mint_event', 'ft_burn_event', 'nft_transfer_event', 'nft_mint_event', 'nft_burn_event',
  'data_var_set_event', 'data_map_insert_event', 'data_map_update_event', 'data_map_delete_event',
];

interface Criteria {
  contract: string;
  user: string;
  eventType: EventType | '';
  since: number | null;
}

function el<K extends keyof HTMLElementTagNameMap>(tag: K, text = '', className = ''): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (text !== '') node.textContent = text;
  if (className !== '') node.className = className;
  return node;
}

function byId<T extends HTMLElement>(id: string): T {
  const node = document.getElementById(id);
  if (node === null) throw new Error(`console: #${id} missing`);
  return node as T;
}

function short(hash: string): string {
  return hash.length > 14 ? `${hash.slice(0, 8)}…${hash.slice(-4)}` : hash;
}

/** `ST1PQH…GZGM` for an address, `ST1PQH…GZGM.name` for a contract. */
function principal(p: string): string {
  const dot = p.indexOf('.');
  const address = dot < 0 ? p : p.slice(0, dot);
  const shortened = address.length > 14 ? `${address.slice(0, 6)}…${address.slice(-4)}` : address;
  return dot < 0 ? shortened : shortened + p.slice(dot);
}

/** Data longer than this is cut in the table; the row's tooltip has all of it. */
const DATA_CHARS = 120;

/**
 * The server filter for the criteria, and what the console checks itself: the protocol's
 * filters do not combine, so the first of contract, user, event type goes to the server and
 * the others narrow what is shown.
 */
function serverFilter(c: Criteria): Filter {
  if (c.contract !== '') {
    return c.eventType === '' ? { type: 'contract', contractId: c.contract } : { type: 'contract', contractId: c.contract, eventType: c.eventType };
  }
  if (c.user !== '') return { type: 'user', address: c.user };
  if (c.eventType !== '') return { type: 'event-type', eventType: c.eventType };
  return { type: 'all' };
}

function shown(c: Criteria, e: { contractId: string | null; eventType: EventType; affectedAddresses: string[] }): boolean {
  return (c.contract === '' || e.contractId === c.contract)
    && (c.user === '' || e.affectedAddresses.includes(c.user))
    && (c.eventType === '' || e.eventType === c.eventType);
}

function readCriteria(form: HTMLFormElement): Criteria {
  const data = new FormData(form);
  const text = (name: string): string => String(data.get(name) ?? '').trim();
  const since = text('since');
  const eventType = text('eventType');
  return {
    contract: text('contract'),
    user: text('user'),
    eventType: (EVENT_TYPES as readonly string[]).includes(eventType) ? (eventType as EventType) : '',
    since: /^\d+$/.test(since) ? Number(since) : null,
  };
}

function writeCriteria(form: HTMLFormElement, params: URLSearchParams): void {
  for (const name of ['contract', 'user', 'eventType', 'since']) {
    const field = form.elements.namedItem(name);
    const value = params.get(name);
    if (value !== null && (field instanceof HTMLInputElement || field instanceof HTMLSelectElement)) field.value = value;
  }
}

class Stream {
  private readonly body: HTMLTableSectionElement;
  private readonly rows = new Map<number, HTMLTableRowElement>();
  private readonly count: HTMLElement;

  constructor(table: HTMLTableElement, count: HTMLElement) {
    this.body = table.tBodies[0] ?? table.createTBody();
    this.count = count;
  }

  clear(): void {
    this.body.replaceChildren();
    this.rows.clear();
    this.count.textContent = '0';
  }

  event(e: ChainEvent): void {
    const data = JSON.stringify(e.data);
    const row = this.row(e.seq, 'event', [
      String(e.blockHeight), e.eventType, principal(e.contractId ?? ''), short(e.txHash), e.affectedAddresses.map(principal).join(' '),
      data.length > DATA_CHARS ? `${data.slice(0, DATA_CHARS)}…` : data,
    ]);
    row.title = `block ${e.blockHash}, tx ${e.txHash} #${e.txIndex}/${e.eventIndex}${e.success ? '' : ' (failed tx)'}\n`
      + `contract ${e.contractId ?? '–'}\naddresses ${e.affectedAddresses.join(' ')}\n${data}`;
  }

  rollback(r: Rollback): void {
    this.row(r.seq, 'rollback', [
      String(r.blockHeight), 'rollback', principal(r.contractId ?? ''), short(r.txHash), r.affectedAddresses.map(principal).join(' '),
      `undoes #${r.rollbackOf} (${r.eventType})`,
    ]).dataset['rollbackOf'] = String(r.rollbackOf);
    const undone = this.rows.get(r.rollbackOf);
    if (undone !== undefined) {
      undone.classList.add('rolled-back');
      undone.title += `, rolled back by #${r.seq}`;
    }
  }

  private row(seq: number, kind: string, cells: string[]): HTMLTableRowElement {
    const tr = el('tr', '', kind);
    tr.dataset['seq'] = String(seq);
    tr.append(el('td', String(seq)));
    for (const [i, text] of cells.entries()) tr.append(el('td', text, i === 1 ? 'kind' : i === 5 ? 'data' : ''));
    this.body.prepend(tr);
    this.rows.set(seq, tr);
    while (this.rows.size > MAX_ROWS) {
      const oldest = this.body.lastElementChild;
      if (!(oldest instanceof HTMLTableRowElement)) break;
      this.rows.delete(Number(oldest.dataset['seq']));
      oldest.remove();
    }
    this.count.textContent = String(this.rows.size);
    return tr;
  }
}

/** Reads /api/head after changes: one request in flight, at most one more queued. */
class Head {
  private busy = false;
  private again = false;

  constructor(private readonly seq: HTMLElement, private readonly block: HTMLElement) {}

  refresh(): void {
    if (this.busy) {
      this.again = true;
      return;
    }
    this.busy = true;
    fetch('/api/head', { cache: 'no-store' })
      .then(async (res) => {
        if (!res.ok) return;
        const head = (await res.json()) as { headSeq: number; headBlockHeight: number | null; headBlockHash: string | null };
        this.seq.textContent = String(head.headSeq);
        this.block.textContent = head.headBlockHeight === null ? '–' : String(head.headBlockHeight);
        this.block.title = head.headBlockHash ?? '';
      })
      .catch(() => undefined)
      .finally(() => {
        this.busy = false;
        if (this.again) {
          this.again = false;
          this.refresh();
        }
      });
  }
}

function renderOp(body: HTMLTableSectionElement, rows: Map<string, HTMLTableRowElement>, op: OpStatus): void {
  let tr = rows.get(op.opId);
  if (tr === undefined) {
    tr = el('tr', '', 'op');
    tr.dataset['opId'] = op.opId;
    rows.set(op.opId, tr);
  }
  const status = op.reason === null || op.reason === undefined ? op.status : `${op.status} (${op.reason})`;
  tr.replaceChildren(
    el('td', String(op.seq)), el('td', short(op.opId)), el('td', op.kind), el('td', op.entity),
    el('td', status, `status-${op.status}`), el('td', op.txHash === null || op.txHash === undefined ? '' : short(op.txHash)),
  );
  tr.dataset['status'] = op.status;
  body.prepend(tr);
  while (rows.size > MAX_ROWS) {
    const oldest = body.lastElementChild;
    if (!(oldest instanceof HTMLTableRowElement)) break;
    rows.delete(oldest.dataset['opId'] ?? '');
    oldest.remove();
  }
}

function start(): void {
  const wsBase = `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}`;
  const client = new RealtimeClient({ url: `${wsBase}/ws` });
  const badge = byId<HTMLElement>('state');
  const head = new Head(byId('head-seq'), byId('head-block'));
  const stream = new Stream(byId<HTMLTableElement>('stream'), byId('count'));
  const note = byId<HTMLElement>('filter-note');
  const form = byId<HTMLFormElement>('filter');
  const select = form.elements.namedItem('eventType');
  if (select instanceof HTMLSelectElement) for (const t of EVENT_TYPES) select.append(new Option(t, t));

  const showState = (state: string): void => {
    badge.textContent = state;
    badge.dataset['state'] = state;
    if (state === 'connected') head.refresh();
  };
  client.onStateChange(showState);
  showState(client.state);

  let sub: Subscription | null = null;
  let stopEntries: (() => void) | null = null;
  const subscribe = (c: Criteria): void => {
    stopEntries?.();
    sub?.unsubscribe();
    stream.clear();
    const filter = serverFilter(c);
    sub = client.subscribe(filter, c.since === null ? {} : { since: { seq: c.since } });
    note.className = 'note';
    note.textContent = `Subscribed: ${JSON.stringify(filter)}${c.since === null ? ', live only' : `, since seq ${c.since}`}.`;
    stopEntries = sub.onEntry((entry: Entry) => {
      if (entry.kind === 'event') {
        if (shown(c, entry.event)) stream.event(entry.event);
      } else if (entry.kind === 'rollback' && shown(c, entry.rollback)) {
        stream.rollback(entry.rollback);
      }
      head.refresh();
    });
  };

  writeCriteria(form, new URLSearchParams(location.search));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const c = readCriteria(form);
    const params = new URLSearchParams();
    if (c.contract !== '') params.set('contract', c.contract);
    if (c.user !== '') params.set('user', c.user);
    if (c.eventType !== '') params.set('eventType', c.eventType);
    if (c.since !== null) params.set('since', String(c.since));
    const query = params.toString();
    history.replaceState(null, '', query === '' ? location.pathname : `?${query}`);
    subscribe(c);
  });
  subscribe(readCriteria(form));

  const opsBody = byId<HTMLTableElement>('ops').tBodies[0];
  const opsState = byId<HTMLElement>('ops-state');
  const opRows = new Map<string, HTMLTableRowElement>();
  let feed: OpsFeed | null = null;
  byId<HTMLFormElement>('signin').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const token = String(new FormData(ev.currentTarget as HTMLFormElement).get('token') ?? '').trim();
    feed?.close();
    delete opsState.dataset['address'];
    opRows.clear();
    opsBody?.replaceChildren();
    if (token === '') {
      opsState.textContent = 'Not signed in.';
      feed = null;
      return;
    }
    feed = new OpsFeed(`${wsBase}/ws`, token, {
      onStatus: (text, isError) => {
        opsState.textContent = text;
        opsState.className = isError ? 'note error' : 'note';
      },
      onAuthenticated: (address) => {
        opsState.dataset['address'] = address;
      },
      onOp: (op) => {
        if (opsBody !== undefined) renderOp(opsBody, opRows, op);
      },
    });
  });
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
else start();

// What the browser tests share: the real server binary on a free port over a fresh database
// (SQLite file in a temp folder, or a new PostgreSQL database when TEST_DATABASE_URL is set),
// the Chainhook fixtures of ../shared/fixtures posted through the webhook, and Debian's
// Chromium driven by playwright-core.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import type { Browser } from 'playwright-core';

const here = fileURLToPath(new URL('.', import.meta.url)); // build/test/browser/
export const packageDir = resolve(here, '..', '..', '..');
export const repoRoot = resolve(packageDir, '..', '..');
const BIN = process.env['TIMEBANK_BIN'] ?? resolve(repoRoot, 'target/debug/timebank-realtime');
const FIXTURES = resolve(repoRoot, '..', 'shared', 'fixtures', 'chainhook');
export const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';
export const SECRET = 'browser-test-secret';
export const JWT_SECRET = 'browser-test-jwt-secret-of-32-bytes-or-more';
export const DEADLINE_MS = 20_000;

/** Why these tests cannot run here, or null: they need the fixtures and the browser. */
export function skipReason(): string | false {
  if (!existsSync(FIXTURES)) return `${FIXTURES} not present (fresh clone without ../shared)`;
  if (!existsSync(CHROMIUM)) return `no browser at ${CHROMIUM} (Debian: apt-get install chromium)`;
  return false;
}

export interface Server {
  base: string;
  port: number;
  child: ChildProcess;
}

/** Starts `serve` on `databaseUrl`; `port` 0 picks a free one. Resolves once it listens. */
export function startServer(databaseUrl: string, port = 0): Promise<Server> {
  const child = spawn(BIN, ['serve'], {
    env: {
      ...process.env,
      BIND_ADDR: `127.0.0.1:${port}`,
      DATABASE_URL: databaseUrl,
      CHAINHOOK_WEBHOOK_SECRET: SECRET,
      AUTH_JWT_SECRET: JWT_SECRET,
      RUST_LOG: 'warn',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((done, fail) => {
    let out = '';
    const timer = setTimeout(() => fail(new Error(`server did not print its address: ${out}`)), DEADLINE_MS);
    child.on('error', fail);
    child.on('exit', (code) => fail(new Error(`server exited with ${code}: ${out}`)));
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const m = /listening on (http:\/\/[^\s]+)/.exec(out);
      if (m?.[1] !== undefined) {
        clearTimeout(timer);
        done({ base: m[1], port: Number(new URL(m[1]).port), child });
      }
    });
  });
}

/** Kills the server outright (no graceful shutdown) and waits for it to be gone. */
export function kill(server: Server): Promise<void> {
  return new Promise((done) => {
    if (server.child.exitCode !== null || server.child.signalCode !== null) return done();
    server.child.once('exit', () => done());
    server.child.kill('SIGKILL');
  });
}

/** A fixture payload, verbatim. */
export function fixture(name: string): string {
  return readFileSync(join(FIXTURES, name), 'utf8');
}

/** The reorg of a fixture: its blocks as `rollback`, nothing applied. */
export function rollbackOf(name: string): string {
  const payload = JSON.parse(fixture(name)) as Record<string, unknown>;
  payload['rollback'] = payload['apply'];
  payload['apply'] = [];
  return JSON.stringify(payload);
}

export async function post(base: string, body: string): Promise<Record<string, number>> {
  const res = await fetch(`${base}/api/webhooks/chainhook`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${SECRET}`, 'Content-Type': 'application/json' },
    body,
  });
  assert.equal(res.status, 200, await res.clone().text());
  return (await res.json()) as Record<string, number>;
}

export interface LoggedEvent {
  seq: number;
  txHash: string;
  blockHeight: number;
  rolledBack?: boolean;
}

/** Every event entry of the log in `seq` order, rolled back ones flagged. */
export async function loggedEvents(base: string): Promise<LoggedEvent[]> {
  const res = await fetch(`${base}/api/events?limit=1000`);
  assert.equal(res.status, 200);
  return ((await res.json()) as { events: LoggedEvent[] }).events;
}

export async function head(base: string): Promise<{ headSeq: number; headBlockHeight: number | null }> {
  return (await (await fetch(`${base}/api/head`)).json()) as { headSeq: number; headBlockHeight: number | null };
}

export interface Database {
  url: string;
  drop(): void;
}

/** A fresh SQLite file in a temp folder. */
export function sqliteDatabase(): Database {
  const dir = mkdtempSync(join(tmpdir(), 'timebank-browser-'));
  return { url: `sqlite://${join(dir, 'log.db')}`, drop: () => rmSync(dir, { recursive: true, force: true }) };
}

let pgCount = 0;
/** A new database on TEST_DATABASE_URL's server (dropped by `drop`), or null without one. */
export function postgresDatabase(): Database | null {
  const admin = process.env['TEST_DATABASE_URL'];
  if (admin === undefined || admin === '' || admin === 'throwaway') return null;
  const name = `timebank_browser_${process.pid}_${pgCount++}`;
  const psql = (sql: string): void => {
    execFileSync('psql', [admin, '-Atqc', sql], { stdio: ['ignore', 'ignore', 'inherit'] });
  };
  psql(`create database ${name}`);
  const url = new URL(admin);
  url.pathname = `/${name}`;
  return { url: url.toString(), drop: () => psql(`drop database if exists ${name} with (force)`) };
}

export function launch(): Promise<Browser> {
  // As root Chromium refuses its sandbox; these pages are the tests' own.
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
}

/** A client token (JWT HS256) for `address`, valid for an hour, signed with the server's key. */
export function clientToken(address: string): string {
  const b64 = (v: string | Buffer): string => Buffer.from(v).toString('base64url');
  const body = `${b64(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))}.${b64(JSON.stringify({ sub: address, exp: Math.floor(Date.now() / 1000) + 3600 }))}`;
  return `${body}.${b64(createHmac('sha256', JWT_SECRET).update(body).digest())}`;
}

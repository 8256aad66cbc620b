/**
 * Sign-in (PROTOCOL §4 Identity): a client token from the dApp's own backend, or from the
 * server's wallet challenge (`POST /api/auth/challenge`, then `POST /api/auth/verify` with the
 * wallet's signature of the message). Pass the token to `RealtimeClient` (`token` option or
 * `authenticate()`); it is sent as `auth` on every connection.
 */

/** A token the server issued: `sub` (the Stacks address) and `exp` (seconds) come back in the clear. */
export interface SignedIn {
  token: string;
  address: string;
  exp: number;
}

/** A wallet's signature of a message, as Stacks wallets return it (hex). */
export interface WalletSignature {
  signature: string;
  publicKey: string;
}

/** An HTTP answer other than 2xx: the server's error `code` and `message` where it sent them. */
export class AuthError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
    this.name = 'AuthError';
  }
}

type Fetch = typeof fetch;

async function postJson<T>(fetchImpl: Fetch, url: string, body: unknown): Promise<T> {
  const res = await fetchImpl(url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  const text = await res.text();
  let json: unknown = null;
  try {
    json = JSON.parse(text);
  } catch {
    // Reported below with the raw text.
  }
  if (!res.ok) {
    const e = (json as { error?: { code?: string; message?: string } } | null)?.error;
    throw new AuthError(res.status, e?.code ?? 'http_error', e?.message ?? (text || `HTTP ${res.status}`));
  }
  return json as T;
}

/** `http://host:port` (the server's base URL, no trailing slash), from a `ws(s)://…/ws` URL or an http one. */
export function httpBase(url: string): string {
  return url.replace(/^ws/, 'http').replace(/\/ws\/?(\?.*)?$/, '').replace(/\/$/, '');
}

/**
 * Signs in with a Stacks wallet: asks the server for a challenge for `address`, has `sign`
 * (the wallet: e.g. `@stacks/connect`'s signature request) sign its message, and exchanges
 * the signature for a client token.
 */
export async function signInWithWallet(
  serverUrl: string,
  address: string,
  sign: (message: string) => Promise<WalletSignature>,
  fetchImpl: Fetch = fetch,
): Promise<SignedIn> {
  const base = httpBase(serverUrl);
  const challenge = await postJson<{ message: string; nonce: string; expiresAt: string }>(fetchImpl, `${base}/api/auth/challenge`, { address });
  const signed = await sign(challenge.message);
  return postJson<SignedIn>(fetchImpl, `${base}/api/auth/verify`, { message: challenge.message, signature: signed.signature, publicKey: signed.publicKey });
}

/**
 * A token from the dApp's own backend (which signs it with the server's `AUTH_JWT_SECRET`):
 * GETs `url` with the page's cookies and reads `{"token"}` (or a plain-text token).
 */
export async function fetchToken(url: string, init: RequestInit = {}, fetchImpl: Fetch = fetch): Promise<string> {
  const res = await fetchImpl(url, { credentials: 'include', ...init });
  const text = (await res.text()).trim();
  if (!res.ok) throw new AuthError(res.status, 'http_error', text || `HTTP ${res.status}`);
  if (text.startsWith('{')) {
    const token = (JSON.parse(text) as { token?: unknown }).token;
    if (typeof token !== 'string') throw new AuthError(res.status, 'no_token', 'the answer has no "token" string');
    return token;
  }
  return text;
}

/** The `exp` (seconds) of a JWT, read without checking it (the server checks), or null. */
export function tokenExpiry(token: string): number | null {
  try {
    const part = token.split('.')[1] ?? '';
    const json = JSON.parse(atob(part.replace(/-/g, '+').replace(/_/g, '/'))) as { exp?: unknown };
    return typeof json.exp === 'number' ? json.exp : null;
  } catch {
    return null;
  }
}

// The MCP side of the suite: the official TypeScript SDK's client (@modelcontextprotocol/sdk),
// with a bearer token, or with its own OAuth support (OAuthClientProvider + auth()).

import * as crypto from 'node:crypto';

import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

import { authorize, CookieJar, HTTP_TIMEOUT_MS } from './browser.mjs';
import { SDK_REDIRECT_URL as REDIRECT_URL } from './provider.mjs';

export { StreamableHTTPError, UnauthorizedError };

export const CLIENT_INFO = { name: 'mcp-auth-interop', version: '1.0.0' };

/** SDK requests time out after this long. */
export const REQUEST_OPTIONS = { timeout: HTTP_TIMEOUT_MS };

/** A fetch that records every request, its answer's status and `WWW-Authenticate` header
 * (`challenge`), and the request's form body. */
export function recordingFetch(log) {
  return async (url, init = {}) => {
    const entry = { method: init.method ?? 'GET', url: String(url instanceof Request ? url.url : url) };
    if (typeof init.body === 'string' || init.body instanceof URLSearchParams) entry.body = String(init.body);
    log.push(entry);
    const response = await fetch(url, { ...init, signal: init.signal ?? AbortSignal.timeout(HTTP_TIMEOUT_MS) });
    entry.status = response.status;
    entry.challenge = response.headers.get('www-authenticate') ?? undefined;
    return response;
  };
}

/** The identity `whoami` returned (its structured content, or the JSON of its text). */
export function identityOf(result) {
  if (result.isError) throw new Error(`whoami failed: ${JSON.stringify(result.content)}`);
  if (result.structuredContent) return result.structuredContent;
  const text = result.content?.find((c) => c.type === 'text')?.text;
  if (!text) throw new Error(`whoami returned no identity: ${JSON.stringify(result)}`);
  return JSON.parse(text);
}

/** Connects, checks that `whoami` is listed, calls it, closes. Resolves to the identity. */
async function whoamiOver(transport) {
  const client = new Client(CLIENT_INFO);
  await client.connect(transport, REQUEST_OPTIONS);
  try {
    const { tools } = await client.listTools({}, REQUEST_OPTIONS);
    if (!tools.some((tool) => tool.name === 'whoami')) {
      throw new Error(`whoami is not among the tools: ${tools.map((t) => t.name).join(', ')}`);
    }
    const result = await client.callTool({ name: 'whoami', arguments: {} }, undefined, REQUEST_OPTIONS);
    return identityOf(result);
  } finally {
    await client.close().catch(() => {});
  }
}

/** The SDK's Streamable HTTP client with `Authorization: Bearer <token>` calls whoami. */
export function whoamiWithToken(mcpUrl, token) {
  const transport = new StreamableHTTPClientTransport(new URL(mcpUrl), {
    requestInit: { headers: { authorization: `Bearer ${token}` } },
  });
  return whoamiOver(transport);
}

/** Like whoamiWithToken, but expects the SDK to fail; resolves to the SDK's error. */
export async function sdkErrorWithToken(mcpUrl, token) {
  try {
    const identity = await whoamiWithToken(mcpUrl, token);
    throw Object.assign(new Error(`the call succeeded: ${JSON.stringify(identity)}`), { unexpectedSuccess: true });
  } catch (error) {
    if (error.unexpectedSuccess) throw error;
    return error;
  }
}

/** A raw MCP initialize POST (no SDK), to look at status and headers exactly. */
export async function rawInitialize(mcpUrl, token) {
  const headers = {
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    'mcp-protocol-version': '2025-06-18',
  };
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  const response = await fetch(mcpUrl, {
    method: 'POST',
    headers,
    body: JSON.stringify({
      jsonrpc: '2.0', id: 1, method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: CLIENT_INFO },
    }),
    signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
  });
  return { status: response.status, challenge: response.headers.get('www-authenticate'), body: await response.text() };
}

/** Parses a `Bearer k="v", k2=v2` challenge into { scheme, params }. */
export function parseChallenge(header) {
  if (!header) return undefined;
  const scheme = /^\s*([^\s,]+)/.exec(header)?.[1];
  const params = {};
  for (const m of header.slice(scheme.length).matchAll(/([!#$%&'*+.^_`|~0-9A-Za-z-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))/g)) {
    params[m[1].toLowerCase()] = m[2] !== undefined ? m[2].replace(/\\(.)/g, '$1') : m[3];
  }
  return { scheme, params };
}

/**
 * An in-memory OAuthClientProvider whose "browser" is ./browser.mjs: redirectToAuthorization
 * logs `user` in over HTTP (one cookie jar per provider, so a second authorization reuses the
 * provider's login session) and keeps the code for finishAuth.
 *
 * Options: `tokens` and `clientInformation` to start from; `clientName` and `grantTypes` for
 * dynamic registration; `keepRefreshToken: false` drops any refresh token saveTokens() is
 * given (the SDK then has to re-authorize rather than refresh).
 */
export class InteropOAuthProvider {
  constructor({
    user, tokens, clientInformation, clientName = 'mcp-auth interop (MCP TypeScript SDK)',
    grantTypes = ['authorization_code', 'refresh_token'], keepRefreshToken = true,
  }) {
    this.user = user;
    this._tokens = tokens;
    this._clientInformation = clientInformation;
    this._clientName = clientName;
    this._grantTypes = grantTypes;
    this._keepRefreshToken = keepRefreshToken;
    this._jar = new CookieJar();
    this.authorizationUrls = [];
    /** One entry per authorization the SDK started: { url, steps, code }. */
    this.authorizations = [];
    this.registered = undefined;
    this.pendingCode = undefined;
    this._state = undefined;
  }

  get redirectUrl() { return REDIRECT_URL; }

  get clientMetadata() {
    return {
      client_name: this._clientName,
      redirect_uris: [REDIRECT_URL],
      grant_types: this._grantTypes,
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }

  state() {
    this._state = crypto.randomBytes(16).toString('base64url');
    return this._state;
  }

  clientInformation() { return this._clientInformation; }

  saveClientInformation(information) {
    this.registered ??= information;
    this._clientInformation = information;
  }

  tokens() { return this._tokens; }

  saveTokens(tokens) {
    if (this._keepRefreshToken) {
      this._tokens = tokens;
    } else {
      const { refresh_token: _dropped, ...rest } = tokens;
      this._tokens = rest;
    }
  }

  /** Forgets the stored refresh token (the access token stays). */
  forgetRefreshToken() {
    if (!this._tokens) return;
    const { refresh_token: _dropped, ...rest } = this._tokens;
    this._tokens = rest;
  }

  saveCodeVerifier(verifier) { this._verifier = verifier; }

  codeVerifier() { return this._verifier; }

  async redirectToAuthorization(url) {
    this.authorizationUrls.push(url.href);
    const entry = { url: url.href, steps: [], code: undefined };
    this.authorizations.push(entry);
    const callback = await authorize(url.href, {
      user: this.user, redirectUri: REDIRECT_URL, steps: entry.steps, jar: this._jar,
    });
    if (callback.state !== this._state) throw new Error('the authorization response carries another state');
    entry.code = callback.code;
    this.pendingCode = callback.code;
  }
}

/**
 * The whole OAuth flow driven by the SDK, from a bare 401: connect without credentials; the SDK
 * discovers (protected-resource metadata, AS metadata), registers, and sends the user to the
 * authorization endpoint (our driver logs in); finishAuth exchanges the code; a new connection
 * calls whoami. Resolves to { identity, provider, log }.
 */
export async function oauthFlow(mcpUrl, { user }) {
  const log = [];
  const provider = new InteropOAuthProvider({ user });
  const options = { authProvider: provider, fetch: recordingFetch(log) };
  const first = new StreamableHTTPClientTransport(new URL(mcpUrl), options);
  const client = new Client(CLIENT_INFO);
  try {
    await client.connect(first, REQUEST_OPTIONS);
    throw new Error('connected without authorization');
  } catch (error) {
    if (!(error instanceof UnauthorizedError)) throw error;
  } finally {
    await client.close().catch(() => {});
  }
  if (!provider.pendingCode) throw new Error('the SDK did not send the user to the authorization endpoint');
  await first.finishAuth(provider.pendingCode);
  const identity = await whoamiOver(new StreamableHTTPClientTransport(new URL(mcpUrl), options));
  return { identity, provider, log };
}

/**
 * Step-up: the SDK starts with `tokens` (lacking the scope the server requires) for the
 * pre-registered `clientInformation`, gets 403 insufficient_scope, re-authorizes with the
 * challenge's scope, and calls whoami with the new token. Resolves to { identity, provider, log }.
 */
export async function stepUpFlow(mcpUrl, { user, tokens, clientInformation }) {
  const log = [];
  const provider = new InteropOAuthProvider({ user, tokens, clientInformation });
  const options = { authProvider: provider, fetch: recordingFetch(log) };
  const first = new StreamableHTTPClientTransport(new URL(mcpUrl), options);
  const client = new Client(CLIENT_INFO);
  try {
    await client.connect(first, REQUEST_OPTIONS);
    throw new Error('connected with a token that lacks the required scope');
  } catch (error) {
    if (!(error instanceof UnauthorizedError)) throw error;
  } finally {
    await client.close().catch(() => {});
  }
  if (!provider.pendingCode) throw new Error('the SDK did not re-authorize after the 403');
  await first.finishAuth(provider.pendingCode);
  const identity = await whoamiOver(new StreamableHTTPClientTransport(new URL(mcpUrl), options));
  return { identity, provider, log };
}

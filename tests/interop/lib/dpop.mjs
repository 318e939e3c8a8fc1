// The DPoP client side of the suite (RFC 9449): panva's `oauth4webapi` (npm), a client we did
// not write, builds every proof itself (`DPoP(client, keyPair)`, `generateKeyPair(alg)`).
//
// - obtainDpopTokens: authorization code + PKCE at node-oidc-provider, as the suite's other
//   token flows (./browser.mjs is the user agent), with a DPoP proof at the token endpoint and
//   `dpop_jkt` in the authorization request: the provider issues a DPoP-bound access token.
// - DpopMcpClient: MCP JSON-RPC over Streamable HTTP through oauth4webapi's
//   `protectedResourceRequest` (`Authorization: DPoP <token>` + a fresh `DPoP` proof per
//   request, or `Bearer` without a DPoP handle), recording exactly what was sent and answered.
//
// oauth4webapi does not retry by itself: on a `use_dpop_nonce` challenge it has already kept
// the `DPoP-Nonce` the server sent (per origin), throws, and the application retries once
// (`isDPoPNonceError`), as its documentation shows. The helpers here do that retry.

import * as crypto from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import * as oauth from 'oauth4webapi';

import { authorize, decodeJwt, HTTP_TIMEOUT_MS } from './browser.mjs';
import { APP_CLIENT } from './provider.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));

/** The oauth4webapi version installed (package-lock.json pins it); the PASS lines report it. */
export const OAUTH4WEBAPI_VERSION = JSON.parse(readFileSync(path.join(here, '..', 'node_modules', 'oauth4webapi', 'package.json'), 'utf8')).version;

/** The MCP protocol version the suite's raw requests announce (as ./mcp.mjs rawInitialize). */
export const PROTOCOL_VERSION = '2025-06-18';
const CLIENT_INFO = { name: 'mcp-auth-interop (oauth4webapi DPoP)', version: '1.0.0' };

/** Everything here talks plain HTTP on loopback: oauth4webapi refuses http:// without this. */
const INSECURE = { [oauth.allowInsecureRequests]: true };

/** A fetch for oauth4webapi's `customFetch` that records each request exactly as sent (the
 * headers object oauth4webapi built, so the `DPoP` proof and `Authorization`) and its answer. */
function recordingFetch(log) {
  return async (url, init) => {
    const entry = { url: String(url), method: init.method, headers: { ...init.headers }, body: init.body };
    log.push(entry);
    const response = await fetch(url, { ...init, signal: AbortSignal.timeout(HTTP_TIMEOUT_MS) });
    entry.status = response.status;
    entry.challenge = response.headers.get('www-authenticate') ?? undefined;
    entry.dpopNonce = response.headers.get('dpop-nonce') ?? undefined;
    return response;
  };
}

/** The decoded header and payload of a DPoP proof as sent. */
export function decodeProof(proof) {
  const jwt = decodeJwt(proof);
  if (!jwt) throw new Error(`not a JWT: ${proof}`);
  return jwt;
}

function handle(keyPair, proofAlg) {
  // oauth4webapi names the algorithm from the key (an Ed25519 key signs as `Ed25519`, the
  // RFC 9864 name); `proofAlg` renames it in the header (its `modifyAssertion` hook), e.g. the
  // older `EdDSA` for the same Ed25519 signature.
  const options = proofAlg ? { [oauth.modifyAssertion]: (header) => { header.alg = proofAlg; } } : undefined;
  return oauth.DPoP({ client_id: APP_CLIENT.client_id }, keyPair, options);
}

/**
 * A client key: an oauth4webapi DPoP handle over a fresh key pair of `alg` (ES256, ES384,
 * EdDSA for Ed25519, PS256, RS256, ...), optionally with the proofs' `alg` header renamed to
 * `proofAlg`; `extractable`: the private key can be exported (to hand it to a web page).
 * Returns { alg, keyPair, dpop, jkt } with jkt the RFC 7638 thumbprint oauth4webapi computes
 * for `dpop_jkt`.
 */
export async function newDpopKey(alg = 'ES256', { proofAlg, extractable = false } = {}) {
  const keyPair = await oauth.generateKeyPair(alg, { extractable });
  const dpop = handle(keyPair, proofAlg);
  return { alg, proofAlg, keyPair, dpop, jkt: await dpop.calculateThumbprint() };
}

/** The same key with a new oauth4webapi handle: a client instance that has seen no nonce. */
export function sameKeyNewHandle(key) {
  return { ...key, dpop: handle(key.keyPair, key.proofAlg) };
}

/** The RFC 7638 SHA-256 thumbprint of a public JWK (EC, RSA, OKP), computed here with
 * node:crypto: a check of oauth4webapi's and the provider's. */
export function thumbprint(jwk) {
  const members = { EC: ['crv', 'kty', 'x', 'y'], RSA: ['e', 'kty', 'n'], OKP: ['crv', 'kty', 'x'] }[jwk.kty];
  if (!members) throw new Error(`no RFC 7638 members for kty ${jwk.kty}`);
  const canonical = JSON.stringify(Object.fromEntries(members.map((m) => [m, jwk[m]])));
  return crypto.createHash('sha256').update(canonical).digest('base64url');
}

/** Runs `attempt` and, if it failed with oauth4webapi's use_dpop_nonce error (the handle has
 * kept the server's nonce by then), once more. `retries` (array) receives each nonce error. */
async function withNonceRetry(attempt, retries) {
  try {
    return await attempt();
  } catch (error) {
    if (!oauth.isDPoPNonceError(error)) throw error;
    retries.push(error);
    return attempt();
  }
}

/**
 * Logs `user` in with the confidential client `client` (authorization code + PKCE S256, the
 * provider's development pages driven by ./browser.mjs), binding the code to `key` with
 * `dpop_jkt` and proving the key at the token endpoint. Returns { tokens, as, authorizationUrl,
 * tokenRequest } where tokens is oauth4webapi's processed token response (token_type
 * lowercased) and tokenRequest what was sent (with the proof).
 */
export async function obtainDpopTokens(issuer, { user = 'alice', scope, resource, key, client = APP_CLIENT }) {
  const issuerUrl = new URL(issuer);
  const as = await oauth.processDiscoveryResponse(issuerUrl, await oauth.discoveryRequest(issuerUrl, { algorithm: 'oidc', ...INSECURE }));
  const oauthClient = { client_id: client.client_id };
  const redirectUri = client.redirect_uris[0];
  const verifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const url = new URL(as.authorization_endpoint);
  url.search = new URLSearchParams({
    client_id: client.client_id,
    response_type: 'code',
    redirect_uri: redirectUri,
    scope,
    state,
    code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    dpop_jkt: key.jkt,
    ...(resource ? { resource } : {}),
  }).toString();
  const callback = await authorize(url.href, { user, redirectUri });
  const params = oauth.validateAuthResponse(as, oauthClient, new URL(callback.url), state);
  const sent = [];
  const retries = [];
  const response = await withNonceRetry(async () => {
    const answer = await oauth.authorizationCodeGrantRequest(as, oauthClient, oauth.ClientSecretBasic(client.client_secret), params, redirectUri, verifier, {
      DPoP: key.dpop, additionalParameters: resource ? { resource } : undefined, [oauth.customFetch]: recordingFetch(sent), ...INSECURE,
    });
    return oauth.processAuthorizationCodeResponse(as, oauthClient, answer);
  }, retries);
  return { tokens: response, as, authorizationUrl: url.href, tokenRequest: sent.at(-1), nonceRetries: retries.length };
}

/** The JSON-RPC answer in a Streamable HTTP response body: JSON, or the `data:` of an SSE
 * event carrying the answer to `id`. */
function jsonRpcAnswer(contentType, text, id) {
  if (contentType?.startsWith('application/json')) return JSON.parse(text);
  if (contentType?.startsWith('text/event-stream')) {
    for (const event of text.split(/\r?\n\r?\n/)) {
      const data = event.split(/\r?\n/).filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trimStart()).join('\n');
      if (!data) continue;
      const message = JSON.parse(data);
      if (message.id === id) return message;
    }
  }
  throw new Error(`no JSON-RPC answer to id ${id} (content-type ${contentType}): ${text.slice(0, 300)}`);
}

/**
 * An MCP client whose every request goes through oauth4webapi's protectedResourceRequest: with
 * `key` (a newDpopKey) the scheme is DPoP and each request carries a fresh proof; without, the
 * token goes as Bearer. `sent` lists every request as sent and its answer (status, challenge,
 * DPoP-Nonce); `nonceRetries` the use_dpop_nonce errors retried.
 */
export class DpopMcpClient {
  #url;
  #token;
  #key;
  #nextId = 1;

  constructor(mcpUrl, accessToken, { key } = {}) {
    this.#url = new URL(mcpUrl);
    this.#token = accessToken;
    this.#key = key;
    this.sent = [];
    this.nonceRetries = [];
  }

  /** One POST of `message` (retried once on use_dpop_nonce). Resolves to { status, answer }
   * (answer: the JSON-RPC response, undefined for a notification's 202); rejects with
   * oauth4webapi's WWWAuthenticateChallengeError on a challenge (its `cause`: the parsed
   * challenges, its `response`: the answer). */
  async post(message) {
    const headers = {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-protocol-version': PROTOCOL_VERSION,
    };
    const options = { [oauth.customFetch]: recordingFetch(this.sent), ...INSECURE, ...(this.#key ? { DPoP: this.#key.dpop } : {}) };
    const response = await withNonceRetry(
      () => oauth.protectedResourceRequest(this.#token, 'POST', this.#url, headers, JSON.stringify(message), options),
      this.nonceRetries,
    );
    const text = await response.text();
    if (response.status === 202) return { status: 202, answer: undefined };
    if (response.status !== 200) throw new Error(`${message.method}: HTTP ${response.status} without a challenge: ${text.slice(0, 300)}`);
    return { status: 200, answer: jsonRpcAnswer(response.headers.get('content-type'), text, message.id) };
  }

  /** A JSON-RPC request; resolves to its result, throws on a JSON-RPC error. */
  async request(method, params) {
    const id = this.#nextId;
    this.#nextId += 1;
    const { answer } = await this.post({ jsonrpc: '2.0', id, method, params });
    if (answer.error) throw new Error(`${method}: JSON-RPC error ${JSON.stringify(answer.error)}`);
    return answer.result;
  }

  /** The MCP start: initialize, then notifications/initialized. */
  async initialize() {
    const result = await this.request('initialize', { protocolVersion: PROTOCOL_VERSION, capabilities: {}, clientInfo: CLIENT_INFO });
    await this.post({ jsonrpc: '2.0', method: 'notifications/initialized' });
    return result;
  }

  /** tools/call whoami; resolves to the identity (structured content). */
  async whoami() {
    const result = await this.request('tools/call', { name: 'whoami', arguments: {} });
    if (result.isError) throw new Error(`whoami failed: ${JSON.stringify(result.content)}`);
    return result.structuredContent ?? JSON.parse(result.content.find((c) => c.type === 'text').text);
  }
}

/** Sends a recorded request again, byte for byte (same headers, so the same DPoP proof), with
 * plain fetch. Resolves to { status, challenge, body }. */
export async function resend(entry) {
  const response = await fetch(entry.url, {
    method: entry.method, headers: entry.headers, body: entry.body, signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
  });
  return { status: response.status, challenge: response.headers.get('www-authenticate') ?? undefined, body: await response.text() };
}

/** A plain POST with no Authorization header. Resolves to { status, challenge, body }. */
export async function unauthenticatedPost(mcpUrl) {
  const response = await fetch(mcpUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': PROTOCOL_VERSION },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
    signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
  });
  return { status: response.status, challenge: response.headers.get('www-authenticate') ?? undefined, body: await response.text() };
}

const TOKEN = "[!#$%&'*+.^_`|~0-9A-Za-z-]+";

/**
 * Parses a WWW-Authenticate value with one or more challenges (RFC 9110 §11.6.1) into
 * [{ scheme (lower case), params }]. Throws on text it cannot read: a garbled header is a
 * failure, not an empty list.
 */
export function parseChallenges(header) {
  const challenges = [];
  let rest = header ?? '';
  const scheme = new RegExp(`^[\\s,]*(${TOKEN})(?=$|[\\s,])`);
  const param = new RegExp(`^[\\s,]*(${TOKEN})\\s*=\\s*(?:"((?:[^"\\\\]|\\\\.)*)"|(${TOKEN}))`);
  while (rest.trim().replace(/^[\s,]+/, '')) {
    const s = scheme.exec(rest);
    if (!s) throw new Error(`cannot parse WWW-Authenticate at ${JSON.stringify(rest)} (whole: ${header})`);
    rest = rest.slice(s[0].length);
    const params = {};
    for (let p = param.exec(rest); p; p = param.exec(rest)) {
      params[p[1].toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : p[3];
      rest = rest.slice(p[0].length);
    }
    challenges.push({ scheme: s[1].toLowerCase(), params });
  }
  return challenges;
}

// Step-up with the official MCP TypeScript SDK client (MCP "Scope Challenge Handling"): a tool
// that needs a scope the token lacks is refused with `403 insufficient_scope` and a `scope`
// naming what to ask for; the client authorizes again with that scope and calls again.
//
// What @modelcontextprotocol/sdk 1.32.2 does on that 403 (dist/esm/client/streamableHttp.js
// send(), dist/esm/client/auth.js authInternal()): it takes the challenge's `scope` and calls
// auth(). Without a refresh token, auth() starts a new authorization request for exactly that
// scope (provider.redirectToAuthorization) and returns 'REDIRECT', so send() throws
// UnauthorizedError: the application completes the authorization (transport.finishAuth(code))
// and repeats the call. With a refresh token, auth() refreshes instead (a refresh cannot widen
// the grant, RFC 6749 §6), the SDK sends the request again, meets the same 403 and throws
// "Server returned 403 after trying upscoping". The flows here presume neither: they record
// what the SDK did (`mode`) and the run's checks decide.

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

import {
  CLIENT_INFO, identityOf, InteropOAuthProvider, recordingFetch, REQUEST_OPTIONS, UnauthorizedError,
} from './mcp.mjs';
import { REFRESH_CLIENT_NAME } from './provider.mjs';

/** A new SDK client and transport for `mcpUrl`, authorized by `provider`, recording into `log`. */
function newConnection(mcpUrl, provider, log) {
  const transport = new StreamableHTTPClientTransport(new URL(mcpUrl), {
    authProvider: provider, fetch: recordingFetch(log),
  });
  return { client: new Client(CLIENT_INFO), transport };
}

/**
 * Connects the SDK client with OAuth. With usable stored tokens the first connection works;
 * otherwise the SDK meets the 401, discovers, registers and starts an authorization (our user
 * agent logs in), the application calls finishAuth and connects again.
 */
export async function connectWithOAuth(mcpUrl, provider, log) {
  const first = newConnection(mcpUrl, provider, log);
  try {
    await first.client.connect(first.transport, REQUEST_OPTIONS);
    return first;
  } catch (error) {
    await first.client.close().catch(() => {});
    if (!(error instanceof UnauthorizedError)) throw error;
  }
  if (!provider.pendingCode) throw new Error('the SDK did not send the user to the authorization endpoint');
  await first.transport.finishAuth(provider.pendingCode);
  provider.pendingCode = undefined;
  const second = newConnection(mcpUrl, provider, log);
  await second.client.connect(second.transport, REQUEST_OPTIONS);
  return second;
}

function callTool(client, name) {
  return client.callTool({ name, arguments: {} }, undefined, REQUEST_OPTIONS);
}

/** The form parameters of the token requests in `traffic` (the SDK's, through the log). */
function tokenRequests(traffic) {
  return traffic
    .filter((e) => e.method === 'POST' && e.body && new URLSearchParams(e.body).has('grant_type'))
    .map((e) => ({ url: e.url, status: e.status, params: new URLSearchParams(e.body) }));
}

/**
 * Calls `tool` once and, if the SDK answers a 403 by starting a new authorization and throwing
 * UnauthorizedError, completes it the way an application does (transport.finishAuth(code))
 * and calls again. Returns what happened:
 *
 * - `mode`: 'sdk' (the call succeeded after a 403 without the application's help: the SDK
 *   stepped up end to end), 'app' (the SDK started the authorization, the application finished
 *   it and repeated the call), 'none' (the SDK started no authorization; `error` is what the
 *   call threw), or 'no-403' (no refusal at all);
 * - `refusals`: the 403 answers to the MCP endpoint, with their `challenge`;
 * - `authorization`: the authorization the SDK started ({ url, steps, code }), if any;
 * - `tokenRequests`: the SDK's token requests ({ url, status, params });
 * - `result`: the tool's result (after the application's retry in mode 'app'); `error`.
 */
export async function callWithStepUp({ mcpUrl, client, transport, provider, log, tool }) {
  const mark = log.length;
  const started = provider.authorizations.length;
  const outcome = {};
  try {
    outcome.result = await callTool(client, tool);
  } catch (error) {
    outcome.error = error;
  }
  outcome.authorization = provider.authorizations[started];
  if (!outcome.error) {
    outcome.mode = log.slice(mark).some((e) => e.url === mcpUrl && e.status === 403) ? 'sdk' : 'no-403';
  } else if (outcome.error instanceof UnauthorizedError && outcome.authorization?.code) {
    outcome.mode = 'app';
    await transport.finishAuth(outcome.authorization.code);
    provider.pendingCode = undefined;
    outcome.result = await callTool(client, tool);
  } else {
    outcome.mode = 'none';
  }
  const traffic = log.slice(mark);
  outcome.refusals = traffic.filter((e) => e.url === mcpUrl && e.status === 403);
  outcome.tokenRequests = tokenRequests(traffic);
  return outcome;
}

/**
 * The SDK client, authorized from a bare 401 with the server's base scope, calls `whoami`,
 * then `tool` (which needs more: step-up), then `whoami` again if the tool call succeeded.
 * The client registers without the refresh_token grant and its provider drops refresh tokens,
 * so the SDK has to authorize again rather than refresh. Resolves to { provider, log, before,
 * stepUp (see callWithStepUp), after, tokens }.
 */
export async function toolStepUpFlow(mcpUrl, { user, tool }) {
  const log = [];
  const provider = new InteropOAuthProvider({ user, grantTypes: ['authorization_code'], keepRefreshToken: false });
  const { client, transport } = await connectWithOAuth(mcpUrl, provider, log);
  try {
    const before = identityOf(await callTool(client, 'whoami'));
    const stepUp = await callWithStepUp({ mcpUrl, client, transport, provider, log, tool });
    const after = stepUp.result && !stepUp.result.isError ? identityOf(await callTool(client, 'whoami')) : undefined;
    return { provider, log, before, stepUp, after, tokens: provider.tokens() };
  } finally {
    await client.close().catch(() => {});
  }
}

/**
 * Step-up while the SDK holds a refresh token (its client registered as REFRESH_CLIENT_NAME
 * with the refresh_token grant, so the provider issues one). Then the application's way out:
 * forget the refresh token and call again, first on the same connection (the transport
 * remembers the challenge it already tried), then on a new one. Resolves to { provider,
 * firstTokens, withRefresh, sameTransport, newTransport } (the last three: callWithStepUp's
 * outcomes; `newTransport` is undefined when `sameTransport` already succeeded).
 */
export async function refreshTokenStepUpFlow(mcpUrl, { user, tool }) {
  const log = [];
  const provider = new InteropOAuthProvider({ user, clientName: REFRESH_CLIENT_NAME });
  const first = await connectWithOAuth(mcpUrl, provider, log);
  const firstTokens = provider.tokens();
  let second;
  try {
    const withRefresh = await callWithStepUp({ mcpUrl, ...first, provider, log, tool });
    provider.forgetRefreshToken();
    const sameTransport = await callWithStepUp({ mcpUrl, ...first, provider, log, tool });
    let newTransport;
    if (sameTransport.error) {
      second = await connectWithOAuth(mcpUrl, provider, log);
      newTransport = await callWithStepUp({ mcpUrl, ...second, provider, log, tool });
    }
    return { provider, log, firstTokens, withRefresh, sameTransport, newTransport, tokens: provider.tokens() };
  } finally {
    await first.client.close().catch(() => {});
    await second?.client.close().catch(() => {});
  }
}

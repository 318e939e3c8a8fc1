// The interop suite: mcp-auth's whoami examples (axum, actix-web, hyper) protected against
// node-oidc-provider, called by the official MCP TypeScript SDK (and, for DPoP, by oauth4webapi).
// Start it with ./run.sh (which installs and builds first); this file expects `npm ci` and
// `cargo build --examples` done.
//
// Environment: INTEROP_TARGET_DIR (cargo's target directory; default ../../target),
// INTEROP_ALGS (default "RS256,ES256"), INTEROP_PID_FILE (PIDs of the servers started, for
// run.sh's cleanup), INTEROP_INSPECTOR (0: no browser cases; only: just them), INTEROP_DPOP
// (0: no DPoP cases; only: just them; lib/dpopsuite.mjs). Prints one PASS/FAIL line per check
// and ends with `N passed, M failed`.

import * as assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

import { decodeJwt, introspect, obtainTokens, revoke } from './lib/browser.mjs';
import {
  oauthFlow, parseChallenge, rawInitialize, sdkErrorWithToken, stepUpFlow, StreamableHTTPError, whoamiWithToken,
} from './lib/mcp.mjs';
import {
  ACCESS_TOKEN_TYPE, ADMIN_SCOPE, APP_CLIENT, CLOCK_TOLERANCE, DOWNSTREAM_RESOURCE, DOWNSTREAM_SCOPE, EXCHANGE_CLIENT, OTHER_SCOPE,
  REQUIRED_SCOPE, RESOURCE_SERVER_CLIENT, SDK_CLIENT, SHORT_TTL, SHORT_TTL_CLIENT, startProvider, USERS,
} from './lib/provider.mjs';
import { Report } from './lib/report.mjs';
import { runDpopSuite } from './lib/dpopsuite.mjs';
import { runInspectorSuite } from './lib/inspector.mjs';
import { binaryPath, killAllNow, startServer, stopAll } from './lib/servers.mjs';
import { refreshTokenStepUpFlow, toolStepUpFlow } from './lib/stepup.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const targetDir = process.env.INTEROP_TARGET_DIR || path.resolve(here, '..', '..', 'target');
const algs = (process.env.INTEROP_ALGS || 'RS256,ES256').split(',').map((a) => a.trim()).filter(Boolean);
const pidFile = process.env.INTEROP_PID_FILE;
/** The MCP SDK version installed (package-lock.json pins it); the step-up checks report it. */
const SDK_VERSION = JSON.parse(readFileSync(path.join(here, 'node_modules', '@modelcontextprotocol', 'sdk', 'package.json'), 'utf8')).version;

/** What our verifiers default to (src/verify/jwt.rs DEFAULT_LEEWAY, cache.rs DEFAULT_TTL, and
 * DEFAULT_JWKS_REFRESH_COOLDOWN): the waits of the slow cases follow from them. */
const JWT_LEEWAY_S = 60;
const CACHE_TTL_S = 60;
const JWKS_REFRESH_COOLDOWN_S = 30;

/** Resources that are not ours: their tokens must be refused. */
const OTHER_JWT_RESOURCE = 'https://other.example/mcp';
const OTHER_OPAQUE_RESOURCE = 'https://other-opaque.example/mcp';

const report = new Report();

// ---------------------------------------------------------------------------------------------
// Assertions

/** The identity whoami returned is `user`'s, as the provider knows them. */
function assertIdentity(identity, user, { issuer, resource, clientId, scope }) {
  const expected = USERS[user];
  assert.equal(identity.sub, user, 'sub');
  assert.equal(identity.name, expected.name, 'name (from the provider account)');
  assert.equal(identity.email, expected.email, 'email (from the provider account)');
  assert.equal(identity.username, expected.username, 'username (from the provider account)');
  assert.equal(identity.issuer, issuer, 'issuer');
  if (resource) assert.deepEqual(identity.audience, [resource], 'audience');
  if (clientId) assert.equal(identity.client_id, clientId, 'client_id');
  if (scope) assert.ok(identity.scopes.includes(scope), `scopes ${JSON.stringify(identity.scopes)} include ${scope}`);
}

/** A raw answer is `status` with a Bearer challenge carrying `error` (or none), our metadata URL,
 * and (spec checklist CH-04, CH-09) the scopes the server requires, if it requires any. */
function assertChallenge(answer, { status, error, server }) {
  assert.equal(answer.status, status, `status (body: ${answer.body})`);
  const challenge = parseChallenge(answer.challenge);
  assert.ok(challenge, 'a WWW-Authenticate header');
  assert.equal(challenge.scheme.toLowerCase(), 'bearer', 'challenge scheme');
  assert.equal(challenge.params.error, error, `error in ${answer.challenge}`);
  assert.equal(challenge.params.resource_metadata, server.metadataUrl, 'resource_metadata');
  const scopes = challenge.params.scope?.split(' ') ?? [];
  for (const scope of server.requiredScopes) {
    assert.ok(scopes.includes(scope), `scope ${scope} in ${answer.challenge}`);
  }
}

/** The SDK failed the way a 401/403 from the server makes it fail. */
function assertSdkStatus(error, status) {
  assert.ok(error instanceof StreamableHTTPError, `the SDK reports a StreamableHTTPError, got ${error?.stack ?? error}`);
  assert.equal(error.code, status, `the SDK reports HTTP ${status}: ${error.message}`);
}

/** An access token issued for `resource` as RFC 9068 JWT, signed with `alg`. */
function assertJwtAccessToken(token, { alg, resource, provider }) {
  const jwt = decodeJwt(token);
  assert.ok(jwt, 'the access token is a JWT');
  assert.equal(jwt.header.typ, 'at+jwt', 'typ');
  assert.equal(jwt.header.alg, alg, 'alg');
  assert.equal(jwt.header.kid, provider.accessTokenKid, 'kid');
  assert.equal(jwt.payload.aud, resource, 'aud');
  return jwt;
}

function assertOpaque(token) {
  assert.equal(decodeJwt(token), undefined, 'the access token is opaque');
}

/** The SDK's OAuth traffic went: 401 → PRM → AS metadata → registration → token (with resource). */
function assertDiscoveryTraffic(log, { server, provider, resource }) {
  const index = (predicate, what, after = -1) => {
    const found = log.findIndex((entry, i) => i > after && predicate(entry));
    assert.ok(found > after, `${what} after step ${after}: ${log.map((e) => `${e.method} ${e.url} ${e.status}`).join(' | ')}`);
    return found;
  };
  const first401 = index((e) => e.url === server.mcpUrl && e.status === 401, 'the bare 401 from the MCP server');
  const prm = index((e) => e.method === 'GET' && e.url === server.metadataUrl && e.status === 200, 'protected-resource metadata', first401);
  const asm = index((e) => e.method === 'GET' && e.url.startsWith(`${provider.issuer}/.well-known/`) && e.status === 200, 'AS metadata', prm);
  const reg = index((e) => e.method === 'POST' && e.url === `${provider.issuer}/reg` && e.status === 201, 'dynamic registration', asm);
  const token = index((e) => e.method === 'POST' && e.url === `${provider.issuer}/token` && e.status === 200, 'token request', reg);
  const params = new URLSearchParams(log[token].body);
  assert.equal(params.get('grant_type'), 'authorization_code');
  assert.equal(params.get('resource'), resource, 'resource in the token request');
  assert.ok(params.get('code_verifier'), 'PKCE code_verifier in the token request');
  index((e) => e.url === server.mcpUrl && e.status === 200, 'an authorized MCP request', token);
}

/** The authorization request carried PKCE S256, the resource and the scope. */
function assertAuthorizationRequest(url, { resource, scope }) {
  const params = new URL(url).searchParams;
  assert.equal(params.get('code_challenge_method'), 'S256', 'PKCE S256');
  assert.ok(params.get('code_challenge'), 'code_challenge');
  assert.equal(params.get('resource'), resource, 'resource in the authorization request');
  if (scope) assert.ok(params.get('scope')?.split(' ').includes(scope), `scope ${params.get('scope')} includes ${scope}`);
}

/** A recorded 403 answer carries the step-up challenge: `insufficient_scope`, our metadata URL,
 * and a `scope` naming exactly `scopes` (any order). Returns the parsed challenge. */
function assertStepUpChallenge(refusal, { server, scopes }) {
  const challenge = parseChallenge(refusal?.challenge);
  assert.ok(challenge, `a WWW-Authenticate header on the 403: ${JSON.stringify(refusal)}`);
  assert.equal(challenge.scheme.toLowerCase(), 'bearer', 'challenge scheme');
  assert.equal(challenge.params.error, 'insufficient_scope', `error in ${refusal.challenge}`);
  assert.equal(challenge.params.resource_metadata, server.metadataUrl, 'resource_metadata');
  const named = challenge.params.scope?.split(' ') ?? [];
  assert.deepEqual([...named].sort(), [...scopes].sort(), `scope in ${refusal.challenge}`);
  assert.equal(new Set(named).size, named.length, `no repeated scope in ${refusal.challenge}`);
  return challenge;
}

/** How the user agent went through an authorization: login and/or consent pages. */
function describeAuthorization(authorization) {
  const posted = (prompt) => authorization.steps.some((s) => s.includes(`(${prompt})`));
  const login = posted('login') ? 'login' : 'no login (provider session reused)';
  return `${login}, ${posted('consent') ? 'consent' : 'no consent page'}`;
}

async function sleepUntil(epochMs) {
  const wait = epochMs - Date.now();
  if (wait > 0) await sleep(wait);
}

/** Runs examples/token_exchange_probe.rs (the crate's TokenExchange) against the provider;
 * resolves with the JSON line it prints. */
function runProbe({ issuer, subjectToken, mcpResource }) {
  const env = {
    ...process.env,
    RUST_LOG: 'warn',
    PROBE_ISSUER: issuer,
    PROBE_CLIENT_ID: EXCHANGE_CLIENT.client_id,
    PROBE_CLIENT_SECRET: EXCHANGE_CLIENT.client_secret,
    PROBE_SUBJECT_TOKEN: subjectToken,
    PROBE_RESOURCE: DOWNSTREAM_RESOURCE,
    PROBE_SCOPE: DOWNSTREAM_SCOPE,
    PROBE_MCP_RESOURCE: mcpResource,
  };
  return new Promise((resolve, reject) => {
    execFile(binaryPath(targetDir, 'token_exchange_probe'), [], { env, timeout: 30_000 }, (error, stdout, stderr) => {
      if (error) {
        reject(new Error(`token_exchange_probe: ${error.message}\n${stderr}`));
        return;
      }
      try {
        resolve(JSON.parse(stdout.trim().split('\n').pop()));
      } catch (parseError) {
        reject(new Error(`token_exchange_probe printed no JSON line: ${stdout}\n${stderr}`));
      }
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Set-up

const EXAMPLES = { axum: 'whoami', actix: 'whoami_actix', hyper: 'whoami_hyper' };

async function setUp(alg) {
  const provider = await startProvider({ alg });
  const rotationProvider = await startProvider({ alg });
  const ctx = { alg, provider, rotationProvider, servers: {} };
  const jwtEnv = (issuer) => ({ MCP_AUTH_ISSUER: issuer, MCP_AUTH_VERIFIER: 'jwt', MCP_AUTH_REQUIRED_SCOPES: REQUIRED_SCOPE });
  const specs = {
    axum: { example: EXAMPLES.axum, env: jwtEnv(provider.issuer) },
    actix: { example: EXAMPLES.actix, env: jwtEnv(provider.issuer) },
    hyper: { example: EXAMPLES.hyper, env: jwtEnv(provider.issuer) },
    userinfo: { example: EXAMPLES.axum, env: { MCP_AUTH_ISSUER: provider.issuer, MCP_AUTH_VERIFIER: 'userinfo' } },
    introspection: {
      example: EXAMPLES.axum,
      env: {
        MCP_AUTH_ISSUER: provider.issuer,
        MCP_AUTH_VERIFIER: 'introspection',
        MCP_AUTH_CLIENT_ID: RESOURCE_SERVER_CLIENT.client_id,
        MCP_AUTH_CLIENT_SECRET: RESOURCE_SERVER_CLIENT.client_secret,
        MCP_AUTH_REQUIRED_SCOPES: REQUIRED_SCOPE,
      },
    },
    rotation: { example: EXAMPLES.axum, env: jwtEnv(rotationProvider.issuer) },
  };
  const started = await Promise.allSettled(Object.entries(specs).map(async ([key, spec]) => {
    ctx.servers[key] = await startServer({
      name: `[${alg}] ${key}`, binary: binaryPath(targetDir, spec.example), env: spec.env, pidFile,
    });
  }));
  const failure = started.find((s) => s.status === 'rejected');
  if (failure) throw failure.reason;
  // ADMIN_SCOPE: what the examples' `secret` tool needs on top (the step-up checks).
  const scope = `${REQUIRED_SCOPE} ${OTHER_SCOPE} ${ADMIN_SCOPE}`;
  for (const key of ['axum', 'actix', 'hyper']) provider.addResource(ctx.servers[key].resource, { format: 'jwt', scope });
  provider.addResource(ctx.servers.introspection.resource, { format: 'opaque', scope });
  provider.addResource(OTHER_JWT_RESOURCE, { format: 'jwt', scope });
  provider.addResource(OTHER_OPAQUE_RESOURCE, { format: 'opaque', scope });
  provider.addResource(DOWNSTREAM_RESOURCE, { format: 'jwt', scope: DOWNSTREAM_SCOPE });
  rotationProvider.addResource(ctx.servers.rotation.resource, { format: 'jwt', scope });
  return ctx;
}

// ---------------------------------------------------------------------------------------------
// The cases

/** The cases: { name, fn (async, throws on failure), slow, timeoutMs, context }. Slow ones wait
 * on clocks and run alongside the others. */
function cases(ctx) {
  const { alg, provider } = ctx;
  const { issuer } = provider;
  const list = [];
  // `server`: the server the case talks to; its log is printed if the case fails.
  const add = (name, fn, { server, ...options } = {}) => list.push({
    name: `[${alg}] ${name}`, fn, context: server && (() => server.stderrTail()), ...options,
  });
  const identityScope = `openid profile email ${REQUIRED_SCOPE}`;

  for (const stack of ['axum', 'actix', 'hyper']) {
    const server = ctx.servers[stack];
    const resource = server.resource;
    const tag = `jwt/${stack}`;
    const addHere = (name, fn, options = {}) => add(name, fn, { server, ...options });

    addHere(`${tag}: no token -> 401, challenge points to the resource metadata, which names the provider`, async () => {
      assert.deepEqual(server.requiredScopes, [REQUIRED_SCOPE], 'the banner lists the required scope');
      assertChallenge(await rawInitialize(server.mcpUrl), { status: 401, error: undefined, server });
      const response = await fetch(server.metadataUrl, { signal: AbortSignal.timeout(10_000) });
      assert.equal(response.status, 200);
      const metadata = await response.json();
      assert.equal(metadata.resource, resource);
      assert.deepEqual(metadata.authorization_servers, [issuer]);
      assert.deepEqual(metadata.scopes_supported, [REQUIRED_SCOPE]);
    });

    addHere(`${tag}: token flow (SDK client, bearer token) -> whoami returns alice from the provider`, async () => {
      const tokens = await obtainTokens(issuer, { user: 'alice', scope: identityScope, resource });
      assertJwtAccessToken(tokens.access_token, { alg, resource, provider });
      const identity = await whoamiWithToken(server.mcpUrl, tokens.access_token);
      assertIdentity(identity, 'alice', { issuer, resource, clientId: APP_CLIENT.client_id, scope: REQUIRED_SCOPE });
    });

    addHere(`${tag}: OAuth discovery flow (SDK OAuthClientProvider + auth(), from a bare 401) -> whoami returns alice`, async () => {
      const { identity, provider: sdk, log } = await oauthFlow(server.mcpUrl, { user: 'alice' });
      assert.ok(sdk.registered?.client_id, 'the SDK registered a client dynamically');
      assertIdentity(identity, 'alice', { issuer, resource, clientId: sdk.registered.client_id, scope: REQUIRED_SCOPE });
      assert.equal(sdk.authorizationUrls.length, 1, 'one authorization');
      assertAuthorizationRequest(sdk.authorizationUrls[0], { resource, scope: REQUIRED_SCOPE });
      assertDiscoveryTraffic(log, { server, provider, resource });
      assertJwtAccessToken(sdk.tokens().access_token, { alg, resource, provider });
    });

    addHere(`${tag}: provider token for another resource -> 401 invalid_token (SDK reports 401)`, async () => {
      const tokens = await obtainTokens(issuer, { user: 'alice', scope: REQUIRED_SCOPE, resource: OTHER_JWT_RESOURCE });
      assertJwtAccessToken(tokens.access_token, { alg, resource: OTHER_JWT_RESOURCE, provider });
      assertChallenge(await rawInitialize(server.mcpUrl, tokens.access_token), { status: 401, error: 'invalid_token', server });
      assertSdkStatus(await sdkErrorWithToken(server.mcpUrl, tokens.access_token), 401);
    });

    addHere(`${tag}: token without the required scope -> 403 insufficient_scope (SDK reports 403)`, async () => {
      const tokens = await obtainTokens(issuer, { user: 'alice', scope: OTHER_SCOPE, resource });
      assert.equal(decodeJwt(tokens.access_token).payload.scope, OTHER_SCOPE);
      assertChallenge(await rawInitialize(server.mcpUrl, tokens.access_token), { status: 403, error: 'insufficient_scope', server });
      const error = await sdkErrorWithToken(server.mcpUrl, tokens.access_token);
      assertSdkStatus(error, 403);
      assert.match(error.message, /insufficient_scope/);
    });

    addHere(`${tag}: per-tool step-up (SDK): secret with ${REQUIRED_SCOPE} -> 403 insufficient_scope scope="${REQUIRED_SCOPE} ${ADMIN_SCOPE}", re-authorization with that scope, the retried call succeeds`, async () => {
      const { provider: sdk, before, stepUp, after, tokens } = await toolStepUpFlow(server.mcpUrl, { user: 'alice', tool: 'secret' });
      // The first authorization: the base scope, from the bare 401.
      assertAuthorizationRequest(sdk.authorizations[0].url, { resource, scope: REQUIRED_SCOPE });
      assert.deepEqual(before.scopes, [REQUIRED_SCOPE], 'whoami before the step-up: the base scope only');
      // The refusal, as the SDK received it.
      assert.ok(stepUp.refusals.length >= 1, `a 403 for tools/call secret (mode ${stepUp.mode}, error ${stepUp.error})`);
      const challenge = assertStepUpChallenge(stepUp.refusals[0], { server, scopes: [REQUIRED_SCOPE, ADMIN_SCOPE] });
      // What the SDK did with it.
      assert.ok(stepUp.mode === 'app' || stepUp.mode === 'sdk',
        `SDK ${SDK_VERSION} started no new authorization after the 403 (mode ${stepUp.mode}): ${stepUp.error?.stack ?? stepUp.error}`);
      assert.equal(sdk.authorizations.length, 2, 'one new authorization after the 403');
      const { authorization } = stepUp;
      const requested = new URL(authorization.url).searchParams.get('scope');
      assert.equal(requested, challenge.params.scope, 'the new authorization asks for exactly the challenged scope');
      assertAuthorizationRequest(authorization.url, { resource, scope: ADMIN_SCOPE });
      const exchange = stepUp.tokenRequests.filter((t) => t.params.get('grant_type') === 'authorization_code');
      assert.equal(exchange.length, 1, `one code exchange: ${JSON.stringify(stepUp.tokenRequests.map((t) => t.params.get('grant_type')))}`);
      assert.equal(exchange[0].status, 200, 'token endpoint status');
      assert.equal(exchange[0].params.get('resource'), resource, 'resource in the token request');
      const { payload } = assertJwtAccessToken(tokens.access_token, { alg, resource, provider });
      assert.deepEqual(payload.scope.split(' ').sort(), [ADMIN_SCOPE, REQUIRED_SCOPE].sort(), 'the new token\'s scope');
      assert.equal(tokens.refresh_token, undefined, 'no refresh token kept');
      // The retried call, and the base scope kept.
      assert.ok(stepUp.result && !stepUp.result.isError, `secret after the step-up: ${JSON.stringify(stepUp.result)}`);
      const secret = stepUp.result.structuredContent;
      assert.equal(secret?.sub, 'alice', `secret's sub: ${JSON.stringify(secret)}`);
      assert.ok(secret.scopes.includes(ADMIN_SCOPE) && secret.scopes.includes(REQUIRED_SCOPE), `secret's scopes ${JSON.stringify(secret.scopes)}`);
      assert.ok(after.scopes.includes(REQUIRED_SCOPE), `whoami after the step-up keeps ${REQUIRED_SCOPE}: ${JSON.stringify(after.scopes)}`);
      assertIdentity(after, 'alice', { issuer, resource, clientId: sdk.registered?.client_id, scope: ADMIN_SCOPE });
      const who = stepUp.mode === 'app'
        ? 'the SDK started the new authorization itself and threw UnauthorizedError; the test completed it '
          + `(user agent: ${describeAuthorization(authorization)}; transport.finishAuth(code)) and retried tools/call`
        : 'the SDK performed the step-up by itself (new authorization, code exchange and retried tools/call)';
      return `SDK ${SDK_VERSION}: 403 scope="${challenge.params.scope}" -> ${who}; `
        + `authorization scope="${requested}"; new token scope="${payload.scope}"; retried secret -> sub ${secret.sub}`;
    });
  }

  {
    const server = ctx.servers.axum;
    const { resource } = server;
    const addHere = (name, fn, options = {}) => add(name, fn, { server, ...options });

    addHere('jwt/axum: whoami follows the logged-in user (bob, not a fixed identity)', async () => {
      const tokens = await obtainTokens(issuer, { user: 'bob', scope: identityScope, resource });
      assertIdentity(await whoamiWithToken(server.mcpUrl, tokens.access_token), 'bob', { issuer, resource });
    });

    addHere('jwt/axum: SDK steps up after 403 insufficient_scope (re-authorizes with the challenge scope)', async () => {
      const tokens = await obtainTokens(issuer, { user: 'alice', scope: OTHER_SCOPE, resource, client: SDK_CLIENT });
      const { identity, provider: sdk, log } = await stepUpFlow(server.mcpUrl, {
        user: 'alice', tokens, clientInformation: { client_id: SDK_CLIENT.client_id },
      });
      assert.ok(log.some((e) => e.url === server.mcpUrl && e.status === 403), 'the SDK met the 403');
      assert.equal(sdk.authorizationUrls.length, 1, 'one re-authorization');
      assertAuthorizationRequest(sdk.authorizationUrls[0], { resource, scope: REQUIRED_SCOPE });
      assertIdentity(identity, 'alice', { issuer, resource, clientId: SDK_CLIENT.client_id, scope: REQUIRED_SCOPE });
    });

    addHere('jwt/axum: step-up while the SDK holds a refresh token -> the SDK refreshes instead of re-authorizing (403 after trying upscoping); forgetting the refresh token and reconnecting recovers', async () => {
      const flow = await refreshTokenStepUpFlow(server.mcpUrl, { user: 'alice', tool: 'secret' });
      const { provider: sdk, firstTokens, withRefresh, sameTransport, newTransport } = flow;
      assert.ok(firstTokens.refresh_token, 'the provider issued a refresh token to this client');
      // SDK 1.32.2 (dist/esm/client/auth.js): with a refresh token, auth() refreshes; the new
      // token has the old scope, the re-sent call meets the same 403, and the SDK gives up.
      const changed = `SDK ${SDK_VERSION} no longer behaves as 1.32.2 did with a refresh token; update this check and the README`;
      assert.equal(withRefresh.mode, 'none', `${changed}: mode ${withRefresh.mode}`);
      assertSdkStatus(withRefresh.error, 403);
      assert.match(withRefresh.error.message, /after trying upscoping/, changed);
      assert.equal(withRefresh.authorization, undefined, `${changed}: it started an authorization`);
      assert.deepEqual(withRefresh.tokenRequests.map((t) => [t.params.get('grant_type'), t.status]), [['refresh_token', 200]], 'one refresh');
      assert.equal(withRefresh.refusals.length, 2, 'the 403, and the same 403 after the refresh');
      const challenge = assertStepUpChallenge(withRefresh.refusals[0], { server, scopes: [REQUIRED_SCOPE, ADMIN_SCOPE] });
      assert.equal(withRefresh.refusals[1].challenge, withRefresh.refusals[0].challenge, 'the same challenge twice');
      // Without the refresh token, on the same transport: it remembers the challenge it tried.
      assert.equal(sameTransport.mode, 'none', `${changed}: same transport, mode ${sameTransport.mode}`);
      assert.match(String(sameTransport.error?.message), /after trying upscoping/, changed);
      // On a new connection: the usual step-up (the SDK starts it, the application completes it).
      assert.ok(newTransport && (newTransport.mode === 'app' || newTransport.mode === 'sdk'), `new connection, mode ${newTransport?.mode}: ${newTransport?.error}`);
      assert.equal(new URL(newTransport.authorization.url).searchParams.get('scope'), challenge.params.scope, 'exactly the challenged scope');
      assert.ok(newTransport.result && !newTransport.result.isError, `secret after the step-up: ${JSON.stringify(newTransport.result)}`);
      assert.equal(newTransport.result.structuredContent.sub, 'alice');
      assert.ok(newTransport.result.structuredContent.scopes.includes(ADMIN_SCOPE));
      assert.equal(sdk.authorizations.length, 2, 'two authorizations in all: the first one and the step-up');
      return `SDK ${SDK_VERSION} holding a refresh token: 403 scope="${challenge.params.scope}" -> refresh_token grant (no new authorization), `
        + `same 403 -> "${withRefresh.error.message}"; after forgetting the refresh token, same transport -> "${sameTransport.error.message}"; `
        + `new connection -> ${newTransport.mode === 'app' ? 'the SDK started the authorization, the test completed it and retried' : 'the SDK stepped up by itself'} -> ok`;
    });

    addHere(`jwt/axum: expired token (TTL ${SHORT_TTL} s at the provider) -> 401 invalid_token past exp + ${JWT_LEEWAY_S} s leeway`, async () => {
      const tokens = await obtainTokens(issuer, { user: 'alice', scope: REQUIRED_SCOPE, resource, client: SHORT_TTL_CLIENT });
      const { payload } = assertJwtAccessToken(tokens.access_token, { alg, resource, provider });
      assert.equal(payload.exp - payload.iat, SHORT_TTL, 'the provider issued a short-lived token');
      await sleepUntil((payload.exp + JWT_LEEWAY_S + 2) * 1000);
      assertChallenge(await rawInitialize(server.mcpUrl, tokens.access_token), { status: 401, error: 'invalid_token', server });
      assertSdkStatus(await sdkErrorWithToken(server.mcpUrl, tokens.access_token), 401);
    }, { slow: true, timeoutMs: (JWT_LEEWAY_S + 40) * 1000 });
  }

  {
    const server = ctx.servers.userinfo;
    const addHere = (name, fn, options = {}) => add(name, fn, { server, ...options });
    addHere('userinfo: opaque token (no resource requested) -> whoami returns alice from the userinfo endpoint', async () => {
      const tokens = await obtainTokens(issuer, { user: 'alice', scope: 'openid profile email' });
      assertOpaque(tokens.access_token);
      const identity = await whoamiWithToken(server.mcpUrl, tokens.access_token);
      assertIdentity(identity, 'alice', { issuer });
    });

    addHere(`userinfo: expired opaque token (TTL ${SHORT_TTL} s) -> 401 invalid_token once the provider's userinfo refuses it (+${CLOCK_TOLERANCE} s tolerance)`, async () => {
      const tokens = await obtainTokens(issuer, { user: 'alice', scope: 'openid profile email', client: SHORT_TTL_CLIENT });
      assertOpaque(tokens.access_token);
      assert.equal(tokens.expires_in, SHORT_TTL);
      // Not used before expiry: a cached answer would (by design) outlive it.
      await sleep((SHORT_TTL + CLOCK_TOLERANCE + 2) * 1000);
      assertChallenge(await rawInitialize(server.mcpUrl, tokens.access_token), { status: 401, error: 'invalid_token', server });
    }, { slow: true, timeoutMs: (CLOCK_TOLERANCE + 40) * 1000 });
  }

  {
    const server = ctx.servers.introspection;
    const { resource } = server;
    const tag = 'introspection';
    const addHere = (name, fn, options = {}) => add(name, fn, { server, ...options });

    addHere(`${tag}: opaque token for the resource -> whoami returns alice (confidential client at the introspection endpoint)`, async () => {
      const tokens = await obtainTokens(issuer, { user: 'alice', scope: REQUIRED_SCOPE, resource });
      assertOpaque(tokens.access_token);
      const identity = await whoamiWithToken(server.mcpUrl, tokens.access_token);
      assertIdentity(identity, 'alice', { issuer, resource, clientId: APP_CLIENT.client_id, scope: REQUIRED_SCOPE });
    });

    addHere(`${tag}: OAuth discovery flow (SDK) -> whoami returns alice`, async () => {
      const { identity, provider: sdk, log } = await oauthFlow(server.mcpUrl, { user: 'alice' });
      assertIdentity(identity, 'alice', { issuer, resource, clientId: sdk.registered?.client_id, scope: REQUIRED_SCOPE });
      assertAuthorizationRequest(sdk.authorizationUrls[0], { resource, scope: REQUIRED_SCOPE });
      assertDiscoveryTraffic(log, { server, provider, resource });
      assertOpaque(sdk.tokens().access_token);
    });

    addHere(`${tag}: opaque token for another resource -> 401 invalid_token`, async () => {
      const tokens = await obtainTokens(issuer, { user: 'alice', scope: REQUIRED_SCOPE, resource: OTHER_OPAQUE_RESOURCE });
      assertOpaque(tokens.access_token);
      assertChallenge(await rawInitialize(server.mcpUrl, tokens.access_token), { status: 401, error: 'invalid_token', server });
    });

    addHere(`${tag}: token without the required scope -> 403 insufficient_scope`, async () => {
      const tokens = await obtainTokens(issuer, { user: 'alice', scope: OTHER_SCOPE, resource });
      assertChallenge(await rawInitialize(server.mcpUrl, tokens.access_token), { status: 403, error: 'insufficient_scope', server });
      assertSdkStatus(await sdkErrorWithToken(server.mcpUrl, tokens.access_token), 403);
    });

    addHere(`${tag}: expired opaque token (TTL ${SHORT_TTL} s) -> 401 invalid_token`, async () => {
      const tokens = await obtainTokens(issuer, { user: 'alice', scope: REQUIRED_SCOPE, resource, client: SHORT_TTL_CLIENT });
      assertOpaque(tokens.access_token);
      await sleep((SHORT_TTL + 1.5) * 1000);
      assertChallenge(await rawInitialize(server.mcpUrl, tokens.access_token), { status: 401, error: 'invalid_token', server });
    });

    addHere(`token exchange (custom grant via registerGrantType): the crate's TokenExchange trades alice's opaque token for the MCP server for a ${alg} JWT for ${DOWNSTREAM_RESOURCE}; the second call is cached; the MCP server's guard refuses the new token`, async () => {
      const tokens = await obtainTokens(issuer, { user: 'alice', scope: REQUIRED_SCOPE, resource });
      assertOpaque(tokens.access_token);
      const result = await runProbe({ issuer, subjectToken: tokens.access_token, mcpResource: resource });
      assert.equal(result.outcome, 'exchanged', JSON.stringify(result));
      assert.equal(result.token_type, 'Bearer');
      assert.equal(result.issued_token_type, ACCESS_TOKEN_TYPE);
      assert.deepEqual(result.scopes, [DOWNSTREAM_SCOPE]);
      assert.equal(result.second_call_cached, true, 'the second exchange came from the cache');
      assert.equal(result.downstream.accepted, true, `the downstream guard: ${JSON.stringify(result.downstream)}`);
      assert.equal(result.downstream.sub, 'alice');
      assert.deepEqual(result.downstream.audience, [DOWNSTREAM_RESOURCE]);
      assert.deepEqual(result.downstream.scopes, [DOWNSTREAM_SCOPE]);
      assert.deepEqual(result.downstream.act, { sub: EXCHANGE_CLIENT.client_id }, 'act names the MCP server');
      assert.equal(result.mcp_resource.accepted, false, 'the exchanged token is not good for the MCP server');
      assert.equal(result.mcp_resource.invalid_audience, true, result.mcp_resource.error);
    });

    addHere('token exchange: a revoked subject token -> the crate reports the provider\'s invalid_grant as a refusal', async () => {
      const tokens = await obtainTokens(issuer, { user: 'alice', scope: REQUIRED_SCOPE, resource });
      assert.equal(await revoke(issuer, tokens.access_token), 200, 'revocation endpoint status');
      const result = await runProbe({ issuer, subjectToken: tokens.access_token, mcpResource: resource });
      assert.equal(result.outcome, 'error', JSON.stringify(result));
      assert.equal(result.kind, 'refused', result.message);
      assert.equal(result.code, 'invalid_grant', result.message);
    });

    addHere(`${tag}: revoked token -> still served from the ${CACHE_TTL_S} s verification cache, 401 invalid_token once the entry ends`, async () => {
      const tokens = await obtainTokens(issuer, { user: 'alice', scope: REQUIRED_SCOPE, resource });
      await whoamiWithToken(server.mcpUrl, tokens.access_token);
      const cachedAt = Date.now();
      assert.equal(await revoke(issuer, tokens.access_token), 200, 'revocation endpoint status');
      const after = await introspect(issuer, tokens.access_token, RESOURCE_SERVER_CLIENT);
      assert.equal(after.active, false, 'the provider reports the token inactive');
      // Documented behaviour (src/verify/cache.rs): revocation is seen when the entry ends.
      assert.equal((await rawInitialize(server.mcpUrl, tokens.access_token)).status, 200, 'served from the cache right after revocation');
      await sleepUntil(cachedAt + (CACHE_TTL_S + 2) * 1000);
      assertChallenge(await rawInitialize(server.mcpUrl, tokens.access_token), { status: 401, error: 'invalid_token', server });
    }, { slow: true, timeoutMs: (CACHE_TTL_S + 40) * 1000 });
  }

  {
    const server = ctx.servers.rotation;
    const rotation = ctx.rotationProvider;
    const { resource } = server;
    const addHere = (name, fn, options = {}) => add(name, fn, { server, ...options });
    addHere('jwt/axum: key rotation at the provider (restart with a new signing key) is picked up without restarting our server', async () => {
      const before = await obtainTokens(rotation.issuer, { user: 'alice', scope: REQUIRED_SCOPE, resource });
      const oldKid = assertJwtAccessToken(before.access_token, { alg, resource, provider: rotation }).header.kid;
      assertIdentity(await whoamiWithToken(server.mcpUrl, before.access_token), 'alice', { issuer: rotation.issuer, resource });
      const fetchedBy = Date.now();
      // The server refetches the JWKS for an unknown kid, at most once per cooldown.
      await sleepUntil(fetchedBy + (JWKS_REFRESH_COOLDOWN_S + 1) * 1000);
      await rotation.restart();
      assert.ok(!rotation.kids.includes(oldKid), 'the old key is gone from the provider');
      const after = await obtainTokens(rotation.issuer, { user: 'alice', scope: REQUIRED_SCOPE, resource });
      const newKid = assertJwtAccessToken(after.access_token, { alg, resource, provider: rotation }).header.kid;
      assert.notEqual(newKid, oldKid);
      assertIdentity(await whoamiWithToken(server.mcpUrl, after.access_token), 'alice', { issuer: rotation.issuer, resource });
      assertChallenge(await rawInitialize(server.mcpUrl, before.access_token), { status: 401, error: 'invalid_token', server });
      assert.equal(server.exited, false, 'the server kept running');
    }, { slow: true, timeoutMs: (JWKS_REFRESH_COOLDOWN_S + 40) * 1000 });
  }

  return list;
}

// ---------------------------------------------------------------------------------------------
// Main

async function runSuite(alg) {
  let ctx;
  const setUpOk = await report.check(`[${alg}] set-up: node-oidc-provider x2 and 6 example servers`, async () => {
    ctx = await setUp(alg);
  }, { timeoutMs: 90_000 });
  if (!setUpOk) {
    // Count the cases that cannot run; their names need a context, so name them generically.
    report.skip(`[${alg}] all cases`, 'the set-up failed');
    return;
  }
  const list = cases(ctx);
  const slow = list.filter((c) => c.slow).map((c) => report.check(c.name, c.fn, c));
  for (const c of list.filter((c) => !c.slow)) await report.check(c.name, c.fn, c);
  await Promise.all(slow);
}

let stopping = false;
async function shutdown(code) {
  if (stopping) return;
  stopping = true;
  await stopAll();
  process.exit(code);
}
process.on('SIGINT', () => { shutdown(130); });
process.on('SIGTERM', () => { shutdown(143); });
process.on('exit', () => killAllNow());

try {
  process.stdout.write(`interop: node ${process.version}, examples from ${targetDir}, algorithms ${algs.join(', ')}\n`);
  // INTEROP_INSPECTOR / INTEROP_DPOP: 0 leaves that group out, only runs it alone (both `only`:
  // the two groups, without the per-algorithm cases).
  const inspector = process.env.INTEROP_INSPECTOR ?? '1';
  const dpop = process.env.INTEROP_DPOP ?? '1';
  const only = inspector === 'only' || dpop === 'only';
  const wanted = (setting) => (only ? setting === 'only' : setting !== '0');
  await Promise.all([
    ...(only ? [] : algs.map((alg) => runSuite(alg))),
    ...(wanted(inspector) ? [runInspectorSuite({ report, targetDir, pidFile })] : []),
    // The DPoP group runs once: its access tokens are signed with the first algorithm.
    // INTEROP_INSPECTOR=0 (no browser) leaves out its check in headless Chromium too.
    ...(wanted(dpop) ? [runDpopSuite({ report, targetDir, pidFile, alg: algs[0] ?? 'RS256', browser: inspector !== '0' })] : []),
  ]);
} catch (error) {
  process.stdout.write(`FAIL  runner: ${error?.stack ?? error}\n`);
  report.skip('runner', 'crashed');
}
await stopAll();
process.stdout.write(report.summary());
process.exit(report.failed === 0 ? 0 : 1);

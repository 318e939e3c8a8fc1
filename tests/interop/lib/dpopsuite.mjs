// The "dpop" group of the suite (RFC 9449, issue 17): node-oidc-provider issues DPoP-bound JWT
// access tokens (`cnf.jkt`) to oauth4webapi, which builds every proof itself and calls
// `tools/call whoami` on the whoami examples started with MCP_AUTH_DPOP (and
// MCP_AUTH_DPOP_NONCE=1 for the nonce cases), in Node and in a web page (./dpopbrowser.mjs).
// One PASS/FAIL line per check, counted with the others. INTEROP_DPOP=0 leaves the group out,
// =only runs just it (run.mjs).

import * as assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import { WWWAuthenticateChallengeError } from 'oauth4webapi';

import {
  decodeJwt, HTTP_TIMEOUT_MS, introspect, obtainTokens, revoke,
} from './browser.mjs';
import { dpopFromBrowser } from './dpopbrowser.mjs';
import {
  decodeProof, DpopMcpClient, newDpopKey, OAUTH4WEBAPI_VERSION, obtainDpopTokens, parseChallenges, PROTOCOL_VERSION, resend, sameKeyNewHandle,
  thumbprint, unauthenticatedPost,
} from './dpop.mjs';
import {
  ADMIN_SCOPE, OTHER_SCOPE, REQUIRED_SCOPE, RESOURCE_SERVER_CLIENT, startProvider, USERS,
} from './provider.mjs';
import { oauthFlow } from './mcp.mjs';
import { binaryPath, startServer } from './servers.mjs';
import { toolStepUpFlow } from './stepup.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const versionOf = (name) => JSON.parse(readFileSync(path.join(here, '..', 'node_modules', name, 'package.json'), 'utf8')).version;
const PROVIDER_VERSION = versionOf('oidc-provider');
const SDK_VERSION = versionOf('@modelcontextprotocol/sdk');

/** The whoami servers of the group: example binary, verifier settings (default `jwt`), the
 * format of the provider's tokens for it (default `jwt`; none for userinfo), whether it
 * requires `mcp:whoami` (default yes), and its DPoP settings. */
const SERVERS = {
  allow: { example: 'whoami', dpop: { MCP_AUTH_DPOP: 'allow' } },
  nonce: { example: 'whoami', dpop: { MCP_AUTH_DPOP: 'allow', MCP_AUTH_DPOP_NONCE: '1' } },
  require: { example: 'whoami', dpop: { MCP_AUTH_DPOP: 'require' } },
  actix: { example: 'whoami_actix', dpop: { MCP_AUTH_DPOP: 'allow' } },
  hyper: { example: 'whoami_hyper', dpop: { MCP_AUTH_DPOP: 'allow' } },
  // actix-web builds its CORS policy with actix-cors (the others with tower-http): the browser
  // check needs a nonce server there too, to see DPoP-Nonce exposed.
  actixNonce: { example: 'whoami_actix', dpop: { MCP_AUTH_DPOP: 'allow', MCP_AUTH_DPOP_NONCE: '1' } },
  // Opaque tokens: cnf.jkt from the provider's introspection answer; userinfo (which cannot
  // learn a binding, and whose endpoint wants the client's own proof for a bound token).
  introspection: {
    example: 'whoami',
    verifier: {
      MCP_AUTH_VERIFIER: 'introspection',
      MCP_AUTH_CLIENT_ID: RESOURCE_SERVER_CLIENT.client_id,
      MCP_AUTH_CLIENT_SECRET: RESOURCE_SERVER_CLIENT.client_secret,
    },
    format: 'opaque',
    dpop: { MCP_AUTH_DPOP: 'allow' },
  },
  userinfo: { example: 'whoami', verifier: { MCP_AUTH_VERIFIER: 'userinfo' }, requiredScopes: false, dpop: { MCP_AUTH_DPOP: 'allow' } },
};
/** The stacks the main cases (bound token with a proof; the same token as Bearer) run on. */
const STACKS = [['axum', 'allow'], ['actix-web', 'actix'], ['hyper', 'hyper']];
/** Proof keys besides ES256, each an algorithm our servers accept by default: oauth4webapi's
 * key algorithm (EdDSA makes an Ed25519 key) and, for Ed25519, the proofs' `alg` renamed to
 * `EdDSA` (oauth4webapi writes `Ed25519`; see the last variant of the case). */
const OTHER_KEYS = [{ alg: 'ES384' }, { alg: 'PS256' }, { alg: 'RS256' }, { alg: 'EdDSA', proofAlg: 'EdDSA' }];

function describeKey({ alg, proofAlg }) {
  if (alg === 'EdDSA') return proofAlg ? `Ed25519 key signing as alg ${proofAlg}` : 'Ed25519 key (alg Ed25519)';
  return `${alg} key`;
}

/** How a refused request went: { status, challenges, header } from oauth4webapi's challenge
 * error, or from a raw answer (resend, unauthenticatedPost). */
function refusal(answer) {
  if (answer instanceof WWWAuthenticateChallengeError) {
    const header = answer.response.headers.get('www-authenticate');
    return { status: answer.response.status, header, challenges: parseChallenges(header), dpopNonce: answer.response.headers.get('dpop-nonce') ?? undefined };
  }
  if (answer instanceof Error) throw answer;
  return { status: answer.status, header: answer.challenge, challenges: parseChallenges(answer.challenge), body: answer.body };
}

/** Runs `fn`, which must fail with a challenge; resolves to refusal(error). */
async function refused(fn) {
  let result;
  try {
    result = await fn();
  } catch (error) {
    return refusal(error);
  }
  throw new Error(`expected a refusal, got ${JSON.stringify(result)}`);
}

function challenge(seen, scheme) {
  return seen.challenges.find((c) => c.scheme === scheme);
}

/** A 401 whose DPoP challenge names `errors` (one of) and the server's algorithms. Returns the
 * DPoP challenge. */
function assertDpopRefusal(seen, { errors, server }) {
  assert.equal(seen.status, 401, `status (WWW-Authenticate: ${seen.header})`);
  const dpop = challenge(seen, 'dpop');
  assert.ok(dpop, `a DPoP challenge in WWW-Authenticate: ${seen.header}`);
  if (errors) assert.ok(errors.includes(dpop.params.error), `DPoP error one of ${errors.join(', ')} in ${seen.header}`);
  assert.deepEqual(dpop.params.algs?.split(' '), server.dpopAlgs, `algs= in the DPoP challenge: ${seen.header}`);
  return dpop;
}

function assertAlice(identity, { issuer, resource }) {
  const user = USERS.alice;
  assert.equal(identity.sub, 'alice', `whoami's sub: ${JSON.stringify(identity)}`);
  assert.equal(identity.name, user.name, 'name (from the provider account)');
  assert.equal(identity.issuer, issuer, 'issuer');
  assert.deepEqual(identity.audience, [resource], 'audience');
  assert.ok(identity.scopes.includes(REQUIRED_SCOPE), `scopes ${JSON.stringify(identity.scopes)} include ${REQUIRED_SCOPE}`);
}

/** The proofs a client sent, decoded: [{ status, header, payload, authorization }]. */
function proofsOf(client) {
  return client.sent.map((entry) => ({
    status: entry.status, authorization: entry.headers.authorization, ...(entry.headers.dpop ? decodeProof(entry.headers.dpop) : {}),
  }));
}

/** The whole MCP exchange with oauth4webapi: initialize, notifications/initialized, whoami. */
async function whoamiOverDpop(server, accessToken, key) {
  const client = new DpopMcpClient(server.mcpUrl, accessToken, { key });
  await client.initialize();
  const identity = await client.whoami();
  return { client, identity };
}

async function setUp({ alg, targetDir, pidFile }) {
  const provider = await startProvider({ alg });
  const ctx = { provider, servers: {} };
  const started = await Promise.allSettled(Object.entries(SERVERS).map(async ([key, spec]) => {
    const server = await startServer({
      name: `[dpop] ${key}`,
      binary: binaryPath(targetDir, spec.example),
      env: {
        MCP_AUTH_ISSUER: provider.issuer,
        ...(spec.verifier ?? { MCP_AUTH_VERIFIER: 'jwt' }),
        ...(spec.requiredScopes === false ? {} : { MCP_AUTH_REQUIRED_SCOPES: REQUIRED_SCOPE }),
        ...spec.dpop,
      },
      pidFile,
    });
    ctx.servers[key] = server;
    const response = await fetch(server.metadataUrl, { signal: AbortSignal.timeout(10_000) });
    assert.equal(response.status, 200, `${key}: protected-resource metadata`);
    server.metadata = await response.json();
    server.dpopAlgs = server.metadata.dpop_signing_alg_values_supported;
    assert.ok(Array.isArray(server.dpopAlgs) && server.dpopAlgs.length, `${key}: dpop_signing_alg_values_supported in ${JSON.stringify(server.metadata)}`);
    if (!spec.verifier || spec.format) {
      provider.addResource(server.resource, { format: spec.format ?? 'jwt', scope: `${REQUIRED_SCOPE} ${OTHER_SCOPE} ${ADMIN_SCOPE}` });
    }
  }));
  ctx.stop = async () => {
    await Promise.all([...Object.values(ctx.servers).map((s) => s.stop()), provider.stop()]);
  };
  const failure = started.find((s) => s.status === 'rejected');
  if (failure) {
    await ctx.stop();
    throw failure.reason;
  }
  return ctx;
}

/** The cases: [{ name, fn, server (whose log a failure prints) }]. */
function cases(ctx, { alg, browser }) {
  const { provider, servers } = ctx;
  const { issuer } = provider;
  const list = [];
  const add = (name, fn, serverKey) => list.push({ name: `[dpop] ${name}`, fn, server: servers[serverKey] });
  /** A token for `server` bound to `key` (ES256 by default), from node-oidc-provider. */
  const boundToken = async (server, key) => (await obtainDpopTokens(issuer, { scope: REQUIRED_SCOPE, resource: server.resource, key })).tokens.access_token;

  add(`node-oidc-provider ${PROVIDER_VERSION} issues a DPoP-bound ${alg} JWT to oauth4webapi ${OAUTH4WEBAPI_VERSION}: token_type DPoP, cnf.jkt = the key's RFC 7638 thumbprint (dpop_jkt in the authorization request)`, async () => {
    const server = servers.allow;
    const key = await newDpopKey('ES256');
    const { tokens, as, authorizationUrl, tokenRequest } = await obtainDpopTokens(issuer, { scope: REQUIRED_SCOPE, resource: server.resource, key });
    assert.ok(as.dpop_signing_alg_values_supported?.includes('ES256'), `the provider's metadata lists DPoP algorithms: ${as.dpop_signing_alg_values_supported}`);
    assert.equal(new URL(authorizationUrl).searchParams.get('dpop_jkt'), key.jkt, 'dpop_jkt in the authorization request');
    assert.equal(tokens.token_type, 'dpop', 'token_type (oauth4webapi lower-cases it)');
    const proof = decodeProof(tokenRequest.headers.dpop);
    assert.equal(proof.header.typ, 'dpop+jwt', 'the token request proof typ');
    assert.equal(proof.header.alg, 'ES256', 'the token request proof alg');
    assert.equal(proof.header.jwk.d, undefined, 'public-only jwk in the proof');
    assert.equal(proof.payload.htm, 'POST');
    assert.equal(proof.payload.htu, as.token_endpoint, 'htu = the token endpoint');
    const jwt = decodeJwt(tokens.access_token);
    assert.ok(jwt, 'the access token is a JWT');
    assert.equal(jwt.header.typ, 'at+jwt', 'typ');
    assert.equal(jwt.header.alg, alg, 'alg');
    assert.equal(jwt.payload.aud, server.resource, 'aud');
    assert.equal(jwt.payload.cnf?.jkt, key.jkt, `cnf.jkt ${JSON.stringify(jwt.payload.cnf)} = oauth4webapi's thumbprint of the key`);
    assert.equal(thumbprint(proof.header.jwk), key.jkt, 'RFC 7638 thumbprint of the proof jwk (node:crypto) = oauth4webapi\'s');
    return `token_type ${tokens.token_type}, typ ${jwt.header.typ}, alg ${jwt.header.alg}, cnf.jkt ${jwt.payload.cnf.jkt} (= the proof key's thumbprint)`;
  }, 'allow');

  add('no token -> 401 with both a Bearer challenge (resource_metadata, no error) and DPoP algs="..." (no error); the metadata agrees (allow: dpop_bound_access_tokens_required false, require: true)', async () => {
    const lines = [];
    for (const [key, required] of [['allow', false], ['require', true]]) {
      const server = servers[key];
      const seen = refusal(await unauthenticatedPost(server.mcpUrl));
      assert.equal(seen.status, 401, `${key}: status`);
      const dpop = assertDpopRefusal(seen, { server });
      assert.equal(dpop.params.error, undefined, `${key}: no error in the DPoP challenge without a token: ${seen.header}`);
      const bearer = challenge(seen, 'bearer');
      if (!required) {
        assert.ok(bearer, `${key}: a Bearer challenge: ${seen.header}`);
        assert.equal(bearer.params.error, undefined, `${key}: no error in the Bearer challenge: ${seen.header}`);
      }
      const carrier = bearer ?? dpop;
      assert.equal(carrier.params.resource_metadata, server.metadataUrl, `${key}: resource_metadata: ${seen.header}`);
      assert.equal(server.metadata.dpop_bound_access_tokens_required, required, `${key}: dpop_bound_access_tokens_required in ${JSON.stringify(server.metadata)}`);
      lines.push(`${key}: WWW-Authenticate: ${seen.header}`);
    }
    return lines.join('\n');
  }, 'allow');

  for (const [stack, key] of STACKS) {
    add(`${stack}: bound token + oauth4webapi's proofs (initialize, notifications/initialized, tools/call whoami; then tools/call with a query on the URL, not in htu) -> 200, whoami names alice`, async () => {
      const server = servers[key];
      const dpopKey = await newDpopKey('ES256');
      const token = await boundToken(server, dpopKey);
      const { client, identity } = await whoamiOverDpop(server, token, dpopKey);
      assertAlice(identity, { issuer, resource: server.resource });
      const proofs = proofsOf(client);
      assert.deepEqual(proofs.map((p) => p.status), [200, 202, 200], 'initialize 200, initialized 202, tools/call 200');
      for (const p of proofs) {
        assert.match(p.authorization, /^DPoP /, 'Authorization: DPoP');
        assert.equal(p.payload.htu, server.mcpUrl, 'htu = the MCP endpoint');
        assert.equal(p.payload.htm, 'POST');
        assert.ok(p.payload.ath, 'ath');
      }
      assert.equal(new Set(proofs.map((p) => p.payload.jti)).size, proofs.length, 'a fresh jti per request');
      assert.equal(client.nonceRetries.length, 0, 'no nonce asked for');
      // RFC 9449 §4.3: htu has no query; the request URI may (oauth4webapi drops it from htu).
      const withQuery = new DpopMcpClient(`${server.mcpUrl}?client=oauth4webapi`, token, { key: dpopKey });
      assert.equal((await withQuery.whoami()).sub, 'alice', 'whoami at the MCP URL with a query');
      assert.equal(proofsOf(withQuery)[0].payload.htu, server.mcpUrl, 'htu without the query');
      return `whoami: sub ${identity.sub}, name ${identity.name}; ${proofs.length} proofs (${proofs[0].header.alg}, htu ${proofs[0].payload.htu}); `
        + 'tools/call at ?client=oauth4webapi (htu without it) -> 200';
    }, key);

    add(`${stack}: the same bound token as Authorization: Bearer -> 401, invalid_token in the Bearer challenge, a DPoP challenge beside it`, async () => {
      const server = servers[key];
      const dpopKey = await newDpopKey('ES256');
      const token = await boundToken(server, dpopKey);
      const client = new DpopMcpClient(server.mcpUrl, token);
      const seen = await refused(() => client.initialize());
      assert.match(client.sent[0].headers.authorization, /^Bearer /, 'oauth4webapi sent Bearer (no DPoP handle)');
      assert.equal(client.sent[0].headers.dpop, undefined, 'and no proof');
      assertDpopRefusal(seen, { server });
      // RFC 9449 §7.1, DPOP-08: the error goes in the challenge of the scheme used.
      assert.equal(challenge(seen, 'bearer')?.params.error, 'invalid_token', `invalid_token in the Bearer challenge: ${seen.header}`);
      return `WWW-Authenticate: ${seen.header}`;
    }, key);
  }

  add(`per-tool step-up under DPoP (axum, actix-web, hyper): secret with ${REQUIRED_SCOPE} -> 403 with the error in the DPoP challenge (insufficient_scope, scope="${REQUIRED_SCOPE} ${ADMIN_SCOPE}"); oauth4webapi re-authorizes for that scope with the same key -> a new bound token -> secret 200`, async () => {
    const lines = [];
    for (const [stack, serverKey] of STACKS) {
      const server = servers[serverKey];
      const key = await newDpopKey('ES256');
      const client = new DpopMcpClient(server.mcpUrl, await boundToken(server, key), { key });
      await client.initialize();
      const seen = await refused(() => client.request('tools/call', { name: 'secret', arguments: {} }));
      assert.equal(seen.status, 403, `${stack}: status (${seen.header})`);
      const dpop = challenge(seen, 'dpop');
      assert.equal(dpop?.params.error, 'insufficient_scope', `${stack}: the error in the DPoP challenge (the scheme used): ${seen.header}`);
      const scope = dpop.params.scope;
      assert.deepEqual(scope?.split(' ').sort(), [ADMIN_SCOPE, REQUIRED_SCOPE].sort(), `${stack}: scope in ${seen.header}`);
      assert.equal(challenge(seen, 'bearer')?.params.error, undefined, `${stack}: no error in a Bearer challenge: ${seen.header}`);
      const { tokens } = await obtainDpopTokens(issuer, { scope, resource: server.resource, key });
      const payload = decodeJwt(tokens.access_token).payload;
      assert.equal(payload.cnf?.jkt, key.jkt, `${stack}: the new token is bound to the same key`);
      assert.deepEqual(payload.scope.split(' ').sort(), [ADMIN_SCOPE, REQUIRED_SCOPE].sort(), `${stack}: the new token's scope`);
      const retried = new DpopMcpClient(server.mcpUrl, tokens.access_token, { key });
      const secret = await retried.request('tools/call', { name: 'secret', arguments: {} });
      assert.ok(!secret.isError, `${stack}: secret after the step-up: ${JSON.stringify(secret)}`);
      assert.equal(secret.structuredContent?.sub, 'alice', `${stack}: secret's sub: ${JSON.stringify(secret)}`);
      lines.push(`${stack}: 403 ${seen.header} -> new token scope "${payload.scope}" -> secret 200 (sub ${secret.structuredContent.sub})`);
    }
    return lines.join('\n');
  }, 'allow');

  add(`the MCP TypeScript SDK ${SDK_VERSION} (no DPoP) against MCP_AUTH_DPOP=allow: the bare 401 leads with the Bearer challenge (the SDK reads only a first Bearer challenge) -> discovery -> whoami alice; per-tool step-up (403 in the Bearer challenge) -> secret`, async () => {
    const server = servers.allow;
    const { identity, provider: sdk, log } = await oauthFlow(server.mcpUrl, { user: 'alice' });
    assertAlice(identity, { issuer, resource: server.resource });
    const first401 = log.find((e) => e.url === server.mcpUrl && e.status === 401);
    assert.match(String(first401?.challenge), /^Bearer /, `the first challenge is Bearer: ${first401?.challenge}`);
    const asked = new URL(sdk.authorizationUrls[0]).searchParams;
    assert.equal(asked.get('scope'), REQUIRED_SCOPE, 'the SDK took the scope from the Bearer challenge');
    assert.equal(asked.get('resource'), server.resource, 'resource');
    const { stepUp } = await toolStepUpFlow(server.mcpUrl, { user: 'alice', tool: 'secret' });
    const refusalSeen = stepUp.refusals[0];
    assert.match(String(refusalSeen?.challenge), /^Bearer error="insufficient_scope"/, `the 403 leads with the Bearer challenge: ${refusalSeen?.challenge}`);
    assert.ok(stepUp.result && !stepUp.result.isError, `secret after the SDK's step-up (mode ${stepUp.mode}): ${stepUp.error ?? JSON.stringify(stepUp.result)}`);
    assert.equal(stepUp.result.structuredContent.sub, 'alice');
    return `bare 401: ${first401.challenge}\nstep-up 403: ${refusalSeen.challenge}`;
  }, 'allow');

  add('replayed proof: the exact same tools/call request (same DPoP header) sent again -> 401 invalid_dpop_proof', async () => {
    const server = servers.allow;
    const dpopKey = await newDpopKey('ES256');
    const token = await boundToken(server, dpopKey);
    const { client, identity } = await whoamiOverDpop(server, token, dpopKey);
    assert.equal(identity.sub, 'alice');
    const original = client.sent.at(-1);
    assert.equal(original.status, 200, 'the first sending');
    assert.match(original.body, /"tools\/call"/);
    const seen = refusal(await resend(original));
    assertDpopRefusal(seen, { errors: ['invalid_dpop_proof'], server });
    return `first: 200; same request again: ${seen.status}, WWW-Authenticate: ${seen.header}`;
  }, 'allow');

  add('proof from another key (token bound to key A, oauth4webapi signing with key B) -> 401 invalid_token or invalid_dpop_proof', async () => {
    const server = servers.allow;
    const bound = await newDpopKey('ES256');
    const other = await newDpopKey('ES256');
    assert.notEqual(bound.jkt, other.jkt);
    const token = await boundToken(server, bound);
    const client = new DpopMcpClient(server.mcpUrl, token, { key: other });
    const seen = await refused(() => client.initialize());
    const sentJkt = thumbprint(proofsOf(client)[0].header.jwk);
    assert.equal(sentJkt, other.jkt, 'the proof carries key B');
    assert.equal(decodeJwt(token).payload.cnf?.jkt, bound.jkt, 'the token is bound to key A');
    const dpop = assertDpopRefusal(seen, { errors: ['invalid_token', 'invalid_dpop_proof'], server });
    return `error ${dpop.params.error}; WWW-Authenticate: ${seen.header}`;
  }, 'allow');

  add('nonce round trip (MCP_AUTH_DPOP_NONCE=1): first proof -> 401 use_dpop_nonce + DPoP-Nonce; oauth4webapi keeps the nonce, the retried request carries it -> 200; a proof without it (same key, new handle) -> 401 use_dpop_nonce', async () => {
    const server = servers.nonce;
    const dpopKey = await newDpopKey('ES256');
    const token = await boundToken(server, dpopKey);
    const { client, identity } = await whoamiOverDpop(server, token, dpopKey);
    assertAlice(identity, { issuer, resource: server.resource });
    const [first, second] = client.sent;
    assert.equal(first.status, 401, 'the first request');
    const firstSeen = { status: first.status, header: first.challenge, challenges: parseChallenges(first.challenge) };
    assertDpopRefusal(firstSeen, { errors: ['use_dpop_nonce'], server });
    assert.ok(first.dpopNonce, 'a DPoP-Nonce header on the 401');
    assert.equal(decodeProof(first.headers.dpop).payload.nonce, undefined, 'the first proof had no nonce');
    assert.equal(decodeProof(second.headers.dpop).payload.nonce, first.dpopNonce, 'the retried proof carries the nonce');
    assert.equal(second.status, 200, 'the retried request');
    assert.equal(client.sent.at(-1).status, 200, 'tools/call');
    for (const entry of client.sent.slice(1)) assert.ok(decodeProof(entry.headers.dpop).payload.nonce, `every later proof has a nonce (${entry.status})`);
    // A client instance that never saw the nonce, with the same key and token.
    const fresh = new DpopMcpClient(server.mcpUrl, token, { key: sameKeyNewHandle(dpopKey) });
    const retried = await fresh.initialize().then(() => fresh.sent);
    assert.equal(retried[0].status, 401, 'a proof without the nonce is refused');
    assert.equal(retried[0].challenge && parseChallenges(retried[0].challenge).find((c) => c.scheme === 'dpop')?.params.error, 'use_dpop_nonce');
    return `401 ${first.challenge} (DPoP-Nonce ${first.dpopNonce}) -> retried with the nonce -> 200; `
      + `${client.nonceRetries.length} nonce retr${client.nonceRetries.length === 1 ? 'y' : 'ies'} over ${client.sent.length} requests; `
      + `new handle without the nonce -> ${retried[0].status} use_dpop_nonce`;
  }, 'nonce');

  add('policy: an unbound token as Bearer -> 200 with MCP_AUTH_DPOP=allow, 401 with a DPoP challenge with require; an unbound token with a DPoP proof -> 401; a bound token with proofs -> 200 with require', async () => {
    const unboundAllow = (await obtainTokens(issuer, { user: 'alice', scope: REQUIRED_SCOPE, resource: servers.allow.resource })).access_token;
    assert.equal(decodeJwt(unboundAllow).payload.cnf, undefined, 'no cnf without a proof at the token endpoint');
    const allowClient = new DpopMcpClient(servers.allow.mcpUrl, unboundAllow);
    await allowClient.initialize();
    assert.equal((await allowClient.whoami()).sub, 'alice', 'allow: unbound Bearer token accepted');
    const unboundRequire = (await obtainTokens(issuer, { user: 'alice', scope: REQUIRED_SCOPE, resource: servers.require.resource })).access_token;
    const bearerRequire = await refused(() => new DpopMcpClient(servers.require.mcpUrl, unboundRequire).initialize());
    assertDpopRefusal(bearerRequire, { server: servers.require });
    const key = await newDpopKey('ES256');
    const unboundWithProof = await refused(() => new DpopMcpClient(servers.allow.mcpUrl, unboundAllow, { key }).initialize());
    assert.equal(unboundWithProof.status, 401, `an unbound token as DPoP: ${unboundWithProof.header}`);
    const bound = await boundToken(servers.require, key);
    const { identity } = await whoamiOverDpop(servers.require, bound, key);
    assertAlice(identity, { issuer, resource: servers.require.resource });
    return `require + Bearer: ${bearerRequire.header}\nallow + unbound token as DPoP: ${unboundWithProof.header}`;
  }, 'require');

  add(`proof keys other than ES256: ${OTHER_KEYS.map(describeKey).join(', ')} -> 200 (each listed by the server); an Ed25519 key as oauth4webapi signs it by default (alg Ed25519, RFC 9864) -> 200 if the server lists Ed25519, else 401 invalid_dpop_proof`, async () => {
    const server = servers.allow;
    const lines = [];
    for (const variant of [...OTHER_KEYS, { alg: 'EdDSA' }]) {
      const key = await newDpopKey(variant.alg, { proofAlg: variant.proofAlg });
      const token = await boundToken(server, key);
      assert.equal(decodeJwt(token).payload.cnf?.jkt, key.jkt, `${describeKey(variant)}: cnf.jkt`);
      const client = new DpopMcpClient(server.mcpUrl, token, { key });
      let outcome;
      try {
        await client.initialize();
        outcome = { status: 200, identity: await client.whoami() };
      } catch (error) {
        outcome = refusal(error);
      }
      const proofAlg = proofsOf(client)[0].header.alg;
      const listed = server.dpopAlgs.includes(proofAlg);
      if (OTHER_KEYS.includes(variant)) {
        assert.ok(listed, `${describeKey(variant)}: the server lists ${proofAlg}: ${server.dpopAlgs}`);
      }
      if (listed) {
        assert.equal(outcome.status, 200, `${describeKey(variant)}: proof alg ${proofAlg}, listed by the server: ${outcome.header ?? ''}`);
        assert.equal(outcome.identity.sub, 'alice');
      } else {
        assertDpopRefusal(outcome, { errors: ['invalid_dpop_proof'], server });
      }
      lines.push(`${describeKey(variant)} -> proof alg ${proofAlg} (${listed ? 'listed' : 'not listed'}) -> ${outcome.status}${outcome.header ? ` ${outcome.header}` : ''}`);
    }
    return `the server lists: ${server.dpopAlgs.join(' ')}\n${lines.join('\n')}`;
  }, 'allow');

  add('introspection mode (opaque DPoP-bound token; cnf.jkt and token_type DPoP from node-oidc-provider\'s introspection answer): token + proofs -> 200; the token revoked, so the cached answer is all the server has: as Bearer -> 401 (bound), another key\'s proof -> 401 invalid_token, the right proofs -> 200 from the cache', async () => {
    const server = servers.introspection;
    const key = await newDpopKey('ES256');
    const token = await boundToken(server, key);
    assert.equal(decodeJwt(token), undefined, 'the access token is opaque');
    const { identity } = await whoamiOverDpop(server, token, key);
    assertAlice(identity, { issuer, resource: server.resource });
    // From here the provider says inactive: what the server decides, it decides on the
    // verification cache's entry (src/verify/cache.rs; 60 s), and the binding with it.
    assert.equal(await revoke(issuer, token), 200, 'revocation endpoint status');
    assert.equal((await introspect(issuer, token, RESOURCE_SERVER_CLIENT)).active, false, 'the provider reports the token inactive');
    const bearer = await refused(() => new DpopMcpClient(server.mcpUrl, token).initialize());
    assertDpopRefusal(bearer, { server });
    const bearerChallenge = challenge(bearer, 'bearer');
    assert.equal(bearerChallenge?.params.error, 'invalid_token', `the error in the Bearer challenge: ${bearer.header}`);
    assert.match(bearerChallenge.params.error_description, /bound to a DPoP key/, `refused for the binding: ${bearer.header}`);
    const other = await refused(async () => new DpopMcpClient(server.mcpUrl, token, { key: await newDpopKey('ES256') }).initialize());
    assertDpopRefusal(other, { errors: ['invalid_token'], server });
    const again = await whoamiOverDpop(server, token, key);
    assert.equal(again.identity.sub, 'alice', 'the right key, from the cached answer');
    return `DPoP -> 200 (sub ${identity.sub}); revoked; Bearer -> ${bearer.status} ${bearer.header}\nanother key -> ${other.status} ${other.header}\n`
      + 'the right key again -> 200 (the cached answer, binding included)';
  }, 'introspection');

  add('userinfo mode: an unbound token -> 200; a DPoP-bound token with proofs -> 401 invalid_token (the provider\'s userinfo refuses a bound token without the client\'s own proof, which a resource server cannot forward: fail closed)', async () => {
    const server = servers.userinfo;
    const scope = 'openid profile email';
    const unbound = (await obtainTokens(issuer, { user: 'alice', scope })).access_token;
    const client = new DpopMcpClient(server.mcpUrl, unbound);
    await client.initialize();
    assert.equal((await client.whoami()).sub, 'alice', 'an unbound userinfo token as Bearer');
    const key = await newDpopKey('ES256');
    const { tokens } = await obtainDpopTokens(issuer, { scope, key });
    assert.equal(tokens.token_type, 'dpop');
    const seen = await refused(() => new DpopMcpClient(server.mcpUrl, tokens.access_token, { key }).initialize());
    assert.equal(seen.status, 401, seen.header);
    const errors = seen.challenges.map((c) => c.params.error).filter(Boolean);
    assert.deepEqual(errors, ['invalid_token'], `one invalid_token error: ${seen.header}`);
    return `bound token with proofs -> ${seen.status} ${seen.header}`;
  }, 'userinfo');

  if (browser) {
    add(`oauth4webapi ${OAUTH4WEBAPI_VERSION} in a web page (headless Chromium, another origin): CORS lets its DPoP requests through (axum, actix-web, hyper) and shows it WWW-Authenticate and DPoP-Nonce, so the nonce round trip works in the browser (axum, actix-web)`, async () => {
      const key = await newDpopKey('ES256', { extractable: true });
      const targets = [['axum', 'allow'], ['actix-web', 'actix'], ['hyper', 'hyper'], ['axum nonce', 'nonce'], ['actix-web nonce', 'actixNonce']];
      const calls = [];
      for (const [name, serverKey] of targets) {
        calls.push({ name, mcpUrl: servers[serverKey].mcpUrl, token: await boundToken(servers[serverKey], key) });
      }
      const { origin, results } = await dpopFromBrowser({ key, calls, protocolVersion: PROTOCOL_VERSION });
      const lines = [`page origin ${origin}`];
      for (const [index, [name, serverKey]] of targets.entries()) {
        const result = results[index];
        const server = servers[serverKey];
        const seen = result.exchanges.map((e) => `${e.status}${e.dpopNonce ? ' +nonce' : ''}`).join(', ');
        assert.equal(result.error, undefined, `${name}: ${result.error} (exchanges ${JSON.stringify(result.exchanges)})`);
        assertAlice(result.identity, { issuer, resource: server.resource });
        assert.ok(result.exchanges.every((e) => e.scheme === 'DPoP'), `${name}: Authorization: DPoP`);
        if (SERVERS[serverKey].dpop.MCP_AUTH_DPOP_NONCE) {
          const [first, second] = result.exchanges;
          assert.equal(first.status, 401, `${name}: the first request`);
          assert.match(String(first.challenge), /use_dpop_nonce/, `${name}: the page reads WWW-Authenticate (exposed): ${first.challenge}`);
          assert.ok(first.dpopNonce, `${name}: the page reads DPoP-Nonce (exposed)`);
          assert.equal(second.proofNonce, first.dpopNonce, `${name}: the retried proof carries the nonce`);
          assert.equal(second.status, 200, `${name}: the retried request`);
        } else {
          assert.deepEqual(result.exchanges.map((e) => e.status), [200, 202, 200], `${name}: statuses`);
        }
        lines.push(`${name}: ${seen} -> whoami sub ${result.identity.sub}`);
      }
      // The preflight itself, as the browser sent it (the page's requests passed it).
      const preflight = await fetch(servers.actixNonce.mcpUrl, {
        method: 'OPTIONS',
        headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type,dpop,mcp-protocol-version' },
        signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
      });
      lines.push(`actix-web preflight: ${preflight.status}, access-control-allow-headers: ${preflight.headers.get('access-control-allow-headers')}`);
      return lines.join('\n');
    }, 'actixNonce');
  }

  return list;
}

/** Runs the group: set-up, then the cases one after the other. `browser: false` leaves out the
 * check in headless Chromium (INTEROP_INSPECTOR=0: no browser cases). */
export async function runDpopSuite({ report, targetDir, pidFile, alg = 'ES256', browser = true }) {
  let ctx;
  const ok = await report.check(`[dpop] set-up: node-oidc-provider (${alg} access tokens, DPoP), whoami servers with MCP_AUTH_DPOP (${Object.keys(SERVERS).join(', ')})`, async () => {
    ctx = await setUp({ alg, targetDir, pidFile });
  }, { timeoutMs: 90_000 });
  if (!ok) {
    report.skip('[dpop] all cases', 'the set-up failed');
    return;
  }
  for (const c of cases(ctx, { alg, browser })) {
    await report.check(c.name, c.fn, { timeoutMs: 60_000, context: c.server && (() => c.server.stderrTail()) });
  }
  await ctx.stop();
}

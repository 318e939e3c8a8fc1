// The authorization server of the interop suite: node-oidc-provider (npm `oidc-provider`),
// configured the way an MCP deployment would configure it, and run in this process on a
// loopback port chosen by the OS.
//
// - Resource indicators (RFC 8707): a token requested for a registered resource is issued for
//   it (`aud` = the resource), as a JWT (`typ: at+jwt`, signed RS256 or ES256) or as an opaque
//   token, per resource. Without a resource the token is opaque and good for userinfo.
// - Dynamic client registration (open), PKCE S256, introspection, revocation, and the
//   provider's development login/consent pages (driven over HTTP by ./browser.mjs).
// - Sample users with `name`, `email`, `username`; JWT and introspection answers carry them
//   (extraTokenClaims), userinfo returns them for the `profile`/`email` scopes.
// - DPoP (RFC 9449): a client proving a key at the token endpoint gets a token bound to it
//   (`cnf.jkt`), proofs signed with any of DPOP_ALGS.
//
// For tests only: the development interactions accept any password.

import * as crypto from 'node:crypto';
import * as http from 'node:http';

import Provider, { errors } from 'oidc-provider';

// oidc-provider warns (on stderr) about its development-only settings once per instance; the
// suite starts several, so each distinct warning is shown once.
const shownWarnings = new Set();
const warn = console.warn.bind(console);
console.warn = (...args) => {
  const text = args.join(' ');
  if (text.includes('oidc-provider WARNING')) {
    if (shownWarnings.has(text)) return;
    shownWarnings.add(text);
  }
  warn(...args);
};

/** The sample users; `login` at the development login page is the account id. */
export const USERS = {
  alice: { name: 'Alice Liddell', email: 'alice@wonderland.example', username: 'alice.l' },
  bob: { name: 'Bob Builder', email: 'bob@builders.example', username: 'bobthebuilder' },
};

/** The pre-registered confidential client the suite logs users in with. */
export const APP_CLIENT = {
  client_id: 'interop-app',
  client_secret: 'interop-app-secret-0123456789abcdef',
  redirect_uris: ['http://localhost:8976/callback'],
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  token_endpoint_auth_method: 'client_secret_basic',
};

/** Same as APP_CLIENT, but its access tokens live SHORT_TTL seconds. */
export const SHORT_TTL_CLIENT = {
  ...APP_CLIENT,
  client_id: 'interop-short-ttl',
  client_secret: 'interop-short-ttl-secret-0123456789',
};
export const SHORT_TTL = 1;

/** The provider's clock tolerance (its default, set explicitly): its userinfo endpoint still
 * answers for an opaque token this long after the token's expiry. */
export const CLOCK_TOLERANCE = 15;

/** Where the MCP SDK clients are sent back to (nothing listens there: the user agent stops). */
export const SDK_REDIRECT_URL = 'http://localhost:8977/oauth/callback';

/** A pre-registered public client for the SDK (the step-up case starts from its tokens). */
export const SDK_CLIENT = {
  client_id: 'interop-sdk',
  redirect_uris: [SDK_REDIRECT_URL],
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  token_endpoint_auth_method: 'none',
};

/** The MCP server's own credentials, for the introspection endpoint only. */
export const RESOURCE_SERVER_CLIENT = {
  client_id: 'mcp-resource-server',
  client_secret: 'mcp-resource-server-secret-0123456789',
  redirect_uris: [],
  grant_types: [],
  response_types: [],
  token_endpoint_auth_method: 'client_secret_basic',
};

/** RFC 8693 token exchange (registered with `provider.registerGrantType`): the grant, the
 * token type of subject and issued tokens, and the MCP server's client that may exchange. */
export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
export const EXCHANGE_CLIENT = {
  client_id: 'mcp-exchange-client',
  client_secret: 'mcp-exchange-client-secret-0123456789',
  redirect_uris: [],
  grant_types: [TOKEN_EXCHANGE_GRANT],
  response_types: [],
  token_endpoint_auth_method: 'client_secret_post',
};
/** The upstream API a tool calls with an exchanged token (JWT), and its scopes. */
export const DOWNSTREAM_RESOURCE = 'https://downstream.example/api';
export const DOWNSTREAM_SCOPE = 'downstream:read';

/** The scopes of the MCP servers under test: the one they require, and one they do not. */
export const REQUIRED_SCOPE = 'mcp:whoami';
export const OTHER_SCOPE = 'mcp:other';
export const RESOURCE_SCOPES = [REQUIRED_SCOPE, OTHER_SCOPE];

/**
 * The scope the servers' `secret` tool needs on top of REQUIRED_SCOPE (examples/common/tool.rs
 * ADMIN_SCOPE): the step-up checks. The suite allows it for our resources (their `scope` in
 * addResource) but does not list it in the provider's `scopes`: node-oidc-provider holds a
 * client to the `scope` it registered with for the scopes listed there, and the MCP SDK
 * registers with the scope of the first challenge (`mcp:whoami`), so a listed `admin` would be
 * refused at the step-up authorization (`invalid_scope`, "requested scope is not allowed").
 * Unlisted, it is a resource server scope only: granted per resource, like the API scopes of
 * most authorization servers.
 */
export const ADMIN_SCOPE = 'admin';

/** Dynamically registered clients with this `client_name` (and the refresh_token grant) get a
 * refresh token without asking for `offline_access`: the MCP SDK requests exactly the scope a
 * challenge names, so it never asks for `offline_access` itself. */
export const REFRESH_CLIENT_NAME = 'mcp-auth interop (MCP TypeScript SDK, refresh tokens)';

/** The DPoP proof algorithms the provider accepts at its token endpoint. */
export const DPOP_ALGS = ['ES256', 'ES384', 'Ed25519', 'EdDSA', 'PS256', 'RS256'];

/** A fresh signing key set: RSA (RS256) always, plus P-256 (ES256) when alg is ES256. */
export function generateKeys(alg) {
  const keys = [];
  const rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  keys.push({ ...rsa.export({ format: 'jwk' }), kid: `rsa-${crypto.randomUUID()}`, alg: 'RS256', use: 'sig' });
  if (alg === 'ES256') {
    const ec = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    keys.push({ ...ec.export({ format: 'jwk' }), kid: `ec-${crypto.randomUUID()}`, alg: 'ES256', use: 'sig' });
  }
  return keys;
}

/**
 * Starts node-oidc-provider. `alg`: the access-token signing algorithm (RS256 or ES256).
 * Returns a handle: `issuer`, `addResource(url, { format, scope })`, `restart({ keys })`,
 * `stop()`, and `kids` (the signing key ids in use).
 */
export async function startProvider({ alg = 'RS256', port = 0 } = {}) {
  // Resource indicator → how tokens for it are issued. Mutable: servers register their
  // resource once they know their port. Survives restarts (the registry is the suite's).
  const resources = new Map();
  const state = { alg, port, keys: generateKeys(alg), server: undefined, provider: undefined };

  async function listen() {
    const server = http.createServer();
    await new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(state.port, '127.0.0.1', resolve);
    });
    // The first start takes a port from the OS; a restart binds the same one again.
    state.port = server.address().port;
    const issuer = `http://127.0.0.1:${state.port}`;
    const provider = new Provider(issuer, configuration(state.keys, resources, alg));
    registerTokenExchange(provider, resources, alg);
    provider.on('server_error', (ctx, error) => {
      process.stderr.write(`oidc-provider server_error on ${ctx.method} ${ctx.path}: ${error.stack}\n`);
    });
    server.on('request', provider.callback());
    state.server = server;
    state.provider = provider;
    return issuer;
  }

  async function close() {
    const { server } = state;
    if (!server) return;
    state.server = undefined;
    await new Promise((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  const issuer = await listen();
  return {
    issuer,
    get port() { return state.port; },
    /** The kids of the current signing keys. */
    get kids() { return state.keys.map((k) => k.kid); },
    /** The kid that signs access tokens for `alg`. */
    get accessTokenKid() { return state.keys.find((k) => k.alg === alg).kid; },
    /** Registers a resource: format `jwt` or `opaque`; `scope`: its space-separated scopes. */
    addResource(url, { format, scope, ttl }) {
      resources.set(url, { format, scope, ttl });
    },
    /** Stops and starts again on the same port with new signing keys (key rotation). */
    async restart() {
      await close();
      // Let clients notice that their kept-alive connections are gone.
      await new Promise((resolve) => { setTimeout(resolve, 250); });
      state.keys = generateKeys(alg);
      await listen();
    },
    stop: close,
  };
}

/**
 * RFC 8693 token exchange as a custom grant: EXCHANGE_CLIENT (authenticated by the provider
 * before the handler runs) trades an access token the provider issued and still holds
 * (opaque: JWT access tokens are not stored, so they cannot be looked up) for a JWT for one
 * registered `resource`, with the requested scopes among that resource's. The subject token
 * must be for a resource (an MCP server's token, not a userinfo token); the new token names
 * the exchanging client as the actor (`act`).
 */
function registerTokenExchange(provider, resources, alg) {
  const parameters = ['audience', 'resource', 'scope', 'requested_token_type', 'subject_token', 'subject_token_type', 'actor_token', 'actor_token_type'];
  provider.registerGrantType(TOKEN_EXCHANGE_GRANT, async (ctx) => {
    const { client, params } = ctx.oidc;
    if (client.clientId !== EXCHANGE_CLIENT.client_id) throw new errors.UnauthorizedClient('this client may not exchange tokens');
    if (params.subject_token_type !== ACCESS_TOKEN_TYPE) throw new errors.InvalidRequest('subject_token_type must be an access token');
    if (params.requested_token_type && params.requested_token_type !== ACCESS_TOKEN_TYPE) throw new errors.InvalidRequest('only access tokens are issued');
    if (params.actor_token) throw new errors.InvalidRequest('actor tokens are not supported');
    const subject = await provider.AccessToken.find(params.subject_token);
    if (!subject || subject.isExpired) throw new errors.InvalidGrant('the subject token is unknown, expired or revoked');
    if (!subject.aud) throw new errors.InvalidGrant('the subject token is not for a resource server');
    const requested = [params.resource ?? []].flat();
    if (requested.length !== 1) throw new errors.InvalidTarget('name exactly one resource');
    const [indicator] = requested;
    const resource = resources.get(indicator);
    if (!resource || indicator === subject.aud) throw new errors.InvalidTarget(`${indicator} is not a downstream resource`);
    const allowed = new Set(resource.scope.split(' '));
    const scopes = (params.scope ?? '').split(' ').filter(Boolean);
    if (scopes.some((scope) => !allowed.has(scope))) throw new errors.InvalidScope('scope not allowed for the resource', scopes.join(' '));
    const token = new provider.AccessToken({
      accountId: subject.accountId,
      client,
      grantId: subject.grantId,
      gty: 'token-exchange',
      scope: scopes.join(' ') || undefined,
    });
    token.resourceServer = new provider.ResourceServer(indicator, {
      scope: resource.scope,
      audience: indicator,
      accessTokenFormat: 'jwt',
      jwt: { sign: { alg } },
      accessTokenTTL: resource.ttl ?? 3600,
    });
    ctx.oidc.entity('AccessToken', token);
    const accessToken = await token.save();
    ctx.body = {
      access_token: accessToken,
      issued_token_type: ACCESS_TOKEN_TYPE,
      token_type: token.tokenType,
      expires_in: token.expiration,
      scope: token.scope,
    };
  }, parameters, ['audience', 'resource']);
}

function configuration(keys, resources, alg) {
  return {
    jwks: { keys },
    clients: [APP_CLIENT, SHORT_TTL_CLIENT, SDK_CLIENT, RESOURCE_SERVER_CLIENT, EXCHANGE_CLIENT],
    findAccount: async (ctx, id) => {
      const user = USERS[id];
      if (!user) return undefined;
      return {
        accountId: id,
        claims: async () => ({
          sub: id,
          name: user.name,
          email: user.email,
          email_verified: true,
          username: user.username,
          preferred_username: user.username,
        }),
      };
    },
    // The resource scopes are listed too: clients register with them (RFC 7591 `scope`).
    scopes: ['openid', 'offline_access', 'profile', 'email', ...RESOURCE_SCOPES],
    claims: {
      openid: ['sub'],
      profile: ['name', 'username', 'preferred_username'],
      email: ['email', 'email_verified'],
    },
    // The identity claims go into access tokens for resource servers too (JWT payload and
    // introspection answer), read from the account store at issue time; an exchanged token
    // names the exchanging client as the actor (RFC 8693 §4.1 `act`).
    extraTokenClaims: async (ctx, token) => {
      if (token.kind !== 'AccessToken' || !token.accountId || !token.resourceServer) return undefined;
      const user = USERS[token.accountId];
      const act = token.gty === 'token-exchange' ? { act: { sub: token.clientId } } : {};
      return user ? { name: user.name, email: user.email, username: user.username, ...act } : undefined;
    },
    features: {
      // RFC 9449 (on by default in node-oidc-provider 9, set here so the suite does not depend
      // on the default; the option is spelled `dPoP`, an unknown `dpop` throws): a token
      // request with a DPoP proof gets a DPoP-bound token (`token_type` DPoP, `cnf.jkt` in the
      // JWT); `dpop_jkt` in the authorization request binds the code to the key. No nonces at
      // the token endpoint (no `nonceSecret`): the nonce checks are the resource server's.
      dPoP: { enabled: true },
      devInteractions: { enabled: true },
      registration: { enabled: true },
      introspection: {
        enabled: true,
        // Only the resource server and a token's own client may introspect it.
        allowedPolicy: async (ctx, client, token) =>
          client.clientId === RESOURCE_SERVER_CLIENT.client_id || client.clientId === token.clientId,
      },
      revocation: {
        enabled: true,
        allowedPolicy: async (ctx, client, token) => client.clientId === token.clientId,
      },
      resourceIndicators: {
        enabled: true,
        // A token request without `resource` gets the resource of the authorization request.
        useGrantedResource: async () => true,
        getResourceServerInfo: async (ctx, indicator, client) => {
          const resource = resources.get(indicator);
          if (!resource) throw new errors.InvalidTarget(`unknown resource ${indicator}`);
          const info = {
            scope: resource.scope,
            audience: indicator,
            accessTokenFormat: resource.format,
          };
          if (resource.format === 'jwt') info.jwt = { sign: { alg } };
          if (client?.clientId === SHORT_TTL_CLIENT.client_id) info.accessTokenTTL = SHORT_TTL;
          else if (resource.ttl) info.accessTokenTTL = resource.ttl;
          return info;
        },
      },
    },
    ttl: {
      AccessToken: (ctx, token, client) => {
        if (client?.clientId === SHORT_TTL_CLIENT.client_id) return SHORT_TTL;
        return token.resourceServer?.accessTokenTTL || 3600;
      },
      AuthorizationCode: 60,
      Grant: 3600,
      IdToken: 3600,
      Interaction: 600,
      Session: 3600,
      RefreshToken: 3600,
    },
    // The default (refresh_token grant and offline_access), plus REFRESH_CLIENT_NAME's clients.
    issueRefreshToken: async (ctx, client, code) => client.grantTypeAllowed('refresh_token')
      && (code.scopes.has('offline_access') || client.clientName === REFRESH_CLIENT_NAME),
    clockTolerance: CLOCK_TOLERANCE,
    pkce: { required: () => true },
    cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
    enabledJWA: {
      idTokenSigningAlgValues: ['RS256', 'ES256'],
      // The proof algorithms the DPoP checks use (lib/dpop.mjs keys): the provider's default
      // (ES256, Ed25519, EdDSA) plus those our servers accept by default.
      dPoPSigningAlgValues: DPOP_ALGS,
    },
  };
}

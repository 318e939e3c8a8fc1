// The JS peer of benches/load/run.sh: the same MCP server as our `bench_server` binary, written
// the way the npm mcp-auth 0.2.0 documentation and samples write it. Express 5, mcp-auth's
// `bearerAuth('jwt')` (keys from the authorization server's JWKS, found by discovery), the same
// audience and scope checks, and the official MCP TypeScript SDK in stateless Streamable HTTP
// mode with JSON responses, serving one tool, `whoami`.
//
// Routes: POST /mcp (guarded) and POST /mcp-noauth (the same MCP handler without the guard; a
// fixed identity stands in for the verified one), plus the RFC 9728 metadata.
//
// Environment: PORT (0: any free port), MCP_AUTH_ISSUER, MCP_AUTH_RESOURCE (also the accepted
// audience), MCP_AUTH_REQUIRED_SCOPES (space-separated). Prints `listening on 127.0.0.1:<port>`.

import express from 'express';
import { MCPAuth } from 'mcp-auth';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';

const issuer = process.env.MCP_AUTH_ISSUER;
const resource = process.env.MCP_AUTH_RESOURCE;
const requiredScopes = (process.env.MCP_AUTH_REQUIRED_SCOPES ?? '').split(' ').filter(Boolean);
if (!issuer || !resource) {
  console.error('error: MCP_AUTH_ISSUER and MCP_AUTH_RESOURCE are required');
  process.exit(2);
}

const mcpAuth = new MCPAuth({
  protectedResources: {
    metadata: {
      resource,
      authorizationServers: [{ issuer, type: 'oidc' }],
      scopesSupported: requiredScopes.length > 0 ? requiredScopes : undefined,
    },
  },
});

// Claims about the token itself; `identity` reports them in its own fields.
const tokenClaims = new Set(['iss', 'sub', 'aud', 'exp', 'iat', 'nbf', 'jti', 'client_id', 'azp',
  'scope', 'scp', 'scopes', 'active', 'token_type', 'typ', 'cnf']);

// The same answer as the Rust example's `whoami` tool.
function identity(auth) {
  const out = {
    sub: auth?.subject ?? null,
    issuer: auth?.issuer ?? null,
    client_id: auth?.clientId ?? null,
    scopes: auth?.scopes ?? [],
    audience: auth?.audience === undefined ? [] : [auth.audience].flat(),
    expires_at: auth?.expiresAt ?? null,
  };
  for (const [claim, value] of Object.entries(auth?.claims ?? {})) {
    if (!tokenClaims.has(claim) && !(claim in out)) out[claim] = value;
  }
  return out;
}

function whoamiServer() {
  const server = new McpServer({ name: 'mcp-auth-whoami', version: '0.0.0' });
  server.registerTool(
    'whoami',
    { description: 'Returns who you are, as verified from your bearer token.' },
    async (extra) => {
      const who = identity(extra.authInfo);
      return { content: [{ type: 'text', text: JSON.stringify(who) }], structuredContent: who };
    },
  );
  return server;
}

// Stateless Streamable HTTP, as the SDK documents it: a server and transport per request.
async function handleMcp(req, res) {
  const server = whoamiServer();
  const transport = new StreamableHTTPServerTransport({
    sessionIdGenerator: undefined,
    enableJsonResponse: true,
  });
  res.on('close', () => {
    transport.close();
    server.close();
  });
  await server.connect(transport);
  await transport.handleRequest(req, res, req.body);
}

const standIn = {
  token: 'stand-in',
  issuer,
  clientId: 'test-client',
  scopes: requiredScopes.length > 0 ? requiredScopes : ['read', 'write'],
  subject: 'alice',
  audience: resource,
  expiresAt: 4102444800,
  claims: { name: 'Alice Example', email: 'alice@example.com', username: 'alice' },
};

const app = express();
app.use(mcpAuth.protectedResourceMetadataRouter());
app.use(express.json());
app.post(
  '/mcp',
  mcpAuth.bearerAuth('jwt', { resource, audience: resource, requiredScopes }),
  handleMcp,
);
app.post(
  '/mcp-noauth',
  (req, _res, next) => {
    req.auth = standIn;
    next();
  },
  handleMcp,
);

const listener = app.listen(Number(process.env.PORT ?? 3004), '127.0.0.1', () => {
  console.log(`listening on 127.0.0.1:${listener.address().port}`);
});
const stop = () => listener.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

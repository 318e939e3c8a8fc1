// oauth4webapi in a web page: the DPoP group's browser check. A page on its own origin
// (http://127.0.0.1:<port>, served here) loads the pinned oauth4webapi build, imports the
// client key (generated and bound to the tokens in Node, handed over as JWKs), and calls the
// whoami examples (http://localhost:<port>) with `protectedResourceRequest` in headless
// Chromium. The browser applies CORS: a request with `Authorization` and `DPoP` needs the
// preflight to allow both, and oauth4webapi can only see a `use_dpop_nonce` challenge and keep
// the nonce if the server exposes `WWW-Authenticate` and `DPoP-Nonce`.

import * as http from 'node:http';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import { launchBrowser } from './inspector.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const OAUTH4WEBAPI_BUILD = path.join(here, '..', 'node_modules', 'oauth4webapi', 'build', 'index.js');

/** Serves the page and oauth4webapi's ES module on a loopback port from the OS. */
async function servePage() {
  const library = readFileSync(OAUTH4WEBAPI_BUILD);
  const server = http.createServer((request, response) => {
    if (request.url === '/oauth4webapi.js') {
      response.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' }).end(library);
    } else if (request.url === '/') {
      response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end('<!doctype html><title>oauth4webapi DPoP</title><p>mcp-auth interop</p>');
    } else {
      response.writeHead(404).end();
    }
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  return {
    origin: `http://127.0.0.1:${server.address().port}`,
    close: () => new Promise((resolve) => { server.close(() => resolve()); server.closeAllConnections(); }),
  };
}

/** What runs in the page: for each call, initialize, notifications/initialized and tools/call
 * whoami with the imported ES256 key, retrying once on use_dpop_nonce. Returns, per call, the
 * exchanges as the page saw them (status, the headers it could read, the proof's nonce) and the
 * whoami result or the error. */
async function inPage({ jwks, calls, protocolVersion }) {
  const oauth = await import('/oauth4webapi.js');
  const algorithm = { name: 'ECDSA', namedCurve: 'P-256' };
  const privateKey = await crypto.subtle.importKey('jwk', jwks.privateKey, algorithm, false, ['sign']);
  const publicKey = await crypto.subtle.importKey('jwk', jwks.publicKey, algorithm, true, ['verify']);
  const dpop = oauth.DPoP({ client_id: 'interop-browser' }, { privateKey, publicKey });
  const decode = (jwt) => JSON.parse(atob(jwt.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')));
  const results = [];
  for (const call of calls) {
    const exchanges = [];
    const customFetch = async (url, init) => {
      const response = await fetch(url, init);
      exchanges.push({
        status: response.status,
        challenge: response.headers.get('www-authenticate'),
        dpopNonce: response.headers.get('dpop-nonce'),
        proofNonce: decode(init.headers.dpop).nonce ?? null,
        scheme: init.headers.authorization.split(' ')[0],
      });
      return response;
    };
    const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': protocolVersion };
    const options = { DPoP: dpop, [oauth.customFetch]: customFetch, [oauth.allowInsecureRequests]: true };
    const post = async (message) => {
      for (let attempt = 0; ; attempt += 1) {
        try {
          const response = await oauth.protectedResourceRequest(call.token, 'POST', new URL(call.mcpUrl), headers, JSON.stringify(message), options);
          return { status: response.status, text: await response.text() };
        } catch (error) {
          if (attempt === 0 && oauth.isDPoPNonceError(error)) continue;
          throw error;
        }
      }
    };
    try {
      const init = await post({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion, capabilities: {}, clientInfo: { name: 'interop-browser', version: '1.0.0' } } });
      if (init.status !== 200) throw new Error(`initialize: HTTP ${init.status}`);
      const initialized = await post({ jsonrpc: '2.0', method: 'notifications/initialized' });
      if (initialized.status !== 202) throw new Error(`notifications/initialized: HTTP ${initialized.status}`);
      const answer = await post({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'whoami', arguments: {} } });
      if (answer.status !== 200) throw new Error(`tools/call: HTTP ${answer.status}`);
      results.push({ name: call.name, exchanges, identity: JSON.parse(answer.text).result?.structuredContent });
    } catch (error) {
      results.push({ name: call.name, exchanges, error: `${error?.name}: ${error?.message}` });
    }
  }
  return results;
}

/**
 * Runs `calls` ([{ name, mcpUrl, token }], tokens bound to `key`, an extractable ES256
 * newDpopKey) in a page of headless Chromium on another origin. Resolves to { origin, results }.
 */
export async function dpopFromBrowser({ key, calls, protocolVersion }) {
  const jwks = {
    privateKey: await crypto.subtle.exportKey('jwk', key.keyPair.privateKey),
    publicKey: await crypto.subtle.exportKey('jwk', key.keyPair.publicKey),
  };
  const page = await servePage();
  let browser;
  try {
    browser = await launchBrowser();
    const tab = await browser.context.newPage();
    await tab.goto(`${page.origin}/`);
    const results = await tab.evaluate(inPage, { jwks, calls, protocolVersion });
    return { origin: page.origin, results };
  } finally {
    await browser?.close();
    await page.close();
  }
}

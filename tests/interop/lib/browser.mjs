// A user agent without a browser: follows the authorization redirects over plain HTTP with a
// cookie jar, fills in the provider's development login form and confirms its consent form,
// and stops at the redirect back to the client. Plus the OAuth calls the suite makes as the
// pre-registered client (token, revocation, introspection).

import * as crypto from 'node:crypto';

import { APP_CLIENT } from './provider.mjs';

/** Every HTTP request of the suite gives up after this long. */
export const HTTP_TIMEOUT_MS = 10_000;
/** Most redirects and form posts one authorization may take. */
const MAX_STEPS = 20;

/** A minimal RFC 6265 jar: name, value, path and expiry; one origin at a time is enough here. */
export class CookieJar {
  #cookies = new Map(); // "origin name path" -> { origin, name, value, path, expires }

  /** Stores the Set-Cookie headers of a response to `url`. */
  store(url, response) {
    const { origin, pathname } = new URL(url);
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attributes] = line.split(';').map((part) => part.trim());
      const eq = pair.indexOf('=');
      if (eq <= 0) continue;
      const cookie = { origin, name: pair.slice(0, eq), value: pair.slice(eq + 1), path: defaultPath(pathname), expires: Infinity };
      for (const attribute of attributes) {
        const [key, value = ''] = attribute.split('=');
        switch (key.toLowerCase()) {
          case 'path': cookie.path = value || '/'; break;
          case 'max-age': cookie.expires = Date.now() + Number(value) * 1000; break;
          case 'expires': if (cookie.expires === Infinity) cookie.expires = Date.parse(value); break;
          default: break;
        }
      }
      const key = `${origin} ${cookie.name} ${cookie.path}`;
      if (cookie.expires <= Date.now()) this.#cookies.delete(key);
      else this.#cookies.set(key, cookie);
    }
  }

  /** The Cookie header for a request to `url`, or undefined. */
  header(url) {
    const { origin, pathname } = new URL(url);
    const now = Date.now();
    const matching = [...this.#cookies.values()]
      .filter((c) => c.origin === origin && c.expires > now && pathMatches(c.path, pathname))
      .sort((a, b) => b.path.length - a.path.length);
    return matching.length ? matching.map((c) => `${c.name}=${c.value}`).join('; ') : undefined;
  }
}

function defaultPath(pathname) {
  const slash = pathname.lastIndexOf('/');
  return slash <= 0 ? '/' : pathname.slice(0, slash);
}

function pathMatches(cookiePath, requestPath) {
  if (requestPath === cookiePath) return true;
  if (!requestPath.startsWith(cookiePath)) return false;
  return cookiePath.endsWith('/') || requestPath[cookiePath.length] === '/';
}

/** fetch with a timeout, no automatic redirects, and the jar's cookies. */
async function send(jar, url, { method = 'GET', body } = {}) {
  const headers = { accept: 'text/html,application/json' };
  const cookie = jar.header(url);
  if (cookie) headers.cookie = cookie;
  if (body) headers['content-type'] = 'application/x-www-form-urlencoded';
  const response = await fetch(url, {
    method, body, headers, redirect: 'manual', signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
  });
  jar.store(url, response);
  return response;
}

/** The first POST form of an HTML page: its action and its named inputs. */
function parseForm(html, pageUrl) {
  const form = /<form\b[^>]*>([\s\S]*?)<\/form>/i.exec(html);
  if (!form) return undefined;
  const action = /\baction="([^"]*)"/i.exec(form[0])?.[1] ?? pageUrl;
  const fields = {};
  for (const input of form[1].matchAll(/<input\b[^>]*>/gi)) {
    const name = /\bname="([^"]*)"/i.exec(input[0])?.[1];
    if (name) fields[name] = /\bvalue="([^"]*)"/i.exec(input[0])?.[1] ?? '';
  }
  return { action: new URL(action.replaceAll('&amp;', '&'), pageUrl).href, fields };
}

/**
 * Runs an authorization request: follows `authorizationUrl`, logs in as `user` on the
 * development login page (unless the provider's session in `jar` is still good), confirms
 * consent, and returns the parameters of the redirect to `redirectUri` ({ code, state, iss,
 * url }). Throws with the provider's error. `steps` (optional array) receives "METHOD path
 * (prompt) -> status" lines, the prompt being the form posted (login, consent); `jar` (optional) is the user agent's cookie jar, fresh by default.
 */
export async function authorize(authorizationUrl, { user, redirectUri, steps = [], jar = new CookieJar() }) {
  const target = new URL(redirectUri);
  let request = { url: new URL(authorizationUrl).href };
  for (let step = 0; step < MAX_STEPS; step += 1) {
    const response = await send(jar, request.url, request);
    const { pathname } = new URL(request.url);
    const prompt = request.prompt ? ` (${request.prompt})` : '';
    steps.push(`${request.method ?? 'GET'} ${pathname}${prompt} -> ${response.status}`);
    if (response.status >= 300 && response.status < 400) {
      await response.body?.cancel();
      const location = new URL(response.headers.get('location'), request.url);
      if (location.origin === target.origin && location.pathname === target.pathname) {
        const params = Object.fromEntries(location.searchParams);
        if (params.error) {
          throw new Error(`the authorization server answered ${params.error}: ${params.error_description ?? ''}`);
        }
        if (!params.code) throw new Error(`redirect without a code: ${location.href}`);
        return { ...params, url: location.href };
      }
      request = { url: location.href };
      continue;
    }
    const text = await response.text();
    const form = response.status === 200 ? parseForm(text, request.url) : undefined;
    if (!form) {
      throw new Error(`unexpected ${response.status} from ${pathname}: ${text.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').slice(0, 400)}`);
    }
    if ('login' in form.fields) {
      form.fields.login = user;
      form.fields.password = 'any password (development login)';
    }
    request = {
      url: form.action, method: 'POST', body: new URLSearchParams(form.fields).toString(), prompt: form.fields.prompt,
    };
  }
  throw new Error(`no redirect to ${redirectUri} after ${MAX_STEPS} steps: ${steps.join(', ')}`);
}

/** The provider's OpenID configuration (the suite reads endpoint URLs from it). */
export async function discovery(issuer) {
  const response = await fetch(`${issuer}/.well-known/openid-configuration`, { signal: AbortSignal.timeout(HTTP_TIMEOUT_MS) });
  if (!response.ok) throw new Error(`discovery at ${issuer}: ${response.status}`);
  return response.json();
}

function basic(client) {
  return `Basic ${Buffer.from(`${encodeURIComponent(client.client_id)}:${encodeURIComponent(client.client_secret)}`).toString('base64')}`;
}

/** A form POST authenticated as `client` (Basic, or client_id in the body for a public client). */
async function postForm(url, client, params) {
  const headers = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
  const body = new URLSearchParams(params);
  if (client.client_secret) headers.authorization = basic(client);
  else body.set('client_id', client.client_id);
  const response = await fetch(url, {
    method: 'POST',
    headers,
    body: body.toString(),
    signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
  });
  const text = await response.text();
  let json;
  try { json = text ? JSON.parse(text) : {}; } catch { json = { raw: text }; }
  return { status: response.status, json };
}

/**
 * Logs `user` in with the pre-registered `client` (authorization code + PKCE S256) and returns
 * the token response. `resource` (optional) is sent in the authorization and token requests.
 */
export async function obtainTokens(issuer, { user = 'alice', scope, resource, client = APP_CLIENT }) {
  const config = await discovery(issuer);
  const verifier = crypto.randomBytes(32).toString('base64url');
  const challenge = crypto.createHash('sha256').update(verifier).digest('base64url');
  const state = crypto.randomBytes(16).toString('base64url');
  const redirectUri = client.redirect_uris[0];
  const url = new URL(config.authorization_endpoint);
  url.search = new URLSearchParams({
    client_id: client.client_id,
    response_type: 'code',
    redirect_uri: redirectUri,
    scope,
    state,
    code_challenge: challenge,
    code_challenge_method: 'S256',
    ...(resource ? { resource } : {}),
  }).toString();
  const callback = await authorize(url.href, { user, redirectUri });
  if (callback.state !== state) throw new Error('the state came back changed');
  const { status, json } = await postForm(config.token_endpoint, client, {
    grant_type: 'authorization_code',
    code: callback.code,
    redirect_uri: redirectUri,
    code_verifier: verifier,
    ...(resource ? { resource } : {}),
  });
  if (status !== 200 || !json.access_token) {
    throw new Error(`token endpoint answered ${status}: ${JSON.stringify(json)}`);
  }
  return json;
}

/** RFC 7009 revocation of an access token by its client. Resolves to the HTTP status. */
export async function revoke(issuer, token, client = APP_CLIENT) {
  const config = await discovery(issuer);
  const { status } = await postForm(config.revocation_endpoint, client, { token, token_type_hint: 'access_token' });
  return status;
}

/** RFC 7662 introspection, as `client`. */
export async function introspect(issuer, token, client) {
  const config = await discovery(issuer);
  const { status, json } = await postForm(config.introspection_endpoint, client, { token });
  if (status !== 200) throw new Error(`introspection answered ${status}: ${JSON.stringify(json)}`);
  return json;
}

/** The decoded header and payload of a JWT, or undefined for an opaque token. */
export function decodeJwt(token) {
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  const decode = (part) => JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
  return { header: decode(parts[0]), payload: decode(parts[1]) };
}

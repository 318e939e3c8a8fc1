// The MCP Inspector in a real browser: the original guide's manual test, automated. The
// pinned `@modelcontextprotocol/inspector` (its proxy server and its web UI, on free loopback
// ports) is driven in headless Chromium (Debian's `chromium`, through `playwright-core`): set
// the transport to Streamable HTTP and the URL to a whoami example, Connect, sign in at the
// authorization server the 401 leads to, come back, list the tools, run `whoami`, and read the
// claims the page shows. A screenshot of the result is saved; its path is printed.
//
// Two cases: the whoami example with its built-in development authorization server (no
// configuration: it approves every authorization, no login page), and the whoami example
// trusting node-oidc-provider, whose development login and consent forms the browser fills.

import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

import { ADMIN_SCOPE, OTHER_SCOPE, REQUIRED_SCOPE, startProvider, USERS } from './provider.mjs';
import { binaryPath, startServer, track } from './servers.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const modules = path.resolve(here, '..', 'node_modules', '@modelcontextprotocol');

/** The Inspector version installed (package-lock.json pins it). */
export const INSPECTOR_VERSION = JSON.parse(readFileSync(path.join(modules, 'inspector', 'package.json'), 'utf8')).version;

/** Debian's `chromium` package (no browser download is possible); INTEROP_CHROMIUM overrides. */
export const CHROMIUM = process.env.INTEROP_CHROMIUM || '/usr/bin/chromium';

/** Without these, Chromium on a closed network waits on its own background requests. */
const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync',
];

/** How long the Inspector's two processes may take to listen. */
const START_TIMEOUT_MS = 30_000;
/** Each browser step (a click, a page, a result) gives up after this long. */
const STEP_TIMEOUT_MS = 20_000;
/** Lines of the Inspector's output kept for failure reports. */
const KEPT_LINES = 30;

/** The sample user of the crate's TestAuthServer (src/testing/builder.rs SampleUser). */
const DEV_USER = { sub: 'alice', name: 'Alice Example', email: 'alice@example.com', username: 'alice' };

/** A free port on localhost, from the OS (listen on 0, read it, close). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, 'localhost', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Spawns `node script` with `env`, resolves once a stdout line matches `ready`. */
function startNode(name, script, env, ready, { pidFile, log }) {
  const child = spawn(process.execPath, [script], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const handle = track(name, child, pidFile);
  return new Promise((resolve, reject) => {
    let done = false;
    const finish = (error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (error) handle.stop().finally(() => reject(error));
      else resolve(handle);
    };
    const timer = setTimeout(() => finish(new Error(`${name}: not listening within ${START_TIMEOUT_MS} ms\n${log.tail()}`)), START_TIMEOUT_MS);
    child.on('error', (error) => finish(new Error(`${name}: cannot start: ${error.message}`)));
    child.on('exit', (code, signal) => finish(new Error(`${name}: exited during start (code ${code}, signal ${signal})\n${log.tail()}`)));
    for (const stream of [child.stdout, child.stderr]) {
      stream.setEncoding('utf8');
      stream.on('data', (chunk) => {
        for (const line of chunk.split('\n').filter((l) => l.trim())) {
          log.push(`${name}: ${line}`);
          if (ready.test(line)) finish();
        }
      });
    }
  });
}

/** A bounded log of lines. */
function lineLog() {
  const lines = [];
  return {
    push(line) {
      lines.push(line);
      if (lines.length > 4 * KEPT_LINES) lines.splice(0, lines.length - KEPT_LINES);
    },
    tail: () => lines.slice(-KEPT_LINES).join('\n'),
  };
}

/**
 * Starts the Inspector's proxy server and its web UI on free ports (SERVER_PORT and
 * CLIENT_PORT, as its `start` script passes them), with a random proxy session token, and the
 * browser auto-open off. Resolves with { uiUrl, stop(), logTail() }: `uiUrl` opens the UI
 * with the proxy's address and token (the query parameters the Inspector reads).
 */
export async function startInspector({ pidFile } = {}) {
  const [clientPort, serverPort] = [await freePort(), await freePort()];
  const token = crypto.randomBytes(32).toString('hex');
  const env = {
    ...process.env,
    HOST: 'localhost',
    CLIENT_PORT: String(clientPort),
    SERVER_PORT: String(serverPort),
    MCP_PROXY_AUTH_TOKEN: token,
    MCP_AUTO_OPEN_ENABLED: 'false',
  };
  delete env.DANGEROUSLY_OMIT_AUTH;
  const log = lineLog();
  const started = await Promise.allSettled([
    startNode('inspector proxy', path.join(modules, 'inspector-server', 'build', 'index.js'), env, /Proxy server listening on/, { pidFile, log }),
    startNode('inspector UI', path.join(modules, 'inspector-client', 'bin', 'client.js'), env, /MCP Inspector is up and running/, { pidFile, log }),
  ]);
  const handles = started.filter((s) => s.status === 'fulfilled').map((s) => s.value);
  const stop = () => Promise.all(handles.map((h) => h.stop()));
  const failure = started.find((s) => s.status === 'rejected');
  if (failure) {
    await stop();
    throw failure.reason;
  }
  const query = new URLSearchParams({
    // Kept in the page's storage: it survives the round trip through the authorization server.
    MCP_PROXY_FULL_ADDRESS: `http://localhost:${serverPort}`,
    MCP_PROXY_AUTH_TOKEN: token,
  });
  return { uiUrl: `http://localhost:${clientPort}/?${query}`, origin: `http://localhost:${clientPort}`, stop, logTail: log.tail };
}

/** Headless Chromium with a fresh profile; `close()` also removes the profile. */
export async function launchBrowser() {
  const profile = mkdtempSync(path.join(os.tmpdir(), 'mcp-auth-interop-chromium-'));
  try {
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true, // playwright adds --headless
      args: CHROMIUM_ARGS,
      viewport: { width: 1280, height: 1500 },
      timeout: START_TIMEOUT_MS,
    });
    context.setDefaultTimeout(STEP_TIMEOUT_MS);
    return {
      context,
      async close() {
        await context.close().catch(() => {});
        rmSync(profile, { recursive: true, force: true });
      },
    };
  } catch (error) {
    rmSync(profile, { recursive: true, force: true });
    throw error;
  }
}

/** The top-level `key: "value"` lines of the Inspector's JSON view, as an object. */
export function parseJsonView(text) {
  const claims = {};
  for (const match of text.matchAll(/^\s*([A-Za-z_]+):\s*"([^"]*)"\s*$/gm)) {
    claims[match[1]] ??= match[2];
  }
  return claims;
}

/**
 * Drives the Inspector at `inspector.uiUrl`: Streamable HTTP to `mcpUrl`, Connect, then
 * `signIn(page)` at the authorization server until the browser is back at the Inspector,
 * wait for "Connected", list the tools, run `whoami`, and read its structured result.
 * Saves a screenshot to `screenshot` whatever happens. Resolves with { claims, text,
 * navigations, signInSteps, tools }.
 */
export async function runWhoamiInInspector({ inspector, mcpUrl, signIn, screenshot }) {
  const browser = await launchBrowser();
  const page = browser.context.pages()[0] ?? await browser.context.newPage();
  const navigations = [];
  page.on('request', (request) => {
    if (request.isNavigationRequest() && request.frame() === page.mainFrame()) navigations.push(request.url());
  });
  const consoleErrors = [];
  page.on('console', (message) => { if (message.type() === 'error') consoleErrors.push(message.text().slice(0, 300)); });
  try {
    await page.goto(inspector.uiUrl);
    await page.locator('#transport-type-select').click();
    await page.getByRole('option', { name: 'Streamable HTTP', exact: true }).click();
    await page.locator('#sse-url-input').fill(mcpUrl);
    // The 401 sends the page to the authorization server; the sign-in brings it back.
    const leaving = page.waitForRequest((request) => request.isNavigationRequest()
      && request.frame() === page.mainFrame() && !request.url().startsWith(inspector.origin));
    await page.getByRole('button', { name: 'Connect', exact: true }).click();
    await leaving;
    const signInSteps = await signIn(page, inspector);
    await page.waitForURL((url) => url.href.startsWith(inspector.origin));
    await page.getByText('Connected', { exact: true }).waitFor();
    await page.getByRole('tab', { name: 'Tools' }).click();
    await page.getByRole('button', { name: 'List Tools' }).click();
    const tool = page.getByText('whoami', { exact: true }).first();
    await tool.waitFor();
    const tools = await page.locator('h4, span, div').filter({ hasText: /^(whoami|secret)$/ }).allInnerTexts();
    await tool.click();
    await page.getByRole('button', { name: 'Run Tool' }).click();
    const heading = page.getByRole('heading', { name: 'Structured Content:', exact: true });
    await heading.waitFor();
    const view = heading.locator('xpath=following-sibling::div[1]');
    await view.scrollIntoViewIfNeeded();
    const text = await view.innerText();
    const status = await page.getByText(/^Tool Result:/).first().innerText();
    return { claims: parseJsonView(text), text, status, navigations, signInSteps, tools: [...new Set(tools)] };
  } catch (error) {
    error.message += `\n      browser navigations: ${navigations.join(' -> ')}`
      + `\n      page errors: ${consoleErrors.slice(-5).join(' | ') || 'none'}`
      + `\n      screenshot: ${screenshot}\n${inspector.logTail()}`;
    throw error;
  } finally {
    mkdirSync(path.dirname(screenshot), { recursive: true });
    await page.screenshot({ path: screenshot }).catch(() => {});
    await browser.close();
  }
}

/** The built-in development server approves at once: nothing to fill in, one redirect. */
async function devServerSignIn() {
  return ['auto-approved (no login page)'];
}

/** node-oidc-provider's development interactions: the login form, then the consent form. */
function providerSignIn(user) {
  return async (page, inspector) => {
    const steps = [];
    await page.waitForURL((url) => !url.href.startsWith(inspector.origin));
    for (let i = 0; i < 4 && !page.url().startsWith(inspector.origin); i += 1) {
      const form = page.locator('form[action*="/interaction/"]').first();
      await form.waitFor();
      if (await page.locator('input[name="login"]').count()) {
        await page.locator('input[name="login"]').fill(user);
        await page.locator('input[name="password"]').fill('any password (development login)');
        steps.push('login form');
      } else {
        steps.push('consent form');
      }
      const from = page.url();
      await Promise.all([
        page.waitForURL((url) => url.href !== from),
        form.locator('button[type="submit"]').click(),
      ]);
      if (page.url().startsWith(inspector.origin)) break;
      await page.waitForLoadState();
    }
    return steps;
  };
}

/** The authorization request the browser was sent to: at `issuer`, PKCE S256, `resource`. */
function assertAuthorization(navigations, { issuer, resource }) {
  const authorization = navigations.find((url) => url.startsWith(`${issuer}/`) && new URL(url).searchParams.get('response_type') === 'code');
  assert.ok(authorization, `the browser went to ${issuer}'s authorization endpoint: ${navigations.join(' -> ')}`);
  const params = new URL(authorization).searchParams;
  assert.equal(params.get('code_challenge_method'), 'S256', 'PKCE S256');
  assert.equal(params.get('resource'), resource, 'resource in the authorization request');
  const callback = navigations.find((url) => /\/oauth\/callback\?/.test(url) && new URL(url).searchParams.get('code'));
  assert.ok(callback, `the browser came back to the Inspector with a code: ${navigations.join(' -> ')}`);
  return params;
}

function assertClaims(result, expected) {
  assert.deepEqual([...result.tools].sort(), ['secret', 'whoami'], 'tools/list shows the two tools');
  assert.match(result.status, /Success/, `the tool result: ${result.status}`);
  for (const [claim, value] of Object.entries(expected)) {
    assert.equal(result.claims[claim], value, `${claim} shown in the page:\n${result.text}`);
  }
}

/**
 * The browser cases, recorded on `report`: a set-up check (the Inspector, node-oidc-provider,
 * two whoami servers), then one case per authorization server. Screenshots go to
 * `<targetDir>/interop-inspector/`.
 */
export async function runInspectorSuite({ report, targetDir, pidFile }) {
  const prefix = `[inspector ${INSPECTOR_VERSION}]`;
  const shots = path.join(targetDir, 'interop-inspector');
  const cases = [
    `${prefix} whoami example with its built-in development authorization server: Connect, auto-approved sign-in, back, tools/list, whoami shows ${DEV_USER.name}`,
    `${prefix} whoami example with node-oidc-provider: Connect, real login and consent forms, back, tools/list, whoami shows alice's claims from the provider`,
  ];
  const ctx = {};
  const stopAllHere = async () => {
    await Promise.all([ctx.inspector?.stop(), ctx.dev?.stop(), ctx.oidc?.stop(), ctx.provider?.stop()]);
  };
  const ok = await report.check(`${prefix} set-up: the Inspector's proxy and UI on free ports, Chromium ${CHROMIUM}, node-oidc-provider, 2 whoami servers`, async () => {
    assert.ok(existsSync(CHROMIUM), `no Chromium at ${CHROMIUM}: apt-get install chromium (or set INTEROP_CHROMIUM)`);
    const [inspector, provider] = await Promise.all([startInspector({ pidFile }), startProvider({ alg: 'RS256' })]);
    Object.assign(ctx, { inspector, provider });
    const binary = binaryPath(targetDir, 'whoami');
    const [dev, oidc] = await Promise.all([
      // `cargo run --example whoami` with no settings: its built-in development server.
      startServer({ name: 'inspector: whoami (dev server)', binary, env: {}, pidFile }),
      startServer({
        name: 'inspector: whoami (node-oidc-provider)',
        binary,
        env: { MCP_AUTH_ISSUER: provider.issuer, MCP_AUTH_VERIFIER: 'jwt', MCP_AUTH_REQUIRED_SCOPES: REQUIRED_SCOPE },
        pidFile,
      }),
    ]);
    Object.assign(ctx, { dev, oidc });
    provider.addResource(oidc.resource, { format: 'jwt', scope: `${REQUIRED_SCOPE} ${OTHER_SCOPE} ${ADMIN_SCOPE}` });
    assert.notEqual(dev.issuer, provider.issuer, 'the dev server is the example\'s own');
  }, { timeoutMs: 90_000 });
  if (!ok) {
    await stopAllHere();
    for (const name of cases) report.skip(name, 'the set-up failed');
    return;
  }

  await report.check(cases[0], async () => {
    const server = ctx.dev;
    const screenshot = path.join(shots, 'whoami-dev-server.png');
    const result = await runWhoamiInInspector({ inspector: ctx.inspector, mcpUrl: server.mcpUrl, signIn: devServerSignIn, screenshot });
    assertAuthorization(result.navigations, { issuer: server.issuer, resource: server.resource });
    assertClaims(result, { ...DEV_USER, issuer: server.issuer, credential: 'oauth' });
    assert.ok(result.claims.client_id, 'a client_id (the Inspector registered itself)');
    return `sign-in: ${result.signInSteps.join(', ')}; claims shown: sub=${result.claims.sub}, name=${result.claims.name}, `
      + `email=${result.claims.email}, issuer=${result.claims.issuer}, client_id=${result.claims.client_id}\nscreenshot: ${screenshot}`;
  }, { timeoutMs: 90_000, context: () => ctx.dev.stderrTail() });

  await report.check(cases[1], async () => {
    const server = ctx.oidc;
    const screenshot = path.join(shots, 'whoami-node-oidc-provider.png');
    const result = await runWhoamiInInspector({ inspector: ctx.inspector, mcpUrl: server.mcpUrl, signIn: providerSignIn('alice'), screenshot });
    const params = assertAuthorization(result.navigations, { issuer: ctx.provider.issuer, resource: server.resource });
    assert.ok(params.get('scope')?.split(' ').includes(REQUIRED_SCOPE), `scope ${params.get('scope')} includes ${REQUIRED_SCOPE}`);
    assert.ok(result.signInSteps.includes('login form'), `the login form was filled: ${result.signInSteps}`);
    const user = USERS.alice;
    assertClaims(result, {
      sub: 'alice', name: user.name, email: user.email, username: user.username, issuer: ctx.provider.issuer, credential: 'oauth',
    });
    assert.match(result.text, new RegExp(`"${REQUIRED_SCOPE}"`), `the scopes shown include ${REQUIRED_SCOPE}`);
    return `sign-in: ${result.signInSteps.join(', ')}; claims shown: sub=${result.claims.sub}, name=${result.claims.name}, `
      + `email=${result.claims.email}, username=${result.claims.username}, issuer=${result.claims.issuer}\nscreenshot: ${screenshot}`;
  }, { timeoutMs: 90_000, context: () => ctx.oidc.stderrTail() });

  await stopAllHere();
}

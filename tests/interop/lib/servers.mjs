// The servers under test: the crate's whoami example binaries, started with PORT=0 and the
// MCP_AUTH_* environment; the real port and URLs are read from the start-up banner
// (examples/common/banner.rs).

import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';

/** How long a server may take to print its banner. */
const START_TIMEOUT_MS = 30_000;
/** How long a server may take to exit after SIGTERM before it gets SIGKILL. */
const STOP_TIMEOUT_MS = 5_000;
/** Lines of a server's stderr kept for failure reports. */
const KEPT_LINES = 40;

const running = new Set();
/** Where the PIDs of the running servers are listed (for run.sh's cleanup after a crash). */
let pidFile;

function writePids() {
  if (!pidFile) return;
  try {
    writeFileSync(pidFile, [...running].map((server) => `${server.pid}\n`).join(''));
  } catch { /* the list is a safety net only */ }
}

function forget(server) {
  running.delete(server);
  writePids();
}

/** The example binaries, built by `cargo build --examples`. */
export function binaryPath(targetDir, example) {
  return path.join(targetDir, 'debug', 'examples', example);
}

/**
 * Starts `binary` with `env` (added to a clean MCP_AUTH_* environment) and resolves once its
 * banner is printed: { name, pid, mcpUrl, resource, metadataUrl, issuer, verifier,
 * requiredScopes, stderrTail(), stop() }.
 */
export function startServer({ name, binary, env, pidFile: file }) {
  pidFile ??= file;
  const childEnv = { ...process.env };
  for (const key of Object.keys(childEnv)) if (key.startsWith('MCP_AUTH_')) delete childEnv[key];
  Object.assign(childEnv, { PORT: '0', RUST_LOG: 'warn,mcp_auth=info' }, env);
  const child = spawn(binary, [], { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  const stderr = [];
  const banner = {};
  let stdoutBuffer = '';
  let stderrBuffer = '';
  const server = {
    name,
    pid: child.pid,
    child,
    exited: false,
    stderrTail: () => stderr.slice(-KEPT_LINES).join('\n'),
    stop: () => stop(server),
  };
  if (child.pid) {
    running.add(server);
    writePids();
  }

  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      fail(new Error(`${name}: no banner within ${START_TIMEOUT_MS} ms`));
    }, START_TIMEOUT_MS);
    function fail(error) {
      clearTimeout(timer);
      error.message += `\n--- ${name} stderr ---\n${server.stderrTail()}`;
      stop(server).finally(() => reject(error));
    }
    child.on('error', (error) => fail(new Error(`${name}: cannot start ${binary}: ${error.message}`)));
    child.on('exit', (code, signal) => {
      server.exited = true;
      forget(server);
      if (!banner.done) fail(new Error(`${name}: exited during start (code ${code}, signal ${signal})`));
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk) => {
      stderrBuffer += chunk;
      const lines = stderrBuffer.split('\n');
      stderrBuffer = lines.pop();
      stderr.push(...lines);
      if (stderr.length > 4 * KEPT_LINES) stderr.splice(0, stderr.length - KEPT_LINES);
    });
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk) => {
      if (banner.done) return;
      stdoutBuffer += chunk;
      const lines = stdoutBuffer.split('\n');
      stdoutBuffer = lines.pop();
      for (const line of lines) {
        const match = /^ {2}(listening on|MCP endpoint|protected resource|resource metadata|authorization server|token verifier|required scopes) +(\S.*)$/.exec(line);
        if (match) banner[match[1]] = match[2].trim();
        if (line.startsWith('Press Ctrl-C to stop.')) {
          banner.done = true;
          clearTimeout(timer);
          if (!banner['MCP endpoint'] || !banner['protected resource']) {
            fail(new Error(`${name}: banner without the MCP endpoint or the resource`));
            return;
          }
          Object.assign(server, {
            mcpUrl: banner['MCP endpoint'],
            resource: banner['protected resource'],
            metadataUrl: banner['resource metadata'],
            issuer: banner['authorization server'],
            listening: banner['listening on'],
            verifier: banner['token verifier'],
            requiredScopes: banner['required scopes']?.split(' ') ?? [],
          });
          resolve(server);
        }
      }
    });
  });
}

/**
 * Tracks a child process that is not an example (the MCP Inspector's proxy and web server):
 * stopped by stopAll() and killAllNow() like the servers, listed in the PID file for run.sh.
 * Returns { name, pid, child, exited, stop() }.
 */
export function track(name, child, file) {
  pidFile ??= file;
  const handle = { name, pid: child.pid, child, exited: false, stop: () => stop(handle) };
  if (!child.pid) return handle;
  running.add(handle);
  writePids();
  child.on('exit', () => {
    handle.exited = true;
    forget(handle);
  });
  return handle;
}

/** SIGTERM, then SIGKILL after STOP_TIMEOUT_MS. Resolves once the process is gone. */
function stop(server) {
  const { child } = server;
  if (server.exited || child.exitCode !== null || child.signalCode !== null) {
    forget(server);
    return Promise.resolve();
  }
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    child.once('exit', () => {
      clearTimeout(timer);
      forget(server);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** Stops every server still running. */
export async function stopAll() {
  await Promise.all([...running].map((server) => stop(server)));
}

/** Synchronous last resort (process exit): SIGKILL by PID. */
export function killAllNow() {
  for (const server of running) {
    try { process.kill(server.pid, 'SIGKILL'); } catch { /* already gone */ }
  }
  running.clear();
}

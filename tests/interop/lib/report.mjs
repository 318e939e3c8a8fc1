// Named checks: each prints one PASS/FAIL line as it finishes; the summary ends the run.

import { performance } from 'node:perf_hooks';

export class Report {
  #results = [];
  #started = performance.now();

  /** Runs `fn` (async, throws on failure) as the check `name`, bounded by `timeoutMs`. On
   * failure, `context()` (e.g. the server's last log lines) is printed after the reason. If
   * `fn` resolves to a non-empty string (what it observed), that is printed under PASS. */
  async check(name, fn, { timeoutMs = 60_000, context } = {}) {
    const start = performance.now();
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no result within ${timeoutMs / 1000} s`)), timeoutMs);
    });
    let error;
    let observed;
    try {
      observed = await Promise.race([fn(), timeout]);
    } catch (e) {
      error = e;
    } finally {
      clearTimeout(timer);
    }
    const seconds = (performance.now() - start) / 1000;
    this.#results.push({ name, ok: !error, seconds });
    if (error) {
      const indent = (text) => text.split('\n').map((l) => `      ${l}`).join('\n');
      let reason = indent(String(error?.stack ?? error).split('\n').slice(0, 12).join('\n'));
      const extra = context?.();
      if (extra) reason += `\n      --- server log (last lines) ---\n${indent(extra)}`;
      process.stdout.write(`FAIL  ${name} (${seconds.toFixed(1)} s)\n${reason}\n`);
    } else {
      const note = typeof observed === 'string' && observed
        ? `${observed.split('\n').map((l) => `      ${l}`).join('\n')}\n` : '';
      process.stdout.write(`PASS  ${name} (${seconds.toFixed(1)} s)\n${note}`);
    }
    return !error;
  }

  /** Records `name` as failed without running it (its set-up failed). */
  skip(name, why) {
    this.#results.push({ name, ok: false, seconds: 0 });
    process.stdout.write(`FAIL  ${name} (not run: ${why})\n`);
  }

  get failed() { return this.#results.filter((r) => !r.ok).length; }

  /** The summary; its last line is exactly `N passed, M failed`. */
  summary() {
    const passed = this.#results.length - this.failed;
    const total = (performance.now() - this.#started) / 1000;
    const slowest = [...this.#results].sort((a, b) => b.seconds - a.seconds).slice(0, 3)
      .map((r) => `${r.name} ${r.seconds.toFixed(1)} s`).join('; ');
    return `\nwall time ${total.toFixed(1)} s; longest checks: ${slowest}\n${passed} passed, ${this.failed} failed\n`;
  }
}

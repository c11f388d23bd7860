// Shared pieces of the real-memory tests: starting `pensieve serve` with any model and wrapper
// (a cgroup), reading a process's anonymous memory, one request on either route with its outcome,
// /health, the balloon, and the ctest skip convention (exit 77).
//
// Environment (as for tests/e2e): PENSIEVE_BIN, PENSIEVE_SHARED; PENSIEVE_BALLOON (the
// pensieve_balloon binary); PENSIEVE_MEMORY_CACHE (a folder for generated models).

import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

import { parseSSE, sleep } from '../e2e/server.mjs';

export { sleep };

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');

export const PENSIEVE_BIN = path.resolve(
  process.env.PENSIEVE_BIN || path.join(root, 'build', 'release', 'pensieve'));
export const SHARED = path.resolve(process.env.PENSIEVE_SHARED || path.join(root, '..', 'shared'));
export const MODEL = path.join(SHARED, 'models', 'TinyStories-656K-Q8_0.gguf');
export const BALLOON_BIN = path.resolve(
  process.env.PENSIEVE_BALLOON || path.join(root, 'build', 'release', 'tests', 'pensieve_balloon'));
export const CACHE_DIR = path.resolve(
  process.env.PENSIEVE_MEMORY_CACHE || path.join(root, 'build', 'release', 'tests', 'memory'));

export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;
export const mib = (bytes) => (bytes / MiB).toFixed(1);

/** ctest's SKIP_RETURN_CODE: prints why and exits 77. */
export function skip(reason) {
  console.log(`SKIP: ${reason}`);
  process.exit(77);
}

const failures = [];
/** Records a failed check (the script goes on, and exits 1 at the end). */
export function check(ok, message) {
  if (ok) return true;
  failures.push(message);
  console.log(`FAIL ${message}`);
  return false;
}
/** Exits 1 when any check failed, else 0. */
export function finish(name) {
  if (failures.length) {
    console.log(`${name}: ${failures.length} check(s) failed`);
    process.exit(1);
  }
  console.log(`${name}: ok`);
  process.exit(0);
}

const live = new Set();
process.on('exit', () => {
  for (const child of live) {
    try { child.kill('SIGKILL'); } catch { /* already gone */ }
  }
});

function childEnv(extra) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('PENSIEVE_')) env[k] = v;
  }
  return { ...env, ...extra };
}

const LISTEN_RE = /pensieve: listening on http:\/\/127\.0\.0\.1:(\d+)/;

/**
 * Starts `pensieve serve -m MODEL --port 0 ...args`, optionally through `wrap` (a command prefix
 * that ends by exec'ing the rest, so that the pid is the server's). Resolves once it listens, to
 * {pid, port, baseURL, stderrLines, exited, exitInfo, tail(n), signal(sig), stop()}.
 */
export async function startServer({ model = MODEL, args = [], wrap = [], env = {},
  timeoutMs = 60_000 } = {}) {
  if (!existsSync(PENSIEVE_BIN)) throw new Error(`pensieve binary not found at ${PENSIEVE_BIN}`);
  if (!existsSync(model)) throw new Error(`model not found at ${model}`);
  const argv = [...wrap, PENSIEVE_BIN, 'serve', '-m', model, '--port', '0', ...args.map(String)];
  const child = spawn(argv[0], argv.slice(1), {
    env: childEnv(env), stdio: ['ignore', 'ignore', 'pipe'],
  });
  live.add(child);
  const stderrLines = [];
  let onLine = null;
  readline.createInterface({ input: child.stderr, crlfDelay: Infinity }).on('line', (line) => {
    stderrLines.push(line);
    if (process.env.PENSIEVE_E2E_VERBOSE) process.stderr.write(`[pensieve:${child.pid}] ${line}\n`);
    if (onLine) onLine(line);
  });
  const server = {
    pid: child.pid,
    argv,
    stderrLines,
    exitInfo: null,
    tail(n = 40) {
      const lines = stderrLines.slice(-n);
      return [`--- pensieve stderr (last ${lines.length} lines; ${argv.join(' ')}) ---`,
        ...lines, '--- end stderr ---'].join('\n');
    },
    signal(sig) {
      if (!server.exitInfo) child.kill(sig);
    },
    // SIGTERM, then SIGKILL after 40 s; resolves to {code, signal}
    async stop() {
      if (server.exitInfo) return server.exitInfo;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 40_000);
      const info = await server.exited;
      clearTimeout(timer);
      return info;
    },
  };
  server.exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      server.exitInfo = { code, signal, at: performance.now() };
      live.delete(child);
      resolve(server.exitInfo);
    });
  });
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`pensieve did not listen within ${timeoutMs} ms\n${server.tail(100)}`));
    }, timeoutMs);
    onLine = (line) => {
      const m = LISTEN_RE.exec(line);
      if (m) {
        clearTimeout(timer);
        onLine = null;
        resolve(Number(m[1]));
      }
    };
    server.exited.then(async (info) => {
      clearTimeout(timer);
      await sleep(50);
      reject(new Error(`pensieve exited before listening (code ${info.code}, signal ${info.signal})\n${server.tail(100)}`));
    });
    child.on('error', (err) => reject(new Error(`cannot spawn ${argv[0]}: ${err.message}`)));
  });
  server.port = port;
  server.baseURL = `http://127.0.0.1:${port}`;
  return server;
}

/** {rssAnon, vmSwap, rss} in bytes from /proc/PID/status; null when the process is gone. */
export function processMemory(pid) {
  let text;
  try {
    text = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return null;
  }
  const kb = (name) => {
    const m = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text);
    return m ? Number(m[1]) * 1024 : null;
  };
  const rssAnon = kb('RssAnon');
  if (rssAnon === null) return null;
  return { rssAnon, vmSwap: kb('VmSwap') ?? 0, rss: kb('VmRSS') ?? 0 };
}

/** MemAvailable from /proc/meminfo, bytes. */
export function memAvailable() {
  const m = /^MemAvailable:\s+(\d+) kB/m.exec(readFileSync('/proc/meminfo', 'utf8'));
  if (!m) throw new Error('/proc/meminfo has no MemAvailable line');
  return Number(m[1]) * 1024;
}

/** GET /health → {status (HTTP), body (parsed JSON or null), text}. */
export async function health(baseURL) {
  const res = await fetch(`${baseURL}/health`);
  const text = await res.text();
  let body = null;
  try { body = JSON.parse(text); } catch { /* reported by the caller */ }
  return { status: res.status, body, text };
}

/** Polls `fn` until it returns a truthy value or `timeoutMs` passes; returns the last value. */
export async function poll(fn, timeoutMs, intervalMs = 100) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    let v;
    try { v = await fn(); } catch { v = null; }
    if (v || Date.now() >= end) return v;
    await sleep(intervalMs);
  }
}

/**
 * One generation request. route: 'anthropic' | 'openai'. Resolves (never rejects) to
 * {status, headers, ok, text, body, frames, inputTokens, outputTokens, error, ms}: `ok` means
 * HTTP 200 and a complete answer (non-stream JSON, or a stream ending with message_stop /
 * [DONE] and no error event); `error` says what went wrong otherwise.
 */
export async function generate(baseURL, { route = 'anthropic', stream = false, prompt,
  maxTokens = 16, temperature = 0, onFrame = null, signal = undefined } = {}) {
  const started = performance.now();
  const messages = [{ role: 'user', content: prompt }];
  const anthropic = route === 'anthropic';
  const body = anthropic
    ? { model: 'claude-opus-4-8', max_tokens: maxTokens, stream, temperature, messages }
    : { model: 'claude-opus-4-8', max_tokens: maxTokens, stream, temperature, messages,
      ...(stream ? { stream_options: { include_usage: true } } : {}) };
  const out = { status: 0, headers: null, ok: false, text: '', body: null, frames: [],
    inputTokens: 0, outputTokens: 0, error: null, ms: 0 };
  try {
    const res = await fetch(`${baseURL}${anthropic ? '/v1/messages' : '/v1/chat/completions'}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01' },
      body: JSON.stringify(body),
      signal,
    });
    out.status = res.status;
    out.headers = res.headers;
    if (res.status !== 200 || !stream) {
      out.text = await res.text();
      try { out.body = JSON.parse(out.text); } catch { /* checked below */ }
    } else {
      out.text = await readStream(res, (chunkText) => {
        if (onFrame) for (const f of parseSSE(chunkText)) onFrame(f);
      });
      out.frames = parseSSE(out.text);
    }
    summarize(out, anthropic, stream);
  } catch (err) {
    out.error = `request failed: ${err.message}${err.cause ? ` (${err.cause.code ?? err.cause.message})` : ''}`;
  }
  out.ms = performance.now() - started;
  return out;
}

// Reads a streamed body, handing each complete SSE block to onBlocks as it arrives.
async function readStream(res, onBlocks) {
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let all = '';
  let pending = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    const s = decoder.decode(value, { stream: true });
    all += s;
    pending += s;
    const cut = pending.lastIndexOf('\n\n');
    if (cut >= 0) {
      onBlocks(pending.slice(0, cut + 2));
      pending = pending.slice(cut + 2);
    }
  }
  all += decoder.decode();
  return all;
}

function summarize(out, anthropic, stream) {
  if (out.status !== 200) {
    out.error = `HTTP ${out.status}: ${out.text.slice(0, 300)}`;
    return;
  }
  if (!stream) {
    const b = out.body;
    if (!b) { out.error = `200 with a body that is not JSON: ${out.text.slice(0, 300)}`; return; }
    if (anthropic) {
      out.inputTokens = b.usage?.input_tokens ?? 0;
      out.outputTokens = b.usage?.output_tokens ?? 0;
      if (b.type !== 'message') out.error = `200 without a message: ${out.text.slice(0, 300)}`;
    } else {
      out.inputTokens = b.usage?.prompt_tokens ?? 0;
      out.outputTokens = b.usage?.completion_tokens ?? 0;
      if (!Array.isArray(b.choices)) out.error = `200 without choices: ${out.text.slice(0, 300)}`;
    }
    out.ok = !out.error;
    return;
  }
  const frames = out.frames;
  const errorFrame = frames.find((f) => f.event === 'error' || f.data?.error);
  if (errorFrame) {
    out.error = `stream error event: ${errorFrame.dataText}`;
    out.streamError = errorFrame.data?.error ?? errorFrame.data ?? null;
    return;
  }
  if (anthropic) {
    const start = frames.find((f) => f.event === 'message_start');
    const delta = frames.find((f) => f.event === 'message_delta');
    out.inputTokens = start?.data?.message?.usage?.input_tokens ?? 0;
    out.outputTokens = delta?.data?.usage?.output_tokens ?? 0;
    if (frames.at(-1)?.event !== 'message_stop') {
      out.error = `stream did not end with message_stop (last: ${frames.at(-1)?.raw?.slice(0, 200)})`;
    }
  } else {
    const usage = frames.find((f) => f.data?.usage)?.data?.usage;
    out.inputTokens = usage?.prompt_tokens ?? 0;
    out.outputTokens = usage?.completion_tokens ?? 0;
    if (frames.at(-1)?.dataText !== '[DONE]') {
      out.error = `stream did not end with [DONE] (last: ${frames.at(-1)?.raw?.slice(0, 200)})`;
    }
  }
  out.ok = !out.error;
}

/**
 * Starts the balloon with `bytes` (through `wrap`, e.g. into a cgroup); resolves once it printed
 * "ballooned N bytes", to {pid, stop()} (stop closes stdin and waits for the exit).
 */
export async function startBalloon(bytes, { wrap = [], timeoutMs = 60_000 } = {}) {
  if (!existsSync(BALLOON_BIN)) throw new Error(`balloon binary not found at ${BALLOON_BIN} (set PENSIEVE_BALLOON)`);
  const argv = [...wrap, BALLOON_BIN, String(Math.floor(bytes))];
  const child = spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'pipe', 'inherit'] });
  live.add(child);
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => {
    live.delete(child);
    resolve({ code, signal });
  }));
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`balloon did not fill ${bytes} bytes within ${timeoutMs} ms`)), timeoutMs);
    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      if (line.startsWith('ballooned ')) { clearTimeout(timer); resolve(); }
    });
    exited.then((info) => {
      clearTimeout(timer);
      reject(new Error(`balloon exited before filling (code ${info.code}, signal ${info.signal})`));
    });
  });
  return {
    pid: child.pid,
    exited,
    async stop() {
      child.stdin.end();
      return exited;
    },
  };
}

/** Distinct prompts for the TinyStories models. */
const NAMES = ['Lily', 'Tom', 'Sue', 'Ben', 'Mia', 'Max', 'Anna', 'Sam', 'Lucy', 'Tim'];
const THINGS = ['a red ball', 'a big dog', 'a small cat', 'a blue kite', 'a shiny stone',
  'a toy car', 'a green frog', 'a yellow bird', 'a tall tree', 'a warm cake'];
export function prompt(i) {
  return `Story ${i}: Once upon a time, ${NAMES[i % 10]} found ${THINGS[Math.floor(i / 10) % 10]} `
    + `near house number ${i}. ${NAMES[(i * 7 + 3) % 10]} said`;
}

/** Least-squares fit y = a + b x; returns {slope: b, intercept: a}. */
export function fitLine(xs, ys) {
  const n = xs.length;
  const mx = xs.reduce((s, x) => s + x, 0) / n;
  const my = ys.reduce((s, y) => s + y, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (let i = 0; i < n; i++) {
    sxy += (xs[i] - mx) * (ys[i] - my);
    sxx += (xs[i] - mx) ** 2;
  }
  const slope = sxx > 0 ? sxy / sxx : 0;
  return { slope, intercept: my - slope * mx };
}

/**
 * Checks a memory refusal (a `generate` result): HTTP 529, the route's error shape with
 * overloaded_error, and the headers retry-after, x-memory-status (= wantTier when given) and
 * x-available-memory-gb. Returns a one-line description of what came back.
 */
export function check529(r, route, where, wantTier = null) {
  const h = (name) => r.headers?.get(name) ?? null;
  const seen = `${where} (${route}): HTTP ${r.status}, retry-after ${h('retry-after')}, `
    + `x-memory-status ${h('x-memory-status')}, x-available-memory-gb ${h('x-available-memory-gb')}`;
  if (!check(r.status === 529, `${seen}; want 529; body ${r.text.slice(0, 300)}`)) return seen;
  const error = route === 'anthropic' ? (r.body?.type === 'error' ? r.body.error : null) : r.body?.error;
  check(error?.type === 'overloaded_error' && typeof error.message === 'string' && error.message,
    `${where} (${route}): body is not a ${route} overloaded_error: ${r.text.slice(0, 300)}`);
  check(/^\d+$/.test(h('retry-after') ?? ''), `${where} (${route}): retry-after '${h('retry-after')}' is not a number of seconds`);
  check(wantTier ? h('x-memory-status') === wantTier : /^[a-z]+$/.test(h('x-memory-status') ?? ''),
    `${where} (${route}): x-memory-status '${h('x-memory-status')}'${wantTier ? `, want '${wantTier}'` : ''}`);
  check(Number.isFinite(Number(h('x-available-memory-gb') ?? 'x')),
    `${where} (${route}): x-available-memory-gb '${h('x-available-memory-gb')}' is not a number`);
  return seen;
}

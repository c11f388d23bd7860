// Harness for the black-box end-to-end tests: spawns `pensieve serve` on an ephemeral port and
// offers small helpers (raw SSE parsing, metrics parsing, diagnostics with the server's stderr).
//
// Environment:
//   PENSIEVE_BIN     the pensieve binary (default: ../../build/release/pensieve from this folder)
//   PENSIEVE_SHARED  the shared folder with models/ and fixtures/ (default: ../../../shared)
//   PENSIEVE_E2E_VERBOSE=1  mirror every server's stderr to this process's stderr
//   PENSIEVE_E2E_SERVE_ARGS  arguments added to every `pensieve serve` ("--device cuda": the
//                            same tests against the model on the GPU)

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

export const PENSIEVE_BIN = path.resolve(
  process.env.PENSIEVE_BIN || path.join(here, '..', '..', 'build', 'release', 'pensieve'));
export const SHARED = path.resolve(
  process.env.PENSIEVE_SHARED || path.join(here, '..', '..', '..', 'shared'));
export const MODEL = path.join(SHARED, 'models', 'TinyStories-656K-Q8_0.gguf');
export const FIXTURES = path.join(SHARED, 'fixtures', 'claude-code-2.1.197');

const SERVE_ARGS = (process.env.PENSIEVE_E2E_SERVE_ARGS ?? '').split(/\s+/).filter(Boolean);
// Every server runs its model on the GPU (its weights and KV cache in device memory).
export const ON_GPU = SERVE_ARGS.join(' ').includes('--device cuda');
// ... with its first layers on the CPU (--gpu-layers): their weights and KV cache in host memory.
export const SPLIT = ON_GPU && SERVE_ARGS.includes('--gpu-layers');
const LISTEN_RE = /pensieve: listening on http:\/\/127\.0\.0\.1:(\d+)/;
const START_TIMEOUT_MS = 30_000;
const KILL_AFTER_MS = 5_000;

const live = new Set();
process.on('exit', () => {
  for (const child of live) {
    try { child.kill('SIGKILL'); } catch { /* already gone */ }
  }
});

function childEnv() {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('PENSIEVE_')) env[k] = v;
  }
  return env;
}

/**
 * Starts `pensieve serve -m MODEL --port 0 ...extraArgs`.
 * Resolves to {port, baseURL, stderrLines, stdoutLines, args, tail(n), exited, stop()}.
 */
// options.model: another GGUF file; options.env: variables added to the server's environment.
export async function startServer(extraArgs = [], options = {}) {
  if (!existsSync(PENSIEVE_BIN)) {
    throw new Error(`pensieve binary not found at ${PENSIEVE_BIN} (set PENSIEVE_BIN)`);
  }
  const model = options.model ?? MODEL;
  if (!existsSync(model)) {
    throw new Error(`model not found at ${model} (set PENSIEVE_SHARED)`);
  }
  const args = ['serve', '-m', model, '--port', '0', ...SERVE_ARGS, ...extraArgs.map(String)];
  const child = spawn(PENSIEVE_BIN, args, {
    env: { ...childEnv(), ...(options.env ?? {}) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);

  const stderrLines = [];
  const stdoutLines = [];
  const verbose = !!process.env.PENSIEVE_E2E_VERBOSE;
  let onLine = null;
  readline.createInterface({ input: child.stderr, crlfDelay: Infinity }).on('line', (line) => {
    stderrLines.push(line);
    if (verbose) process.stderr.write(`[pensieve:${child.pid}] ${line}\n`);
    if (onLine) onLine(line);
  });
  readline.createInterface({ input: child.stdout, crlfDelay: Infinity }).on('line', (line) => {
    stdoutLines.push(line);
  });

  let exitInfo = null;
  const exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      exitInfo = { code, signal };
      live.delete(child);
      resolve(exitInfo);
    });
  });
  const spawnError = new Promise((resolve) => child.on('error', resolve));

  const tail = (n = 40) => {
    const lines = stderrLines.slice(-n);
    const head = `--- pensieve stderr (last ${lines.length} of ${stderrLines.length} lines; args: ${args.join(' ')}) ---`;
    return [head, ...lines, '--- end stderr ---'].join('\n');
  };

  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      onLine = null;
      child.kill('SIGKILL');
      reject(new Error(`pensieve did not print its listening line within ${START_TIMEOUT_MS} ms\n${tail(200)}`));
    }, START_TIMEOUT_MS);
    const check = (line) => {
      const m = LISTEN_RE.exec(line);
      if (m) {
        clearTimeout(timer);
        onLine = null;
        resolve(Number(m[1]));
      }
    };
    for (const line of stderrLines) check(line);
    onLine = check;
    exited.then(async (info) => {
      clearTimeout(timer);
      // let the last stderr lines arrive
      await new Promise((r) => setTimeout(r, 50));
      reject(new Error(`pensieve exited before listening (code ${info.code}, signal ${info.signal})\n${tail(200)}`));
    });
    spawnError.then((err) => {
      clearTimeout(timer);
      reject(new Error(`could not spawn ${PENSIEVE_BIN}: ${err.message}`));
    });
  });

  const baseURL = `http://127.0.0.1:${port}`;
  let stopping = null;
  const stop = () => {
    if (stopping) return stopping;
    stopping = (async () => {
      if (exitInfo) return exitInfo;
      child.kill('SIGTERM');
      const timer = setTimeout(() => {
        if (exitInfo) return;
        process.stderr.write(`e2e: pensieve (pid ${child.pid}) ignored SIGTERM for ${KILL_AFTER_MS} ms; sending SIGKILL\n`);
        child.kill('SIGKILL');
      }, KILL_AFTER_MS);
      const info = await exited;
      clearTimeout(timer);
      return info;
    })().then((info) => {
      // a crash (during the tests or at shutdown) fails the after() hook that stops the server
      const crashSignals = ['SIGSEGV', 'SIGABRT', 'SIGBUS', 'SIGILL', 'SIGFPE', 'SIGTRAP'];
      const crashCodes = [132, 133, 134, 135, 136, 139];
      if (crashSignals.includes(info.signal) || crashCodes.includes(info.code)) {
        throw new Error(`pensieve crashed (code ${info.code}, signal ${info.signal})\n${tail(80)}`);
      }
      return info;
    });
    return stopping;
  };

  return {
    port,
    baseURL,
    args,
    pid: child.pid,
    stderrLines,
    stdoutLines,
    tail,
    exited,
    get exitInfo() { return exitInfo; },
    stop,
  };
}

/**
 * Wraps a test body so that a failure carries the server's stderr tail.
 * `servers` is a function returning the server(s) relevant to the test (evaluated at failure time).
 */
export function withLog(servers, fn) {
  return async (t) => {
    try {
      return await fn(t);
    } catch (err) {
      let list = [];
      try { list = [servers()].flat().filter(Boolean); } catch { /* ignore */ }
      const tails = list.map((s) => s.tail(40)).join('\n');
      if (tails && err && typeof err === 'object') {
        try {
          err.message = `${err.message}\n${tails}`;
        } catch { /* read-only message */ }
        // node:test prints err.stack for assertion errors too
        if (typeof err.stack === 'string') err.stack = `${err.stack}\n${tails}`;
      }
      throw err;
    }
  };
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** POST a JSON value (or a raw string/Buffer) and return the fetch Response. */
export function post(baseURL, urlPath, body, headers = {}, init = {}) {
  const raw = typeof body === 'string' || body instanceof Uint8Array ? body : JSON.stringify(body);
  return fetch(baseURL + urlPath, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01', ...headers },
    body: raw,
    ...init,
  });
}

/** Reads a Response's body as text and parses it as JSON; throws a descriptive error otherwise. */
export async function readJSON(res) {
  const text = await res.text();
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`response (status ${res.status}) is not JSON: ${JSON.stringify(text.slice(0, 500))}`);
  }
}

/** Parses one SSE frame's text ("event: x\ndata: y"). */
export function parseFrame(block) {
  let event = null;
  const data = [];
  const comments = [];
  for (const line of block.split('\n')) {
    if (line === '') continue;
    if (line.startsWith(':')) { comments.push(line); continue; }
    const i = line.indexOf(':');
    const field = i < 0 ? line : line.slice(0, i);
    let value = i < 0 ? '' : line.slice(i + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
  }
  const dataText = data.length ? data.join('\n') : null;
  let json;
  if (dataText !== null && dataText !== '[DONE]') {
    try { json = JSON.parse(dataText); } catch { json = undefined; }
  }
  return { event, dataText, data: json, comments, raw: block };
}

/** Splits a complete SSE body into frames (comment-only frames dropped). */
export function parseSSE(text) {
  return text.replace(/\r\n/g, '\n').split('\n\n')
    .filter((b) => b.trim() !== '')
    .map(parseFrame)
    .filter((f) => f.event !== null || f.dataText !== null);
}

/** Async generator over SSE frames of a fetch Response as they arrive; each frame gets `t` (ms). */
export async function* sseFrames(res) {
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += decoder.decode(value, { stream: true }).replace(/\r\n/g, '\n');
      let i;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const f = parseFrame(block);
        if (f.event === null && f.dataText === null) continue;
        f.t = performance.now();
        yield f;
      }
    }
    buf += decoder.decode();
    if (buf.trim() !== '') {
      const f = parseFrame(buf);
      f.t = performance.now();
      f.unterminated = true;
      yield f;
    }
  } finally {
    reader.releaseLock?.();
  }
}

/** GET /metrics and parse the Prometheus text into [{name, labels, value}] plus the raw text. */
export async function getMetrics(baseURL) {
  const res = await fetch(`${baseURL}/metrics`);
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, samples: parseMetrics(text) };
}

export function parseMetrics(text) {
  const samples = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    if (m[3]) {
      for (const lm of m[3].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[lm[1]] = lm[2];
    }
    samples.push({ name: m[1], labels, value: Number(m[4]) });
  }
  return samples;
}

/** Sum of the samples named `name` whose labels include `labels`. */
export function metricValue(samples, name, labels = {}) {
  let sum = 0;
  let found = false;
  for (const s of samples) {
    if (s.name !== name) continue;
    if (!Object.entries(labels).every(([k, v]) => s.labels[k] === v)) continue;
    sum += s.value;
    found = true;
  }
  return found ? sum : undefined;
}

/** Polls `fn` until it returns a truthy value or `timeoutMs` passes; returns the last value. */
export async function poll(fn, timeoutMs = 3000, intervalMs = 50) {
  const end = Date.now() + timeoutMs;
  let v;
  for (;;) {
    v = await fn();
    if (v || Date.now() >= end) return v;
    await sleep(intervalMs);
  }
}

/** The access-log line of a request id, waiting briefly for it to be written. */
export async function accessLine(srv, requestId, timeoutMs = 2000) {
  return poll(() => srv.stderrLines.find((l) => l.includes('access:') && l.includes(requestId)), timeoutMs);
}

// Prompts for the tiny TinyStories model. Messages are rendered as plain text, so a prompt that
// ends a sentence ("...named Lily.") makes it write the literal text "<|end_story|>" and stop;
// "Once upon a time" makes it tell a long story (greedy: ", there was a little girl named Lily...").
export const STORY = 'Once upon a time';
export const LILY = 'Once upon a time, there was a little girl named Lily.';
export const MODEL_NAME = 'claude-opus-4-8';

/**
 * Checks an error response: status, `request-id: req_...` header, and the body
 * {"type":"error","error":{"type":T,"message":M},"request_id":"req_..."}. Returns the parsed body.
 */
export async function expectError(res, status, type, assert) {
  const text = await res.text();
  const ctx = `status ${res.status}, body ${JSON.stringify(text.slice(0, 400))}`;
  assert.equal(res.status, status, `wrong status: ${ctx}`);
  const rid = res.headers.get('request-id');
  assert.match(rid ?? '', /^req_\w+$/, `missing request-id header: ${ctx}`);
  let body;
  try { body = JSON.parse(text); } catch { assert.fail(`error body is not JSON: ${ctx}`); }
  assert.equal(body.type, 'error', `body.type: ${ctx}`);
  assert.equal(typeof body.error, 'object', `body.error: ${ctx}`);
  assert.equal(body.error.type, type, `error.type: ${ctx}`);
  assert.equal(typeof body.error.message, 'string', `error.message: ${ctx}`);
  assert.ok(body.error.message.length > 0, `empty error.message: ${ctx}`);
  assert.equal(body.request_id, rid, `body.request_id should equal the request-id header: ${ctx}`);
  return body;
}

/**
 * Validates the event grammar of an Anthropic Messages SSE stream (frames from parseSSE or
 * sseFrames) and returns {text, start, delta, blocks}. Rules: message_start first; `ping`
 * anywhere after it; per block content_block_start(index = block count) → deltas naming the
 * open block → content_block_stop; one block open at a time; exactly one message_delta after
 * the blocks; message_stop last; `event:` equals data.type.
 */
export function checkMessageStream(frames, assert) {
  const seq = frames.map((f) => f.event + (f.data?.index !== undefined ? `[${f.data.index}]` : '')).join(' ');
  const ctx = (msg) => `${msg}\nevent sequence: ${seq}`;
  assert.ok(frames.length >= 3, ctx('too few frames'));
  for (const f of frames) {
    assert.ok(f.data && typeof f.data === 'object', ctx(`frame without JSON data: ${JSON.stringify(f.raw)}`));
    assert.equal(f.data.type, f.event, ctx(`event name and data.type differ: ${JSON.stringify(f.raw)}`));
  }
  assert.equal(frames[0].event, 'message_start', ctx('first frame is not message_start'));
  assert.equal(frames.at(-1).event, 'message_stop', ctx('last frame is not message_stop'));
  const start = frames[0].data.message;
  let open = null;
  let blocks = [];
  let delta = null;
  let text = '';
  for (let i = 1; i < frames.length; i++) {
    const f = frames[i];
    const d = f.data;
    switch (f.event) {
      case 'ping':
        break;
      case 'message_start':
        assert.fail(ctx('second message_start'));
        break;
      case 'content_block_start':
        assert.equal(open, null, ctx(`block ${d.index} started while ${open} is open`));
        assert.equal(delta, null, ctx('content_block_start after message_delta'));
        assert.equal(d.index, blocks.length, ctx('block index is not its position'));
        assert.equal(typeof d.content_block, 'object', ctx('content_block missing'));
        if (d.content_block.type === 'text') assert.equal(d.content_block.text, '', ctx('text block skeleton not empty'));
        blocks.push({ type: d.content_block.type, text: '' });
        open = d.index;
        break;
      case 'content_block_delta':
        assert.notEqual(open, null, ctx('delta with no open block'));
        assert.equal(d.index, open, ctx('delta names a block that is not open'));
        assert.equal(typeof d.delta, 'object', ctx('delta missing'));
        if (d.delta.type === 'text_delta') {
          assert.equal(typeof d.delta.text, 'string', ctx('text_delta without text'));
          blocks[open].text += d.delta.text;
          text += d.delta.text;
        }
        break;
      case 'content_block_stop':
        assert.notEqual(open, null, ctx('stop with no open block'));
        assert.equal(d.index, open, ctx('content_block_stop names a block that is not open'));
        open = null;
        break;
      case 'message_delta':
        assert.equal(open, null, ctx('message_delta while a block is open'));
        assert.equal(delta, null, ctx('second message_delta'));
        delta = d;
        break;
      case 'message_stop':
        assert.equal(i, frames.length - 1, ctx('frames after message_stop'));
        assert.notEqual(delta, null, ctx('message_stop without message_delta'));
        break;
      case 'error':
        assert.fail(ctx(`error event: ${JSON.stringify(d)}`));
        break;
      default:
        assert.fail(ctx(`unexpected event ${f.event}`));
    }
  }
  // message_start skeleton
  assert.equal(typeof start, 'object', ctx('message_start without message'));
  assert.match(start.id ?? '', /^msg_\w+/, ctx('message id'));
  assert.equal(start.type, 'message', ctx('message.type'));
  assert.equal(start.role, 'assistant', ctx('message.role'));
  assert.deepEqual(start.content, [], ctx('message_start content is not []'));
  assert.equal(start.stop_reason, null, ctx('message_start stop_reason'));
  for (const k of ['input_tokens', 'output_tokens', 'cache_creation_input_tokens', 'cache_read_input_tokens']) {
    assert.ok(Number.isInteger(start.usage?.[k]), ctx(`message_start usage.${k} missing: ${JSON.stringify(start.usage)}`));
  }
  assert.ok(start.usage.input_tokens > 0, ctx('message_start input_tokens'));
  // message_delta
  assert.equal(typeof delta.delta, 'object', ctx('message_delta.delta'));
  assert.ok('stop_reason' in delta.delta && 'stop_sequence' in delta.delta, ctx(`message_delta.delta: ${JSON.stringify(delta)}`));
  assert.ok(Number.isInteger(delta.usage?.output_tokens), ctx(`message_delta usage: ${JSON.stringify(delta)}`));
  return { text, start, delta, blocks };
}

// curl -N against a slowed-down server (--debug-token-delay-ms 30): the SSE frames must arrive
// as tokens are generated, not buffered to the end, also when the client offers gzip.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MODEL_NAME, STORY, checkMessageStream, parseFrame, startServer, withLog } from './server.mjs';

const DELAY_MS = 30;
let srv;
const log = (fn) => withLog(() => srv, fn);

before(async () => { srv = await startServer(['--debug-token-delay-ms', String(DELAY_MS)]); });
after(async () => { await srv?.stop(); });

const body = {
  model: MODEL_NAME,
  max_tokens: 40,
  temperature: 0,
  stream: true,
  messages: [{ role: 'user', content: STORY }],
};

/** Runs curl; returns the SSE frames of stdout, each stamped with the arrival time of its end. */
function curl(args, timeoutMs = 20_000) {
  return new Promise((resolve, reject) => {
    const child = spawn('curl', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const frames = [];
    const chunks = [];
    let buf = '';
    let stderr = '';
    const decoder = new TextDecoder();
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`curl timed out; stderr: ${stderr}`)); }, timeoutMs);
    child.stdout.on('data', (data) => {
      const t = performance.now();
      chunks.push({ t, bytes: data.length });
      buf += decoder.decode(data, { stream: true });
      let i;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const f = parseFrame(buf.slice(0, i));
        buf = buf.slice(i + 2);
        if (f.event === null && f.dataText === null) continue;
        f.t = t;
        frames.push(f);
      }
    });
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, frames, chunks, rest: buf, stderr });
    });
  });
}

function curlArgs(extra = []) {
  return [
    '-sS', '-N', '-X', 'POST', `${srv.baseURL}/v1/messages`,
    '-H', 'content-type: application/json',
    '-H', 'anthropic-version: 2023-06-01',
    '--data-binary', JSON.stringify(body),
    ...extra,
  ];
}

function checkSpread(frames, label) {
  const deltas = frames.filter((f) => f.event === 'content_block_delta');
  const n = deltas.length;
  assert.ok(n >= 5, `${label}: only ${n} deltas`);
  const span = deltas.at(-1).t - deltas[0].t;
  const want = 0.5 * (n - 1) * DELAY_MS;
  const times = deltas.map((d) => (d.t - deltas[0].t).toFixed(0)).join(',');
  assert.ok(span >= want,
    `${label}: ${n} deltas arrived within ${span.toFixed(1)} ms (want >= ${want} ms): buffered? arrival ms: ${times}`);
  // and the first delta is not held back until the end of the reply
  const stop = frames.find((f) => f.event === 'message_stop');
  assert.ok(stop.t - deltas[0].t >= want, `${label}: first delta only ${(stop.t - deltas[0].t).toFixed(1)} ms before message_stop`);
  return { n, span };
}

test('curl -N: content_block_delta frames arrive spread over time', log(async () => {
  const r = await curl(curlArgs());
  assert.equal(r.code, 0, `curl exit ${r.code}: ${r.stderr}`);
  assert.equal(r.rest.trim(), '', `trailing unterminated data: ${JSON.stringify(r.rest)}`);
  checkMessageStream(r.frames, assert);
  const { n, span } = checkSpread(r.frames, 'plain');
  assert.ok(r.chunks.length >= 3, `stdout came in ${r.chunks.length} chunk(s) (${n} deltas over ${span} ms)`);
}));

test('curl -N with Accept-Encoding: gzip: not compressed, not buffered', log(async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pensieve-e2e-'));
  const headerFile = path.join(dir, 'headers.txt');
  let r;
  let raw;
  try {
    r = await curl(curlArgs(['-H', 'Accept-Encoding: gzip', '-D', headerFile]));
    raw = readFileSync(headerFile, 'utf8');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.equal(r.code, 0, `curl exit ${r.code}: ${r.stderr}`);
  const headers = raw.toLowerCase();
  assert.match(headers, /^http\/1\.[01] 200/m, raw);
  assert.match(headers, /^content-type: text\/event-stream/m, raw);
  assert.doesNotMatch(headers, /^content-encoding:\s*(gzip|br|deflate|zstd)/m, raw);
  assert.match(headers, /^request-id: req_\w+/m, raw);
  checkMessageStream(r.frames, assert);
  checkSpread(r.frames, 'gzip offered');
}));

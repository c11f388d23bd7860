// A model split between the CPU and the GPU (--gpu-layers, or chosen to fit --gpu-memory-budget):
// /health reports both halves, greedy text equals the whole model's on the GPU, and a count that
// does not fit is refused at startup with the sizes. Runs only against servers on a GPU
// (PENSIEVE_E2E_SERVE_ARGS="--device cuda").
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';

import {
  MODEL, MODEL_NAME, ON_GPU, PENSIEVE_BIN, SPLIT, STORY, post, readJSON, startServer, withLog,
} from './server.mjs';

const skip = (!ON_GPU || SPLIT) &&
  'needs servers on a GPU with the whole model (PENSIEVE_E2E_SERVE_ARGS="--device cuda")';
// The same context and pool everywhere, so the budgets compare. One sequence: a budget one byte
// short of the whole model then leaves no room to shrink its pool instead.
const BASE = ['--ctx', '512', '--parallel', '1'];

const greedy = (extra = {}) => ({
  model: MODEL_NAME,
  max_tokens: 24,
  temperature: 0,
  messages: [{ role: 'user', content: STORY }],
  ...extra,
});

async function health(srv) {
  return readJSON(await fetch(`${srv.baseURL}/health`));
}

async function answer(srv, body = greedy()) {
  const res = await post(srv.baseURL, '/v1/messages', body);
  const msg = await readJSON(res);
  assert.equal(res.status, 200, JSON.stringify(msg));
  assert.equal(msg.type, 'message', JSON.stringify(msg));
  return msg;
}

// `pensieve serve` run to its end (a startup refusal).
function serveOnce(args) {
  const r = spawnSync(PENSIEVE_BIN,
    ['serve', '-m', MODEL, '--port', '0', '--device', 'cuda', ...args],
    { encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, stderr: r.stderr };
}

describe('the model split between the CPU and the GPU', { skip }, () => {
  test('--gpu-layers 1: one layer on the GPU, the other on the CPU, the same greedy text', async () => {
    const whole = await startServer(BASE);
    const split = await startServer([...BASE, '--gpu-layers', '1']);
    const log = (fn) => withLog(() => [whole, split], fn);
    try {
      await log(async () => {
        const w = await health(whole);
        const s = await health(split);
        assert.equal(w.gpu_budget.cpu_layers, 0, JSON.stringify(w.gpu_budget));
        assert.equal(w.gpu_budget.gpu_layers, 2, JSON.stringify(w.gpu_budget));
        assert.equal(s.gpu_budget.cpu_layers, 1, JSON.stringify(s.gpu_budget));
        assert.equal(s.gpu_budget.gpu_layers, 1, JSON.stringify(s.gpu_budget));
        // Each half holds its own layers' K and V: the GPU's per position is half the whole
        // model's, and the host's is the other half.
        assert.equal(w.budget.kv_bytes, 0, JSON.stringify(w.budget));
        assert.equal(s.gpu_budget.kv_bytes_per_position * 2, w.gpu_budget.kv_bytes_per_position);
        assert.equal(s.budget.kv_bytes_per_position, s.gpu_budget.kv_bytes_per_position);
        assert.equal(s.budget.kv_bytes, s.budget.kv_bytes_per_position * 512);
        assert.ok(s.gpu_budget.weights_bytes < w.gpu_budget.weights_bytes,
          JSON.stringify([s.gpu_budget, w.gpu_budget]));
        assert.ok(split.stderrLines.some((l) => /layers \[0, 1\) run on the CPU/.test(l)),
          split.tail(30));

        const a = await answer(whole);
        const b = await answer(split);
        assert.deepEqual(b.content, a.content);
        assert.equal(b.usage.output_tokens, a.usage.output_tokens);
        // Sampled (not greedy) requests and a streamed one go through the split as well.
        const sampled = await answer(split, greedy({ temperature: 0.8, top_k: 40, top_p: 0.9 }));
        assert.ok(sampled.usage.output_tokens > 0, JSON.stringify(sampled));
        const res = await post(split.baseURL, '/v1/messages', greedy({ stream: true }));
        assert.equal(res.status, 200);
        const text = await res.text();
        assert.match(text, /event: message_stop/);
      })();
    } finally {
      await Promise.all([whole.stop(), split.stop()]);
    }
  });

  test('--gpu-memory-budget below the whole model: the last layers that fit go to the GPU', async () => {
    const whole = await startServer(BASE);
    let need;
    let reference;
    try {
      need = (await health(whole)).gpu_budget;
      reference = await answer(whole);
    } finally {
      await whole.stop();
    }
    // One byte less than the whole model with its pool: at most one layer fits.
    const cap = need.total_bytes - 1;
    const srv = await startServer([...BASE, '--gpu-memory-budget', String(cap)]);
    try {
      await withLog(() => srv, async () => {
        const g = (await health(srv)).gpu_budget;
        assert.equal(g.cpu_layers, 1, JSON.stringify(g));
        assert.equal(g.gpu_layers, 1, JSON.stringify(g));
        assert.ok(g.total_bytes <= cap, JSON.stringify(g));
        assert.ok(srv.stderrLines.some((l) => /does not fit on the GPU/.test(l)), srv.tail(30));
        const b = await answer(srv);
        assert.deepEqual(b.content, reference.content);
      })();
    } finally {
      await srv.stop();
    }
    // Both layers asked for, in that budget: refused at startup, with the sizes.
    const r = serveOnce([...BASE, '--gpu-memory-budget', String(cap), '--gpu-layers', '2']);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /does not fit on/);
    assert.match(r.stderr, /--gpu-memory-budget allows/);
    // Too small for even one layer: refused, saying so.
    const none = serveOnce([...BASE, '--gpu-memory-budget', '1000']);
    assert.equal(none.code, 1, none.stderr);
    assert.match(none.stderr, /Not even the last layer alone fits/);
  });
});

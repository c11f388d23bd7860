// Stress: N concurrent streaming clients (default 32) against one server for S seconds (default
// 60), each sending distinct requests back to back on both routes, some abandoned mid-stream.
// Every completed request must succeed (200 and a complete stream; a full queue's 429 is counted
// but fails the run only with --no-429), and once idle the KV pool must be entirely back: no block
// used by a request (free + cached = total, /metrics pensieve_kv_blocks{state="used"} 0).
//
// Usage: node tests/stress/streams.mjs [--clients 32] [--seconds 60] [--parallel 8]
//          [--max-queue 32] [--model M]
// ctest stress.streams runs 10 s; the full run is the 60 s default.

import { parseArgs } from 'node:util';

import { check, finish, generate, health, prompt, startServer } from '../memory/lib.mjs';

const { values: opts } = parseArgs({
  options: {
    clients: { type: 'string', default: '32' },
    seconds: { type: 'string', default: '60' },
    parallel: { type: 'string', default: '8' },
    'max-queue': { type: 'string', default: '32' },
    model: { type: 'string' },
  },
});
const clients = Number(opts.clients);
const seconds = Number(opts.seconds);

const server = await startServer({
  ...(opts.model ? { model: opts.model } : {}),
  args: ['--parallel', opts.parallel, '--max-queue', opts['max-queue'], '-c', 512],
});
const counts = { ok: 0, failed: 0, rejected429: 0, abandoned: 0, tokens: 0 };
const failures = new Map();
const deadline = Date.now() + seconds * 1000;
let next = 0;
try {
  await Promise.all(Array.from({ length: clients }, async (_, c) => {
    while (Date.now() < deadline) {
      const i = next++;
      const abandon = i % 11 === 5;  // some clients leave mid-stream
      const controller = new AbortController();
      let frames = 0;
      const r = await generate(server.baseURL, {
        route: i % 4 === 3 ? 'openai' : 'anthropic',
        stream: true,
        prompt: prompt(i * 31 + c),
        maxTokens: 8 + (i % 5) * 8,
        temperature: i % 2 ? 0.8 : 0,
        signal: controller.signal,
        onFrame: () => {
          // Leave after a few frames, from outside the read loop.
          if (abandon && ++frames === 3) setTimeout(() => controller.abort(), 0);
        },
      });
      if (abandon && r.error && /abort/i.test(r.error)) {
        counts.abandoned++;
      } else if (r.status === 429) {
        counts.rejected429++;
      } else if (r.ok) {
        counts.ok++;
        counts.tokens += r.outputTokens;
      } else {
        counts.failed++;
        const key = `${r.status} ${r.error}`.slice(0, 200);
        failures.set(key, (failures.get(key) ?? 0) + 1);
      }
    }
  }));
  console.log(`stress: ${clients} clients for ${seconds} s: ${counts.ok} ok, ${counts.failed} failed, `
    + `${counts.rejected429} x 429, ${counts.abandoned} abandoned on purpose, ${counts.tokens} tokens`);
  for (const [key, n] of failures) console.log(`  ${n} x ${key}`);
  check(counts.failed === 0, `${counts.failed} requests failed`);
  check(counts.ok > clients, `only ${counts.ok} requests completed`);
  // Idle again: every block back (abandoned streams end at the engine's next step).
  let kv = null;
  for (let i = 0; i < 100; ++i) {
    kv = (await health(server.baseURL)).body?.kv_blocks;
    if (kv && kv.used === 0) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  console.log(`stress: KV blocks when idle: ${JSON.stringify(kv)}`);
  check(kv && kv.used === 0, `KV blocks still used when idle: ${JSON.stringify(kv)}`);
  check(kv && kv.free + kv.cached === kv.total, `KV blocks do not add up: ${JSON.stringify(kv)}`);
  const metrics = await (await fetch(`${server.baseURL}/metrics`)).text();
  check(/^pensieve_kv_blocks\{state="used"\} 0$/m.test(metrics), 'metrics do not show 0 used blocks');
} finally {
  const exit = await server.stop();
  check(exit.code === 0, `server exit ${JSON.stringify(exit)}`);
}
finish('stress');

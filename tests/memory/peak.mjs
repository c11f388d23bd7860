// Bounded by construction (MEMORY.md promise 1), measured: the anonymous memory a burst of
// requests adds to an idle, warmed-up server stays within the KV cache those requests actually
// use plus 64 MiB of scratch, buffers and allocator slack. RssAnon is sampled every 5 ms.

import { check, finish, generate, health, mib, MiB, processMemory, prompt, sleep, startServer } from './lib.mjs';

const SLACK_BYTES = 64 * MiB;
const N = 4;

// 2 ms per token spreads the burst over ~0.5 s of samples; the sleep allocates nothing.
const server = await startServer({ args: ['--debug-token-delay-ms', 2] });
try {
  const h = await health(server.baseURL);
  const perPosition = h.body?.budget?.kv_bytes_per_position;
  check(Number.isFinite(perPosition) && perPosition > 0,
    `/health has no budget.kv_bytes_per_position: HTTP ${h.status} ${h.text.slice(0, 300)}`);
  const warm = await generate(server.baseURL, { stream: true, prompt: prompt(0), maxTokens: 64 });
  check(warm.ok, `warm-up request failed: ${warm.error}`);
  await sleep(200);
  const baseline = processMemory(server.pid).rssAnon;

  let peak = baseline;
  let n_samples = 0;
  const timer = setInterval(() => {
    const m = processMemory(server.pid);
    if (m) {
      peak = Math.max(peak, m.rssAnon);
      n_samples++;
    }
  }, 5);
  const results = await Promise.all(Array.from({ length: N }, (_, i) =>
    generate(server.baseURL, { stream: true, prompt: prompt(100 + i), maxTokens: 64, temperature: 0.8 })));
  await sleep(20);
  clearInterval(timer);

  results.forEach((r, i) => check(r.ok, `request ${i} failed: ${r.error}`));
  const positions = results.reduce((s, r) => s + r.inputTokens + r.outputTokens, 0);
  const kvUsed = positions * (perPosition || 0);
  const growth = peak - baseline;
  const limit = kvUsed + SLACK_BYTES;
  console.log(`peak: baseline RssAnon ${mib(baseline)} MiB, peak ${mib(peak)} MiB (${n_samples} samples), `
    + `growth ${mib(growth)} MiB; KV used ${positions} positions x ${perPosition} B = ${mib(kvUsed)} MiB; `
    + `limit ${mib(limit)} MiB`);
  check(growth <= limit, `peak growth ${mib(growth)} MiB exceeds KV used + 64 MiB = ${mib(limit)} MiB`);
} catch (err) {
  check(false, err.message);
} finally {
  const exit = await server.stop();
  check(exit.code === 0, `exit status ${exit.code} (signal ${exit.signal}) after SIGTERM`);
}
finish('memory.peak');

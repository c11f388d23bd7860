// Graceful under pressure (MEMORY.md promise 4) with real memory: thresholds just under what the
// machine has now; a balloon process takes 1.5 GiB; the governor must move to critical and refuse
// new requests with 529 (both routes, with retry-after / x-memory-status /
// x-available-memory-gb), /health must answer 503 with accepting_requests false; when the
// balloon exits, the server must recover and serve again.

import {
  GiB, MiB, check, check529, finish, generate, health, memAvailable, mib, poll, prompt, skip,
  startBalloon, startServer,
} from './lib.mjs';

const available = memAvailable();
if (available < 4 * GiB) skip(`MemAvailable is ${mib(available)} MiB; this test needs 4 GiB`);

// Tiers start strictly below their thresholds: with 1.5 GiB ballooned, usable memory is about
// available - 1.5 GiB, 0.5 GiB under the critical threshold; without it, 1 GiB above.
const critical = Math.floor(available - 1 * GiB);
const args = [
  '--memory-critical', critical,
  '--memory-warning', critical + 400 * MiB,
  '--memory-caution', critical + 600 * MiB,
  '--memory-emergency', 0,
  '--memory-poll-ms', 100,
];
console.log(`balloon: MemAvailable ${mib(available)} MiB; critical below ${mib(critical)} MiB`);

let server = null;
let balloon = null;
async function requestsSucceed(when) {
  const results = await Promise.all([
    generate(server.baseURL, { route: 'anthropic', prompt: prompt(1), maxTokens: 8 }),
    generate(server.baseURL, { route: 'anthropic', stream: true, prompt: prompt(2), maxTokens: 8 }),
    generate(server.baseURL, { route: 'openai', prompt: prompt(3), maxTokens: 8 }),
  ]);
  console.log(`${when}: ${results.map((r) => (r.ok ? 'ok' : r.error)).join(', ')}`);
  results.forEach((r, i) => check(r.ok, `${when}: request ${i} failed: ${r.error}`));
}

try {
  server = await startServer({ args });
  const before = await health(server.baseURL);
  console.log(`health before: HTTP ${before.status} tier ${before.body?.tier} available_bytes ${before.body?.available_bytes}`);
  check(before.status === 200 && before.body?.accepting_requests === true,
    `health before the balloon: HTTP ${before.status} ${before.text.slice(0, 300)}`);
  await requestsSucceed('before the balloon');

  const t0 = performance.now();
  balloon = await startBalloon(1.5 * GiB);
  const critical_ = await poll(async () => {
    const h = await health(server.baseURL);
    return h.body?.tier === 'critical' ? h : null;
  }, 15_000);
  const seconds = ((performance.now() - t0) / 1000).toFixed(2);
  if (!check(critical_, `the tier did not reach critical within 15 s of the balloon (MemAvailable now ${mib(memAvailable())} MiB)`)) {
    throw new Error('no critical tier: the refusal checks cannot run');
  }
  console.log(`critical ${seconds} s after the balloon started: health HTTP ${critical_.status} `
    + `accepting_requests ${critical_.body.accepting_requests} available_bytes ${critical_.body.available_bytes}`);
  check(critical_.status === 503, `health in critical: HTTP ${critical_.status}, want 503`);
  check(critical_.body.accepting_requests === false,
    `health in critical: accepting_requests ${critical_.body.accepting_requests}, want false`);

  for (const [route, stream] of [['anthropic', false], ['anthropic', true], ['openai', false], ['openai', true]]) {
    const r = await generate(server.baseURL, { route, stream, prompt: prompt(10), maxTokens: 8 });
    console.log(check529(r, route, `in critical, stream ${stream}`, 'critical'));
  }

  await balloon.stop();
  balloon = null;
  const t1 = performance.now();
  const recovered = await poll(async () => {
    const h = await health(server.baseURL);
    return h.status === 200 && h.body?.accepting_requests === true ? h : null;
  }, 15_000);
  check(recovered, 'the server did not accept requests again within 15 s of the balloon exiting');
  if (recovered) {
    console.log(`recovered ${((performance.now() - t1) / 1000).toFixed(2)} s after the balloon exited: `
      + `status ${recovered.body.status}, tier ${recovered.body.tier}`);
  }
  await requestsSucceed('after the balloon');
} catch (err) {
  check(false, err.message);
} finally {
  if (balloon) await balloon.stop();
  if (server) {
    const exit = await server.stop();
    check(exit.code === 0, `exit status ${exit.code} (signal ${exit.signal}) after SIGTERM\n${server.tail(20)}`);
  }
}
finish('memory.balloon');

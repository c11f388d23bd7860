// Clean exit (MEMORY.md promise 5), against the real server and real signals:
// 1. SIGTERM while 4 streams run: every stream still ends with message_stop; exit status 0.
// 2. A stream longer than --drain-timeout 1: after SIGTERM it ends with an SSE error event, and
//    the server exits 0 soon after the drain time.
// 3. Two SIGTERMs 200 ms apart during a long stream: the server exits at once with status 1.

import { check, finish, generate, sleep, startServer } from './lib.mjs';

const DELAY_MS = 20;  // --debug-token-delay-ms: 50 tokens/s, slow and predictable
const exitAfter = (server, t0) => ((server.exitInfo.at - t0) / 1000).toFixed(2);

// Starts streams and resolves with their promises once each has produced text (or ended).
function streams(server, n, maxTokens) {
  const firstText = [];
  const results = [];
  for (let i = 0; i < n; i++) {
    let seen;
    firstText.push(new Promise((resolve) => { seen = resolve; }));
    results.push(generate(server.baseURL, {
      stream: true, prompt: 'Once upon a time', maxTokens,
      onFrame: (f) => { if (f.event === 'content_block_delta') seen(); },
    }).then((r) => { seen(); return r; }));
  }
  return { firstText: Promise.all(firstText), results };
}

async function drainsInFlightStreams() {
  const server = await startServer({ args: ['--debug-token-delay-ms', DELAY_MS] });
  const { firstText, results } = streams(server, 4, 40);
  await firstText;
  const settled = await Promise.all(results.map((p) => Promise.race([p, sleep(0).then(() => null)])));
  const running = settled.filter((r) => r === null).length;
  const t0 = performance.now();
  server.signal('SIGTERM');
  const all = await Promise.all(results);
  const exit = await server.exited;
  console.log(`drain: SIGTERM with ${running} of 4 streams unfinished; outcomes: `
    + `${all.map((r) => (r.ok ? `ok(${r.outputTokens} tokens)` : r.error)).join(', ')}; `
    + `exit code ${exit.code} after ${exitAfter(server, t0)} s`);
  all.forEach((r, i) => check(r.ok && r.frames.at(-1)?.event === 'message_stop',
    `drain: stream ${i} did not end with message_stop: ${r.error}`));
  check(exit.code === 0, `drain: exit status ${exit.code} (signal ${exit.signal}), want 0\n${server.tail(20)}`);
}

async function drainTimeoutEndsLongStream() {
  const server = await startServer({
    args: ['--debug-token-delay-ms', DELAY_MS, '--drain-timeout', '1'],
  });
  const { firstText, results } = streams(server, 1, 400);  // ~8 s of tokens
  await firstText;
  const t0 = performance.now();
  server.signal('SIGTERM');
  const [r] = await Promise.all(results);
  const ended = (performance.now() - t0) / 1000;
  const exit = await server.exited;
  const last = r.frames.at(-1);
  console.log(`drain-timeout: stream ended ${ended.toFixed(2)} s after SIGTERM with `
    + `'${last?.event}' (${r.outputTokens || r.frames.filter((f) => f.event === 'content_block_delta').length} deltas); `
    + `error ${JSON.stringify(r.streamError ?? null)}; exit code ${exit.code} after ${exitAfter(server, t0)} s`);
  check(last?.event === 'error', `drain-timeout: the stream's last event is '${last?.event}', want 'error'`);
  check(typeof r.streamError?.type === 'string',
    `drain-timeout: the error event has no error type: ${last?.dataText}`);
  check(ended < 4, `drain-timeout: the stream ended ${ended.toFixed(2)} s after SIGTERM (drain timeout 1 s)`);
  check(exit.code === 0, `drain-timeout: exit status ${exit.code} (signal ${exit.signal}), want 0\n${server.tail(20)}`);
}

async function secondSignalExitsAtOnce() {
  const server = await startServer({ args: ['--debug-token-delay-ms', DELAY_MS] });
  const { firstText, results } = streams(server, 1, 400);
  await firstText;
  server.signal('SIGTERM');
  await sleep(200);
  const t0 = performance.now();
  server.signal('SIGTERM');
  const exit = await Promise.race([server.exited, sleep(5000).then(() => null)]);
  if (!exit) {
    check(false, `second signal: the server still runs 5 s after the second SIGTERM\n${server.tail(20)}`);
    server.signal('SIGKILL');
    await server.exited;
    await Promise.all(results);
    return;
  }
  const seconds = Number(exitAfter(server, t0));
  const [r] = await Promise.all(results);
  console.log(`second signal: exit code ${exit.code} (signal ${exit.signal}) ${seconds.toFixed(2)} s `
    + `after the second SIGTERM; the stream got ${r.frames.length} frames`);
  check(exit.code === 1, `second signal: exit status ${exit.code} (signal ${exit.signal}), want 1`);
  check(seconds < 1, `second signal: exit took ${seconds} s, want < 1 s`);
}

for (const test of [drainsInFlightStreams, drainTimeoutEndsLongStream, secondSignalExitsAtOnce]) {
  try {
    await test();
  } catch (err) {
    check(false, `${test.name}: ${err.message}`);
  }
}
finish('memory.drain');

// A client that goes away mid-stream stops the generation: counted as cancelled in /metrics,
// few output tokens spent, and the request still gets its access-log line.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import {
  MODEL_NAME, STORY, accessLine, getMetrics, metricValue, poll, post, sseFrames, startServer, withLog,
} from './server.mjs';

let srv;
const log = (fn) => withLog(() => srv, fn);

before(async () => { srv = await startServer(['--debug-token-delay-ms', '20']); });
after(async () => { await srv?.stop(); });

const body = (extra = {}) => ({
  model: MODEL_NAME,
  max_tokens: 400,
  temperature: 0,
  stream: true,
  messages: [{ role: 'user', content: STORY }],
  ...extra,
});

const CANCELLED = { stop_reason: 'cancelled' };

test('fetch abort after 3 deltas cancels the generation', log(async () => {
  const before0 = (await getMetrics(srv.baseURL)).samples;
  const cancelled0 = metricValue(before0, 'pensieve_generations_total', CANCELLED) ?? 0;
  const out0 = metricValue(before0, 'pensieve_output_tokens_total') ?? 0;

  const ac = new AbortController();
  const res = await post(srv.baseURL, '/v1/messages', body(), {}, { signal: ac.signal });
  assert.equal(res.status, 200);
  const requestId = res.headers.get('request-id');
  assert.match(requestId ?? '', /^req_\w+$/);
  let deltas = 0;
  try {
    for await (const f of sseFrames(res)) {
      if (f.event === 'content_block_delta' && ++deltas === 3) break;
      assert.notEqual(f.event, 'message_stop', 'stream finished before 3 deltas');
    }
  } finally {
    ac.abort();
  }
  assert.equal(deltas, 3);

  let samples;
  const seen = await poll(async () => {
    samples = (await getMetrics(srv.baseURL)).samples;
    return metricValue(samples, 'pensieve_generations_total', CANCELLED) === cancelled0 + 1;
  }, 3000, 50);
  const dump = () => samples.filter((s) => s.name.startsWith('pensieve_generations') || s.name.includes('output_tokens'))
    .map((s) => `${s.name}${JSON.stringify(s.labels)} ${s.value}`).join('\n');
  assert.ok(seen, `pensieve_generations_total{stop_reason="cancelled"} did not reach ${cancelled0 + 1} within 3 s:\n${dump()}`);
  const out = (metricValue(samples, 'pensieve_output_tokens_total') ?? NaN) - out0;
  assert.ok(out < 40, `generation went on after the disconnect: ${out} output tokens\n${dump()}`);

  // nothing left in flight
  const idle = await poll(async () => {
    const s = (await getMetrics(srv.baseURL)).samples;
    return metricValue(s, 'pensieve_requests_in_flight') === 0 && metricValue(s, 'pensieve_queue_depth') === 0;
  }, 3000, 50);
  assert.ok(idle, 'requests still in flight / queued after the disconnect');

  const line = await accessLine(srv, requestId);
  assert.ok(line, `no access log line for ${requestId}`);
  assert.match(line, /access:.*\bPOST\b.*\/v1\/messages/, line);
}));

test('SDK stream.abort() after 3 text deltas cancels the generation', log(async () => {
  const cancelled0 = metricValue((await getMetrics(srv.baseURL)).samples, 'pensieve_generations_total', CANCELLED) ?? 0;
  const client = new Anthropic({ baseURL: srv.baseURL, apiKey: 'dummy', maxRetries: 0 });
  const { stream: _s, ...params } = body();
  const stream = client.messages.stream(params);
  let n = 0;
  const aborted = new Promise((resolve) => stream.on('abort', resolve));
  stream.on('error', () => {});
  stream.on('text', () => { if (++n === 3) stream.abort(); });
  await stream.done().catch((e) => {
    if (!(e instanceof Anthropic.APIUserAbortError)) throw e;
  });
  await aborted;
  assert.ok(stream.aborted);
  const seen = await poll(async () => metricValue((await getMetrics(srv.baseURL)).samples,
    'pensieve_generations_total', CANCELLED) === cancelled0 + 1, 3000, 50);
  assert.ok(seen, 'cancelled generation not counted');
  // the server is healthy afterwards
  const res = await post(srv.baseURL, '/v1/messages', body({ stream: false, max_tokens: 2 }));
  assert.equal(res.status, 200, await res.text());
}));

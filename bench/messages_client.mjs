// One streaming POST /v1/messages with client-side timing: time to the first text delta, total
// time, usage, and the reply text. SSE is parsed here, as frames arrive, with no dependencies.

/** Parses one SSE frame ("event: x\ndata: y"); returns {event, data} or null for comment-only frames. */
function parseFrame(block) {
  let event = null;
  const data = [];
  for (const line of block.split('\n')) {
    if (line === '' || line.startsWith(':')) continue;
    const i = line.indexOf(':');
    const field = i < 0 ? line : line.slice(0, i);
    let value = i < 0 ? '' : line.slice(i + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
  }
  if (event === null && data.length === 0) return null;
  let json = null;
  if (data.length) {
    try { json = JSON.parse(data.join('\n')); } catch { json = undefined; }
  }
  return { event, data: json, raw: block };
}

/** Yields SSE frames of a fetch Response body as they arrive. */
async function* sseFrames(body) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += decoder.decode(value, { stream: true }).replace(/\r\n/g, '\n');
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const frame = parseFrame(buf.slice(0, i));
      buf = buf.slice(i + 2);
      if (frame) yield frame;
    }
  }
  buf += decoder.decode();
  const last = parseFrame(buf);
  if (last) yield last;
}

const int = (v) => (Number.isInteger(v) ? v : 0);

/** A grouping key for an error: numbers replaced, so that "600 tokens" and "700 tokens" count together. */
function errorKey(kind, message) {
  return `${kind}: ${String(message).replace(/\d+/g, 'N')}`;
}

/**
 * Sends `body` (an Anthropic Messages request with stream: true) and reads the stream to its end.
 * Never throws: failures come back as {ok: false, errorKey, errorMessage}. Times are in ms,
 * measured from just before the request is sent.
 */
export async function streamMessage(baseURL, body, { timeoutMs = 300_000, apiKey = null } = {}) {
  const r = {
    ok: false, status: null, errorKey: null, errorMessage: null, ttftMs: null, totalMs: null,
    inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, cacheCreationTokens: 0,
    text: '', stopReason: null, startedAt: 0, endedAt: 0,
  };
  const fail = (kind, message) => {
    r.errorKey = errorKey(kind, message);
    r.errorMessage = `${kind}: ${message}`;
  };
  const headers = { 'content-type': 'application/json', 'anthropic-version': '2023-06-01' };
  if (apiKey) headers['x-api-key'] = apiKey;
  const t0 = performance.now();
  r.startedAt = t0;
  try {
    const res = await fetch(`${baseURL}/v1/messages`, {
      method: 'POST', headers, body: JSON.stringify(body), signal: AbortSignal.timeout(timeoutMs),
    });
    r.status = res.status;
    if (res.status !== 200) {
      const text = await res.text();
      let type = 'unknown';
      let message = text.slice(0, 300);
      try {
        const j = JSON.parse(text);
        type = j?.error?.type ?? type;
        message = j?.error?.message ?? message;
      } catch { /* not JSON: keep the raw text */ }
      fail(`HTTP ${res.status} ${type}`, message);
      return r;
    }
    let sawStop = false;
    for await (const f of sseFrames(res.body)) {
      const d = f.data;
      if (d === undefined) {
        fail('stream', `frame with invalid JSON data: ${JSON.stringify(f.raw.slice(0, 200))}`);
        return r;
      }
      if (f.event === 'message_start') {
        const u = d?.message?.usage ?? {};
        r.inputTokens = int(u.input_tokens);
        r.cacheReadTokens = int(u.cache_read_input_tokens);
        r.cacheCreationTokens = int(u.cache_creation_input_tokens);
      } else if (f.event === 'content_block_delta' && d?.delta?.type === 'text_delta') {
        if (r.ttftMs === null && d.delta.text) r.ttftMs = performance.now() - t0;
        r.text += d.delta.text ?? '';
      } else if (f.event === 'message_delta') {
        const u = d?.usage ?? {};
        r.outputTokens = int(u.output_tokens);
        // Some servers repeat (final) input usage here; prefer it when present.
        if (Number.isInteger(u.input_tokens)) r.inputTokens = u.input_tokens;
        if (Number.isInteger(u.cache_read_input_tokens)) r.cacheReadTokens = u.cache_read_input_tokens;
        if (Number.isInteger(u.cache_creation_input_tokens)) r.cacheCreationTokens = u.cache_creation_input_tokens;
        r.stopReason = d?.delta?.stop_reason ?? null;
      } else if (f.event === 'error') {
        fail(`stream error event ${d?.error?.type ?? 'unknown'}`, d?.error?.message ?? JSON.stringify(d));
        return r;
      } else if (f.event === 'message_stop') {
        sawStop = true;
      }
    }
    if (!sawStop) {
      fail('stream', 'the stream ended without message_stop');
      return r;
    }
    r.ok = true;
    return r;
  } catch (err) {
    if (err?.name === 'TimeoutError') fail('timeout', `no complete reply within ${timeoutMs / 1000} s`);
    else fail('connection', `could not reach ${baseURL}: ${err?.cause?.code ?? err?.cause?.message ?? err?.message ?? err}`);
    return r;
  } finally {
    r.endedAt = performance.now();
    r.totalMs = r.endedAt - t0;
  }
}

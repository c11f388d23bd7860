// A loopback imitation of the Hugging Face hub for tests/cli/pull_test.sh. Every file of --dir
// is a file of the repository test/tiny. The hub (one port) answers /api/models/test/tiny and
// HEAD/GET /test/tiny/resolve/main/FILE with a 302 to a "CDN" (another port) and the hub's
// headers (X-Repo-Commit, X-Linked-Etag = sha256, X-Linked-Size); the CDN serves bytes with
// Range support. Misbehaviour for the test: --cut-first N drops the first CDN transfer after N
// bytes; files named corrupt* advertise a wrong sha256; the CDN answers 400 to any request that
// carries an Authorization header (a leaked token). Prints "hub PORT" once listening; logs each
// request as "HOST METHOD PATH range=... auth=..." to --log.
import { createHash } from "node:crypto";
import { appendFileSync, readdirSync, readFileSync } from "node:fs";
import { createServer } from "node:http";
import { join } from "node:path";

const args = process.argv.slice(2);
const arg = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const dir = arg("--dir");
const logPath = arg("--log");
let cutFirst = arg("--cut-first") ? Number(arg("--cut-first")) : -1;
const repo = "test/tiny";
const commit = "0123456789abcdef0123456789abcdef01234567";

const files = new Map();
for (const name of readdirSync(dir)) {
  const bytes = readFileSync(join(dir, name));
  let sha = createHash("sha256").update(bytes).digest("hex");
  if (name.startsWith("corrupt")) sha = createHash("sha256").update("not it").digest("hex");
  files.set(name, { bytes, sha });
}

const log = (who, req) =>
  appendFileSync(logPath, `${who} ${req.method} ${req.url} range=${req.headers.range ?? ""} ` +
                 `auth=${req.headers.authorization ?? ""}\n`);

const cdn = createServer((req, res) => {
  log("cdn", req);
  if (req.headers.authorization) {
    res.writeHead(400).end("the token leaked to the CDN");
    return;
  }
  const file = files.get(decodeURIComponent(req.url.replace(/^\/cdn\//, "")));
  if (!file) {
    res.writeHead(404).end();
    return;
  }
  const total = file.bytes.length;
  let start = 0;
  const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? "");
  if (m) start = Number(m[1]);
  if (start >= total && m) {
    res.writeHead(416, { "Content-Range": `bytes */${total}` }).end();
    return;
  }
  const body = file.bytes.subarray(start);
  const headers = { "Content-Type": "application/octet-stream", "Content-Length": body.length };
  if (m) headers["Content-Range"] = `bytes ${start}-${total - 1}/${total}`;
  res.writeHead(m ? 206 : 200, headers);
  if (cutFirst >= 0) {
    const cut = cutFirst;
    cutFirst = -1;
    res.write(body.subarray(0, Math.max(0, cut - start)), () => res.socket.destroy());
    return;
  }
  res.end(body);
});

let cdnPort = 0;
const hub = createServer((req, res) => {
  log("hub", req);
  const url = new URL(req.url, "http://x");
  if (url.pathname.startsWith("/api/models/")) {
    if (url.pathname !== `/api/models/${repo}`) {
      res.writeHead(401, { "X-Error-Code": "RepoNotFound" }).end('{"error":"Repository not found"}');
      return;
    }
    const siblings = [...files].map(([name, f]) => ({ rfilename: name, size: f.bytes.length }));
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end(JSON.stringify({ id: repo, sha: commit, siblings }));
    return;
  }
  const m = /^\/([^/]+\/[^/]+)\/resolve\/main\/(.+)$/.exec(url.pathname);
  if (!m || m[1] !== repo) {
    res.writeHead(404, { "X-Error-Code": "RepoNotFound", "X-Error-Message": "Repository not found" });
    res.end();
    return;
  }
  const name = decodeURIComponent(m[2]);
  const file = files.get(name);
  if (!file) {
    res.writeHead(404, { "X-Error-Code": "EntryNotFound", "X-Error-Message": "Entry not found" });
    res.end();
    return;
  }
  res.writeHead(302, {
    Location: `http://127.0.0.1:${cdnPort}/cdn/${encodeURIComponent(name)}`,
    "X-Repo-Commit": commit,
    "X-Linked-Etag": `"${file.sha}"`,
    "X-Linked-Size": String(file.bytes.length),
    ETag: `"${commit}"`,
  });
  res.end();
});

cdn.listen(0, "127.0.0.1", () => {
  cdnPort = cdn.address().port;
  hub.listen(0, "127.0.0.1", () => console.log(`hub ${hub.address().port}`));
});

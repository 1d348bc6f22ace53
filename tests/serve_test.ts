/**
 * The web app without a browser: its numbers (funnel, filters), its guards (path traversal,
 * access token, host names, CSRF, upload limits; each refused request changes nothing in the
 * data dir), the live view over Server-Sent Events, and removal through forget(). Servers bind
 * 127.0.0.1 only; the non-loopback refusal is tested on the command, which stops before binding.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import { ok } from "../core/types.ts";
import {
  buildSyntheticDataDir,
  demoRunArgs,
  demoSourcesFile,
} from "../commands/bench/serve_data.ts";
import { Manifest, outcomeToRow } from "../store/manifest.ts";
import { blobPath, dataPaths } from "../store/paths.ts";
import { parseRunEvents, RunEventLog } from "../store/run_events.ts";
import type { PageLogRow } from "../store/page_log.ts";
import { createApp, type WebApp } from "../web/app.ts";
import { filterRows } from "../web/faces_page.ts";
import { overview, passedStage, UNKNOWN_SOURCE } from "../web/funnel.ts";
import { isLoopback, sameSecret } from "../web/security.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;

interface Running extends WebApp {
  base: string;
  port: number;
  close(): Promise<void>;
}

async function serve(options: Parameters<typeof createApp>[0]): Promise<Running> {
  const web = await createApp({ pollMs: 50, ...options });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, web.app.fetch);
  const port = server.addr.port;
  return { ...web, base: `http://127.0.0.1:${port}`, port, close: () => server.shutdown() };
}

/**
 * Every file under the data dir with its size and bytes' hash: "changes nothing" is equality.
 * state.db is compared by its tables' content: its WAL and shared-memory files change as
 * connections open and close (a reader's too), and a checkpoint moves bytes without a change.
 */
async function snapshot(root: string): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  const walk = async (dir: string) => {
    for await (const entry of Deno.readDir(dir)) {
      const path = join(dir, entry.name);
      if (entry.isDirectory) await walk(path);
      else if (/state\.db(-wal|-shm)?$/.test(entry.name)) {
        if (entry.name === "state.db") files.set(path, stateContent(path));
      } else {
        const bytes = await Deno.readFile(path);
        const digest = await crypto.subtle.digest("SHA-256", bytes);
        files.set(path, `${bytes.length}:${btoa(String.fromCharCode(...new Uint8Array(digest)))}`);
      }
    }
  };
  await walk(root);
  return files;
}

/** The rows of every table of a state.db, as one string. */
function stateContent(path: string): string {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    return ["records", "pages", "http_cache", "removed"].map((table) =>
      JSON.stringify(db.prepare(`SELECT * FROM ${table} ORDER BY rowid`).all())
    ).join("\n");
  } finally {
    db.close();
  }
}

/** One request as raw bytes over TCP, so `..` reaches the server as sent (fetch would fold it). */
async function rawGet(port: number, path: string): Promise<{ status: number; text: string }> {
  const connection = await Deno.connect({ hostname: "127.0.0.1", port });
  const request = `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`;
  await connection.write(new TextEncoder().encode(request));
  const chunks: Uint8Array[] = [];
  const buffer = new Uint8Array(65536);
  while (true) {
    const n = await connection.read(buffer).catch(() => null);
    if (n === null) break;
    chunks.push(buffer.slice(0, n));
  }
  connection.close();
  const text = new TextDecoder().decode(
    chunks.reduce((all, c) => new Uint8Array([...all, ...c]), new Uint8Array()),
  );
  return { status: Number(text.split(" ")[1]), text };
}

async function dataDir(): Promise<{ root: string; faces: string[]; rejected: string[] }> {
  const root = await Deno.makeTempDir({ prefix: "facefield-serve-" });
  return { root, ...await buildSyntheticDataDir(root, { faces: 12, rejected: 2 }) };
}

const row = (id: string, extra: Record<string, unknown>) =>
  outcomeToRow(
    ok({ id, category: "cs", imageUrl: "", name: "", pageUrl: "https://a.example/p", ...extra }),
    "split",
  );

Deno.test("overview() counts each source's funnel and its drops by reason code", () => {
  const pages: PageLogRow[] = [
    {
      source_url: "https://a.example/p",
      page_url: "https://a.example/p",
      category: "cs",
      status: "ok",
      reason: "",
      people: "3",
      fetched_at: "",
    },
    {
      source_url: "https://a.example/p",
      page_url: "https://a.example/p2",
      category: "cs",
      status: "failed",
      reason: "http_500",
      people: "0",
      fetched_at: "",
    },
  ];
  const rows = [
    row("00000001", { split: "train", sha256: "a" }),
    row("00000002", { split: "test", sha256: "b" }),
    {
      ...row("00000003", { sha256: "c" }),
      status: "rejected",
      stage: "faces",
      reason: "no_face: none found",
    },
    { ...row("00000004", {}), status: "failed", stage: "images", reason: "http_404: GET …" },
    { ...row("00000005", { split: "val" }), page_url: "https://elsewhere.example/" },
  ];
  const result = overview(rows, pages);
  const a = result.sources.find((s) => s.source === "https://a.example/p")!;
  assert.deepEqual(a.pages, { ok: 1, failed: 1 });
  assert.deepEqual(a.passed, { people: 4, images: 3, faces: 2, split: 2 });
  assert.deepEqual(a.dropped, { no_face: 1, http_404: 1 });
  const unknown = result.sources.find((s) => s.source === UNKNOWN_SOURCE)!;
  assert.equal(unknown.passed.split, 1);
  assert.deepEqual(result.categories, { cs: { train: 1, test: 1, val: 1 } });
  assert.deepEqual(result.totals, { records: 5, faces: 3, dropped: 2 });
  assert.equal(passedStage(rows[2]!, "images"), true);
  assert.equal(passedStage(rows[2]!, "faces"), false);
});

Deno.test("filterRows() keeps what every filter names, and the predicted label when given", () => {
  const rows = [
    row("00000001", { split: "train" }),
    { ...row("00000002", { split: "test" }), category: "law" },
    { ...row("00000003", {}), status: "rejected", stage: "faces", reason: "no_face" },
  ];
  const sourceOf = () => "s";
  const ids = (filter: Parameters<typeof filterRows>[1], labels?: Map<string, string>) =>
    filterRows(rows, filter, { sourceOf, labels }).map((r) => r.id);
  assert.deepEqual(ids({ category: "cs" }), ["00000001", "00000003"]);
  assert.deepEqual(ids({ split: "test" }), ["00000002"]);
  assert.deepEqual(ids({ status: "dropped" }), ["00000003"]);
  assert.deepEqual(ids({ stage: "faces" }), ["00000001", "00000002"]);
  assert.deepEqual(ids({ source: "other" }), []);
  const labels = new Map([["00000001", "law"], ["00000002", "law"]]);
  assert.deepEqual(ids({ predicted: "law", category: "cs" }, labels), ["00000001"]);
});

Deno.test("security helpers: loopback names and constant-time token comparison", () => {
  assert.ok(isLoopback("127.0.0.1") && isLoopback("localhost") && isLoopback("::1"));
  assert.ok(!isLoopback("0.0.0.0") && !isLoopback("192.168.1.2"));
  assert.ok(sameSecret("a".repeat(20), "a".repeat(20)));
  assert.ok(!sameSecret("a".repeat(20), "a".repeat(21)));
  assert.ok(!sameSecret(undefined, "a".repeat(20)));
});

Deno.test({
  name: "serve: every page renders from the store, and thumbnails land in the thumbnail cache",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const { root, faces, rejected } = await dataDir();
    const app = await serve({ dataDir: root });
    try {
      for (const path of ["/", "/faces", "/report", "/try", `/faces/${faces[0]}`]) {
        const response = await fetch(app.base + path);
        const text = await response.text();
        assert.equal(response.status, 200, path);
        assert.match(response.headers.get("content-security-policy") ?? "", /script-src 'self'/);
        assert.doesNotMatch(text, /<script>|<script [^>]*>[^<]/, "no inline script");
      }
      const cards = (html: string) => html.match(/<li class="card/g)?.length ?? 0;
      const first = await (await fetch(`${app.base}/faces?per=5`)).text();
      assert.equal(cards(first), 5);
      assert.match(first, /rel="next" href="\/faces\?page=2&amp;per=5"/);
      const last = await (await fetch(`${app.base}/faces?per=5&page=3`)).text();
      assert.equal(cards(last), 4, "14 records: 5 + 5 + 4");
      assert.doesNotMatch(last, /rel="next"/);
      const grid = await (await fetch(`${app.base}/faces?status=rejected`)).text();
      assert.match(grid, /data-count="2"/);
      assert.match(grid, /no_face/);
      const detail = await (await fetch(`${app.base}/faces/${rejected[0]}`)).text();
      assert.match(detail, /no_face/);
      assert.match(detail, /\/thumb\/view\//, "a rejected record shows its original image");
      const manifest = await Manifest.open(dataPaths(root).manifest);
      const sha = manifest.get(faces[0]!)!.sha256;
      const thumb = await fetch(`${app.base}/thumb/face/${sha}`);
      assert.equal(thumb.headers.get("content-type"), "image/webp");
      assert.ok((await thumb.arrayBuffer()).byteLength > 0);
      const cached = blobPath(dataPaths(root).thumbnails, sha, ".synthetic000.face.webp");
      assert.ok((await Deno.stat(cached)).isFile, "thumbnail cached by sha256");
      const report = await (await fetch(`${app.base}/report`)).text();
      assert.match(report, /No evaluation report/);
    } finally {
      await app.close();
    }
  },
});

Deno.test({
  name: "serve: path traversal and malformed ids or hashes get 404 and leak nothing",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const { root } = await dataDir();
    await Deno.writeTextFile(join(root, "..", "facefield-secret.txt"), "SECRET-OUTSIDE");
    const before = await snapshot(root);
    const app = await serve({ dataDir: root });
    try {
      const attempts = [
        "/image/../../index.csv",
        "/image/..%2F..%2Findex.csv",
        "/image/%2e%2e%2f%2e%2e%2ffacefield-secret.txt",
        "/thumb/face/..%2F..%2F..%2Findex.csv",
        "/thumb/../../index.csv",
        "/thumb/face/" + "a".repeat(63) + "g",
        "/image/" + "0".repeat(64),
        "/faces/..%2Findex.csv",
        "/faces/../index.csv",
        "/assets/..%2F..%2Fdeno.json",
        "/assets/../app.ts",
        "/index.csv",
        "/cache/images",
      ];
      for (const path of attempts) {
        const { status, text } = await rawGet(app.port, path);
        assert.equal(status, 404, path);
        assert.doesNotMatch(text, /SECRET-OUTSIDE|id,category,image_url|"imports"/, path);
      }
      assert.deepEqual(await snapshot(root), before);
    } finally {
      await app.close();
    }
  },
});

Deno.test({
  name:
    "serve: with a token, a request without it or with a wrong one gets 401; the right one passes",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const { root } = await dataDir();
    const token = "t0ken-for-the-test-0123456789";
    // As `serve --host 0.0.0.0 --token …` configures it (any host name), bound to 127.0.0.1.
    await assert.rejects(createApp({ dataDir: root, allowedHosts: "any" }), RangeError);
    const app = await serve({ dataDir: root, token, allowedHosts: "any" });
    try {
      assert.equal((await fetch(`${app.base}/faces`)).status, 401);
      assert.equal(
        (await fetch(`${app.base}/faces`, { headers: { authorization: "Bearer wrong-token" } }))
          .status,
        401,
      );
      assert.equal((await fetch(`${app.base}/faces?token=wrong-token-wrong`)).status, 401);
      const bearer = await fetch(`${app.base}/faces`, {
        headers: { authorization: `Bearer ${token}` },
      });
      assert.equal(bearer.status, 200);
      await bearer.body?.cancel();
      const first = await fetch(`${app.base}/faces?token=${token}&split=test`, {
        redirect: "manual",
      });
      assert.equal(first.status, 303);
      assert.equal(first.headers.get("location"), "/faces?split=test", "token leaves the URL");
      const cookie = first.headers.get("set-cookie")!.split(";")[0]!;
      assert.ok(cookie.startsWith(`facefield_token_${app.port}=`), cookie);
      assert.match(first.headers.get("set-cookie")!, /HttpOnly/i);
      const withCookie = await fetch(`${app.base}/faces`, { headers: { cookie } });
      assert.equal(withCookie.status, 200);
      await withCookie.body?.cancel();
      const wrongCookie = await fetch(`${app.base}/faces`, {
        headers: { cookie: `facefield_token_${app.port}=nope` },
      });
      assert.equal(wrongCookie.status, 401);
      await wrongCookie.body?.cancel();
    } finally {
      await app.close();
    }
  },
});

Deno.test("serve --host 0.0.0.0 without --token refuses to start and suggests a generated token", async () => {
  const { root } = await dataDir();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, "serve", "--data", root, "--host", "0.0.0.0", "--port", "0"],
    stdout: "piped",
    stderr: "piped",
  });
  const { code, stderr } = await child.output();
  const text = new TextDecoder().decode(stderr);
  assert.equal(code, 2, text);
  assert.match(text, /refusing to listen on 0\.0\.0\.0 without --token/);
  assert.match(text, /--token [A-Za-z0-9_-]{40,}/);
  assert.doesNotMatch(text, /serve: .* on http/, "it never listened");
});

Deno.test({
  name: "serve: a request naming another host (DNS rebinding) gets 421",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const { root } = await dataDir();
    const app = await serve({ dataDir: root });
    try {
      const connection = await Deno.connect({ hostname: "127.0.0.1", port: app.port });
      await connection.write(
        new TextEncoder().encode(
          "GET /faces HTTP/1.1\r\nHost: attacker.example\r\nConnection: close\r\n\r\n",
        ),
      );
      const buffer = new Uint8Array(4096);
      const n = await connection.read(buffer);
      connection.close();
      assert.match(new TextDecoder().decode(buffer.slice(0, n ?? 0)), /^HTTP\/1\.1 421/);
    } finally {
      await app.close();
    }
  },
});

Deno.test({
  name: "serve: POSTs without the CSRF token or from another origin get 403 and remove nobody",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const { root, faces } = await dataDir();
    const before = await snapshot(root);
    const app = await serve({ dataDir: root });
    const id = faces[0]!;
    const url = `${app.base}/faces/${id}/remove`;
    const form = (fields: Record<string, string>) => new URLSearchParams(fields);
    try {
      const cases: [string, RequestInit][] = [
        ["no token", { method: "POST", headers: { origin: app.base }, body: form({}) }],
        ["wrong token", {
          method: "POST",
          headers: { origin: app.base },
          body: form({ csrf: "wrong" }),
        }],
        ["other origin", {
          method: "POST",
          headers: { origin: "http://attacker.example" },
          body: form({ csrf: app.csrfToken }),
        }],
        ["no origin", { method: "POST", body: form({ csrf: app.csrfToken }) }],
        ["cross-site fetch", {
          method: "POST",
          headers: { origin: app.base, "sec-fetch-site": "cross-site" },
          body: form({ csrf: app.csrfToken }),
        }],
      ];
      for (const [what, init] of cases) {
        const response = await fetch(url, { ...init, redirect: "manual" });
        assert.equal(response.status, 403, what);
        await response.body?.cancel();
      }
      const get = await fetch(url);
      assert.equal(get.status, 200, "GET only shows the confirmation");
      assert.match(await get.text(), /cannot be undone/);
      assert.deepEqual(await snapshot(root), before);

      const done = await fetch(url, {
        method: "POST",
        headers: { origin: app.base },
        body: form({ csrf: app.csrfToken }),
        redirect: "manual",
      });
      assert.equal(done.status, 303);
      const manifest = await Manifest.open(dataPaths(root).manifest);
      assert.equal(manifest.get(id), undefined, "the proper POST removes them");
      const notice = await (await fetch(app.base + done.headers.get("location"))).text();
      assert.match(notice, /Removed 1 record/);
    } finally {
      await app.close();
    }
  },
});

Deno.test({
  name:
    "serve: an oversized, a pixel-bomb, a non-image, an SVG and an empty upload get 413, 413, 415, 415 and 400",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const { root } = await dataDir();
    const before = await snapshot(root);
    const app = await serve({ dataDir: root });
    const post = async (file: Blob, name: string) => {
      const body = new FormData();
      body.set("image", file, name);
      const response = await fetch(`${app.base}/api/predict`, {
        method: "POST",
        headers: { origin: app.base, "x-csrf-token": app.csrfToken },
        body,
      });
      return { status: response.status, body: await response.json() };
    };
    try {
      const big = await post(new Blob([new Uint8Array(11 * 1024 * 1024)]), "big.jpg");
      assert.equal(big.status, 413);
      assert.match(big.body.error, /^too_large/);
      const bomb = await Deno.readFile(
        new URL("./testdata/serve/too_many_pixels.png", import.meta.url),
      );
      const pixels = await post(new Blob([bomb]), "small-file-huge-image.png");
      assert.equal(pixels.status, 413, "7000×6000 px in 5 kB");
      assert.match(pixels.body.error, /^too_many_pixels/);
      const text = await post(new Blob(["just some text, not a photo"]), "photo.jpg");
      assert.equal(text.status, 415);
      assert.match(text.body.error, /^not_an_image/);
      const svg = await post(
        new Blob(['<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>']),
        "x.svg",
      );
      assert.equal(svg.status, 415);
      assert.match(svg.body.error, /^unsupported_format/);
      const empty = await fetch(`${app.base}/api/predict`, {
        method: "POST",
        headers: { origin: app.base, "x-csrf-token": app.csrfToken },
        body: new FormData(),
      });
      assert.equal(empty.status, 400);
      await empty.body?.cancel();
      const noCsrf = await fetch(`${app.base}/api/predict`, {
        method: "POST",
        headers: { origin: app.base },
        body: new FormData(),
      });
      assert.equal(noCsrf.status, 403);
      await noCsrf.body?.cancel();
      assert.deepEqual(await snapshot(root), before);
    } finally {
      await app.close();
    }
  },
});

/** Reads Server-Sent Events until one satisfies `wanted`. */
async function nextEvent(
  reader: ReadableStreamDefaultReader<string>,
  buffered: { text: string },
  wanted: (data: string) => boolean,
): Promise<string> {
  while (true) {
    let end: number;
    while ((end = buffered.text.indexOf("\n\n")) >= 0) {
      const block = buffered.text.slice(0, end);
      buffered.text = buffered.text.slice(end + 2);
      const data = block.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6))
        .join("\n");
      if (/^event: overview$/m.test(block) && wanted(data)) return data;
    }
    const { value, done } = await reader.read();
    if (done) throw new Error("the event stream ended");
    buffered.text += value;
  }
}

Deno.test({
  name: "serve: the live view sends the overview again as records arrive and epochs are trained",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const { root } = await dataDir();
    const paths = dataPaths(root);
    const app = await serve({ dataDir: root });
    const response = await fetch(`${app.base}/events`);
    assert.equal(response.headers.get("content-type"), "text/event-stream");
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
    const buffered = { text: "" };
    try {
      const first = await nextEvent(reader, buffered, () => true);
      assert.match(first, /data-total="records">14</);

      const events = RunEventLog.start(paths.runEvents, "evaluate");
      const manifest = await Manifest.open(paths.manifest);
      manifest.set(row("0000abcd", { category: "law", pageUrl: "https://law.example.org/people" }));
      manifest.flushSync();
      const more = await nextEvent(reader, buffered, (d) => /data-total="records">15</.test(d));
      assert.match(more, /records/);

      events.append({ type: "training", model: "cnn", faces: 15, classes: 4, epochs: 3 });
      for (let epoch = 1; epoch <= 2; epoch++) {
        events.append({
          type: "epoch",
          model: "cnn",
          epoch,
          loss: 1.5 - epoch * 0.2,
          accuracy: 0.3,
          valLoss: 1.4,
          valAccuracy: 0.25,
        });
      }
      const curves = await nextEvent(reader, buffered, (d) => /cnn: epoch 2, loss 1\.100/.test(d));
      assert.match(curves, /<polyline/);
    } finally {
      await reader.cancel();
      await app.close();
    }
  },
});

Deno.test({
  name: "serve: an image URL on Try it is fetched by the polite client and checked like an upload",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const { root } = await dataDir();
    const png = await Deno.readFile(
      blobPath(
        dataPaths(root).imageCache,
        (await Manifest.open(dataPaths(root).manifest)).rows()[0]!.sha256,
      ),
    );
    const site = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) => {
      const path = new URL(request.url).pathname;
      if (path === "/portrait.png") {
        return new Response(png, { headers: { "content-type": "image/png" } });
      }
      if (path === "/page.html") return new Response("<html>not an image</html>");
      return new Response("gone", { status: 404 });
    });
    const siteBase = `http://127.0.0.1:${site.addr.port}`;
    // The site is on loopback: only --allow-private lets a URL typed on Try it reach it.
    const app = await serve({ dataDir: root, allowPrivate: true });
    const post = async (url: string) => {
      const response = await fetch(`${app.base}/api/predict`, {
        method: "POST",
        headers: { origin: app.base, "x-csrf-token": app.csrfToken },
        body: new URLSearchParams({ url }),
      });
      return { status: response.status, body: await response.json() };
    };
    try {
      // The synthetic data dir has no model: the image got through fetching and checking.
      const image = await post(`${siteBase}/portrait.png`);
      assert.equal(image.status, 409);
      assert.match(image.body.error, /^no_model/);
      const page = await post(`${siteBase}/page.html`);
      assert.equal(page.status, 415);
      const missing = await post(`${siteBase}/missing.png`);
      assert.equal(missing.status, 422);
      assert.equal(missing.body.error, "could not fetch: the server answered HTTP 404");
      const file = await post("file:///etc/passwd");
      assert.equal(file.status, 400);
      assert.match(file.body.error, /^bad_url/);
    } finally {
      await app.close();
      await site.shutdown();
    }
  },
});

Deno.test({
  name: "deno task serve listens on 127.0.0.1, serves the data dir, and refuses a missing one",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const missing = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", MAIN, "serve", "--data", join(await Deno.makeTempDir(), "nowhere")],
      stderr: "piped",
    }).output();
    assert.equal(missing.code, 2);
    assert.match(new TextDecoder().decode(missing.stderr), /no data dir at/);

    const { root } = await dataDir();
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", MAIN, "serve", "--data", root, "--port", "0"],
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const lines = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
    try {
      let text = "";
      while (!/on http:\/\/127\.0\.0\.1:\d+\//.test(text)) {
        const { value, done } = await lines.read();
        if (done) throw new Error(`serve ended: ${text}`);
        text += value;
      }
      const url = text.match(/http:\/\/127\.0\.0\.1:\d+\//)![0];
      const response = await fetch(url + "faces");
      assert.equal(response.status, 200);
      assert.match(await response.text(), /data-count="14"/, "12 faces and 2 rejected");
    } finally {
      child.kill("SIGTERM");
      await child.status;
      await lines.cancel().catch(() => {});
    }
  },
});

Deno.test("parseRunEvents() skips a torn last line and garbage, keeps whole events in order", () => {
  const text = [
    '{"type":"run_started","at":"t","until":"evaluate"}',
    "not json",
    '{"type":"epoch","at":"t","model":"cnn","epoch":1,"loss":1,"accuracy":0.5,"valLoss":null,"valAccuracy":null}',
    '{"no":"type"}',
    '{"type":"epoch","at":"t","model":"cnn","epo',
  ].join("\n");
  assert.deepEqual(parseRunEvents(text).map((e) => e.type), ["run_started", "epoch"]);
});

Deno.test({
  name: "serve: removing a person while a run holds the data dir gets 409 and changes nothing",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const { root, faces } = await dataDir();
    const paths = dataPaths(root);
    // Another live process owns the lock, as a running pipeline would.
    const run = new Deno.Command("sleep", { args: ["30"] }).spawn();
    await Deno.writeTextFile(paths.lock, String(run.pid));
    const before = await snapshot(root);
    const app = await serve({ dataDir: root });
    try {
      const response = await fetch(`${app.base}/faces/${faces[0]}/remove`, {
        method: "POST",
        headers: { origin: app.base },
        body: new URLSearchParams({ csrf: app.csrfToken }),
        redirect: "manual",
      });
      assert.equal(response.status, 409);
      assert.match(await response.text(), /another facefield run/);
      assert.deepEqual(await snapshot(root), before);
    } finally {
      run.kill();
      await run.status;
      await app.close();
    }
  },
});

Deno.test({
  name: "serve: the live view follows a real pipeline run from no records to trained epochs",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const root = await Deno.makeTempDir({ prefix: "facefield-serve-live-" });
    await Deno.writeTextFile(dataPaths(root).manifest, "");
    const sources = await demoSourcesFile(await Deno.makeTempDir());
    const app = await serve({ dataDir: root });
    const response = await fetch(`${app.base}/events`);
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
    const buffered = { text: "" };
    const seen: string[] = [];
    try {
      seen.push(await nextEvent(reader, buffered, () => true));
      const run = new Deno.Command(Deno.execPath(), {
        args: demoRunArgs(sources.path, root),
        stdout: "null",
        stderr: "null",
      }).spawn();
      // Until the run has ended and the view says so.
      seen.push(await nextEvent(reader, buffered, (d) => /data-run="running"/.test(d)));
      while (true) {
        const event = await nextEvent(reader, buffered, () => true);
        seen.push(event);
        if (/data-run="idle"/.test(event) && /run finished/i.test(event)) break;
      }
      assert.equal((await run.status).code, 0);
      const records = seen.map((d) => Number(d.match(/data-total="records">(\d+)</)?.[1]));
      assert.equal(records[0], 0);
      assert.ok(records.at(-1)! >= 20, `the demo's people arrived: ${records.join(",")}`);
      assert.ok(
        seen.some((d) => /data-run="running"/.test(d) && /cnn: epoch \d/.test(d)),
        "training curves were shown while the run went on",
      );
      assert.match(seen.at(-1)!, /embedding: epoch 2/);
    } finally {
      await reader.cancel();
      await app.close();
      await sources.close();
    }
  },
});

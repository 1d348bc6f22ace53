import assert from "node:assert/strict";
import { addressClass, AddressPolicy } from "../net/address_policy.ts";
import { HttpClient } from "../net/http.ts";
import { type Loopback, startLoopback } from "./testdata/crawl/loopback.ts";
import { stubNet } from "./testdata/crawl/stub_net.ts";

/** The host as the URL parser leaves it, brackets off: what the policy sees. */
const hostOf = (url: string) => new URL(url).hostname.replace(/^\[|\]$/g, "");

Deno.test("addressClass() classes every spelling of an address by what it reaches", () => {
  const cases: [string, string][] = [
    ["http://127.0.0.1/", "loopback"],
    ["http://127.1/", "loopback"],
    ["http://0x7f.0.0.1/", "loopback"],
    ["http://0177.0.0.1/", "loopback"],
    ["http://2130706433/", "loopback"],
    ["http://[::1]/", "loopback"],
    ["http://[::ffff:127.0.0.1]/", "loopback"],
    ["http://10.0.0.1/", "private"],
    ["http://012.0.0.1/", "private"],
    ["http://0xa000001/", "private"],
    ["http://172.16.5.4/", "private"],
    ["http://192.168.1.1/", "private"],
    ["http://100.100.100.200/", "private"],
    ["http://[fc00::1]/", "private"],
    ["http://[fd00:ec2::254]/", "private"],
    ["http://169.254.169.254/", "link-local"],
    ["http://2852039166/", "link-local"],
    ["http://0xa9.0xfe.0xa9.0xfe/", "link-local"],
    ["http://0251.0376.0251.0376/", "link-local"],
    ["http://169.254.43518/", "link-local"],
    ["http://[::ffff:169.254.169.254]/", "link-local"],
    ["http://[::ffff:a9fe:a9fe]/", "link-local"],
    ["http://[64:ff9b::169.254.169.254]/", "link-local"],
    ["http://[2002:a9fe:a9fe::1]/", "link-local"],
    ["http://[fe80::1]/", "link-local"],
    ["http://0.0.0.0/", "reserved"],
    ["http://0/", "reserved"],
    ["http://[::]/", "reserved"],
    ["http://224.0.0.1/", "reserved"],
    ["http://255.255.255.255/", "reserved"],
    ["http://93.184.215.14/", "public"],
    ["http://[2606:4700::1111]/", "public"],
    ["http://172.32.0.1/", "public"],
  ];
  for (const [url, expected] of cases) {
    assert.equal(addressClass(hostOf(url)), expected, url);
  }
  assert.equal(addressClass("example.org"), undefined);
  assert.equal(addressClass("1.2.3"), undefined);
  assert.equal(addressClass("1::2::3"), undefined);
});

Deno.test("AddressPolicy lets a page reach only its own class, private ones with allowPrivate", () => {
  const strict = new AddressPolicy({ resolve: () => Promise.reject(new Error("no lookups")) });
  assert.equal(strict.allows("public", "public"), true);
  for (const to of ["private", "loopback", "link-local", "reserved"] as const) {
    assert.equal(strict.allows("public", to), false, to);
  }
  assert.equal(strict.allows("loopback", "loopback"), true);
  assert.equal(strict.allows("private", "link-local"), false);
  const intranet = new AddressPolicy({ allowPrivate: true });
  assert.equal(intranet.allows("public", "private"), true);
  assert.equal(intranet.allows("public", "loopback"), true);
  assert.equal(intranet.allows("public", "link-local"), false, "metadata stays out of reach");
  assert.equal(intranet.allows("public", "reserved"), false);
});

/** A public site `www.uni.test` (203.0.113.10) served on loopback, and what it links to. */
async function withPublicSite(
  test: (
    server: Loopback,
    client: (options?: { allowPrivate?: boolean }) => {
      http: HttpClient;
      attempts: string[];
      lookups: string[];
    },
  ) => Promise<void>,
  rebind?: () => string[],
) {
  const server = startLoopback((_request, url) => {
    const to = url.searchParams.get("to");
    if (url.pathname === "/redirect" && to) {
      return new Response(null, { status: 302, headers: { location: to } });
    }
    return new Response(`page ${url.pathname}`, { headers: { "content-type": "text/html" } });
  });
  const port = Number(new URL(server.origin).port);
  const client = (options: { allowPrivate?: boolean } = {}) => {
    const net = stubNet(
      {
        "www.uni.test": ["203.0.113.10"],
        "evil.test": ["10.0.0.1"],
        "metadata.test": ["169.254.169.254"],
        "mixed.test": ["10.0.0.1", "203.0.113.10"],
        "rebind.test": rebind ?? (() => ["203.0.113.10"]),
        "intranet.test": ["10.0.0.1"],
      },
      { "203.0.113.10:80": port, "10.0.0.1:80": port },
    );
    const http = new HttpClient({
      politenessDelayMs: 0,
      backoffBaseMs: 1,
      resolve: net.resolve,
      dial: net.dial,
      ...options,
    });
    return { http, attempts: net.attempts, lookups: net.lookups };
  };
  try {
    await test(server, client);
  } finally {
    await server.close();
  }
}

const scope = "http://www.uni.test/people";
const get = (http: HttpClient, url: string) =>
  http.get(url, { maxBytes: 10_000, scope, robots: false });

Deno.test("a public page cannot make facefield connect to private, link-local or loopback", async () => {
  await withPublicSite(async (_server, client) => {
    const targets = [
      "http://evil.test/a.jpg",
      "http://metadata.test/latest/meta-data/",
      "http://10.0.0.1/a.jpg",
      "http://169.254.169.254/latest/meta-data/",
      "http://2852039166/latest/meta-data/",
      "http://0xa9fea9fe/",
      "http://0251.0376.0251.0376/",
      "http://[::ffff:169.254.169.254]/",
      "http://[::1]/",
      "http://127.0.0.1/",
      "http://localhost/",
      "http://0.0.0.0/",
      "http://[fc00::1]/",
      "http://[fd00:ec2::254]/",
    ];
    for (const target of targets) {
      const { http, attempts, lookups } = client();
      const result = await get(http, target);
      assert.equal(result.ok, false, target);
      assert.match(result.ok ? "" : result.reason, /^blocked_address: \S+ \S+ from a public page$/);
      assert.deepEqual(attempts, [], `${target}: no connection attempted`);
      const host = new URL(target).hostname;
      assert.ok(lookups.filter((name) => name === host).length <= 1, `${target}: never retried`);
      assert.equal(http.stats.connections, 0);
    }
    const { http, attempts } = client();
    const result = await get(http, "http://evil.test/a.jpg");
    assert.equal(
      result.ok ? "" : result.reason,
      "blocked_address: private 10.0.0.1 from a public page",
    );
    assert.deepEqual(attempts, []);
  });
});

Deno.test("every redirect hop is checked, and a mixed answer connects to the allowed address", async () => {
  await withPublicSite(async (server, client) => {
    const { http, attempts } = client();
    for (
      const to of ["http://169.254.169.254/", "http://evil.test/", "http://[::ffff:a9fe:a9fe]/"]
    ) {
      const result = await get(http, `http://www.uni.test/redirect?to=${encodeURIComponent(to)}`);
      assert.match(result.ok ? "" : result.reason, /^blocked_address: /, to);
    }
    assert.deepEqual(attempts, ["203.0.113.10:80", "203.0.113.10:80", "203.0.113.10:80"]);
    const mixed = await get(http, "http://mixed.test/photo.jpg");
    assert.equal(mixed.ok, true);
    assert.equal(attempts.at(-1), "203.0.113.10:80", "the private answer is skipped");
    assert.ok(server.requests.includes("/photo.jpg"));
  });
});

Deno.test("DNS rebinding: the address is checked again at connect time, not only before", async () => {
  let answers = 0;
  await withPublicSite(async (_server, client) => {
    const { http, attempts, lookups } = client();
    // The first answer (the hop's check) is public, the next one (the connection's) private.
    const result = await get(http, "http://rebind.test/one");
    assert.equal(
      result.ok ? "" : result.reason,
      "blocked_address: private 10.0.0.1 from a public page",
    );
    assert.deepEqual(attempts, []);
    assert.equal(lookups.filter((name) => name === "rebind.test").length, 2);
  }, () => answers++ === 0 ? ["203.0.113.10"] : ["10.0.0.1"]);
});

Deno.test("allowPrivate lets a page reach an intranet host, never the metadata address", async () => {
  await withPublicSite(async (server, client) => {
    const { http, attempts } = client({ allowPrivate: true });
    const intranet = await get(http, "http://intranet.test/staff");
    assert.equal(intranet.ok, true);
    assert.deepEqual(attempts, ["10.0.0.1:80"]);
    assert.ok(server.requests.includes("/staff"));
    const metadata = await get(http, "http://169.254.169.254/");
    assert.match(metadata.ok ? "" : metadata.reason, /^blocked_address: link-local /);
    assert.equal(attempts.length, 1);
  });
});

Deno.test("a page's own class is its scope: a loopback page reaches loopback", async () => {
  const server = startLoopback(() => new Response("ok"));
  try {
    const http = new HttpClient({ politenessDelayMs: 0 });
    const page = await http.get(`${server.origin}/`, { maxBytes: 100, robots: false });
    assert.equal(page.ok, true);
    const fromPublic = await http.get(`${server.origin}/`, {
      maxBytes: 100,
      robots: false,
      scope: "http://93.184.215.14/",
    });
    assert.equal(
      fromPublic.ok ? "" : fromPublic.reason,
      "blocked_address: loopback 127.0.0.1 from a public page",
    );
  } finally {
    await server.close();
  }
});

Deno.test("HttpClient.refusal() applies the same rules to requests made elsewhere", async () => {
  await withPublicSite(async (_server, client) => {
    const { http, attempts } = client();
    assert.equal(await http.refusal("http://www.uni.test/a.jpg", scope), undefined);
    assert.equal(
      await http.refusal("http://169.254.169.254/", scope),
      "blocked_address: link-local 169.254.169.254 from a public page",
    );
    assert.match((await http.refusal("data:image/png;base64,AAAA", scope)) ?? "", /^unsupported/);
    assert.deepEqual(attempts, ["203.0.113.10:80"], "only the allowed host's robots.txt");
  });
});

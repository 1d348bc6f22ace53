import assert from "node:assert/strict";
import tls from "node:tls";
import { HttpClient } from "../net/http.ts";
import type { Dialer } from "../net/transport.ts";

const dir = new URL("./testdata/crawl/tls/", import.meta.url).pathname;
const cert = Deno.readTextFileSync(dir + "cert.pem");
const key = Deno.readTextFileSync(dir + "key.pem");

/** secure.uni.test (public 203.0.113.40) served with TLS on loopback. */
function secureSite() {
  const hosts: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, cert, key, onListen() {} }, (r) => {
    hosts.push(r.headers.get("host") ?? "");
    return new Response(new URL(r.url).pathname === "/robots.txt" ? "" : "<p>secure</p>", {
      headers: { "content-type": "text/html" },
    });
  });
  return { port: server.addr.port, hosts, close: () => server.shutdown() };
}

const resolve = (name: string) =>
  Promise.resolve(name === "secure.uni.test" || name === "other.uni.test" ? ["203.0.113.40"] : []);

Deno.test("https: TLS goes to the checked address and verifies the URL's host name", async () => {
  const site = secureSite();
  const servernames: string[] = [];
  // Trusts the test certificate; dials loopback for the checked public address.
  const dial: Dialer = (target) => {
    assert.equal(target.address, "203.0.113.40");
    servernames.push(target.servername);
    return tls.connect({
      host: "127.0.0.1",
      port: site.port,
      servername: target.servername,
      ca: cert,
    });
  };
  try {
    const http = new HttpClient({ politenessDelayMs: 0, backoffBaseMs: 1, resolve, dial });
    const good = await http.get(`https://secure.uni.test:${site.port}/people`, { maxBytes: 1000 });
    assert.equal(good.ok && new TextDecoder().decode(good.body), "<p>secure</p>");
    assert.ok(site.hosts.every((host) => host === `secure.uni.test:${site.port}`));

    // The same server under a name its certificate does not carry: refused, and not retried.
    const before = servernames.length;
    const wrong = await http.get(`https://other.uni.test:${site.port}/`, {
      maxBytes: 1000,
      robots: false,
    });
    assert.match(wrong.ok ? "ok" : wrong.reason, /^tls_failed: ERR_TLS_CERT_ALTNAME_INVALID$/);
    assert.equal(servernames.length - before, 1, "a certificate error is permanent");
  } finally {
    await site.close();
  }
});

Deno.test("https: a certificate no authority signed fails with tls_failed", async () => {
  const site = secureSite();
  const dial: Dialer = (target) =>
    tls.connect({ host: "127.0.0.1", port: site.port, servername: target.servername });
  try {
    const http = new HttpClient({ politenessDelayMs: 0, resolve, dial });
    const result = await http.get(`https://secure.uni.test:${site.port}/`, {
      maxBytes: 1000,
      robots: false,
    });
    assert.match(result.ok ? "ok" : result.reason, /^tls_failed: /);
  } finally {
    await site.close();
  }
});

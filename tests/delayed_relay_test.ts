import assert from "node:assert/strict";
import { startRelay } from "../commands/bench/delayed_relay.ts";
import { delayedNamespace } from "../commands/bench/delayed_namespace.ts";

/** An echo server on 127.0.0.1: every byte it gets goes back. */
function echoServer() {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  (async () => {
    for await (const conn of listener) {
      conn.readable.pipeTo(conn.writable).catch(() => {});
    }
  })().catch(() => {});
  return listener;
}

/** Sends `payload` to 127.0.0.1:`port` and reads it back: the bytes and the round trip's ms. */
async function roundTrip(port: number, payload: Uint8Array) {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const start = performance.now();
  const writing = (async () => {
    const writer = conn.writable.getWriter();
    for (let i = 0; i < payload.length; i += 1000) await writer.write(payload.slice(i, i + 1000));
    writer.releaseLock();
  })();
  const received = new Uint8Array(payload.length);
  let got = 0;
  let firstMs = 0;
  for await (const chunk of conn.readable) {
    if (got === 0) firstMs = performance.now() - start;
    received.set(chunk, got);
    got += chunk.length;
    if (got >= payload.length) break;
  }
  await writing;
  try {
    conn.close();
  } catch {
    // Closed with its stream.
  }
  return { received, firstMs };
}

const payload = Uint8Array.from({ length: 50_000 }, (_, i) => (i * 7919) % 251);

Deno.test("the delay relay holds each direction, and keeps every byte in order", async () => {
  const echo = echoServer();
  const relay = startRelay({
    listen: "127.0.0.1",
    to: "127.0.0.1",
    ports: [[0, echo.addr.port]],
    delayMs: 40,
  });
  try {
    const { received, firstMs } = await roundTrip(relay.ports[0]!, payload);
    assert.deepEqual(received, payload);
    assert.ok(firstMs >= 78, `a round trip through a 40 ms relay took ${firstMs.toFixed(1)} ms`);
  } finally {
    relay.close();
    echo.close();
  }
});

/** Whether this machine lets us make a network namespace (root, iproute2, CAP_SYS_ADMIN). */
async function canMakeNamespaces(): Promise<boolean> {
  const probe = `facefield-probe-${Deno.pid}`;
  const ip = (...args: string[]) =>
    new Deno.Command("ip", { args, stdout: "null", stderr: "null" }).output()
      .then((out) => out.success, () => false);
  const made = await ip("netns", "add", probe);
  if (made) await ip("netns", "del", probe);
  return made;
}

const namespaces = await canMakeNamespaces();
if (!namespaces) console.error("skipping the namespace test: cannot make a network namespace here");

Deno.test({
  name: "a worker's namespace reaches the host's loopback with the latency added",
  ignore: !namespaces,
  async fn() {
    const echo = echoServer();
    const namespace = await delayedNamespace(1, [echo.addr.port], 60);
    try {
      // A client inside the namespace dials 127.0.0.1, as a worker does.
      const script = `
        const conn = await Deno.connect({ hostname: "127.0.0.1", port: ${echo.addr.port} });
        const start = performance.now();
        await conn.write(new TextEncoder().encode("ping"));
        const buffer = new Uint8Array(4);
        await conn.read(buffer);
        console.log(JSON.stringify({ text: new TextDecoder().decode(buffer), ms: performance.now() - start }));
        conn.close();`;
      const { command, args } = namespace.wrap(Deno.execPath(), ["eval", script]);
      const out = await new Deno.Command(command, { args, stderr: "inherit" }).output();
      assert.ok(out.success);
      const { text, ms } = JSON.parse(new TextDecoder().decode(out.stdout));
      assert.equal(text, "ping");
      assert.ok(ms >= 58, `a round trip from the namespace took ${ms.toFixed(1)} ms`);
    } finally {
      await namespace.close();
      echo.close();
    }
    const names = new TextDecoder().decode(
      (await new Deno.Command("ip", { args: ["netns", "list"] }).output()).stdout,
    );
    assert.ok(!names.includes(namespace.name), "the namespace is gone after close");
  },
});

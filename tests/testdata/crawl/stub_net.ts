/**
 * A pretend internet on loopback: a resolver stub that maps names to addresses, and a dialer
 * that records every connection attempt and reaches loopback servers only. An address the test
 * did not map is refused by the dialer itself, so not one packet leaves 127.0.0.1 even when the
 * code under test is wrong.
 */
import net from "node:net";
import type { Duplex } from "node:stream";
import type { Resolver } from "../../../net/address_policy.ts";
import type { Dialer, DialTarget } from "../../../net/transport.ts";

export interface StubNet {
  resolve: Resolver;
  dial: Dialer;
  /** Every connection attempt, as `address:port`, in order. */
  attempts: string[];
  /** Every name looked up, in order. */
  lookups: string[];
}

/**
 * `names` maps a host name to its addresses (or to a function giving them per lookup, for
 * rebinding); `routes` maps `address:port` (port 80 for plain URLs) to a loopback port.
 */
export function stubNet(
  names: Record<string, string[] | (() => string[])>,
  routes: Record<string, number>,
): StubNet {
  const attempts: string[] = [];
  const lookups: string[] = [];
  const resolve: Resolver = (hostname) => {
    lookups.push(hostname);
    const entry = names[hostname];
    if (entry === undefined) {
      return Promise.reject(Object.assign(new Error("stub: no such name"), { code: "ENOTFOUND" }));
    }
    return Promise.resolve(typeof entry === "function" ? entry() : entry);
  };
  const dial = (target: DialTarget): Duplex => {
    const key = target.address.includes(":")
      ? `[${target.address}]:${target.port}`
      : `${target.address}:${target.port}`;
    attempts.push(key);
    const port = routes[key];
    if (port === undefined) {
      // Refuse here rather than dial: the test decides what exists.
      const socket = new net.Socket();
      queueMicrotask(() =>
        socket.destroy(
          Object.assign(new Error(`stub: ${key} is off limits`), { code: "EHOSTUNREACH" }),
        )
      );
      return socket;
    }
    return net.connect({ host: "127.0.0.1", port });
  };
  return { resolve, dial, attempts, lookups };
}

/**
 * One HTTP request on one fresh connection, to an address the policy checked. Deno's fetch
 * resolves names itself (no hook to check the address it connects to) and silently resends a
 * request on a reused connection; node:http with `createConnection` lets us resolve, check and
 * dial the checked address ourselves, and with no agent every attempt is exactly one socket.
 */
import http from "node:http";
import https from "node:https";
import net from "node:net";
import tls from "node:tls";
import zlib from "node:zlib";
import type { Duplex, Readable } from "node:stream";
import { type AddressPolicy, BlockedAddressError, type CheckedAddress } from "./address_policy.ts";

/** Where to open a connection: the checked address, and the name TLS must verify. */
export interface DialTarget {
  address: string;
  port: number;
  tls: boolean;
  /** The URL's host name: TLS's server name, checked against the certificate. */
  servername: string;
}

/** Opens a socket. Tests pass one that records attempts and dials loopback only. */
export type Dialer = (target: DialTarget) => Duplex;

/** Dials `target.address` itself: never a name, so what was checked is what is reached. */
export const defaultDialer: Dialer = (target) =>
  target.tls
    ? tls.connect({
      host: target.address,
      port: target.port,
      servername: net.isIP(target.servername) ? undefined : target.servername,
    })
    : net.connect({ host: target.address, port: target.port });

/** Counts of what went over the wire, for tests and benchmarks. */
export interface WireStats {
  /** Sockets opened (one per attempt). */
  connections: number;
  /** Bytes read from sockets: headers and bodies as sent, before decompression. */
  bytesReceived: number;
}

/** A response whose body has not been read yet. */
export interface RawResponse {
  status: number;
  statusText: string;
  headers: Headers;
  /** The body, decoded from gzip, deflate or br as the server declared. */
  body: AsyncIterable<Uint8Array>;
  /** Drops the body and closes the connection. */
  cancel(): void;
}

export interface RawRequest {
  url: URL;
  /** The page the request is made for: its address class bounds where `url` may go. */
  scope: URL;
  headers: Record<string, string>;
  signal: AbortSignal;
}

const DECODERS: Record<string, () => Duplex> = {
  gzip: () => zlib.createGunzip(),
  "x-gzip": () => zlib.createGunzip(),
  deflate: () => zlib.createInflate(),
  br: () => zlib.createBrotliDecompress(),
};

/** Thrown for a body encoding we cannot decode; permanent. */
export class UnsupportedEncodingError extends Error {
  constructor(readonly encoding: string) {
    super(`unsupported_encoding: ${encoding}`);
    this.name = "UnsupportedEncodingError";
  }
}

type Connect = (done: (error: Error | null, socket?: Duplex) => void) => void;

/** An agent whose one connection is opened by `connect`, asynchronously. */
function oneShotAgent(secure: boolean, connect: Connect): http.Agent {
  const Base = secure ? https.Agent : http.Agent;
  const agent = new Base({ keepAlive: false });
  // Node's agents accept a socket handed to the callback later, as `net.connect` would.
  (agent as unknown as { createConnection: unknown }).createConnection = (
    _options: unknown,
    done: (error: Error | null, socket?: Duplex) => void,
  ) => {
    connect(done);
    return undefined;
  };
  return agent;
}

/**
 * Sends one GET for `request.url` on a new connection to an address `policy` allows for
 * `request.scope`. Rejects with BlockedAddressError before any socket opens when none is
 * allowed, with the signal's reason when it aborts, or with the socket's error.
 */
export function sendRequest(
  request: RawRequest,
  policy: AddressPolicy,
  dial: Dialer,
  stats: WireStats,
): Promise<RawResponse> {
  const { url, scope, headers, signal } = request;
  const secure = url.protocol === "https:";
  const port = Number(url.port) || (secure ? 443 : 80);
  return new Promise<RawResponse>((resolve, reject) => {
    let socket: Duplex | undefined;
    const onSocket = (checked: CheckedAddress) => {
      stats.connections++;
      socket = dial({ address: checked.address, port, tls: secure, servername: url.hostname });
      socket.on("data", (chunk: Uint8Array) => stats.bytesReceived += chunk.length);
      return socket;
    };
    const module = secure ? https : http;
    const connect = (done: (error: Error | null, s?: Duplex) => void) => {
      policy.check(url, scope).then(
        (checked) => signal.aborted ? done(signal.reason) : done(null, onSocket(checked)),
        (error) => done(error),
      );
    };
    const client = module.request(url, {
      method: "GET",
      // One agent per request and no keep-alive: each attempt is one socket, which nothing
      // resends behind our back. The agent's createConnection is where the check happens; a
      // request's own createConnection is ignored once an agent is given.
      agent: oneShotAgent(secure, connect),
      // Without a port: node would write `host:80`, which some virtual hosts mishandle.
      headers: { host: url.host, connection: "close", ...headers },
    });
    const onAbort = () => client.destroy(signal.reason);
    if (signal.aborted) return reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    client.on("error", (error) => {
      signal.removeEventListener("abort", onAbort);
      reject(signal.aborted ? signal.reason : error);
    });
    client.on("response", (response: http.IncomingMessage) => {
      const responseHeaders = new Headers();
      for (const [name, value] of Object.entries(response.headers)) {
        if (value === undefined) continue;
        for (const one of Array.isArray(value) ? value : [value]) responseHeaders.append(name, one);
      }
      const encoding = (responseHeaders.get("content-encoding") ?? "identity").trim()
        .toLowerCase();
      let body: Readable = response;
      if (encoding !== "identity" && encoding !== "") {
        const decoder = DECODERS[encoding];
        if (!decoder) {
          response.destroy();
          return reject(new UnsupportedEncodingError(encoding));
        }
        const decoded = decoder();
        response.on("error", (error) => decoded.destroy(error));
        body = response.pipe(decoded);
      }
      const cancel = () => {
        signal.removeEventListener("abort", onAbort);
        body.destroy();
        response.destroy();
        socket?.destroy();
      };
      resolve({
        status: response.statusCode ?? 0,
        statusText: response.statusMessage ?? "",
        headers: responseHeaders,
        body: (async function* () {
          try {
            for await (const chunk of body) yield chunk as Uint8Array;
          } finally {
            cancel();
          }
        })(),
        cancel,
      });
    });
    client.end();
  });
}

export { BlockedAddressError };

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
  const { url, headers, signal } = request;
  const secure = url.protocol === "https:";
  return new Promise<RawResponse>((resolve, reject) => {
    const connection = checkedConnection(request, policy, dial, stats);
    const client = (secure ? https : http).request(url, {
      method: "GET",
      // One agent per request and no keep-alive: each attempt is one socket, which nothing
      // resends behind our back. The agent's createConnection is where the check happens; a
      // request's own createConnection is ignored once an agent is given.
      agent: connection.agent,
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
      const detach = () => signal.removeEventListener("abort", onAbort);
      try {
        resolve(rawResponse(response, detach, connection.socket));
      } catch (error) {
        reject(error);
      }
    });
    client.end();
  });
}

/** An agent that opens its one socket to the address `policy` checks, and the socket it opened. */
function checkedConnection(
  request: RawRequest,
  policy: AddressPolicy,
  dial: Dialer,
  stats: WireStats,
): { agent: http.Agent; socket: () => Duplex | undefined } {
  const { url, scope, signal } = request;
  const secure = url.protocol === "https:";
  const port = Number(url.port) || (secure ? 443 : 80);
  let socket: Duplex | undefined;
  const onSocket = (checked: CheckedAddress) => {
    stats.connections++;
    socket = dial({ address: checked.address, port, tls: secure, servername: url.hostname });
    socket.on("data", (chunk: Uint8Array) => stats.bytesReceived += chunk.length);
    return socket;
  };
  const agent = oneShotAgent(secure, (done) => {
    policy.check(url, scope).then(
      (checked) => signal.aborted ? done(signal.reason) : done(null, onSocket(checked)),
      (error) => done(error),
    );
  });
  return { agent, socket: () => socket };
}

/**
 * A node response as a RawResponse whose body is decoded and whose cancel closes everything.
 * Throws UnsupportedEncodingError, with the response destroyed, for an encoding we lack.
 */
function rawResponse(
  response: http.IncomingMessage,
  detach: () => void,
  socket: () => Duplex | undefined,
): RawResponse {
  const headers = headersOf(response);
  const body = decodedBody(response, headers);
  const cancel = () => {
    detach();
    body.destroy();
    response.destroy();
    socket()?.destroy();
  };
  return {
    status: response.statusCode ?? 0,
    statusText: response.statusMessage ?? "",
    headers,
    body: (async function* () {
      try {
        for await (const chunk of body) yield chunk as Uint8Array;
      } finally {
        cancel();
      }
    })(),
    cancel,
  };
}

/** Node's header object as Headers, each repeated header kept. */
function headersOf(response: http.IncomingMessage): Headers {
  const headers = new Headers();
  for (const [name, value] of Object.entries(response.headers)) {
    if (value === undefined) continue;
    for (const one of Array.isArray(value) ? value : [value]) headers.append(name, one);
  }
  return headers;
}

/** The body as its Content-Encoding says to decode it. */
function decodedBody(response: http.IncomingMessage, headers: Headers): Readable {
  const encoding = (headers.get("content-encoding") ?? "identity").trim().toLowerCase();
  if (encoding === "identity" || encoding === "") return response;
  const decoder = DECODERS[encoding];
  if (!decoder) {
    response.destroy();
    throw new UnsupportedEncodingError(encoding);
  }
  const decoded = decoder();
  response.on("error", (error) => decoded.destroy(error));
  return response.pipe(decoded);
}

export { BlockedAddressError };

/**
 * The NATS connection of a coordinator or a worker: the `--cluster` URL (credentials and TLS
 * in it), a first connect that retries with backoff and says so on stderr, and status lines
 * while connected. The URL is only ever printed redacted: credentials never reach a log.
 */
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { fail } from "../../core/errors.ts";

/** A parsed `--cluster` URL. */
export interface ClusterAddress {
  /** `host:port`, what the client dials. */
  server: string;
  user?: string;
  pass?: string;
  token?: string;
  /** `tls://` asks for TLS; `caFile` trusts a private CA. */
  tls: boolean;
  caFile?: string;
  /** The URL with any credentials replaced by `***`, the only form that is ever logged. */
  redacted: string;
}

const SCHEMES = new Set(["nats:", "tls:"]);

/**
 * Reads `nats://[user:pass@|token@]host[:port]` (or `tls://…`), or `env:NAME` for a URL in
 * that environment variable. A bad URL is a usage error whose message never repeats the
 * credentials.
 *
 * @example
 * ```ts
 * parseClusterUrl("nats://crawler:s3cret@10.0.0.5:4222").redacted; // "nats://***@10.0.0.5:4222"
 * ```
 */
export function parseClusterUrl(text: string, caFile?: string): ClusterAddress {
  // `env:NAME` keeps a password off the command line, where `ps` would show it to anyone.
  const variable = /^env:(\w+)$/.exec(text)?.[1];
  if (variable !== undefined) {
    const value = Deno.env.get(variable);
    if (!value) {
      fail(`--cluster env:${variable}: the environment variable ${variable} is not set`, 2);
    }
    text = value;
  }
  let url: URL;
  try {
    url = new URL(text.includes("://") ? text : `nats://${text}`);
  } catch {
    fail("--cluster must be a URL like nats://host:4222 (tls://… for TLS)", 2);
  }
  if (!SCHEMES.has(url.protocol)) {
    fail(`--cluster must start with nats:// or tls://: got '${url.protocol}//'`, 2);
  }
  if (url.hostname === "") fail("--cluster names no host: use nats://host:4222", 2);
  const port = url.port || "4222";
  const user = url.username ? decodeURIComponent(url.username) : undefined;
  const pass = url.password ? decodeURIComponent(url.password) : undefined;
  const hasSecret = user !== undefined || pass !== undefined;
  const host = url.hostname.includes(":") ? `[${url.hostname}]` : url.hostname;
  return {
    server: `${url.hostname}:${port}`,
    // A user without a password is NATS' token form: nats://s3cr3tt0ken@host:4222.
    ...(user !== undefined && pass === undefined ? { token: user } : { user, pass }),
    tls: url.protocol === "tls:" || caFile !== undefined,
    caFile,
    redacted: `${url.protocol}//${hasSecret ? "***@" : ""}${host}:${port}`,
  };
}

export interface ConnectOptions {
  /** Shown to the server (`nats server report connections`) and in our log lines. */
  name: string;
  /** Where progress lines go. @default console.error */
  log?: (line: string) => void;
  /** Stops the first-connect retries. */
  signal?: AbortSignal;
  /**
   * Most milliseconds between two first-connect attempts; the wait doubles up to it.
   * @default 15000
   */
  maxBackoffMs?: number;
}

/** Errors after which another attempt cannot help: the server said no to who we are. */
function isAuthFailure(error: unknown): boolean {
  const text = `${(error as Error)?.name ?? ""} ${(error as Error)?.message ?? error}`;
  return /authori[sz]ation|authentication|permission/i.test(text);
}

/**
 * An error's first line for a log: credentials in a server URL become `***`, and web URLs
 * (an image URL is personal data) become `<url>`.
 */
export function safeMessage(error: unknown): string {
  const message = (error as Error)?.message ?? String(error);
  return message.replace(/\bhttps?:\/\/\S+/gi, "<url>")
    .replace(/\b[a-z]+:\/\/[^@\s/]*@/gi, (match) => match.replace(/\/\/.*@/, "//***@"))
    .split("\n")[0]!.slice(0, 200);
}

/** Resolves after `ms`, or early (without error) when `signal` aborts. */
export function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    // No timer for no wait: a 0 ms timer still costs a turn of the timer queue (≥ 1 ms).
    if (signal?.aborted || ms <= 0) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}

/** Socket errors the NATS client can leave without a listener when the server goes away. */
const SOCKET_RESETS = new Set(["ECONNRESET", "EPIPE", "ECONNREFUSED", "ETIMEDOUT"]);
let resetGuard: ((line: string) => void) | undefined;

/**
 * The node transport of the NATS client drops its socket listeners for a moment during a
 * (re)connect; a server killed in that moment raises an "error" nobody listens to, which would
 * end the process. That error is only the lost connection, which the client handles by
 * reconnecting: swallow it (with a line) instead of dying.
 */
function guardSocketResets(log: (line: string) => void) {
  if (resetGuard) return;
  resetGuard = log;
  globalThis.addEventListener("error", (event) => {
    const code = (event.error as { code?: unknown } | undefined)?.code;
    if (typeof code !== "string" || !SOCKET_RESETS.has(code)) return;
    event.preventDefault();
    resetGuard?.(`cluster: a NATS socket closed under us (${code}); the client reconnects`);
  });
}

/**
 * Connects, retrying the first connect with exponential backoff (and a line on stderr for
 * each failure) until it succeeds or `signal` aborts; an authentication failure ends it at
 * once. Once connected the client reconnects by itself, and disconnects and reconnects are
 * logged.
 */
export async function connectCluster(
  address: ClusterAddress,
  options: ConnectOptions,
): Promise<NatsConnection> {
  const { name, log = console.error, signal, maxBackoffMs = 15000 } = options;
  guardSocketResets(log);
  let waitMs = 500;
  for (let attempt = 1;; attempt++) {
    signal?.throwIfAborted();
    try {
      const nc = await connect({
        servers: address.server,
        name,
        user: address.user,
        pass: address.pass,
        token: address.token,
        tls: address.tls ? (address.caFile ? { caFile: address.caFile } : {}) : undefined,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 1000,
        timeout: 5000,
      });
      if (attempt > 1) log(`${name}: connected to ${address.redacted}`);
      watchStatus(nc, address, name, log);
      return nc;
    } catch (error) {
      if (isAuthFailure(error)) {
        fail(`${name}: the NATS server at ${address.redacted} refused us: ${safeMessage(error)}`);
      }
      log(
        `${name}: cannot reach the NATS server at ${address.redacted} (${safeMessage(error)}); ` +
          `attempt ${attempt}, retrying in ${(waitMs / 1000).toFixed(1)} s`,
      );
      await pause(waitMs, signal);
      waitMs = Math.min(maxBackoffMs, waitMs * 2);
    }
  }
}

function watchStatus(
  nc: NatsConnection,
  address: ClusterAddress,
  name: string,
  log: (line: string) => void,
) {
  (async () => {
    for await (const status of nc.status()) {
      if (status.type === "disconnect") log(`${name}: lost the NATS server at ${address.redacted}`);
      if (status.type === "reconnect") log(`${name}: reconnected to ${address.redacted}`);
    }
  })().catch(() => {});
}

/**
 * The body of one response and the words for what went wrong on the way: the HTTP client's
 * reading of a 2xx body within a byte cap, and its reason codes for network, TLS, timeout and
 * abort errors, which never quote the URL (image URLs are personal data).
 */
import type { GetResult } from "./http_options.ts";
import type { RawResponse } from "./transport.ts";

/**
 * Reads a 2xx body as it streams in, within `maxBytes` of decoded bytes (a gzip bomb fails as
 * it inflates), and turns a cut-off, corrupt or late body into a reason without the URL.
 */
export async function readBody(
  url: URL,
  response: RawResponse,
  maxBytes: number,
  signal: AbortSignal,
  timeoutMs: number,
): Promise<GetResult> {
  const fail = (reason: string): GetResult => ({ ok: false, url: url.href, reason });
  const declared = Number(response.headers.get("content-length") ?? NaN);
  const encoded = (response.headers.get("content-encoding") ?? "identity") !== "identity";
  if (!encoded && declared > maxBytes) {
    response.cancel();
    return fail(`too_large: Content-Length ${declared} > ${maxBytes} bytes`);
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for await (const chunk of response.body) {
      total += chunk.length;
      // Counting decoded bytes catches a gzip bomb as it inflates; leaving the loop closes it.
      if (total > maxBytes) return fail(`too_large: body over ${maxBytes} bytes`);
      chunks.push(chunk);
    }
  } catch (error) {
    const code = (error as { code?: string })?.code ?? "";
    // A body that does not decode as its Content-Encoding says will not on a retry either.
    if (code.startsWith("Z_") || code.startsWith("ERR_ZLIB")) {
      return fail(
        `bad_encoding: the ${response.headers.get("content-encoding")} body is corrupt`,
      );
    }
    return fail(describeError(signal.aborted ? signal.reason : error, timeoutMs));
  }
  if (!encoded && Number.isFinite(declared) && total < declared) {
    return fail(`network: body ended after ${total} of ${declared} bytes`);
  }
  const body = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    body.set(chunk, offset);
    offset += chunk.length;
  }
  return {
    ok: true,
    url: url.href,
    status: response.status,
    contentType: response.headers.get("content-type") ?? "",
    body,
    notModified: false,
  };
}

/** Turns a request/stream error into a reason code without the URL. */
export function describeError(error: unknown, timeoutMs?: number): string {
  const name = error instanceof Error || error instanceof DOMException ? error.name : "";
  if (name === "TimeoutError") {
    return `timeout: no complete response within ${timeoutMs ?? "the allowed"} ms`;
  }
  if (name === "AbortError") return "aborted: cancelled by the caller";
  const code = (error as { code?: string })?.code;
  const message = error instanceof Error ? error.message : String(error);
  const cause = error instanceof Error && error.cause instanceof Error
    ? error.cause.message
    : message;
  const detail = cause.replace(/https?:\/\/\S+/g, "<url>").replace(/\s+/g, " ").slice(0, 200);
  if (code && /^(ERR_TLS|ERR_SSL|CERT_|UNABLE_TO_|DEPTH_ZERO|SELF_SIGNED)/.test(code)) {
    return `tls_failed: ${code}`;
  }
  // Errors may quote the host; keep only the cause and its code.
  return `network: ${code && !detail.includes(code) ? `${code} ` : ""}${detail}`;
}

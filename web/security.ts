/**
 * The web app's guards. It shows faces and names and it can delete, so: only the host names it
 * was started for (against DNS rebinding), an access token when one is set (always on a
 * non-loopback bind), and for every POST a same-origin check plus a CSRF token. The content
 * security policy allows scripts, styles and connections from the app itself only.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { Context, MiddlewareHandler } from "hono";
import { getCookie, setCookie } from "hono/cookie";
import { secureHeaders } from "hono/secure-headers";

/**
 * Cookie that carries the access token after the first visit with `?token=`. Cookies ignore
 * ports, so the name carries it: two servers on one host keep their tokens apart.
 */
export function tokenCookie(url: string): string {
  return `facefield_token_${new URL(url).port || "80"}`;
}
/** Header (for fetch) or form field (for plain forms) that carries the CSRF token. */
export const CSRF_HEADER = "x-csrf-token";
export const CSRF_FIELD = "csrf";

const LOOPBACK_HOSTS = new Set(["127.0.0.1", "localhost", "::1", "[::1]"]);

/** Whether a bind address only listens to this machine. */
export function isLoopback(hostname: string): boolean {
  return LOOPBACK_HOSTS.has(hostname) || /^127\.\d+\.\d+\.\d+$/.test(hostname);
}

/** A fresh random token, URL-safe: 32 bytes of entropy. */
export function generateToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_")
    .replace(/=+$/, "");
}

/** Compares secrets in constant time (hashing first makes the lengths equal). */
export function sameSecret(given: string | undefined, expected: string): boolean {
  if (given === undefined) return false;
  const digest = (s: string) => createHash("sha256").update(s).digest();
  return timingSafeEqual(digest(given), digest(expected));
}

/** The policy for report.html as the run wrote it: its own styles and data: images, no script. */
export const STATIC_REPORT_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; " +
  "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** The content security policy and the other headers that keep the pages to themselves. */
export function securityHeaders(): MiddlewareHandler {
  return secureHeaders({
    contentSecurityPolicy: {
      defaultSrc: ["'none'"],
      scriptSrc: ["'self'"],
      styleSrc: ["'self'"],
      // data: for the Try-it preview the server sends back; blob: for a dropped file.
      imgSrc: ["'self'", "data:", "blob:"],
      connectSrc: ["'self'"],
      formAction: ["'self'"],
      baseUri: ["'none'"],
      frameAncestors: ["'none'"],
    },
    referrerPolicy: "same-origin",
    crossOriginResourcePolicy: "same-origin",
    strictTransportSecurity: false,
    // A route may set a stricter policy of its own (the static report: no script at all).
    overwrite: false,
  });
}

/**
 * Requests must name a host the app was started for. A web page of another site whose name was
 * made to resolve to 127.0.0.1 (DNS rebinding) sends its own name and is refused.
 */
export function hostCheck(allowedHosts: Set<string>): MiddlewareHandler {
  return async (c, next) => {
    const host = (c.req.header("host") ?? "").toLowerCase().replace(/:\d+$/, "");
    if (!allowedHosts.has(host)) return c.text("unknown host", 421);
    await next();
  };
}

/**
 * Every request must carry the token: as `Authorization: Bearer …`, as the cookie, or once as
 * `?token=…`, which sets the cookie and redirects to the same address without it (so the token
 * does not stay in the address bar or the history).
 */
export function tokenCheck(token: string): MiddlewareHandler {
  return async (c, next) => {
    const bearer = c.req.header("authorization")?.match(/^Bearer\s+(.+)$/i)?.[1];
    const query = c.req.query("token");
    if (query !== undefined && sameSecret(query, token) && c.req.method === "GET") {
      setCookie(c, tokenCookie(c.req.url), token, {
        httpOnly: true,
        sameSite: "Strict",
        path: "/",
      });
      const url = new URL(c.req.url);
      url.searchParams.delete("token");
      return c.redirect(url.pathname + url.search, 303);
    }
    if (!sameSecret(bearer, token) && !sameSecret(getCookie(c, tokenCookie(c.req.url)), token)) {
      return c.text("this server needs its access token: open the address it printed", 401);
    }
    await next();
  };
}

/** The origin a same-origin request names, from `Origin`, else from `Referer`. */
function requestOrigin(c: Context): string | undefined {
  const origin = c.req.header("origin");
  if (origin && origin !== "null") return origin;
  const referer = c.req.header("referer");
  if (!referer) return undefined;
  try {
    return new URL(referer).origin;
  } catch {
    return undefined;
  }
}

/**
 * A POST must come from one of the app's own pages: its origin is the app's, and it carries
 * the CSRF token the pages embed (header or form field). Runs before any body is used.
 */
export function csrfCheck(csrfToken: string): MiddlewareHandler {
  return async (c, next) => {
    if (c.req.method !== "POST") return await next();
    const own = new URL(c.req.url).origin;
    const origin = requestOrigin(c);
    const fetchSite = c.req.header("sec-fetch-site");
    if ((origin ?? "") !== own || (fetchSite !== undefined && fetchSite !== "same-origin")) {
      return c.text("cross-origin request refused", 403);
    }
    let given = c.req.header(CSRF_HEADER);
    const type = c.req.header("content-type") ?? "";
    if (given === undefined && type.startsWith("application/x-www-form-urlencoded")) {
      const field = (await c.req.parseBody())[CSRF_FIELD];
      given = typeof field === "string" ? field : undefined;
    }
    if (!sameSecret(given, csrfToken)) return c.text("missing or wrong CSRF token", 403);
    await next();
  };
}

/** A loopback HTTP server for crawl tests: records each request and the peak concurrency. */

export interface Loopback {
  /** `http://127.0.0.1:<port>` */
  origin: string;
  /** Path and query of every request, in arrival order. */
  requests: string[];
  /** User-Agent of every request, in arrival order. */
  userAgents: string[];
  /** Most handlers running at the same time. */
  peakConcurrency(): number;
  close(): Promise<void>;
}

export type Handler = (request: Request, url: URL) => Response | Promise<Response>;

/** Serves `handler` on 127.0.0.1 at a free port. */
export function startLoopback(handler: Handler): Loopback {
  const requests: string[] = [];
  const userAgents: string[] = [];
  let running = 0;
  let peak = 0;
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (request) => {
      const url = new URL(request.url);
      requests.push(url.pathname + url.search);
      userAgents.push(request.headers.get("user-agent") ?? "");
      running++;
      peak = Math.max(peak, running);
      try {
        return await handler(request, url);
      } finally {
        running--;
      }
    },
  );
  return {
    origin: `http://127.0.0.1:${server.addr.port}`,
    requests,
    userAgents,
    peakConcurrency: () => peak,
    close: () => server.shutdown(),
  };
}

/** Resolves after `ms`, or early when the client goes away. */
export function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });
}

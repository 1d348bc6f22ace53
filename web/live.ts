/**
 * Live runs over Server-Sent Events: the overview fragment is sent again whenever the manifest,
 * the run's event file or the lock changes. The files are watched by polling their stat: the
 * run replaces the manifest by rename, which a file watcher loses track of, and two stats every
 * half second cost nothing.
 */
import type { Context } from "hono";
import { streamSSE } from "hono/streaming";
import { overviewFragment } from "./overview_page.ts";
import type { StoreView } from "./store_view.ts";

export interface LiveOptions {
  /**
   * Milliseconds between two looks at the files.
   * @default 500
   */
  pollMs?: number;
  /**
   * Milliseconds of silence after which a comment keeps proxies from closing the stream.
   * @default 15000
   */
  keepAliveMs?: number;
}

export function liveEvents(c: Context, view: StoreView, options: LiveOptions = {}): Response {
  const { pollMs = 500, keepAliveMs = 15000 } = options;
  if (!(pollMs > 0) || !(keepAliveMs > 0)) {
    throw new RangeError(
      `'pollMs' and 'keepAliveMs' must be positive: got ${pollMs}, ${keepAliveMs}`,
    );
  }
  return streamSSE(c, async (stream) => {
    let closed = false;
    stream.onAbort(() => {
      closed = true;
    });
    let last = "";
    let quietSince = Date.now();
    let sent = 0;
    while (!closed) {
      const now = JSON.stringify(await view.liveFingerprint());
      if (now !== last) {
        last = now;
        const fragment = String(await overviewFragment(view));
        await stream.writeSSE({ event: "overview", data: fragment, id: String(++sent) });
        quietSince = Date.now();
      } else if (Date.now() - quietSince > keepAliveMs) {
        await stream.write(": keep-alive\n\n");
        quietSince = Date.now();
      }
      await stream.sleep(pollMs);
    }
  });
}

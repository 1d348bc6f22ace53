/** Where Debian's Chromium (or FACEFIELD_CHROMIUM) is, for the browser tests; undefined without it. */
export const chromiumPath = [Deno.env.get("FACEFIELD_CHROMIUM"), "/usr/bin/chromium"].find(
  (path) => {
    try {
      return path !== undefined && Deno.statSync(path).isFile;
    } catch {
      return false;
    }
  },
);

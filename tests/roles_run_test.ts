/** `--roles` in a run: the manifest keeps each person's role, and a dropped role comes back. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { of } from "rxjs";
import sharp from "sharp";
import { Manifest } from "../store/manifest.ts";
import { runPipeline } from "../pipeline/run.ts";
import { parseRoleRules } from "../stages/filter_roles.ts";

const PAGE = `<!DOCTYPE html><html><body><h1>Staff</h1>
<div class="card"><img src="/p/a.jpg"><h3>Amelia Hartmann, Professor</h3></div>
<div class="card"><img src="/p/b.jpg"><h3>Bruno Castell</h3><p>Department Secretary</p></div>
<div class="card"><img src="/p/c.jpg"><h3>Chiara Volpe</h3></div>
</body></html>`;

Deno.test({
  name: "runPipeline() with roles: the role column, role_excluded, and a later run brings it back",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const images = new Map<string, Uint8Array<ArrayBuffer>>();
    for (const [name, red] of [["a", 200], ["b", 120], ["c", 40]] as const) {
      const jpeg = await sharp({
        create: { width: 120, height: 150, channels: 3, background: { r: red, g: 90, b: 60 } },
      }).jpeg().toBuffer();
      images.set(`/p/${name}.jpg`, new Uint8Array(jpeg));
    }
    const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) => {
      const { pathname } = new URL(request.url);
      if (pathname === "/staff") {
        return new Response(PAGE, { headers: { "content-type": "text/html" } });
      }
      const image = images.get(pathname);
      return image
        ? new Response(image, { headers: { "content-type": "image/jpeg" } })
        : new Response("not found", { status: 404 });
    });
    const data = await Deno.makeTempDir({ prefix: "facefield-roles-" });
    const sources = `url,category\nhttp://127.0.0.1:${server.addr.port}/staff,history\n`;
    const run = (roles?: string) =>
      runPipeline(
        {
          sources: "-",
          dataDir: data,
          until: "images",
          delayMs: 0,
          roles: roles === undefined ? undefined : parseRoleRules(roles),
        },
        of(sources),
      );
    try {
      await run("!secretary");
      let rows = (await Manifest.open(join(data, "index.csv"))).rows();
      const byName = new Map(rows.map((row) => [row.name, row]));
      assert.deepEqual(
        [...byName.keys()].sort(),
        ["Amelia Hartmann", "Bruno Castell", "Chiara Volpe"],
      );
      assert.equal(byName.get("Amelia Hartmann")!.role, "Professor");
      assert.equal(byName.get("Amelia Hartmann")!.status, "ok");
      assert.ok(byName.get("Amelia Hartmann")!.sha256, "a kept person's image is downloaded");
      const secretary = byName.get("Bruno Castell")!;
      assert.equal(secretary.role, "Department Secretary");
      assert.equal(secretary.status, "rejected");
      assert.match(secretary.reason, /^role_excluded: /);
      assert.equal(secretary.sha256, "", "a dropped role's image is not fetched");
      assert.equal(byName.get("Chiara Volpe")!.role, "");

      // The page is not crawled again, yet a run without the rule brings the person back.
      await run();
      rows = (await Manifest.open(join(data, "index.csv"))).rows();
      const back = rows.find((row) => row.name === "Bruno Castell")!;
      assert.equal(back.status, "ok");
      assert.ok(back.sha256);
    } finally {
      await server.shutdown();
      await Deno.remove(data, { recursive: true });
    }
  },
});

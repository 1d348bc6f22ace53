import assert from "node:assert/strict";
import { pathToFileURL } from "node:url";
import { from, lastValueFrom, of, toArray } from "rxjs";
import { personId } from "../core/ids.ts";
import {
  ImageListFormatError,
  type ImageListItem,
  readImageList,
  type ReadImageListOptions,
} from "../stages/read_image_list.ts";

async function read(
  text: string | string[],
  options: ReadImageListOptions = { baseDir: "/data/list" },
): Promise<ImageListItem[]> {
  const chunks = typeof text === "string" ? of(text) : from(text);
  return await lastValueFrom(chunks.pipe(readImageList(options), toArray()));
}

Deno.test("readImageList() reads the seed study's index.csv as it is, ids kept", async () => {
  const items = await read(
    "id,category,image_url,name\n" +
      "3f1c9a0b,economics,https://uni.example/p/a.jpg,Prof. Dr. Ada Byron\n",
  );
  assert.deepEqual(items, [{
    kind: "person",
    line: 2,
    person: {
      id: "3f1c9a0b",
      category: "economics",
      imageUrl: "https://uni.example/p/a.jpg",
      name: "Prof. Dr. Ada Byron",
      pageUrl: "https://uni.example",
    },
  }]);
});

Deno.test("readImageList() resolves paths against the list's folder and takes a source column", async () => {
  const [item] = await read("image,label,source\nfaces/b.png,law,site-a\n");
  assert.equal(item?.kind, "person");
  if (item?.kind !== "person") return;
  assert.equal(item.person.imageUrl, pathToFileURL("/data/list/faces/b.png").href);
  assert.equal(item.person.pageUrl, "site-a", "the source is the group the checks hold out");
  assert.equal(item.person.name, "");
  assert.equal(item.person.id, personId("law", item.person.imageUrl, ""), "a stable id");
});

Deno.test("readImageList() names columns explicitly, and rows arrive as their lines end", async () => {
  const items = await read(["photo_file,party,who\nx.jpg,D", "EM,Jo\n", "y.jpg,REP,Al\n"], {
    baseDir: "/d",
    columns: { image: "photo_file", category: "party", name: "who" },
  });
  assert.deepEqual(items.map((i) => i.kind === "person" && i.person.category), ["DEM", "REP"]);
});

Deno.test("readImageList() gives each bad row a line and a specific reason, and goes on", async () => {
  const items = await read(
    "id,category,image_url,name\n" +
      "aa,,a.jpg,No Category\n" +
      "bb,cs,,No Image\n" +
      "cc,cs,ftp://h/x.jpg,Ftp\n" +
      "d d,cs,d.jpg,Bad Id\n" +
      "ee,cs,e.jpg\n" +
      'ff,cs,"f.jpg,Broken\n' +
      "# a comment\n\n" +
      "gg,cs,g.jpg,Good\n",
  );
  const reasons = items.map((item) =>
    item.kind === "invalid" ? `${item.line} ${item.reason.split(":")[0]}` : `${item.line} ok`
  );
  assert.deepEqual(reasons, [
    "2 missing_category",
    "3 missing_image",
    "4 bad_image",
    "5 bad_id",
    "6 column_count",
    "7 bad_csv",
    "10 ok",
  ]);
  const noCategory = items[0];
  assert.ok(noCategory?.kind === "invalid" && noCategory.person?.id === "aa", "kept with its id");
});

Deno.test("readImageList() refuses a list without an image or category column", async () => {
  await assert.rejects(() => read("name,url\nA,a.jpg\n"), ImageListFormatError);
  await assert.rejects(() => read("file,name\na.jpg,A\n"), /needs a category column/);
  await assert.rejects(() => read(""), /empty/);
  await assert.rejects(
    () => read("a,b\n1,2\n", { columns: { image: "img" } }),
    /no column 'img' for the image/,
  );
});

Deno.test("readImageList() checks its options", () => {
  assert.throws(() => readImageList({ maxLineLength: 3 }), RangeError);
  assert.throws(() => readImageList({ baseDir: "" }), RangeError);
});

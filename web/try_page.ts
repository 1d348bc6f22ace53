/**
 * Try it: an image dropped, picked or named by URL goes through `Predictor` (the code path of
 * `deno task predict`) with each trained model; the page draws the faces' boxes and lists each
 * model's probabilities. Uploads get the downloader's limits: bytes, pixels, image formats.
 */
import { html } from "hono/html";
import sharp from "sharp";
import { HttpClient } from "../net/http.ts";
import {
  checkImageBytes,
  InputError,
  MAX_IMAGE_BYTES,
  MAX_IMAGE_PIXELS,
} from "../pipeline/predictor.ts";
import type { Html } from "./layout.ts";
import type { ModelSet, UploadFace } from "./models.ts";

export function tryPage(): Html {
  return html`
    <h1>Try it</h1>
    <p>Drop a photo here or pick one; or give an image's address. Each trained model of this data dir
    says which group it thinks each face belongs to, as <code>deno task predict</code> would. The image
    is not stored.</p>
    <p
      class="muted">JPEG, PNG, GIF, WebP, TIFF or HEIF, up to ${MAX_IMAGE_BYTES /
        2 ** 20} MiB and ${MAX_IMAGE_PIXELS / 1e6} million pixels (the
    limits of <code>deno task predict</code> and of the crawler). An address is fetched only when
    it is public, unless the app was started with <code>--allow-private</code>.</p>
    <form id="try" class="try" method="post" action="/api/predict" enctype="multipart/form-data">
      <label class="dropzone" id="dropzone">Drop an image, or <input type="file" name="image" id="image"
    accept="image/*"></label>
      <p>or URL <input type="url" name="url" id="url" placeholder="https://…/portrait.jpg" size="50">
    <button type="submit">Predict</button></p>
    </form>
    <p id="try-status" role="status" class="muted"></p>
    <div id="try-result" class="try-result"></div>
  `;
}

/** The answer the page renders; `status` is the HTTP status that goes with it. */
export type PredictResponse =
  | {
    status: 200;
    body: {
      width: number;
      height: number;
      /** A small preview (data: URL) to draw the boxes on; the image itself is not kept. */
      preview: string;
      faces: UploadFace[];
      noFace?: string;
      models: string[];
      ms: number;
    };
  }
  | { status: 400 | 409 | 413 | 415 | 422; body: { error: string } };

const refuse = (status: 400 | 409 | 413 | 415 | 422, error: string): PredictResponse => ({
  status,
  body: { error },
});

/** HTTP status per reason code of `checkImageBytes`. */
const CHECK_STATUS: Record<string, 400 | 413 | 415 | 422> = {
  too_large: 413,
  too_many_pixels: 413,
  not_an_image: 415,
  unsupported_format: 415,
  decode_failed: 415,
};

/** Checks the bytes as `predict` does (`checkImageBytes`), before any face work. */
async function checkImage(
  bytes: Uint8Array,
): Promise<PredictResponse | { width: number; height: number }> {
  if (bytes.length === 0) return refuse(400, "not_an_image: the upload is empty");
  try {
    return await checkImageBytes(bytes);
  } catch (error) {
    if (!(error instanceof InputError)) throw error;
    const code = error.message.split(":")[0]!;
    return refuse(CHECK_STATUS[code] ?? 422, error.message);
  }
}

/** The bytes of an upload or of the URL named; a refusal when there is neither or it fails. */
export async function uploadBytes(
  form: Record<string, string | File | (string | File)[]>,
  http: HttpClient,
): Promise<Uint8Array | PredictResponse> {
  const file = form.image;
  if (file instanceof File && file.size > 0) {
    if (file.size > MAX_IMAGE_BYTES) {
      return refuse(413, `too_large: ${file.size} bytes > ${MAX_IMAGE_BYTES}`);
    }
    return new Uint8Array(await file.arrayBuffer());
  }
  const url = typeof form.url === "string" ? form.url.trim() : "";
  if (!url) {
    return refuse(400, "no_input: send an image file (field 'image') or a URL (field 'url')");
  }
  if (!/^https?:\/\//i.test(url)) return refuse(400, "bad_url: only http(s) addresses are fetched");
  return await fetchNamedImage(url, http);
}

/**
 * The page an image URL typed on Try it counts as named on: a public one (TEST-NET-1, never
 * contacted). So the crawler's address rules apply: no private, loopback or link-local address
 * unless the client allows private ones (`--allow-private`).
 */
export const PUBLIC_SCOPE = "http://192.0.2.1/";

/**
 * Fetches one image a person named: the address rules, no robots.txt (a person asked for this
 * one image; no crawl), the upload's size limit, and errors in plain words that do not quote
 * the server's own messages.
 */
export async function fetchNamedImage(
  url: string,
  http: HttpClient,
): Promise<Uint8Array | PredictResponse> {
  const result = await http.get(url, {
    maxBytes: MAX_IMAGE_BYTES,
    accept: "image/*",
    scope: PUBLIC_SCOPE,
    robots: false,
  });
  if (result.ok) return result.body;
  if (result.reason.startsWith("too_large")) {
    return refuse(413, `too_large: over ${MAX_IMAGE_BYTES} bytes`);
  }
  return refuse(422, plainFetchError(result.reason));
}

/** A fetch failure as the Try-it page says it. */
export function plainFetchError(reason: string): string {
  const blocked = reason.match(/^blocked_address: (\S+) /);
  if (blocked) {
    return `could not fetch: the address is ${blocked[1]}, and a URL typed here may reach only ` +
      "public addresses (start serve with --allow-private to fetch from your own network)";
  }
  const status = reason.match(/^http_(\d+)/);
  if (status) return `could not fetch: the server answered HTTP ${status[1]}`;
  if (/ECONNREFUSED/.test(reason)) return "could not fetch: connection refused";
  if (reason.startsWith("timeout")) return "could not fetch: no answer in time";
  if (/ENOTFOUND|EAI_AGAIN|ENODATA/.test(reason)) return "could not fetch: no such host";
  if (reason.startsWith("tls_failed")) return "could not fetch: the secure connection failed";
  if (/^(redirect_loop|too_many_redirects|bad_redirect)/.test(reason)) {
    return "could not fetch: too many or broken redirects";
  }
  if (reason.startsWith("bad_url")) return "bad_url: not a valid http(s) address";
  return "could not fetch: the connection failed";
}

/** Predicts on checked bytes with every model. */
export async function predictBytes(models: ModelSet, bytes: Uint8Array): Promise<PredictResponse> {
  const started = performance.now();
  const checked = await checkImage(bytes);
  if ("status" in checked) return checked;
  const loaded = await models.models();
  if (loaded.length === 0) {
    return refuse(409, "no_model: this data dir has no trained model; run deno task pipeline");
  }
  let result;
  try {
    result = await models.predictUpload(bytes);
  } catch (error) {
    if (error instanceof InputError) return refuse(422, error.message);
    throw error;
  }
  const preview = await sharp(bytes).rotate().resize(640, 640, {
    fit: "inside",
    withoutEnlargement: true,
  })
    .webp({ quality: 75 }).toBuffer();
  return {
    status: 200,
    body: {
      ...checked,
      preview: `data:image/webp;base64,${preview.toString("base64")}`,
      faces: result.faces,
      noFace: result.noFace,
      models: loaded.map((m) => m.kind),
      ms: Math.round(performance.now() - started),
    },
  };
}

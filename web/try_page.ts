/**
 * Try it: an image dropped, picked or named by URL goes through `Predictor` (the code path of
 * `deno task predict`) with each trained model; the page draws the faces' boxes and lists each
 * model's probabilities. Uploads get the downloader's limits: bytes, pixels, image formats.
 */
import { html } from "hono/html";
import sharp from "sharp";
import { HttpClient } from "../net/http.ts";
import { InputError, readInput } from "../pipeline/predictor.ts";
import {
  DEFAULT_MAX_IMAGE_BYTES,
  DEFAULT_MAX_IMAGE_PIXELS,
  sniffImageType,
} from "../stages/download_images.ts";
import type { Html } from "./layout.ts";
import type { ModelSet, UploadFace } from "./models.ts";

export function tryPage(): Html {
  return html`
    <h1>Try it</h1>
    <p>Drop a photo here or pick one; or give an image's address. Each trained model of this data dir
    says which group it thinks each face belongs to, as <code>deno task predict</code> would. The image
    is not stored.</p>
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

/** Checks the bytes as the downloader does, before any face work. */
async function checkImage(
  bytes: Uint8Array,
): Promise<PredictResponse | { width: number; height: number }> {
  if (bytes.length === 0) return refuse(400, "not_an_image: the upload is empty");
  if (bytes.length > DEFAULT_MAX_IMAGE_BYTES) {
    return refuse(413, `too_large: ${bytes.length} bytes > ${DEFAULT_MAX_IMAGE_BYTES}`);
  }
  const sniffed = sniffImageType(bytes);
  if (sniffed.kind === "unknown") {
    return refuse(415, "not_an_image: the bytes match no image format");
  }
  if (sniffed.kind !== "sharp") {
    const format = sniffed.kind === "svg" ? "svg" : sniffed.format;
    return refuse(415, `unsupported_format: ${format} cannot be read`);
  }
  try {
    const metadata = await sharp(bytes, { limitInputPixels: DEFAULT_MAX_IMAGE_PIXELS }).metadata();
    const width = metadata.width ?? 0;
    const height = metadata.height ?? 0;
    if (width * height > DEFAULT_MAX_IMAGE_PIXELS) {
      return refuse(413, `too_many_pixels: ${width}x${height} is over ${DEFAULT_MAX_IMAGE_PIXELS}`);
    }
    const quarterTurn = (metadata.orientation ?? 1) >= 5;
    return quarterTurn ? { width: height, height: width } : { width, height };
  } catch (error) {
    const message = String((error as Error).message).split("\n")[0]!;
    if (/pixel limit/i.test(message)) {
      return refuse(413, `too_many_pixels: over ${DEFAULT_MAX_IMAGE_PIXELS} pixels (${message})`);
    }
    return refuse(415, `decode_failed: ${message}`);
  }
}

/** The bytes of an upload or of the URL named; a refusal when there is neither or it fails. */
export async function uploadBytes(
  form: Record<string, string | File | (string | File)[]>,
  http: HttpClient,
): Promise<Uint8Array | PredictResponse> {
  const file = form.image;
  if (file instanceof File && file.size > 0) {
    if (file.size > DEFAULT_MAX_IMAGE_BYTES) {
      return refuse(413, `too_large: ${file.size} bytes > ${DEFAULT_MAX_IMAGE_BYTES}`);
    }
    return new Uint8Array(await file.arrayBuffer());
  }
  const url = typeof form.url === "string" ? form.url.trim() : "";
  if (!url) {
    return refuse(400, "no_input: send an image file (field 'image') or a URL (field 'url')");
  }
  if (!/^https?:\/\//i.test(url)) return refuse(400, "bad_url: only http(s) addresses are fetched");
  try {
    return await readInput(url, http);
  } catch (error) {
    if (error instanceof InputError) return refuse(422, error.message);
    throw error;
  }
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

import assert from "node:assert/strict";
import sharp from "sharp";
import { extractFaces, loadFaceModels } from "../models/faces/faces.ts";
import { estimateWithGear, ETHNICITIES, gearRegion } from "../models/faces/gear.ts";
import { decodeRgb } from "../models/classifier.ts";

Deno.test("gearRegion() is Human's 1.4× face box, then GEAR's own box, in crop fractions", () => {
  // A 128 px crop whose face box is 64 px (50 %): the 1.4× box is 89.6 px from 19.2 px.
  const [top, left, bottom, right] = gearRegion({ width: 128, height: 128 }, 50);
  assert.ok(Math.abs(top - 19.2 / 128) < 1e-9);
  assert.ok(Math.abs(left - (19.2 + 8.96) / 128) < 1e-9);
  assert.ok(Math.abs(bottom - (19.2 + 80.64) / 128) < 1e-9);
  assert.ok(Math.abs(right - (19.2 + 80.64) / 128) < 1e-9);
});

Deno.test({
  name: "estimateWithGear() gives a distribution over its ethnicities, an age, and a stable answer",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await loadFaceModels();
    const photo = await Deno.readFile(new URL("./testdata/faces/portrait.jpg", import.meta.url));
    const face = (await extractFaces(photo, { describe: false })).faces[0]!;
    const crop = await decodeRgb(face.crop);
    const estimate = await estimateWithGear(crop, { facePercent: 50 });
    assert.equal(estimate.ethnicityProbabilities.length, ETHNICITIES.length);
    const total = estimate.ethnicityProbabilities.reduce((sum, p) => sum + p, 0);
    assert.ok(Math.abs(total - 1) < 0.01, `probabilities sum to ${total}`);
    const best = Math.max(...estimate.ethnicityProbabilities);
    assert.equal(estimate.ethnicityProbabilities[ETHNICITIES.indexOf(estimate.ethnicity)], best);
    assert.ok(estimate.age >= 15 && estimate.age <= 65, `age ${estimate.age}`);
    assert.ok(estimate.maleProbability >= 0 && estimate.maleProbability <= 1);
    // The mirrored face is the same person: GEAR's box is centred, so its answer should hold.
    const mirrored = await decodeRgb(await sharp(face.crop).flop().png().toBuffer());
    const again = await estimateWithGear(mirrored, { facePercent: 50 });
    assert.equal(again.ethnicity, estimate.ethnicity);
    assert.equal(again.gender, estimate.gender);
    // A blank crop has no face to read: whatever it says, it must not crash or give NaN.
    const blank = { width: 128, height: 128, data: new Uint8Array(128 * 128 * 3) };
    const nothing = await estimateWithGear(blank, { facePercent: 50 });
    assert.ok(Number.isFinite(nothing.age));
  },
});

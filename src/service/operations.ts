// The operations the API offers, each returning finished results; routes and protocols only
// parse the request and render the answer.
//   encode(x)               → ε, logDet = log|det ∂ε/∂x|
//   decode(ε)               → x in an output form, log p(x)
//   sample(count, T, seed)  → x in an output form, log p(x), and the ε drawn (ε ~ N(0, T²·I))
//   likelihood(x)           → log p and bits/dim under a dequantization protocol, anomaly scores
//   interpolate(a, b, N)    → N frames decoded from a path between the latents of a and b
// Output forms: raw (the inverse's values), clamped (into data.range) and quantized (to the centres
// of the bit depth's bins: what a PNG of the sample holds). Every log-likelihood returned is the
// density of exactly the rows returned: raw rows keep the density of their draw,
// log N(ε) − logDet_inverse; rows that clamping or quantization moved are scored again by the
// forward pass, as /likelihood (dequantization "centre") scores them.
import type { Manifest, Protocol } from '../config/manifest-schema.js';
import { InvalidInputError, LimitExceededError } from '../errors.js';
import { IMAGE_SCORES, batchTypicality, complexityScore, normalizeScore, twoPartCodeBits, typicality, type BatchTypicality, type ScoreName } from '../flow/anomaly.js';
import { bitsPerDim, logMeanExp } from '../flow/density.js';
import { interpolatePath, interpolationTimes, isAntipodal, type InterpolationMethod } from '../flow/interpolate.js';
import { logStandardNormal } from '../flow/prior.js';
import { clampTo, dataToPixels, dequantizeUniform, quantizeToCentres } from '../flow/quantize.js';
import { Rng, randomSeed } from '../flow/random.js';
import { encodePngs, losslessJpegLs, losslessPng } from '../imaging/image-codec.js';
import type { FlowModel, Likelihood } from './flow-model.js';
import { assertFiniteRows, type DataRows } from './inputs.js';
import type { Cost, LoopContext } from './programs/types.js';

export const OUTPUT_FORMS = ['raw', 'clamped', 'quantized'] as const;
export type OutputForm = (typeof OUTPUT_FORMS)[number];
export const DEQUANTIZATIONS = ['centre', 'uniform'] as const;
export type Dequantization = (typeof DEQUANTIZATIONS)[number];
/** Most uniform dequantization draws per input (each draw is one forward pass of the input). */
export const MAX_DEQUANTIZATION_DRAWS = 64;

/** The output forms a model has: clamping needs a data range, quantizing a bit depth too. */
export function outputForms(m: Manifest): OutputForm[] {
  const forms: OutputForm[] = ['raw'];
  if (m.data.range) forms.push('clamped');
  if (m.data.range && m.data.bitDepth !== null) forms.push('quantized');
  return forms;
}

/** One default for /sample and /decode: quantized where the data is quantized, raw otherwise. */
export function defaultOutputForm(m: Manifest): OutputForm {
  return outputForms(m).includes('quantized') ? 'quantized' : 'raw';
}

export interface Outputs {
  output: OutputForm;
  outputs: Float64Array;
  /** log p of each returned row, nats. */
  logLikelihood: Float64Array;
  cost: Cost;
}

export interface Sampled extends Outputs {
  temperature: number;
  seed: number;
  /** The ε each output was decoded from (before clamping or quantization). */
  latents: Float64Array;
  redrawn: number;
}

export interface ScoredLikelihood extends Likelihood {
  scores: Record<ScoreName, number | null>;
  anomalyScore: number | null;
  isAnomaly: boolean | null;
}

export interface LikelihoodAnswer {
  protocol: Protocol;
  results: ScoredLikelihood[];
  batchTest?: BatchTypicality;
  cost: Cost;
}

export interface LikelihoodOptions {
  /** The scores to compute (default: all the model has); the others are null. */
  scores?: readonly ScoreName[];
  dequantization?: Dequantization;
  draws?: number;
  seed?: number;
  batchTest?: boolean;
  /** The request field the rows came from, for error messages. */
  field?: string;
  /** Most rows (inputs × draws) one request may run (MAX_ITEMS_PER_REQUEST). */
  maxRows?: number;
}

function checkForm(model: FlowModel, form: OutputForm): void {
  const forms = outputForms(model.manifest);
  if (!forms.includes(form))
    throw new InvalidInputError('output', `model ${model.name} has no ${form === 'clamped' ? 'data range' : 'bit depth'} to make "${form}" outputs; its forms are ${forms.map((f) => `"${f}"`).join(', ')}`, { allowed: forms });
}

/** Raw outputs (with their densities) → the requested form, rescoring the rows it moved. */
async function finish(model: FlowModel, raw: Float64Array, rawLogLikelihood: Float64Array, n: number, form: OutputForm, cost: Cost, ctx: LoopContext): Promise<Outputs> {
  if (form === 'raw') return { output: form, outputs: raw, logLikelihood: rawLogLikelihood, cost };
  const { range, bitDepth } = model.manifest.data;
  const outputs = form === 'quantized' ? quantizeToCentres(raw, bitDepth!) : clampTo(raw, range![0], range![1]);
  const d = model.dim;
  const moved: number[] = [];
  for (let i = 0; i < n; i++)
    for (let j = i * d; j < (i + 1) * d; j++)
      if (outputs[j] !== raw[j]) {
        moved.push(i);
        break;
      }
  const logLikelihood = Float64Array.from(rawLogLikelihood);
  if (moved.length > 0) {
    const rows = new Float64Array(moved.length * d);
    moved.forEach((row, k) => rows.set(outputs.subarray(row * d, (row + 1) * d), k * d));
    const scored = await model.likelihood(rows, moved.length, ctx);
    moved.forEach((row, k) => (logLikelihood[row] = scored[k].logLikelihood));
  }
  return { output: form, outputs, logLikelihood, cost };
}

export async function encode(model: FlowModel, x: DataRows, n: number, field: string, ctx: LoopContext = {}): Promise<{ latents: Float64Array; logDet: Float64Array; cost: Cost }> {
  const { latents, logDet, cost } = await model.encode(x, n, ctx);
  assertFiniteRows(field, latents, logDet, n, model.dim, 'maps to');
  return { latents, logDet, cost };
}

export async function decode(model: FlowModel, latents: DataRows, n: number, opts: { output?: OutputForm } = {}, ctx: LoopContext = {}): Promise<Outputs> {
  const form = opts.output ?? defaultOutputForm(model.manifest);
  checkForm(model, form);
  const { outputs, logDet, cost } = await model.decode(latents, n, ctx);
  assertFiniteRows('latents', outputs, logDet, n, model.dim, 'decodes to');
  // log p(x) = log N(ε) + log|det ∂ε/∂x| = log N(ε) − log|det ∂x/∂ε|
  const logLikelihood = logStandardNormal(latents, n, model.dim);
  for (let i = 0; i < n; i++) logLikelihood[i] -= logDet[i];
  return finish(model, outputs, logLikelihood, n, form, cost, ctx);
}

export async function sample(model: FlowModel, opts: { count: number; temperature?: number; seed?: number; output?: OutputForm }, ctx: LoopContext = {}): Promise<Sampled> {
  const seed = opts.seed ?? randomSeed();
  const temperature = opts.temperature ?? model.manifest.defaultTemperature;
  if (temperature > model.maxTemperature) {
    const why = model.manifest.sampling
      ? `its measured usable range is 0 < T ≤ ${model.maxTemperature} (GET /models/${model.name}: sampling.temperature)`
      : 'the largest temperature the API accepts';
    throw new InvalidInputError('temperature', `must be at most ${model.maxTemperature} for model ${model.name}: ${why}, got ${temperature}`, { max: model.maxTemperature });
  }
  const form = opts.output ?? defaultOutputForm(model.manifest);
  checkForm(model, form);
  const drawn = await model.sample(opts.count, temperature, seed, ctx);
  const done = await finish(model, drawn.outputs, drawn.logLikelihood, opts.count, form, drawn.cost, ctx);
  return { ...done, temperature, seed, latents: drawn.latents, redrawn: drawn.redrawn };
}

/** The two ends of an interpolation: data rows (encoded first) or latent rows. */
export type InterpolationEnds = { kind: 'data'; x: DataRows; field: string } | { kind: 'latents'; z: DataRows };

export interface Interpolated extends Outputs {
  method: InterpolationMethod;
  /** t of each frame, 0 … 1. */
  t: Float64Array;
  /** The latent each frame was decoded from. */
  latents: Float64Array;
  /** What encoding the ends cost (null when latents were given); `cost` is the frames' decode. */
  encodeCost: Cost | null;
}

/**
 * Frames along a path between two latents, decoded (src/flow/interpolate.ts). Data ends are encoded
 * first, so the end frames are decode(encode(a)) and decode(encode(b)): the inputs again, up to the
 * flow's round-trip error (and in the output form: quantized pixels come back as the same pixels).
 */
export async function interpolate(model: FlowModel, ends: InterpolationEnds, opts: { steps: number; method: InterpolationMethod; output?: OutputForm }, ctx: LoopContext = {}): Promise<Interpolated> {
  const form = opts.output ?? defaultOutputForm(model.manifest);
  checkForm(model, form);
  const d = model.dim;
  const encoded = ends.kind === 'data' ? await encode(model, ends.x, 2, ends.field, ctx) : null;
  const z = encoded ? encoded.latents : ends.kind === 'latents' ? ends.z : new Float64Array(0);
  const z0 = z.subarray(0, d);
  const z1 = z.subarray(d, 2 * d);
  if (opts.method === 'spherical' && isAntipodal(z0, z1))
    throw new InvalidInputError(ends.kind === 'data' ? ends.field : 'latents', 'the two latents point in opposite directions: no single spherical path joins them; use method "linear"');
  const t = interpolationTimes(opts.steps);
  const latents = interpolatePath(z0, z1, t, opts.method);
  const done = await decode(model, latents, opts.steps, { output: form }, ctx);
  return { ...done, method: opts.method, t, latents, encodeCost: encoded?.cost ?? null };
}

/**
 * log p and bits/dim under the requested dequantization protocol, plus the anomaly scores. The
 * scores, anomalyScore and the batch test always use pixel centres: the protocol the calibration
 * statistics were measured with.
 */
export async function likelihood(model: FlowModel, x: DataRows, n: number, opts: LikelihoodOptions = {}, ctx: LoopContext = {}): Promise<LikelihoodAnswer> {
  const field = opts.field ?? 'inputs';
  const { bitDepth, range } = model.manifest.data;
  const available = model.scores;
  const wanted = new Set(opts.scores ?? defaultScores(model));
  for (const s of wanted)
    if (!available.includes(s))
      throw new InvalidInputError('scores', `model ${model.name} has no '${s}' score (${IMAGE_SCORES.includes(s) ? 'it needs an 8-bit image model' : 'it needs calibration statistics'}); it has: ${available.join(', ')}`, { allowed: available });
  const uniform = opts.dequantization === 'uniform';
  if (uniform && (bitDepth === null || !range))
    throw new InvalidInputError('dequantization', `"uniform" needs quantized data: model ${model.name} takes continuous vectors (use "centre" or leave it out)`);
  if (!uniform && (opts.draws !== undefined || opts.seed !== undefined))
    throw new InvalidInputError(opts.draws !== undefined ? 'draws' : 'seed', 'is only for dequantization "uniform"');
  if (opts.batchTest && !(model.manifest.calibration?.nllQuantiles && model.manifest.calibration.scores.nll))
    throw new InvalidInputError('batchTest', `model ${model.name} ships no held-out NLL quantiles (calibration.nllQuantiles) to test against`);

  const protocol: Protocol = bitDepth === null ? { dequantization: 'none' } : { dequantization: 'centre' };
  let uniformPass: Promise<{ lme: Float64Array; cost: Cost }> | null = null;
  if (uniform) {
    const draws = opts.draws ?? 1;
    const seed = opts.seed ?? randomSeed();
    if (n * draws > (opts.maxRows ?? Infinity)) throw new LimitExceededError('draws', 'MAX_ITEMS_PER_REQUEST', opts.maxRows!, n * draws, 'rows (inputs × draws)');
    const d = model.dim;
    for (let j = 0; j < n * d; j++)
      if (x[j] < range![0] || x[j] > range![1])
        throw new InvalidInputError(`${field}[${Math.floor(j / d)}][${j % d}]`, `dequantization "uniform" scores ${bitDepth}-bit pixels: values must lie in the data range [${range![0]}, ${range![1]}], got ${x[j]}`);
    Object.assign(protocol, { dequantization: 'uniform', draws, seed });
    const noisy = dequantizeUniform(x, n, d, bitDepth!, draws, new Rng(seed));
    uniformPass = model.likelihoodWithCost(noisy, n * draws, ctx).then(({ results: rows, cost }) => ({ lme: logMeanExp(rows.map((r) => r.logLikelihood), n, draws), cost }));
  }
  // Pixel centres: the answer itself, or (uniform) the scores' protocol when any score is wanted.
  const centres = !uniform || wanted.size > 0 || opts.batchTest ? scoreCentres(model, x, n, wanted, field, ctx) : null;
  const [centred, uniformed] = await Promise.all([centres, uniformPass]);
  const scored = centred?.results;
  const iw = uniformed?.lme;
  if (iw) assertFiniteRows(field, iw, null, n, 1, 'has a log-likelihood with');
  const results: ScoredLikelihood[] = Array.from({ length: n }, (_, i) => {
    const base = scored?.[i] ?? { scores: nullScores(), anomalyScore: null, isAnomaly: null, logLikelihood: NaN, bitsPerDim: NaN };
    return iw ? { ...base, logLikelihood: iw[i], bitsPerDim: bitsPerDim(iw[i], model.dim, bitDepth) } : base;
  });
  const answer: LikelihoodAnswer = { protocol, results, cost: (uniformed ?? centred)!.cost };
  if (opts.batchTest) answer.batchTest = batchTest(model, scored!.map((r) => -r.logLikelihood))!;
  return answer;
}

/**
 * The scores computed when a request names none: every score the model has, except the PNG
 * complexity score unless it is the model's default. Its lossless PNG (deflate level 9, adaptive
 * filters) costs ~70–150 µs of event-loop time per 28×28 image, as much as parsing the request;
 * complexityJpegLs is the sharper score at a fifth of the cost (docs/anomaly.md). Listed in
 * `scores`, it is computed as before.
 */
export function defaultScores(model: { scores: readonly ScoreName[]; manifest: Manifest }): ScoreName[] {
  return model.scores.filter((s) => s !== 'complexity' || model.manifest.calibration?.defaultScore === 'complexity');
}

const nullScores = (): Record<ScoreName, number | null> => ({ nll: null, typicality: null, complexity: null, complexityJpegLs: null });

/** log p at the rows as given (pixel centres for images) and the wanted scores (docs/anomaly.md). */
async function scoreCentres(model: FlowModel, x: DataRows, n: number, wanted: ReadonlySet<ScoreName>, field: string, ctx: LoopContext): Promise<{ results: ScoredLikelihood[]; cost: Cost }> {
  // The image code lengths are computed on the event loop while the flow runs on the inference worker.
  const images = IMAGE_SCORES.some((s) => wanted.has(s)) ? toPixels(x, n, model) : [];
  const rawBits = model.dim * 8;
  const [{ results, cost }, png, jpegLs] = await Promise.all([
    model.likelihoodWithCost(x, n, ctx),
    wanted.has('complexity') ? codeBits(images, model, losslessPng) : null,
    wanted.has('complexityJpegLs') ? codeBits(images, model, losslessJpegLs).then((bits) => bits.map((b) => twoPartCodeBits(b, rawBits))) : null,
  ]);
  assertFiniteRows(field, results.map((r) => r.logLikelihood), null, n, 1, 'has a log-likelihood with');
  const cal = model.manifest.calibration;
  const nllStats = cal?.scores.nll;
  const stats = cal?.scores[cal.defaultScore];
  return { cost, results: results.map((r, i) => {
    const nll = -r.logLikelihood;
    const scores: Record<ScoreName, number | null> = {
      nll: wanted.has('nll') ? nll : null,
      typicality: wanted.has('typicality') && nllStats ? typicality(nll, nllStats) : null,
      complexity: png ? complexityScore(r.bitsPerDim, model.dim, png[i]) : null,
      complexityJpegLs: jpegLs ? complexityScore(r.bitsPerDim, model.dim, jpegLs[i]) : null,
    };
    const chosen = cal ? scores[cal.defaultScore as ScoreName] ?? null : null;
    if (chosen === null || !stats) return { ...r, scores, anomalyScore: null, isAnomaly: null };
    return { ...r, scores, anomalyScore: normalizeScore(chosen, stats), isAnomaly: chosen > stats.threshold };
  }) };
}

/** Quantized outputs of an image model as PNGs (the routes' "png" format): pixel k of bin (k + 0.5)/2^b. */
export async function toPngs(model: FlowModel, outputs: Float64Array, n: number): Promise<Buffer[]> {
  const { shape, bitDepth } = model.manifest.data;
  const [c, h, w] = shape;
  const pixels = Array.from({ length: n }, (_, i) => dataToPixels(outputs.subarray(i * model.dim, (i + 1) * model.dim), bitDepth!) as Uint8Array);
  return encodePngs(pixels, c, h, w);
}

type LosslessCodec = (images: readonly Uint8Array[], channels: number, height: number, width: number) => Promise<Uint8Array[]>;

/** The inputs as 8-bit images (CHW), the form the image codes compress. */
function toPixels(x: DataRows, n: number, model: FlowModel): Uint8Array[] {
  return Array.from({ length: n }, (_, i) => dataToPixels(x.subarray(i * model.dim, (i + 1) * model.dim), 8) as Uint8Array);
}

/** L(x) in bits: the length of each 8-bit image under a lossless image code. */
export async function codeBits(images: Uint8Array[], model: FlowModel, codec: LosslessCodec): Promise<number[]> {
  const [c, h, w] = model.manifest.data.shape;
  return (await codec(images, c, h, w)).map((code) => 8 * code.length);
}

/** Batch typicality test of the batch's NLLs (pixel centres) against the held-out NLL distribution, seeded so answers repeat. */
function batchTest(model: FlowModel, nll: number[]): BatchTypicality | null {
  const cal = model.manifest.calibration;
  if (!cal?.nllQuantiles || !cal.scores.nll) return null;
  const rng = new Rng(0x5eed ^ nll.length);
  return batchTypicality(nll, cal.scores.nll.mean, cal.nllQuantiles, cal.targetFalsePositiveRate, () => rng.nextOpen01());
}

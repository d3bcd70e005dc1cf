// GET /models/{name}: everything a client needs to build a valid request for every route from this
// document alone (test/http/model-card.test.ts builds them), and to read the model's figures.
import type { Config } from '../config/config.js';
import type { Manifest, Protocol } from '../config/manifest-schema.js';
import { support } from '../flow/preprocess.js';
import { MAX_SEED } from '../flow/random.js';
import { MAX_API_TEMPERATURE } from './flow-model.js';
import type { ModelState } from './flow-service.js';
import { DEQUANTIZATIONS, MAX_DEQUANTIZATION_DRAWS, defaultOutputForm, defaultScores, outputForms } from './operations.js';

const IMAGE_FORMATS = ['png', 'jpeg', 'webp'];

/** A one-line label for a figure's protocol ("uniform dequantization, 1 draw (seed 1234)"). */
export function protocolLabel(p: Protocol | undefined): string {
  if (!p) return 'protocol not recorded';
  if (p.dequantization === 'none') return 'continuous data, no dequantization';
  if (p.dequantization === 'centre') return 'pixel centres (k + 0.5)/2^b, no dequantization noise';
  const draws = p.draws ?? 1;
  return `uniform dequantization, ${draws} draw${draws === 1 ? '' : 's'}${p.seed === undefined ? '' : ` (seed ${p.seed})`}`;
}

function inputDoc(m: Manifest, config: Config) {
  const { kind, shape, range, bitDepth } = m.data;
  const s = support(m.preprocessing.transform);
  const size = shape.reduce((a, b) => a * b, 1);
  const transform = m.preprocessing.transform;
  return {
    kind,
    shape,
    size,
    layout:
      kind === 'image'
        ? `one flat row of ${size} numbers per input, row-major over (channel, height, width) = (${shape.join(', ')}): index c·${shape[1] * shape[2]} + h·${shape[2]} + w`
        : `one flat row of ${size} numbers per input`,
    range,
    support: {
      min: Number.isFinite(s.min) ? s.min : null,
      max: Number.isFinite(s.max) ? s.max : null,
      open: true,
      rule:
        transform.kind === 'logit'
          ? `logit preprocessing (α = ${transform.alpha}) needs 0 < α + (1 − 2α)·x < 1: every value in the open interval (${s.min}, ${s.max})`
          : 'every finite number (the preprocessing is defined on all reals); outputs of /sample and /decode are always accepted',
    },
    bitDepth,
    pixelMapping: bitDepth === null ? null : `pixel k ↦ (k + 0.5)/${2 ** bitDepth}, the centre of its bin`,
    images:
      kind === 'image' && bitDepth !== null
        ? { formats: IMAGE_FORMATS, channels: shape[0], height: shape[1], width: shape[2], resizeOption: true, maxPixels: config.maxImagePixels }
        : null,
  };
}

/** The held-out distribution of the default score as quantiles (the NLL's are kept for the batch test anyway). */
function calibrationDistribution(cal: NonNullable<Manifest['calibration']>): { score: string; quantiles: number[] } | null {
  const quantiles = cal.scores[cal.defaultScore]?.quantiles ?? (cal.defaultScore === 'nll' ? cal.nllQuantiles : undefined);
  return quantiles ? { score: cal.defaultScore, quantiles } : null;
}

export function modelCard(s: ModelState, config: Config) {
  const m = s.pkg?.manifest;
  const base = { name: s.name, status: s.status, ...(s.reason ? { reason: s.reason } : {}) };
  if (!m) return base;
  const cal = m.calibration;
  const test = m.training.test;
  const scores = s.pkg!.scores;
  const quantized = m.data.bitDepth !== null && m.data.range !== null;
  const forms = outputForms(m);
  return {
    ...base,
    family: m.family,
    description: m.description,
    ...(s.provider ? { provider: s.provider } : {}),
    dataKind: m.data.kind,
    dataShape: m.data.shape,
    latentSize: m.latent.size,
    latentParts: m.latent.parts,
    defaultTemperature: m.defaultTemperature,
    input: inputDoc(m, config),
    limits: {
      maxItemsPerRequest: config.maxItemsPerRequest,
      maxSamplesPerRequest: config.maxSamplesPerRequest,
      maxImagePixels: config.maxImagePixels,
      maxRequestPixels: config.maxRequestPixels,
      bodyLimitBytes: config.bodyLimitBytes,
      maxJsonValues: config.maxJsonValues,
    },
    sampling: {
      temperature: {
        default: m.defaultTemperature,
        min: 0,
        minExclusive: true,
        max: m.sampling?.maxTemperature ?? MAX_API_TEMPERATURE,
        measured: !!m.sampling,
        criterion: m.sampling?.criterion ?? null,
      },
      seed: { min: 0, max: MAX_SEED },
    },
    outputs: {
      forms,
      default: defaultOutputForm(m),
      formats: quantized ? ['array', 'png'] : ['array'],
      defaultFormat: { sample: quantized ? 'png' : 'array', decode: 'array' },
      pngNeedsOutput: quantized ? 'quantized' : null,
    },
    likelihood: {
      dequantization: quantized ? [...DEQUANTIZATIONS] : ['centre'],
      defaultDequantization: 'centre',
      maxDraws: quantized ? MAX_DEQUANTIZATION_DRAWS : null,
      scores,
      defaultScores: defaultScores({ scores, manifest: m }),
      batchTest: !!(cal?.nllQuantiles && cal.scores.nll),
    },
    scores,
    ...(s.cost ? { cost: s.cost } : {}),
    anomaly: cal ? { defaultScore: cal.defaultScore, targetFalsePositiveRate: cal.targetFalsePositiveRate } : null,
    calibration: cal
      ? {
          split: cal.split,
          count: cal.count,
          defaultScore: cal.defaultScore,
          targetFalsePositiveRate: cal.targetFalsePositiveRate,
          threshold: cal.scores[cal.defaultScore]?.threshold ?? null,
          thresholds: Object.fromEntries(Object.entries(cal.scores).map(([k, v]) => [k, v.threshold])),
          distribution: calibrationDistribution(cal),
          scoredAt: quantized ? 'pixel centres (the /likelihood default)' : 'the inputs as given',
        }
      : null,
    quality: {
      dataset: m.training.dataset,
      split: test?.split ?? null,
      count: test?.count ?? null,
      testLogLikelihood: test?.meanLogLikelihood ?? null,
      testBitsPerDim: test?.bitsPerDim ?? null,
      parameters: m.training.parameters ?? null,
      protocol: test?.protocol ?? null,
      label: test ? `mean over ${test.count ?? '?'} ${test.split ?? 'test'} inputs, ${protocolLabel(test.protocol)}` : 'no test figure',
    },
  };
}

// Route schemas: the single source of truth. They validate requests, serialize responses and
// generate openapi.yaml (scripts/gen-openapi.ts). Limits that depend on configuration (items per
// request, sample count) are enforced in the handlers so the error can name the setting.
import { Type, type Static } from '@sinclair/typebox';
import { ERROR_CODES, type ErrorCode } from '../errors.js';
import { SCORE_NAMES, type ScoreName } from '../flow/anomaly.js';

export const ModelName = Type.String({
  pattern: '^[a-z0-9][a-z0-9-]{0,63}$',
  description: 'A loaded model (GET /models); defaults to DEFAULT_MODEL.',
  examples: ['glow-fashion'],
});
const Rows = (description: string) => Type.Array(Type.Array(Type.Number()), { description });
const Format = Type.Union([Type.Literal('array'), Type.Literal('png')], {
  description: '"array": flat data-space rows, unclamped; "png": base64 8-bit PNGs (clamped, quantized). Image models default to "png" for /sample, "array" for /decode.',
});
const Images = Type.Array(Type.String({ contentEncoding: 'base64' }), {
  description: 'Base64 PNG, JPEG or WebP images (a data: URL prefix is accepted); pixel k maps to (k + 0.5)/256.',
});
const ScoreList = Type.Array(Type.Unsafe<ScoreName>(Type.String({ enum: [...SCORE_NAMES] })), {
  uniqueItems: true,
  maxItems: SCORE_NAMES.length,
  description:
    '/likelihood only: the scores to compute (default: every score the model has). The others come back null, and so does anomalyScore unless the model\'s default score is listed; ["nll"] skips the image compression behind the complexity scores.',
  examples: [['nll', 'complexityJpegLs']],
});
const Resize = Type.Boolean({ default: false, description: 'Resize images to the model size instead of refusing other sizes.' });

export const DataBody = Type.Object(
  {
    model: Type.Optional(ModelName),
    inputs: Type.Optional(Rows('Flat row-major samples in data space (images: values in [0, 1]).')),
    images: Type.Optional(Images),
    resize: Type.Optional(Resize),
    batchTest: Type.Optional(Type.Boolean({ default: false, description: '/likelihood only: also test whether the batch as a whole comes from the training distribution (typicality test).' })),
    scores: Type.Optional(ScoreList),
  },
  { additionalProperties: false, description: 'Exactly one of inputs or images.' },
);
export type DataBody = Static<typeof DataBody>;

export const MultipartBody = Type.Object({
  model: Type.Optional(Type.String({ description: 'Model name.' })),
  resize: Type.Optional(Type.String({ enum: ['true', 'false'] })),
  batchTest: Type.Optional(Type.String({ enum: ['true', 'false'] })),
  scores: Type.Optional(Type.String({ description: 'Comma-separated score names (see the JSON body).', examples: ['nll,complexityJpegLs'] })),
  images: Type.Array(Type.String({ format: 'binary' }), { description: 'One or more image files (any field name).' }),
});

export const EncodeResponse = Type.Object({
  model: Type.String(),
  latents: Rows('Standard-normal latent coordinates, one flat row per sample (multi-scale parts concatenated in manifest order).'),
  logDet: Type.Array(Type.Number(), { description: 'log|det ∂latent/∂x| in data space, preprocessing included: log p(x) = Σ log N(latentᵢ; 0, 1) + logDet.' }),
});

export const DecodeBody = Type.Object(
  {
    model: Type.Optional(ModelName),
    latents: Rows('Flat latent rows (as returned by /encode).'),
    format: Type.Optional(Format),
  },
  { additionalProperties: false },
);
export type DecodeBody = Static<typeof DecodeBody>;

const Outputs = {
  outputs: Type.Optional(Rows('Data-space rows (format "array"), not clamped: decode(encode(x)) ≈ x.')),
  images: Type.Optional(Type.Array(Type.String(), { description: 'Base64 PNG images (format "png").' })),
};

export const DecodeResponse = Type.Object({ model: Type.String(), ...Outputs });

export const SampleBody = Type.Object(
  {
    model: Type.Optional(ModelName),
    count: Type.Integer({ minimum: 1, description: 'Samples to draw (at most MAX_SAMPLES_PER_REQUEST).' }),
    temperature: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 2, description: 'ε ~ N(0, T²·I); defaults to the model default.' })),
    seed: Type.Optional(Type.Integer({ minimum: 0, maximum: 4294967295, description: 'PRNG seed; the same seed and request give the same samples.' })),
    format: Type.Optional(Format),
  },
  { additionalProperties: false },
);
export type SampleBody = Static<typeof SampleBody>;

export const SampleResponse = Type.Object({
  model: Type.String(),
  temperature: Type.Number(),
  seed: Type.Integer({ description: 'The seed used (drawn at random when the request gave none).' }),
  ...Outputs,
  logLikelihood: Type.Array(Type.Number(), { description: 'log p(x) in nats of each sample before clamping and quantization.' }),
  redrawn: Type.Integer({ description: 'Draws whose inverse overflowed float32 and were redrawn from the same seeded stream (0 for a well-behaved model).' }),
});

const Nullable = (description: string) => Type.Union([Type.Number(), Type.Null()], { description });

export const LikelihoodResult = Type.Object({
  logLikelihood: Type.Number({ description: 'log p(x), nats, continuous density in data space.' }),
  bitsPerDim: Type.Number({ description: '−(log p(x) − D·ln 256)/(D·ln 2) for 8-bit images; −log p(x)/(D·ln 2) for vectors.' }),
  scores: Type.Object(
    {
      nll: Nullable('−log p(x), nats.'),
      typicality: Nullable('|nll − mean| / std over in-distribution held-out data (Nalisnick et al. 2019b, per input).'),
      complexity: Nullable(
        'Input-complexity-corrected code length (Serrà et al. 2020), bits: D·bitsPerDim − L(x), with L(x) = 8 × the length of the 8-bit image as a PNG at maximum compression.',
      ),
      complexityJpegLs: Nullable('The same correction with L(x) from lossless JPEG-LS (ISO 14495-1), a stronger image code than PNG: a sharper OOD score (docs/anomaly.md).'),
    },
    { description: 'Higher = more anomalous. null when not requested (see the request\'s scores) or not defined for the model: the complexity scores need an 8-bit image model, typicality calibration statistics.' },
  ),
  anomalyScore: Type.Union([Type.Number(), Type.Null()], {
    description: "The model's default score (GET /models: anomaly.defaultScore) normalized to [0, 1]; 0.5 is the threshold. null if the model has no calibration or the request's scores left the default score out.",
  }),
  isAnomaly: Type.Union([Type.Boolean(), Type.Null()]),
});

export const BatchTestResult = Type.Object(
  {
    batchSize: Type.Integer(),
    statistic: Type.Number({ description: '|mean NLL of the batch − in-distribution mean NLL|, nats.' }),
    threshold: Type.Number({ description: 'Bootstrap (1 − α) quantile of the statistic for in-distribution batches of this size.' }),
    pValue: Type.Number({ description: 'Bootstrap p-value that the batch comes from the training distribution.' }),
    isOutOfDistribution: Type.Boolean(),
    bootstrapBatches: Type.Integer(),
  },
  { description: 'Batch typicality test (Nalisnick et al. 2019b), when batchTest is true.' },
);

export const LikelihoodResponse = Type.Object({ model: Type.String(), results: Type.Array(LikelihoodResult), batchTest: Type.Optional(BatchTestResult) });

export const ErrorResponse = Type.Object(
  {
    error: Type.Object({
      code: Type.Unsafe<ErrorCode>(Type.String({ enum: ERROR_CODES })),
      message: Type.String(),
      details: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    }),
  },
  { $id: 'ErrorResponse', description: 'Every failure. The code maps to exactly one HTTP status (README, Errors).' },
);

export const ModelInfo = Type.Object({
  name: Type.String(),
  status: Type.Union([Type.Literal('loading'), Type.Literal('ready'), Type.Literal('unavailable')]),
  reason: Type.Optional(Type.String()),
  family: Type.Optional(Type.String()),
  description: Type.Optional(Type.String()),
  dataKind: Type.Optional(Type.String()),
  dataShape: Type.Optional(Type.Array(Type.Integer())),
  latentSize: Type.Optional(Type.Integer()),
  latentParts: Type.Optional(Type.Array(Type.Object({ name: Type.String(), shape: Type.Array(Type.Integer()) }))),
  defaultTemperature: Type.Optional(Type.Number()),
  provider: Type.Optional(Type.String({ description: 'Execution provider in use: cuda or cpu.' })),
  quality: Type.Optional(
    Type.Object({
      dataset: Type.String(),
      testLogLikelihood: Type.Union([Type.Number(), Type.Null()]),
      testBitsPerDim: Type.Union([Type.Number(), Type.Null()]),
      parameters: Type.Union([Type.Number(), Type.Null()]),
    }),
  ),
  scores: Type.Optional(Type.Array(Type.String(), { description: 'The per-input scores /likelihood can compute for this model (docs/anomaly.md).' })),
  anomaly: Type.Optional(Type.Union([Type.Object({ defaultScore: Type.String(), targetFalsePositiveRate: Type.Number() }), Type.Null()])),
});

export const ModelList = Type.Object({ defaultModel: Type.String(), models: Type.Array(ModelInfo) });

export const Health = Type.Object({
  status: Type.Union([Type.Literal('ok'), Type.Literal('unhealthy')], {
    description: 'unhealthy (503): startup finished, no inference worker is live and every worker failed its last 3 starts in a row; restarting the process is the remedy left.',
  }),
  reason: Type.Optional(Type.String()),
});
export const Readiness = Type.Object({
  status: Type.Union([Type.Literal('ready'), Type.Literal('loading'), Type.Literal('restarting'), Type.Literal('draining'), Type.Literal('failed'), Type.Literal('stopped')], {
    description:
      'ready: every loadable model is warm and an inference worker holding it is live; restarting: no inference worker is live (one crashed and is being replaced); draining: shutting down (SIGTERM), still finishing requests.',
  }),
  reason: Type.Optional(Type.String({ description: 'Why the service is not ready (failed, restarting): short, without paths.' })),
  models: Type.Optional(
    Type.Record(Type.String(), Type.Object({ status: Type.String(), reason: Type.Optional(Type.String()) }), {
      description: 'Every model package found, with the reason for any unavailable one. Left out for callers without the API key when API_KEY is set.',
    }),
  ),
});

/** Error responses shared by the inference routes, for the OpenAPI document. */
export const ErrorRef = Type.Ref(ErrorResponse);
export const inferenceErrors = { 400: ErrorRef, 401: ErrorRef, 404: ErrorRef, 413: ErrorRef, 415: ErrorRef, 429: ErrorRef, 500: ErrorRef, 503: ErrorRef, 504: ErrorRef };

// Route schemas: the single source of truth. They validate requests, serialize responses and
// generate openapi.yaml (tools/gen-openapi.ts). Limits that depend on configuration (items per
// request, sample count) are enforced in the handlers so the error can name the setting.
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { AppError, ERROR_CODES, InferenceError, InvalidInputError, ModelNotFoundError, NotReadyError, OverloadedError, STATUS_BY_CODE, TimeoutError, UnauthorizedError, type ErrorCode } from '../errors.js';
import { SCORE_NAMES, type ScoreName } from '../flow/anomaly.js';
import { INTERPOLATION_METHODS, type InterpolationMethod } from '../flow/interpolate.js';
import { MAX_SEED } from '../flow/random.js';
import { TOLERANCE_RANGE } from '../service/programs/types.js';
import { DEQUANTIZATIONS, MAX_DEQUANTIZATION_DRAWS, OUTPUT_FORMS, type Dequantization, type OutputForm } from '../service/operations.js';

/**
 * A string from a fixed list, as JSON Schema `enum` (not a union of constants), so that a refusal
 * can name every allowed value (error-handler.ts).
 */
export const StringEnum = <T extends string>(values: readonly T[], options: Record<string, unknown> = {}) =>
  Type.Unsafe<T>(Type.String({ enum: [...values], ...options }));

export const ModelName = Type.String({
  pattern: '^[a-z0-9][a-z0-9-]{0,63}$',
  description: 'A loaded model (GET /models); defaults to DEFAULT_MODEL.',
  examples: ['glow-fashion'],
});
const Rows = (description: string) => Type.Array(Type.Array(Type.Number()), { description });
const Format = StringEnum(['array', 'png'] as const, {
  description: 'How outputs are sent: "array" (flat data-space rows in `outputs`) or "png" (base64 PNGs in `images`; needs output "quantized"). Default: "png" for /sample on image models, "array" otherwise.',
});
const Output = StringEnum<OutputForm>(OUTPUT_FORMS, {
  description:
    'The form of the outputs, the same default for /sample and /decode: "quantized" (each value moved to the centre (k + 0.5)/2^b of its bin: what a PNG holds; the default for quantized data), "clamped" (into the data range) or "raw" (the inverse\'s values, unclamped; the default for vectors). GET /models/{name} lists a model\'s forms. Every form is accepted back by /encode and /likelihood.',
});
const Images = Type.Array(Type.String({ contentEncoding: 'base64' }), {
  description: 'Base64 PNG, JPEG or WebP images (a data: URL prefix is accepted); pixel k maps to (k + 0.5)/256.',
});
const ScoreList = Type.Array(Type.Unsafe<ScoreName>(Type.String({ enum: [...SCORE_NAMES] })), {
  uniqueItems: true,
  maxItems: SCORE_NAMES.length,
  description:
    '/likelihood only: the scores to compute (default: every score the model has except the PNG `complexity`, unless it is the model\'s default score: list it to get it). The others come back null, and so does anomalyScore unless the model\'s default score is listed; ["nll"] skips the image compression behind the complexity scores.',
  examples: [['nll', 'complexityJpegLs']],
});
const Tolerance = (which: string) =>
  Type.Number({ minimum: TOLERANCE_RANGE[0], maximum: TOLERANCE_RANGE[1], description: `Continuous flows (family ffjord) only: the ODE solver's ${which} tolerance for this request (default: the model's, GET /models/{name}: cost).` });
const SolverFields = { atol: Type.Optional(Tolerance('absolute')), rtol: Type.Optional(Tolerance('relative')) };
/** What the request's loops cost. */
export const CostInfo = Type.Object(
  {
    passes: Type.Integer({ description: 'Sequential rounds of graph calls the request made (1 for a coupling flow; D per layer for a MAF sample; one per solver stage for an ODE).' }),
    evaluations: Type.Optional(Type.Array(Type.Integer(), { description: 'Continuous flows: dynamics evaluations (NFE) per row.' })),
    iterations: Type.Optional(Type.Array(Type.Integer(), { description: 'Planar flows, data → latent: root-finding iterations per row, summed over the layers.' })),
  },
  { description: 'What the request cost (the metrics flowserve_solver_* have the same per-row figures).' },
);
const Resize = Type.Boolean({ default: false, description: 'Resize images to the model size instead of refusing other sizes.' });

export const DataBody = Type.Object(
  {
    model: Type.Optional(ModelName),
    inputs: Type.Optional(
      Rows(
        'One flat row per input in data space: D numbers, images row-major over (channel, height, width) (flatten nested [C][H][W] arrays). Values must lie in the model\'s support (GET /models/{name}: input.support); pixel k of a b-bit image is (k + 0.5)/2^b.',
      ),
    ),
    images: Type.Optional(Images),
    resize: Type.Optional(Resize),
    batchTest: Type.Optional(Type.Boolean({ default: false, description: '/likelihood only: also test whether the batch as a whole comes from the training distribution (typicality test).' })),
    scores: Type.Optional(ScoreList),
    dequantization: Type.Optional(
      StringEnum<Dequantization>(DEQUANTIZATIONS, {
        description:
          '/likelihood only, for quantized data: "centre" (the default) scores the continuous density at the inputs (pixel centres); "uniform" scores `draws` seeded copies (k + u)/2^b, u ~ U[0, 1)^D, and returns log-mean-exp of their log p: minus D·b·ln 2, a stochastic lower bound on the log-probability of the pixels (uniform dequantization, the protocol of published bits/dim figures with draws = 1). Scores and anomalyScore always use pixel centres.',
      }),
    ),
    draws: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_DEQUANTIZATION_DRAWS, description: 'Dequantization "uniform" only (default 1): noise draws per input (inputs × draws at most MAX_ITEMS_PER_REQUEST). More draws tighten the bound.' })),
    seed: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_SEED, description: 'Dequantization "uniform" only: seed of the noise (random when left out; the response gives it).' })),
    ...SolverFields,
  },
  {
    additionalProperties: false,
    description: 'Exactly one of inputs or images.',
    examples: [{ model: 'realnvp-moons', inputs: [[0.5, 0.25], [1.8, -0.1]] }],
  },
);
export type DataBody = Static<typeof DataBody>;

export const MultipartBody = Type.Object({
  model: Type.Optional(Type.String({ description: 'Model name.' })),
  resize: Type.Optional(Type.String({ enum: ['true', 'false'] })),
  batchTest: Type.Optional(Type.String({ enum: ['true', 'false'] })),
  scores: Type.Optional(Type.String({ description: 'Comma-separated score names (see the JSON body).', examples: ['nll,complexityJpegLs'] })),
  dequantization: Type.Optional(Type.String({ enum: [...DEQUANTIZATIONS] })),
  draws: Type.Optional(Type.String({ pattern: '^[0-9]{1,3}$', description: 'See the JSON body.' })),
  seed: Type.Optional(Type.String({ pattern: '^[0-9]{1,10}$', description: 'See the JSON body.' })),
  images: Type.Array(Type.String({ format: 'binary' }), { description: 'One or more image files (any field name).' }),
});

/**
 * Binary bodies (Content-Type: application/octet-stream): the tensor is the body, little-endian and
 * row-major (N rows of the model's D values; the row count follows from the length), and the JSON
 * body's other fields come as query parameters with the same names and rules.
 */
export const BINARY_DATATYPES = ['FP32', 'FP64', 'UINT8'] as const;
export const BinaryQuery = Type.Object(
  {
    model: Type.Optional(ModelName),
    datatype: Type.Optional(
      StringEnum(BINARY_DATATYPES, { description: 'The body\'s element type: FP32 (default) or FP64 values in data space (latents for /decode), or UINT8 pixels of an 8-bit image model (pixel k maps to (k + 0.5)/256).' }),
    ),
    scores: Type.Optional(Type.String({ maxLength: 256, description: '/likelihood: comma-separated score names.', examples: ['nll,complexityJpegLs'] })),
    dequantization: Type.Optional(Type.String({ enum: [...DEQUANTIZATIONS] })),
    draws: Type.Optional(Type.String({ pattern: '^[0-9]{1,3}$' })),
    seed: Type.Optional(Type.String({ pattern: '^[0-9]{1,10}$' })),
    batchTest: Type.Optional(Type.String({ enum: ['true', 'false'] })),
    output: Type.Optional(Type.String({ enum: [...OUTPUT_FORMS], description: '/decode: the output form.' })),
    format: Type.Optional(Type.String({ enum: ['array', 'png'], description: '/decode: array or png.' })),
    atol: Type.Optional(Type.String({ pattern: '^[0-9.eE+-]{1,32}$' })),
    rtol: Type.Optional(Type.String({ pattern: '^[0-9.eE+-]{1,32}$' })),
  },
  { additionalProperties: false, description: 'With a binary body only.' },
);
export type BinaryQuery = Static<typeof BinaryQuery>;
/** A route body schema keyed by content type, with the binary (octet-stream) form. */
export const withBinary = (json: TSchema) => ({ content: { 'application/json': { schema: json }, 'application/octet-stream': { schema: {} } } });

export const EncodeResponse = Type.Object({
  model: Type.String(),
  latents: Rows('Standard-normal latent coordinates, one flat row per sample (multi-scale parts concatenated in manifest order).'),
  logDet: Type.Array(Type.Number(), { description: 'log|det ∂latent/∂x| in data space, preprocessing included: log p(x) = Σ log N(latentᵢ; 0, 1) + logDet.' }),
  cost: CostInfo,
});

export const DecodeBody = Type.Object(
  {
    model: Type.Optional(ModelName),
    latents: Rows('Flat latent rows (as returned by /encode, or by /sample with returnLatents).'),
    output: Type.Optional(Output),
    format: Type.Optional(Format),
    ...SolverFields,
  },
  { additionalProperties: false, examples: [{ model: 'realnvp-moons', latents: [[0.1, -0.3]], output: 'raw' }] },
);
export type DecodeBody = Static<typeof DecodeBody>;

const Outputs = {
  output: StringEnum<OutputForm>(OUTPUT_FORMS, { description: 'The output form used.' }),
  outputs: Type.Optional(Rows('Data-space rows (format "array") in the output form; with "raw", decode(encode(x)) ≈ x.')),
  images: Type.Optional(Type.Array(Type.String(), { description: 'Base64 PNG images (format "png"), the same values as the quantized rows.' })),
  logLikelihood: Type.Array(Type.Number(), {
    description: 'log p of each returned output exactly as returned (nats, continuous density in data space): what /likelihood (dequantization "centre") answers for it, up to float32 rounding.',
  }),
  cost: CostInfo,
};

export const DecodeResponse = Type.Object({ model: Type.String(), ...Outputs });

export const SampleBody = Type.Object(
  {
    model: Type.Optional(ModelName),
    count: Type.Integer({ minimum: 1, description: 'Samples to draw (at most MAX_SAMPLES_PER_REQUEST).' }),
    temperature: Type.Optional(
      Type.Number({ exclusiveMinimum: 0, maximum: 2, description: 'ε ~ N(0, T²·I); defaults to the model default. At most the model\'s measured maximum (GET /models/{name}: sampling.temperature.max).' }),
    ),
    seed: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_SEED, description: 'PRNG seed; the same seed and request give the same samples.' })),
    output: Type.Optional(Output),
    format: Type.Optional(Format),
    returnLatents: Type.Optional(Type.Boolean({ default: false, description: 'Also return the ε each sample was decoded from, to edit and send to /decode.' })),
    ...SolverFields,
  },
  { additionalProperties: false, examples: [{ model: 'glow-fashion', count: 4, temperature: 0.5, seed: 42 }] },
);
export type SampleBody = Static<typeof SampleBody>;

export const SampleResponse = Type.Object({
  model: Type.String(),
  temperature: Type.Number(),
  seed: Type.Integer({ description: 'The seed used (drawn at random when the request gave none).' }),
  ...Outputs,
  latents: Type.Optional(Rows('With returnLatents: the ε each sample was decoded from (before clamping or quantization).')),
  redrawn: Type.Integer({ description: 'Draws whose inverse overflowed float32 and were redrawn from the same seeded stream (0 for a well-behaved model).' }),
});

const Pair = <T extends TSchema>(item: T, description: string) => Type.Array(item, { minItems: 2, maxItems: 2, description });
export const InterpolateBody = Type.Object(
  {
    model: Type.Optional(ModelName),
    inputs: Type.Optional(Pair(Type.Array(Type.Number()), 'The two ends as flat data-space rows (the rules of /encode inputs).')),
    images: Type.Optional(Pair(Type.String({ contentEncoding: 'base64' }), 'The two ends as base64 PNG, JPEG or WebP images (the rules of /encode images).')),
    latents: Type.Optional(Pair(Type.Array(Type.Number()), 'The two ends as flat latent rows (as /encode returns them).')),
    resize: Type.Optional(Resize),
    steps: Type.Optional(Type.Integer({ minimum: 2, default: 8, description: 'Frames, both ends included, at t = k/(steps − 1) (at most MAX_SAMPLES_PER_REQUEST).' })),
    method: Type.Optional(
      StringEnum<InterpolationMethod>(INTERPOLATION_METHODS, {
        default: 'linear',
        description:
          'The path between the two latents: "linear", (1 − t)·z₀ + t·z₁, or "spherical", the great-circle arc (slerp), which keeps |z| where the prior\'s mass is (|z|² ≈ D) and |z| constant between latents of equal norm. Opposite latents have no single arc: refused.',
      }),
    ),
    output: Type.Optional(Output),
    format: Type.Optional(Format),
    returnLatents: Type.Optional(Type.Boolean({ default: false, description: 'Also return the latent of every frame.' })),
    ...SolverFields,
  },
  {
    additionalProperties: false,
    description: 'Exactly one of inputs, images or latents, with two items each. Data ends are encoded, the path between their latents decoded: the end frames are the inputs again (up to the round trip; quantized image outputs give back the same pixels).',
    examples: [{ model: 'realnvp-moons', inputs: [[-0.9, 0.4], [1.9, 0.1]], steps: 5, method: 'spherical' }],
  },
);
export type InterpolateBody = Static<typeof InterpolateBody>;

export const InterpolateResponse = Type.Object({
  model: Type.String(),
  method: StringEnum<InterpolationMethod>(INTERPOLATION_METHODS),
  steps: Type.Integer(),
  t: Type.Array(Type.Number(), { description: 'The path parameter of each frame, 0 (the first end) to 1 (the second).' }),
  ...Outputs,
  latents: Type.Optional(Rows('With returnLatents: the latent each frame was decoded from.')),
  encodeCost: Type.Optional(CostInfo),
});

const Nullable = (description: string) => Type.Union([Type.Number(), Type.Null()], { description });

export const LikelihoodResult = Type.Object({
  logLikelihood: Type.Number({
    description:
      'Nats. Dequantization "centre": log p(x), the continuous density in data space at the input. "uniform": log-mean-exp over the draws of log p((k + u)/2^b), an estimate of log E_u p, whose expectation is a lower bound on log P(pixels) + D·b·ln 2, tightening with more draws. Vectors: log p(x).',
  }),
  bitsPerDim: Type.Number({ description: '−(logLikelihood − D·b·ln 2)/(D·ln 2) for b-bit images (with "uniform", an upper bound on the discrete code length in expectation); −logLikelihood/(D·ln 2) for vectors.' }),
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

export const ProtocolInfo = Type.Object(
  {
    dequantization: StringEnum(['centre', 'uniform', 'none'] as const, { description: 'none: continuous data (vectors).' }),
    draws: Type.Optional(Type.Integer()),
    seed: Type.Optional(Type.Integer()),
  },
  { description: 'The dequantization protocol behind logLikelihood and bitsPerDim.' },
);

export const LikelihoodResponse = Type.Object({ model: Type.String(), protocol: ProtocolInfo, results: Type.Array(LikelihoodResult), batchTest: Type.Optional(BatchTestResult), cost: CostInfo });

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

const NumOrNull = Type.Union([Type.Number(), Type.Null()]);
const DirectionCostInfo = Type.Object({
  kind: StringEnum(['passes', 'adaptive'] as const, { description: 'passes: a fixed number of sequential graph calls; adaptive: a solver whose work depends on the input.' }),
  passes: Type.Optional(Type.Integer({ description: 'Sequential graph calls per request.' })),
  description: Type.String(),
  measured: Type.Optional(
    Type.Object(
      {
        evaluations: Type.Optional(Type.Number({ description: 'Mean dynamics evaluations (NFE) per row.' })),
        iterations: Type.Optional(Type.Number({ description: 'Mean root-finding iterations per row.' })),
        rows: Type.Integer(),
        temperature: Type.Number(),
      },
      { description: 'Measured at warm-up on seeded samples at the default temperature and tolerances.' },
    ),
  ),
});
const StrOrNull = Type.Union([Type.String(), Type.Null()]);

export const ModelInfo = Type.Object({
  name: Type.String(),
  status: Type.Union([Type.Literal('loading'), Type.Literal('ready'), Type.Literal('unavailable')]),
  reason: Type.Optional(Type.String()),
  family: Type.Optional(Type.String()),
  description: Type.Optional(Type.String()),
  provider: Type.Optional(Type.String({ description: 'Execution provider in use: cuda or cpu.' })),
  dataKind: Type.Optional(Type.String()),
  dataShape: Type.Optional(Type.Array(Type.Integer())),
  latentSize: Type.Optional(Type.Integer({ description: 'Length of each latent row (/encode output, /decode input).' })),
  latentParts: Type.Optional(Type.Array(Type.Object({ name: Type.String(), shape: Type.Array(Type.Integer()) }))),
  defaultTemperature: Type.Optional(Type.Number()),
  input: Type.Optional(
    Type.Object(
      {
        kind: Type.String(),
        shape: Type.Array(Type.Integer()),
        size: Type.Integer({ description: 'D: values per input row.' }),
        layout: Type.String(),
        range: Type.Union([Type.Array(Type.Number()), Type.Null()], { description: 'Nominal data range (images: [0, 1]); clamped outputs lie in it.' }),
        support: Type.Object(
          { min: NumOrNull, max: NumOrNull, open: Type.Boolean(), rule: Type.String() },
          { description: 'Values /encode and /likelihood accept: the open interval (min, max), null meaning unbounded.' },
        ),
        bitDepth: Type.Union([Type.Integer(), Type.Null()]),
        pixelMapping: StrOrNull,
        images: Type.Union([
          Type.Object({ formats: Type.Array(Type.String()), channels: Type.Integer(), height: Type.Integer(), width: Type.Integer(), resizeOption: Type.Boolean(), maxPixels: Type.Integer() }),
          Type.Null(),
        ]),
      },
      { description: 'How to send data to /encode and /likelihood.' },
    ),
  ),
  limits: Type.Optional(
    Type.Object({
      maxItemsPerRequest: Type.Integer(),
      maxSamplesPerRequest: Type.Integer(),
      maxImagePixels: Type.Integer(),
      maxRequestPixels: Type.Integer(),
      bodyLimitBytes: Type.Integer(),
      maxJsonValues: Type.Integer(),
    }),
  ),
  sampling: Type.Optional(
    Type.Object({
      temperature: Type.Object({
        default: Type.Number(),
        min: Type.Number(),
        minExclusive: Type.Boolean(),
        max: Type.Number({ description: 'The measured usable maximum (or the API\'s 2 when the package carries none).' }),
        measured: Type.Boolean(),
        criterion: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()], { description: 'How max was measured (docs/model-package.md, Sampling).' }),
      }),
      seed: Type.Object({ min: Type.Integer(), max: Type.Integer() }),
    }),
  ),
  outputs: Type.Optional(
    Type.Object({
      forms: Type.Array(Type.String()),
      default: Type.String({ description: 'The output form /sample and /decode use when the request names none.' }),
      formats: Type.Array(Type.String()),
      defaultFormat: Type.Object({ sample: Type.String(), decode: Type.String() }),
      pngNeedsOutput: StrOrNull,
    }),
  ),
  likelihood: Type.Optional(
    Type.Object({
      dequantization: Type.Array(Type.String()),
      defaultDequantization: Type.String(),
      maxDraws: Type.Union([Type.Integer(), Type.Null()]),
      scores: Type.Array(Type.String()),
      defaultScores: Type.Array(Type.String(), { description: 'The scores computed when a request names none (every score but the PNG complexity, unless that is the default score).' }),
      batchTest: Type.Boolean({ description: 'Whether /likelihood can run the batch typicality test (batchTest: true).' }),
    }),
  ),
  scores: Type.Optional(Type.Array(Type.String(), { description: 'The per-input scores /likelihood can compute for this model (docs/anomaly.md).' })),
  anomaly: Type.Optional(Type.Union([Type.Object({ defaultScore: Type.String(), targetFalsePositiveRate: Type.Number() }), Type.Null()])),
  cost: Type.Optional(
    Type.Object(
      { forward: DirectionCostInfo, inverse: DirectionCostInfo },
      { description: 'What each direction costs: forward (data → latent: /encode, /likelihood), inverse (latent → data: /decode, /sample).' },
    ),
  ),
  calibration: Type.Optional(
    Type.Union([
      Type.Object({
        split: Type.String(),
        count: Type.Integer(),
        defaultScore: Type.String(),
        targetFalsePositiveRate: Type.Number(),
        threshold: NumOrNull,
        thresholds: Type.Record(Type.String(), Type.Number(), { description: 'The raw threshold of every calibrated score (at the target false-positive rate).' }),
        distribution: Type.Union(
          [
            Type.Object({
              score: Type.String(),
              quantiles: Type.Array(Type.Number(), { description: '101 evenly spaced quantiles (0 %, 1 %, … 100 %) of the held-out in-distribution values of the default score, on its raw scale (the scale of /likelihood scores).' }),
            }),
            Type.Null(),
          ],
          { description: 'The in-distribution histogram of the default score (the web page draws it), or null when the package carries no quantiles for it.' },
        ),
        scoredAt: Type.String(),
      }),
      Type.Null(),
    ]),
  ),
  quality: Type.Optional(
    Type.Object({
      dataset: Type.String(),
      split: StrOrNull,
      count: NumOrNull,
      testLogLikelihood: NumOrNull,
      testBitsPerDim: NumOrNull,
      parameters: NumOrNull,
      protocol: Type.Union([ProtocolInfo, Type.Null()]),
      label: Type.String({ description: 'What the figures are: split, count and dequantization protocol.' }),
    }),
  ),
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

export const ErrorRef = Type.Ref(ErrorResponse);

/** One example refusal per status, built by the real error classes, so the OpenAPI document (and Swagger UI) shows what a client gets. */
const example = (e: AppError) => ({ code: e.code, message: e.message, ...(e.details ? { details: e.details } : {}) });
const ERROR_EXAMPLES: Record<number, ReturnType<typeof example>> = {
  400: example(new InvalidInputError('inputs[0]', 'must have 784 values (model glow-fashion, shape [1, 28, 28]), got 783', { expected: 784, got: 783 })),
  401: example(new UnauthorizedError()),
  404: example(new ModelNotFoundError('glow-fashoin', ['glow-fashion', 'nice-mnist', 'realnvp-mnist', 'realnvp-moons'])),
  413: example(new AppError('PAYLOAD_TOO_LARGE', 'body: larger than BODY_LIMIT_BYTES=16777216', { field: 'body', limit: 'BODY_LIMIT_BYTES', max: 16777216 })),
  415: example(new AppError('UNSUPPORTED_MEDIA_TYPE', 'content-type: send application/json (or multipart/form-data with images for /encode and /likelihood)', { field: 'content-type' })),
  429: example(new OverloadedError('glow-fashion', 'forward', 1024)),
  500: example(new InferenceError('glow-fashion', null)),
  503: example(new NotReadyError('models are still loading')),
  504: example(new TimeoutError('glow-fashion', 30000)),
};

/** The error body for one status: the codes that map to it, and an example. */
function errorFor(status: number): TSchema {
  const codes = ERROR_CODES.filter((c) => STATUS_BY_CODE[c] === status);
  return Type.Object(
    {
      error: Type.Object({
        code: StringEnum(codes),
        message: Type.String(),
        details: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
      }),
    },
    { description: `Codes: ${codes.join(', ')} (README, Errors).`, examples: [{ error: ERROR_EXAMPLES[status] }] },
  );
}

/** Error responses shared by the inference routes, for the OpenAPI document. */
export const inferenceErrors = Object.fromEntries([400, 401, 404, 413, 415, 429, 500, 503, 504].map((s) => [s, errorFor(s)])) as Record<400 | 401 | 404 | 413 | 415 | 429 | 500 | 503 | 504, TSchema>;
export const notFoundError = errorFor(404);

// flow.json, format version 1 (docs/model-package.md). The service refuses a package whose
// manifest does not validate against this schema.
import { Type, type Static } from '@sinclair/typebox';

const Num = Type.Number();
const PosInt = Type.Integer({ minimum: 1 });
const FileName = Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$', maxLength: 128 });
const Sha256 = Type.String({ pattern: '^[0-9a-f]{64}$' });

const ScoreStats = Type.Object({
  mean: Num,
  std: Type.Number({ minimum: 0 }),
  min: Num,
  max: Num,
  threshold: Num,
  /** Evenly spaced quantiles (0 %, 1 %, … 100 %) of the held-out scores: the in-distribution histogram. */
  quantiles: Type.Optional(Type.Array(Num, { minItems: 2 })),
});

export const TransformSchema = Type.Union([
  Type.Object({ kind: Type.Literal('identity') }),
  Type.Object({ kind: Type.Literal('affine'), scale: Type.Number(), shift: Type.Number() }),
  Type.Object({ kind: Type.Literal('logit'), alpha: Type.Number({ minimum: 0, exclusiveMaximum: 0.5 }) }),
]);
export type Transform = Static<typeof TransformSchema>;

/**
 * The dequantization protocol behind a log-likelihood figure (docs/model-package.md):
 *   centre:  log p((k + 0.5)/2^b), the continuous density at pixel centres (what /likelihood scores by default);
 *   uniform: log-mean-exp over `draws` of log p((k + u)/2^b), u ~ U[0, 1)^D, seeded: with draws = 1 the
 *            usual "uniformly dequantized" test figure, a stochastic lower bound on log P(k) + D·b·ln 2;
 *   none:    continuous data (vectors), log p(x).
 */
export const ProtocolSchema = Type.Object(
  {
    dequantization: Type.Union([Type.Literal('centre'), Type.Literal('uniform'), Type.Literal('none')]),
    draws: Type.Optional(PosInt),
    seed: Type.Optional(Type.Integer({ minimum: 0 })),
  },
  { additionalProperties: false },
);
export type Protocol = Static<typeof ProtocolSchema>;

/**
 * The measured usable temperature range (0, maxTemperature] (docs/model-package.md, Sampling). T is
 * usable when, of `draws` seeded standard-normal draws ε (seed `seed`) scaled by T and decoded through
 * the ONNX inverse graph, every output is finite and at most `maxOutside` draws have any data-space
 * value outside `bound`; maxTemperature is the largest T on the grid `grid`, 2·`grid`, … ≤ 2 such that
 * it and every smaller grid point are usable.
 */
export const SamplingSchema = Type.Object(
  {
    maxTemperature: Type.Number({ exclusiveMinimum: 0, maximum: 2 }),
    criterion: Type.Object(
      {
        draws: PosInt,
        seed: Type.Integer({ minimum: 0 }),
        bound: Type.Tuple([Num, Num]),
        maxOutside: Type.Integer({ minimum: 0 }),
        grid: Type.Number({ exclusiveMinimum: 0 }),
      },
      { additionalProperties: true },
    ),
  },
  { additionalProperties: false },
);
export type Sampling = Static<typeof SamplingSchema>;

/** Every family the service runs (src/service/programs/). */
export const FAMILIES = ['nice', 'realnvp', 'glow', 'maf', 'iaf', 'planar', 'ffjord'] as const;
export type Family = (typeof FAMILIES)[number];

const GraphName = Type.String({ pattern: '^[A-Za-z][A-Za-z0-9_]{0,63}$' });

/**
 * Autoregressive flows (maf, iaf): layers applied in order in the forward direction (data → latent).
 * Layer k reads its input u as v = u[permutation] (vᵢ = u[permutation[i]]) and transforms v in natural
 * order with its conditioner graph (x [N, D] → shift, logScale [N, D], output i depending on inputs
 * < i only): MAF z = (v − shift(v))·exp(−logScale(v)); IAF v = z·exp(logScale(z)) + shift(z).
 */
export const AutoregressiveProgram = Type.Object(
  {
    kind: Type.Literal('autoregressive'),
    layers: Type.Array(Type.Object({ graph: GraphName, permutation: Type.Array(Type.Integer({ minimum: 0 })) }, { additionalProperties: false }), { minItems: 1 }),
  },
  { additionalProperties: false },
);

/**
 * Planar flows: x = z + u·tanh(wᵀz + b) per layer, layer 0 first in the inverse direction (latent →
 * data, the graph `generate`: z → x, logDet). `file` holds the layers' u, w, b (with uᵀw > −1) for
 * the forward direction, solved in TypeScript.
 */
export const PlanarProgram = Type.Object(
  {
    kind: Type.Literal('planar'),
    file: FileName,
    layers: Type.Integer({ minimum: 1 }),
  },
  { additionalProperties: false },
);

/**
 * Continuous flows (ffjord, or a CNF trained by flow matching): dx/dt = f(x, t), graph `dynamics`
 * (x [N, D], t [N] → dx [N, D], div [N] = tr ∂f/∂x). Forward (data → latent) integrates from t0 to t1,
 * logDet = ∫ div dt; inverse from t1 to t0. atol/rtol are the default tolerances of the adaptive solver.
 */
export const OdeProgram = Type.Object(
  {
    kind: Type.Literal('ode'),
    graph: GraphName,
    t0: Type.Number(),
    t1: Type.Number(),
    atol: Type.Number({ exclusiveMinimum: 0 }),
    rtol: Type.Number({ exclusiveMinimum: 0 }),
  },
  { additionalProperties: false },
);

export const ProgramSchema = Type.Union([AutoregressiveProgram, PlanarProgram, OdeProgram]);
export type Program = Static<typeof ProgramSchema>;

export const PlanarFileSchema = Type.Object({
  layers: Type.Array(Type.Object({ u: Type.Array(Num, { minItems: 1 }), w: Type.Array(Num, { minItems: 1 }), b: Num })),
});
export type PlanarFile = Static<typeof PlanarFileSchema>;

export const ManifestSchema = Type.Object({
  formatVersion: Type.Literal(1),
  name: Type.String({ pattern: '^[a-z0-9][a-z0-9-]{0,63}$' }),
  family: Type.Union(FAMILIES.map((f) => Type.Literal(f))),
  description: Type.Optional(Type.String()),
  data: Type.Object({
    kind: Type.Union([Type.Literal('image'), Type.Literal('vector')]),
    shape: Type.Array(PosInt, { minItems: 1, maxItems: 3 }),
    range: Type.Union([Type.Tuple([Num, Num]), Type.Null()]),
    bitDepth: Type.Union([Type.Integer({ minimum: 1, maximum: 16 }), Type.Null()]),
  }),
  preprocessing: Type.Object({
    dequantization: Type.Union([Type.Literal('uniform'), Type.Literal('none')]),
    transform: TransformSchema,
  }),
  /**
   * The package's ONNX graphs by name (the family's program says which names it needs); the
   * reserved name `weights` is the external-data file the graphs share.
   */
  graphs: Type.Record(GraphName, FileName, { minProperties: 1 }),
  /** How the family's program drives its graphs (absent for coupling flows: one forward, one inverse graph). */
  program: Type.Optional(ProgramSchema),
  latent: Type.Object({
    parts: Type.Array(Type.Object({ name: Type.String({ minLength: 1 }), shape: Type.Array(PosInt, { minItems: 1 }) }), { minItems: 1 }),
    size: PosInt,
  }),
  lu: Type.Union([Type.Object({ file: FileName, layers: Type.Integer({ minimum: 0 }) }), Type.Null()]),
  prior: Type.Object({ kind: Type.Literal('standard-normal'), learned: Type.Optional(Type.String()) }),
  defaultTemperature: Type.Number({ exclusiveMinimum: 0, maximum: 2 }),
  /** Optional in format 1: a package without it samples at any 0 < T <= 2 (the service logs a warning). */
  sampling: Type.Optional(SamplingSchema),
  training: Type.Object(
    {
      dataset: Type.String(),
      epochs: Type.Optional(Num),
      seed: Type.Optional(Num),
      parameters: Type.Optional(Num),
      test: Type.Optional(
        Type.Object(
          {
            split: Type.Optional(Type.String()),
            count: Type.Optional(Num),
            meanLogLikelihood: Num,
            bitsPerDim: Type.Union([Num, Type.Null()]),
            /** How the test figure was computed, so that GET /models and the README can label it. */
            protocol: Type.Optional(ProtocolSchema),
          },
          { additionalProperties: true },
        ),
      ),
    },
    { additionalProperties: true },
  ),
  calibration: Type.Union([
    Type.Object(
      {
        split: Type.String(),
        count: Type.Integer({ minimum: 1 }),
        defaultScore: Type.String(),
        targetFalsePositiveRate: Type.Number({ exclusiveMinimum: 0, exclusiveMaximum: 1 }),
        scores: Type.Record(Type.String(), ScoreStats),
        /** Evenly spaced quantiles (min … max) of the held-out NLL, for the batch typicality bootstrap. */
        nllQuantiles: Type.Optional(Type.Array(Type.Number(), { minItems: 2 })),
      },
      { additionalProperties: true },
    ),
    Type.Null(),
  ]),
  files: Type.Record(FileName, Sha256),
});
export type Manifest = Static<typeof ManifestSchema>;
export type ScoreStats = Static<typeof ScoreStats>;

export const LuFileSchema = Type.Object({
  layers: Type.Array(
    Type.Object({
      name: Type.String(),
      channels: PosInt,
      spatial: PosInt,
      forwardInput: Type.String({ minLength: 1 }),
      inverseInput: Type.String({ minLength: 1 }),
      perm: Type.Array(Type.Integer({ minimum: 0 })),
      lower: Type.Array(Type.Array(Num)),
      upper: Type.Array(Type.Array(Num)),
      signS: Type.Array(Num),
      logS: Type.Array(Num),
    }),
  ),
});
export type LuFile = Static<typeof LuFileSchema>;

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

export const ManifestSchema = Type.Object({
  formatVersion: Type.Literal(1),
  name: Type.String({ pattern: '^[a-z0-9][a-z0-9-]{0,63}$' }),
  family: Type.Union([Type.Literal('nice'), Type.Literal('realnvp'), Type.Literal('glow')]),
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
  graphs: Type.Object({ forward: FileName, inverse: FileName, weights: Type.Optional(FileName) }),
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

// POST /encode, /decode, /sample, /likelihood.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Config } from '../../config/config.js';
import { InvalidInputError, ValidationError, echo } from '../../errors.js';
import { SCORE_NAMES, type ScoreName } from '../../flow/anomaly.js';
import { dataToPixels } from '../../flow/quantize.js';
import { MAX_SEED, randomSeed } from '../../flow/random.js';
import { encodePng } from '../../imaging/image-codec.js';
import type { FlowModel } from '../../service/flow-model.js';
import { MultipartForm } from '../multipart-body.js';
import { batchTest, type FlowService } from '../../service/flow-service.js';
import { assertFiniteRows, checkCount, decodeBase64, rowsFromArrays, rowsFromImages } from '../../service/inputs.js';
import {
  DataBody,
  DecodeBody,
  DecodeResponse,
  EncodeResponse,
  ModelName,
  LikelihoodResponse,
  SampleBody,
  SampleResponse,
  inferenceErrors,
} from '../schemas.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The model a request was served by (metrics label). */
    flowModel: string;
  }
}

/** Multipart "nll,complexityJpegLs" → score names, with the JSON schema's rules. */
function parseScoreList(value: string): ScoreName[] {
  const names = value.split(',').map((s) => s.trim()).filter(Boolean);
  for (const name of names) if (!(SCORE_NAMES as readonly string[]).includes(name)) throw new InvalidInputError('scores', `'${echo(name)}' is not a score; known: ${SCORE_NAMES.join(', ')}`, { allowed: SCORE_NAMES });
  if (new Set(names).size !== names.length) throw new InvalidInputError('scores', 'lists a score twice');
  return names as ScoreName[];
}

const toRows = (flat: ArrayLike<number>, n: number, d: number): number[][] =>
  Array.from({ length: n }, (_, i) => Array.from((flat as Float64Array).subarray(i * d, (i + 1) * d)));

// Only JSON bodies are validated by schema; multipart uploads arrive as a MultipartForm and are
// checked in readData() (the OpenAPI document adds their MultipartBody description, see
// documentMultipart in app.ts).
const dataBodySchema = { content: { 'application/json': { schema: DataBody } } };
/** The JSON schema's model name rule, for multipart's `model` field too. */
const MODEL_NAME = new RegExp(ModelName.pattern!);

export function inferenceRoutes(app: FastifyInstance, service: FlowService, config: Config): void {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();

  const pick = (request: FastifyRequest, name?: string): FlowModel => {
    const model = service.resolve(name);
    request.flowModel = model.name;
    return model;
  };

  /** JSON {inputs | images} or multipart image files → validated data-space rows. */
  async function readData(request: FastifyRequest): Promise<{ model: FlowModel; x: Float64Array; n: number; field: string; batchTest: boolean; scores?: ScoreName[] }> {
    const images = { resize: false, maxPixels: config.maxImagePixels, maxRequestPixels: config.maxRequestPixels };
    if (request.body instanceof MultipartForm) {
      // parsed and bounded by multipart-body.ts (known fields, each once and short; file count)
      const { files, fields } = request.body;
      if (fields.model !== undefined && !MODEL_NAME.test(fields.model))
        throw new ValidationError(`model: must match pattern "${ModelName.pattern}" (lower-case letters, digits and '-', at most 64)`, { field: 'model', rule: 'pattern' });
      for (const f of ['resize', 'batchTest'] as const) if (fields[f] !== undefined && fields[f] !== 'true' && fields[f] !== 'false') throw new InvalidInputError(f, 'must be true or false');
      const scores = fields.scores === undefined ? undefined : parseScoreList(fields.scores);
      const model = pick(request, fields.model);
      checkCount('images', files.length, config.maxItemsPerRequest, 'MAX_ITEMS_PER_REQUEST');
      const x = await rowsFromImages('images', files, model, { ...images, resize: fields.resize === 'true' });
      return { model, x, n: files.length, field: 'images', batchTest: fields.batchTest === 'true', scores };
    }
    const body = request.body as DataBody;
    const model = pick(request, body.model);
    if ((body.inputs === undefined) === (body.images === undefined)) throw new InvalidInputError('inputs', 'send exactly one of "inputs" or "images"');
    if (body.inputs) {
      checkCount('inputs', body.inputs.length, config.maxItemsPerRequest, 'MAX_ITEMS_PER_REQUEST');
      return { model, x: rowsFromArrays('inputs', body.inputs, model, model.manifest.data.range as [number, number] | null), n: body.inputs.length, field: 'inputs', batchTest: body.batchTest ?? false, scores: body.scores };
    }
    const encoded = body.images!;
    checkCount('images', encoded.length, config.maxItemsPerRequest, 'MAX_ITEMS_PER_REQUEST');
    const buffers = encoded.map((s, i) => decodeBase64(`images[${i}]`, s));
    const x = await rowsFromImages('images', buffers, model, { ...images, resize: body.resize ?? false });
    return { model, x, n: encoded.length, field: 'images', batchTest: body.batchTest ?? false, scores: body.scores };
  }

  async function render(model: FlowModel, outputs: Float64Array, n: number, format: 'array' | 'png') {
    const { data } = model.manifest;
    if (format === 'array') return { outputs: toRows(outputs, n, model.dim) };
    if (data.kind !== 'image' || data.bitDepth === null) throw new InvalidInputError('format', `model ${model.name} produces vectors: use "array"`);
    const [c, h, w] = data.shape;
    const images: string[] = [];
    for (let i = 0; i < n; i++) {
      const pixels = dataToPixels(outputs.subarray(i * model.dim, (i + 1) * model.dim), data.bitDepth) as Uint8Array;
      images.push((await encodePng(pixels, c, h, w)).toString('base64'));
    }
    return { images };
  }

  r.post('/encode', {
    schema: { summary: 'Map data to standard-normal latents (forward).', tags: ['inference'], consumes: ['application/json', 'multipart/form-data'], body: dataBodySchema as never, response: { 200: EncodeResponse, ...inferenceErrors } },
    handler: async (request) => {
      const { model, x, n, field, batchTest: wantBatchTest, scores } = await readData(request);
      if (wantBatchTest) throw new InvalidInputError('batchTest', 'is only for /likelihood');
      if (scores) throw new InvalidInputError('scores', 'is only for /likelihood');
      const { latents, logDet } = await model.encode(x, n);
      assertFiniteRows(field, latents, logDet, n, model.dim, 'maps to');
      return { model: model.name, latents: toRows(latents, n, model.dim), logDet: Array.from(logDet) };
    },
  });

  r.post('/decode', {
    schema: { summary: 'Map latents back to data (inverse).', tags: ['inference'], body: DecodeBody, response: { 200: DecodeResponse, ...inferenceErrors } },
    handler: async (request) => {
      const body = request.body;
      const model = pick(request, body.model);
      checkCount('latents', body.latents.length, config.maxItemsPerRequest, 'MAX_ITEMS_PER_REQUEST');
      const z = rowsFromArrays('latents', body.latents, model, null);
      const n = body.latents.length;
      const { outputs } = await model.decode(z, n);
      assertFiniteRows('latents', outputs, null, n, model.dim, 'decodes to');
      return { model: model.name, ...(await render(model, outputs, n, body.format ?? 'array')) };
    },
  });

  r.post('/sample', {
    schema: { summary: 'Draw samples at a temperature: ε ~ N(0, T²·I), x = inverse(ε).', tags: ['inference'], body: SampleBody, response: { 200: SampleResponse, ...inferenceErrors } },
    handler: async (request) => {
      const body = request.body;
      const model = pick(request, body.model);
      checkCount('count', body.count, config.maxSamplesPerRequest, 'MAX_SAMPLES_PER_REQUEST');
      const temperature = body.temperature ?? model.manifest.defaultTemperature;
      const seed = body.seed ?? randomSeed();
      if (seed > MAX_SEED) throw new InvalidInputError('seed', `must be at most ${MAX_SEED}`);
      const format = body.format ?? (model.manifest.data.kind === 'image' ? 'png' : 'array');
      const { outputs, logLikelihood, redrawn } = await model.sample(body.count, temperature, seed);
      return { model: model.name, temperature, seed, ...(await render(model, outputs, body.count, format)), logLikelihood: Array.from(logLikelihood), redrawn };
    },
  });

  r.post('/likelihood', {
    schema: {
      summary: 'Exact log-likelihood, bits/dim and calibrated anomaly scores.',
      tags: ['inference'],
      consumes: ['application/json', 'multipart/form-data'],
      body: dataBodySchema as never,
      response: { 200: LikelihoodResponse, ...inferenceErrors },
    },
    handler: async (request) => {
      const { model, x, n, field, batchTest: wantBatchTest, scores } = await readData(request);
      const results = await service.likelihood(model, x, n, { scores });
      assertFiniteRows(field, results.map((r) => r.logLikelihood), null, n, 1, 'has a log-likelihood with');
      if (!wantBatchTest) return { model: model.name, results };
      const test = batchTest(model, results);
      if (!test) throw new InvalidInputError('batchTest', `model ${model.name} ships no held-out NLL quantiles (calibration.nllQuantiles) to test against`);
      return { model: model.name, results, batchTest: test };
    },
  });
}

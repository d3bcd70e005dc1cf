// POST /encode, /decode, /sample, /likelihood, /interpolate.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Config } from '../../config/config.js';
import { InvalidInputError, ValidationError, echo } from '../../errors.js';
import { SCORE_NAMES, type ScoreName } from '../../flow/anomaly.js';
import { MAX_SEED } from '../../flow/random.js';
import type { FlowModel } from '../../service/flow-model.js';
import { MultipartForm } from '../multipart-body.js';
import { loopContext as sharedLoopContext } from '../loop-context.js';
import type { FlowService } from '../../service/flow-service.js';
import { checkCount, decodeBase64, rowsFromArrays, rowsFromFlat, rowsFromImages, rowsFromPixels, type DataRows } from '../../service/inputs.js';
import { DEQUANTIZATIONS, MAX_DEQUANTIZATION_DRAWS, toPngs, type Dequantization, type InterpolationEnds, type OutputForm, type Outputs } from '../../service/operations.js';
import { TOLERANCE_RANGE, type Cost, type LoopContext, type SolverOptions } from '../../service/programs/types.js';

/** The per-request ODE tolerances, when the body names any. */
const solverOf = (body: { atol?: number; rtol?: number }): SolverOptions | undefined =>
  body.atol === undefined && body.rtol === undefined ? undefined : { ...(body.atol !== undefined ? { atol: body.atol } : {}), ...(body.rtol !== undefined ? { rtol: body.rtol } : {}) };

/** A request's loop cost as JSON: sequential graph-call rounds, and per-row solver work when there is any. */
const renderCost = (c: Cost) => ({
  passes: c.passes,
  ...(c.evaluations ? { evaluations: Array.from(c.evaluations) } : {}),
  ...(c.iterations ? { iterations: Array.from(c.iterations) } : {}),
});
import { OCTET_STREAM } from '../binary-body.js';
import { valuesFromBinary } from '../tensor-wire.js';
import {
  BinaryQuery,
  withBinary,
  DataBody,
  DecodeBody,
  DecodeResponse,
  EncodeResponse,
  InterpolateBody,
  InterpolateResponse,
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
const dataBodySchema = withBinary(DataBody);
const DATA_CONSUMES = ['application/json', 'multipart/form-data', OCTET_STREAM];
/** The JSON schema's model name rule, for multipart's `model` field too. */
const MODEL_NAME = new RegExp(ModelName.pattern!);

export function inferenceRoutes(app: FastifyInstance, service: FlowService, config: Config): void {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();

  const pick = (request: FastifyRequest, name?: string): FlowModel => {
    const model = service.resolve(name);
    request.flowModel = model.name;
    request.operation = (request.routeOptions.url ?? '').slice(1);
    request.apiProtocol = 'native';
    return model;
  };

  /** How images are read: the configured pixel limits, resized on request. */
  const imageLimits = (resize: boolean) => ({ resize, maxPixels: config.maxImagePixels, maxRequestPixels: config.maxRequestPixels });

  /** JSON {inputs | images} or multipart image files → validated data-space rows. */
  interface Read {
    model: FlowModel;
    x: DataRows;
    n: number;
    field: string;
    batchTest: boolean;
    scores?: ScoreName[];
    dequantization?: Dequantization;
    draws?: number;
    seed?: number;
    solver?: SolverOptions;
  }

  /** The multipart text field as a whole number in [min, max], with the JSON schema's rule. */
  function intField(fields: Record<string, string | undefined>, name: string, min: number, max: number): number | undefined {
    const v = fields[name];
    if (v === undefined) return undefined;
    const n = /^[0-9]{1,10}$/.test(v) ? Number(v) : NaN;
    if (!(n >= min && n <= max)) throw new InvalidInputError(name, `must be a whole number from ${min} to ${max}, got '${echo(v)}'`);
    return n;
  }

  /** The binary body's rows: its length gives N, the Tensor-Shape header (optional) must agree. */
  function binaryRows(request: FastifyRequest, model: FlowModel, what: 'data' | 'latents'): { values: ArrayLike<number>; n: number; datatype: string } {
    const body = request.body as Buffer;
    const q = request.query as BinaryQuery;
    const datatype = q.datatype ?? 'FP32';
    if (datatype === 'UINT8' && (what === 'latents' || model.manifest.data.kind !== 'image' || model.manifest.data.bitDepth !== 8))
      throw new InvalidInputError('datatype', what === 'latents' ? 'latents are FP32 or FP64' : `UINT8 pixels need an 8-bit image model; model ${model.name} takes FP32 or FP64 values`, { allowed: ['FP32', 'FP64'] });
    const size = datatype === 'FP64' ? 8 : datatype === 'FP32' ? 4 : 1;
    const perRow = model.dim * size;
    if (body.length === 0 || body.length % perRow !== 0)
      throw new InvalidInputError('body', `must hold whole rows of ${model.dim} ${datatype} values (${perRow} bytes each, little-endian, row-major), got ${body.length} bytes`, { bytesPerRow: perRow, got: body.length });
    const n = body.length / perRow;
    const declared = request.headers['tensor-shape'];
    if (declared !== undefined) {
      const text = String(declared);
      if (!/^\s*\d{1,10}(\s*,\s*\d{1,10}){0,7}\s*$/.test(text)) throw new InvalidInputError('Tensor-Shape', `must be whole numbers separated by commas (N,C,H,W or N,D), got '${echo(text)}'`);
      const dims = text.split(',').map((d) => Number(d.trim()));
      const rowShape = dims.slice(1);
      const rowFits = what === 'latents' ? rowShape.length === 1 && rowShape[0] === model.dim : rowShape.join(',') === model.manifest.data.shape.join(',') || (rowShape.length === 1 && rowShape[0] === model.dim);
      if (dims[0] !== n || !rowFits)
        throw new InvalidInputError('Tensor-Shape', `'${echo(String(declared))}' does not match the body: ${n} rows of ${what === 'latents' ? model.dim : `[${model.manifest.data.shape.join(', ')}]`} (${datatype}, ${body.length} bytes)`);
    }
    checkCount('body', n, config.maxItemsPerRequest, 'MAX_ITEMS_PER_REQUEST');
    return { values: valuesFromBinary(body, datatype, [n * model.dim], 'body', n * model.dim) as ArrayLike<number>, n, datatype };
  }

  /** Query parameters carry a binary body's options; a JSON or multipart body carries its own. */
  function refuseQuery(request: FastifyRequest): void {
    const keys = Object.keys((request.query as object) ?? {});
    if (keys.length > 0) throw new InvalidInputError(`query.${echo(keys[0])}`, 'query parameters are for binary bodies (Content-Type: application/octet-stream); send options in the JSON body or multipart fields');
  }

  const numberParam = (name: string, text: string | undefined, min: number, max: number): number | undefined => {
    if (text === undefined) return undefined;
    const v = Number(text);
    if (!(v >= min && v <= max)) throw new InvalidInputError(name, `must be a number from ${min} to ${max}, got '${echo(text)}'`);
    return v;
  };

  function readBinary(request: FastifyRequest): Read {
    const q = request.query as BinaryQuery;
    if (q.output !== undefined || q.format !== undefined) throw new InvalidInputError(q.output !== undefined ? 'output' : 'format', 'is only for /decode');
    const model = pick(request, q.model);
    const { values, n, datatype } = binaryRows(request, model, 'data');
    const x = datatype === 'UINT8' ? rowsFromPixels('body', values, n, model) : rowsFromFlat('body', values, n, model, model.support);
    const atol = numberParam('atol', q.atol, ...TOLERANCE_RANGE);
    const rtol = numberParam('rtol', q.rtol, ...TOLERANCE_RANGE);
    return {
      model,
      x,
      n,
      field: 'body',
      batchTest: q.batchTest === 'true',
      scores: q.scores === undefined ? undefined : parseScoreList(q.scores),
      dequantization: q.dequantization as Dequantization | undefined,
      draws: intField(q as Record<string, string | undefined>, 'draws', 1, MAX_DEQUANTIZATION_DRAWS),
      seed: intField(q as Record<string, string | undefined>, 'seed', 0, MAX_SEED),
      solver: solverOf({ atol, rtol }),
    };
  }

  async function readData(request: FastifyRequest): Promise<Read> {
    if (Buffer.isBuffer(request.body)) return readBinary(request);
    refuseQuery(request);

    if (request.body instanceof MultipartForm) {
      // parsed and bounded by multipart-body.ts (known fields, each once and short; file count)
      const { files, fields } = request.body;
      if (fields.model !== undefined && !MODEL_NAME.test(fields.model))
        throw new ValidationError(`model: must match pattern "${ModelName.pattern}" (lower-case letters, digits and '-', at most 64)`, { field: 'model', rule: 'pattern' });
      for (const f of ['resize', 'batchTest'] as const) if (fields[f] !== undefined && fields[f] !== 'true' && fields[f] !== 'false') throw new InvalidInputError(f, 'must be true or false');
      const scores = fields.scores === undefined ? undefined : parseScoreList(fields.scores);
      if (fields.dequantization !== undefined && !(DEQUANTIZATIONS as readonly string[]).includes(fields.dequantization))
        throw new InvalidInputError('dequantization', `must be one of ${DEQUANTIZATIONS.map((d) => `"${d}"`).join(', ')}, got '${echo(fields.dequantization)}'`, { allowed: DEQUANTIZATIONS });
      const dequant = { dequantization: fields.dequantization as Dequantization | undefined, draws: intField(fields, 'draws', 1, MAX_DEQUANTIZATION_DRAWS), seed: intField(fields, 'seed', 0, MAX_SEED) };
      const model = pick(request, fields.model);
      checkCount('images', files.length, config.maxItemsPerRequest, 'MAX_ITEMS_PER_REQUEST');
      const x = await rowsFromImages('images', files, model, imageLimits(fields.resize === 'true'));
      return { model, x, n: files.length, field: 'images', batchTest: fields.batchTest === 'true', scores, ...dequant };
    }
    const body = request.body as DataBody;
    const model = pick(request, body.model);
    if ((body.inputs === undefined) === (body.images === undefined)) throw new InvalidInputError('inputs', 'send exactly one of "inputs" or "images"');
    const common = { batchTest: body.batchTest ?? false, scores: body.scores, dequantization: body.dequantization, draws: body.draws, seed: body.seed, solver: solverOf(body) };
    if (body.inputs) {
      checkCount('inputs', body.inputs.length, config.maxItemsPerRequest, 'MAX_ITEMS_PER_REQUEST');
      return { model, x: rowsFromArrays('inputs', body.inputs, model, model.support), n: body.inputs.length, field: 'inputs', ...common };
    }
    const encoded = body.images!;
    checkCount('images', encoded.length, config.maxItemsPerRequest, 'MAX_ITEMS_PER_REQUEST');
    const buffers = encoded.map((s, i) => decodeBase64(`images[${i}]`, s));
    const x = await rowsFromImages('images', buffers, model, imageLimits(body.resize ?? false));
    return { model, x, n: encoded.length, field: 'images', ...common };
  }

  /** Only /likelihood takes these: refuse them by name elsewhere rather than ignore them. */
  function likelihoodOnly(read: Read): void {
    for (const f of ['scores', 'dequantization', 'draws', 'seed'] as const) if (read[f] !== undefined) throw new InvalidInputError(f, 'is only for /likelihood');
    if (read.batchTest) throw new InvalidInputError('batchTest', 'is only for /likelihood');
  }

  /** Outputs as rows or PNGs; a PNG holds 8-bit pixels, so it needs the quantized form. */
  async function render(model: FlowModel, done: Outputs, n: number, format: 'array' | 'png') {
    const { data } = model.manifest;
    const common = { output: done.output, logLikelihood: Array.from(done.logLikelihood), cost: renderCost(done.cost) };
    if (format === 'array') return { outputs: toRows(done.outputs, n, model.dim), ...common };
    if (data.kind !== 'image' || data.bitDepth === null) throw new InvalidInputError('format', `model ${model.name} produces vectors: use "array"`, { allowed: ['array'] });
    if (done.output !== 'quantized') throw new InvalidInputError('format', `"png" holds quantized pixels: use output "quantized" (the default for this model) or format "array" for ${done.output} values`);
    const images = (await toPngs(model, done.outputs, n)).map((png) => png.toString('base64'));
    return { images, ...common };
  }

  const loopContext = (request: FastifyRequest, reply: FastifyReply, solver?: SolverOptions) => sharedLoopContext(service, request, reply, solver);

  /** Check the format against the output form before any inference runs. */
  function checkFormat(model: FlowModel, format: 'array' | 'png', output: string | undefined): void {
    if (format !== 'png') return;
    const { data } = model.manifest;
    if (data.kind !== 'image' || data.bitDepth === null) throw new InvalidInputError('format', `model ${model.name} produces vectors: use "array"`, { allowed: ['array'] });
    if (output !== undefined && output !== 'quantized') throw new InvalidInputError('format', `"png" holds quantized pixels: use output "quantized" or format "array" for ${output} values`);
  }

  r.post('/encode', {
    schema: { summary: 'Map data to standard-normal latents (forward).', tags: ['inference'], consumes: DATA_CONSUMES, querystring: BinaryQuery, body: dataBodySchema as never, response: { 200: EncodeResponse, ...inferenceErrors } },
    handler: async (request, reply) => {
      const read = await readData(request);
      likelihoodOnly(read);
      const { model, x, n, field } = read;
      const { latents, logDet, cost } = await service.encode(model, x, n, field, loopContext(request, reply, read.solver));
      return { model: model.name, latents: toRows(latents, n, model.dim), logDet: Array.from(logDet), cost: renderCost(cost) };
    },
  });

  r.post('/decode', {
    schema: { summary: 'Map latents back to data (inverse), in an output form, with the log-likelihood of each output.', tags: ['inference'], consumes: ['application/json', OCTET_STREAM], querystring: BinaryQuery, body: withBinary(DecodeBody) as never, response: { 200: DecodeResponse, ...inferenceErrors } },
    handler: async (request, reply) => {
      let body: DecodeBody;
      let z: DataRows;
      let n: number;
      if (Buffer.isBuffer(request.body)) {
        const q = request.query as BinaryQuery;
        for (const f of ['scores', 'dequantization', 'draws', 'seed', 'batchTest'] as const) if (q[f] !== undefined) throw new InvalidInputError(f, 'is only for /likelihood');
        const model = pick(request, q.model);
        const rows = binaryRows(request, model, 'latents');
        n = rows.n;
        z = rowsFromFlat('body', rows.values, n, model, null);
        body = { model: model.name, latents: [], output: q.output as OutputForm | undefined, format: q.format as 'array' | 'png' | undefined, atol: numberParam('atol', q.atol, ...TOLERANCE_RANGE), rtol: numberParam('rtol', q.rtol, ...TOLERANCE_RANGE) };
      } else {
        refuseQuery(request);
        body = request.body as DecodeBody;
        const model = pick(request, body.model);
        checkCount('latents', body.latents.length, config.maxItemsPerRequest, 'MAX_ITEMS_PER_REQUEST');
        z = rowsFromArrays('latents', body.latents, model, null);
        n = body.latents.length;
      }
      const model = pick(request, body.model);
      const format = body.format ?? 'array';
      checkFormat(model, format, body.output);
      const done = await service.decode(model, z, n, { output: body.output }, loopContext(request, reply, solverOf(body)));
      return { model: model.name, ...(await render(model, done, n, format)) };
    },
  });

  r.post('/sample', {
    schema: { summary: 'Draw samples at a temperature: ε ~ N(0, T²·I), x = inverse(ε), in an output form, with the log-likelihood of each output.', tags: ['inference'], body: SampleBody, response: { 200: SampleResponse, ...inferenceErrors } },
    handler: async (request, reply) => {
      const body = request.body;
      const model = pick(request, body.model);
      const { data } = model.manifest;
      const format = body.format ?? (data.kind === 'image' && data.bitDepth !== null ? 'png' : 'array');
      checkFormat(model, format, body.output);
      const done = await service.sample(model, { count: body.count, temperature: body.temperature, seed: body.seed, output: body.output }, loopContext(request, reply, solverOf(body)));
      return {
        model: model.name,
        temperature: done.temperature,
        seed: done.seed,
        ...(await render(model, done, body.count, format)),
        ...(body.returnLatents ? { latents: toRows(done.latents, body.count, model.dim) } : {}),
        redrawn: done.redrawn,
      };
    },
  });

  r.post('/interpolate', {
    schema: {
      summary: 'Frames along a path (linear or spherical) between the latents of two inputs, images or latents, decoded, with the log-likelihood of each frame.',
      tags: ['inference'],
      body: InterpolateBody,
      response: { 200: InterpolateResponse, ...inferenceErrors },
    },
    handler: async (request, reply) => {
      refuseQuery(request);
      const body = request.body;
      const model = pick(request, body.model);
      const given = (['inputs', 'images', 'latents'] as const).filter((k) => body[k] !== undefined);
      if (given.length !== 1) throw new InvalidInputError(given[1] ?? 'inputs', 'send exactly one of "inputs", "images" or "latents" (two items)');
      if (body.resize && !body.images) throw new InvalidInputError('resize', 'is only for images');
      const steps = body.steps ?? 8;
      const { data } = model.manifest;
      const format = body.format ?? (data.kind === 'image' && data.bitDepth !== null ? 'png' : 'array');
      checkFormat(model, format, body.output);
      let ends: InterpolationEnds;
      if (body.latents) ends = { kind: 'latents', z: rowsFromArrays('latents', body.latents, model, null) };
      else if (body.inputs) ends = { kind: 'data', x: rowsFromArrays('inputs', body.inputs, model, model.support), field: 'inputs' };
      else {
        const buffers = body.images!.map((b, i) => decodeBase64(`images[${i}]`, b));
        const x = await rowsFromImages('images', buffers, model, imageLimits(body.resize ?? false));
        ends = { kind: 'data', x, field: 'images' };
      }
      const done = await service.interpolate(model, ends, { steps, method: body.method ?? 'linear', output: body.output }, loopContext(request, reply, solverOf(body)));
      return {
        model: model.name,
        method: done.method,
        steps,
        t: Array.from(done.t),
        ...(await render(model, done, steps, format)),
        ...(body.returnLatents ? { latents: toRows(done.latents, steps, model.dim) } : {}),
        ...(done.encodeCost ? { encodeCost: renderCost(done.encodeCost) } : {}),
      };
    },
  });

  r.post('/likelihood', {
    schema: {
      summary: 'Exact log-likelihood and bits/dim (pixel centres, or uniform dequantization with K seeded draws), calibrated anomaly scores, batch typicality test.',
      tags: ['inference'],
      consumes: DATA_CONSUMES,
      querystring: BinaryQuery,
      body: dataBodySchema as never,
      response: { 200: LikelihoodResponse, ...inferenceErrors },
    },
    handler: async (request, reply) => {
      const { model, x, n, field, solver, ...opts } = await readData(request);
      const answer = await service.likelihood(model, x, n, { field, ...opts }, loopContext(request, reply, solver));
      return { model: model.name, ...answer, cost: renderCost(answer.cost) };
    },
  });
}

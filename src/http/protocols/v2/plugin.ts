// The Open Inference Protocol (KServe v2 REST) as an encapsulated Fastify plugin under /v2, with
// its own body parsing (any Content-Type or none: Triton's client sends none), gzip and deflate
// both ways, and its own error shape {"error": "<message>"} with Triton's status mapping. Handlers
// parse, call one FlowService operation, and render (docs/open-inference-protocol.md).
import compress from '@fastify/compress';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../../../config/config.js';
import { AppError, InvalidInputError, ValidationError, echo } from '../../../errors.js';
import { SCORE_NAMES, type ScoreName } from '../../../flow/anomaly.js';
import { MAX_SEED } from '../../../flow/random.js';
import { LogLimiter } from '../../../log-limiter.js';
import type { FlowModel } from '../../../service/flow-model.js';
import type { FlowService } from '../../../service/flow-service.js';
import { checkCount, rowsFromFlat, rowsFromImages, rowsFromPixels, type DataRows } from '../../../service/inputs.js';
import type { Metrics } from '../../../service/metrics.js';
import { DEQUANTIZATIONS, MAX_DEQUANTIZATION_DRAWS, OUTPUT_FORMS, defaultScores, type Dequantization, type OutputForm } from '../../../service/operations.js';
import { TOLERANCE_RANGE, type SolverOptions } from '../../../service/programs/types.js';
import { registerErrorHandling, type ErrorRenderer } from '../../error-handler.js';
import { parseJsonPaced } from '../../json-body.js';
import { loopContext } from '../../loop-context.js';
import { MODEL_VERSION, PARAMETERS, PLATFORM, decodeOutputs, encodeOutputs, inputsOf, likelihoodOutputs, outputsOf, sampleOutputs, splitName, type Operation, type OutputTensor } from './models.js';
import { InferRequest, InferResponse, ModelMetadata, ModelParams, ModelReady, ServerLive, ServerMetadata, ServerReady, V2Error, VersionParams, checkInferRequest } from './schemas.js';
import { checkDeclared, splitBinary, toBinary, toJsonData, valuesFromBinary, valuesFromJson, type WireTensor } from '../../tensor-wire.js';

export const EXTENSIONS = ['binary_tensor_data'];
const HEADER_LENGTH = 'inference-header-content-length';

/**
 * Triton's HTTP status for each failure: INVALID_ARG (and every other client error) 400,
 * NOT_FOUND 404, UNAVAILABLE 503 (a full queue, a timeout, loading, a model being restarted),
 * INTERNAL 500. 401 and 413 are the transport's and stay as they are.
 */
export function v2Status(err: AppError): number {
  if (err.statusCode === 401 || err.statusCode === 404 || err.statusCode === 413) return err.statusCode;
  if (err.code === 'OVERLOADED' || err.code === 'TIMEOUT' || err.statusCode === 503) return 503;
  if (err.statusCode >= 500) return 500;
  return 400;
}

/** {"error": "<string>"}: Triton's client builds its exception from that string. */
const renderV2Error: ErrorRenderer = (reply, err) => reply.code(v2Status(err)).type('application/json').send({ error: err.message });

export interface V2Options {
  /** The server version GET /v2 reports. */
  version: string;
  service: FlowService;
  config: Config;
  metrics: Metrics;
}

const errors = Object.fromEntries([400, 401, 404, 413, 500, 503].map((s) => [s, { ...V2Error, description: `${s}: {"error": "<message>"}` }]));

export async function openInferenceProtocol(app: FastifyInstance, { version, service, config, metrics }: V2Options): Promise<void> {
  registerErrorHandling(app, config, metrics, new LogLimiter(), renderV2Error);
  // Bodies of any type, or none: the JSON header (and binary tensors after it) is read from the raw bytes.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));
  // Header values are case-insensitive tokens (RFC 9110): GZIP is gzip.
  app.addHook('onRequest', async (request) => {
    const enc = request.headers['content-encoding'];
    if (typeof enc === 'string') request.headers['content-encoding'] = enc.trim().toLowerCase();
  });
  await app.register(compress, {
    global: true,
    encodings: ['gzip', 'deflate'],
    requestEncodings: ['gzip', 'deflate', 'identity'],
    // The decompressed bytes count against BODY_LIMIT_BYTES as they are inflated: a gzip bomb gets 413 at the limit.
    customTypes: /^application\/(json|octet-stream)/,
    onUnsupportedRequestEncoding: (encoding) => new ValidationError(`content-encoding: '${echo(encoding)}' is not supported; send gzip, deflate or identity`, { field: 'content-encoding' }),
    onInvalidRequestPayload: (encoding) => new ValidationError(`body: not valid ${encoding} data`, { field: 'body', rule: 'contentEncoding' }),
  });

  const jsonLimits = { maxDepth: config.maxJsonDepth, maxValues: config.maxJsonValues };

  app.get('/', { schema: { summary: 'v2 server metadata: name, version and the extensions supported.', tags: ['v2'], response: { 200: ServerMetadata } } }, async () => ({
    name: 'flowserve',
    version,
    extensions: EXTENSIONS,
  }));

  app.get('/health/live', { schema: { summary: 'v2 liveness (Kubernetes livenessProbe): 200 while the server can serve or recover; 503 when no inference worker can be started.', tags: ['v2'], response: { 200: ServerLive, 503: ServerLive } } }, async (_req, reply) => {
    const live = service.health().live || app.lifecycle.phase !== 'serving';
    if (!live) reply.code(503);
    return { live };
  });

  app.get('/health/ready', { schema: { summary: 'v2 readiness (Kubernetes readinessProbe): 200 when every loadable model is warm; 503 while loading, draining or restarting.', tags: ['v2'], response: { 200: ServerReady, 503: ServerReady } } }, async (_req, reply) => {
    const ready = app.lifecycle.phase === 'serving' && service.health().status === 'ready';
    if (!ready) reply.code(503).header('retry-after', '1');
    return { ready };
  });

  /** The served model behind a v2 name (`M`, `M.likelihood`, `M.encode`, `M.decode`, `M.sample`) and version. */
  const target = (request: FastifyRequest, name: string, version?: string): { model: FlowModel; operation: Operation } => {
    const { model: base, operation } = splitName(name);
    const model = service.resolve(base);
    request.flowModel = model.name;
    if (request.method === 'POST') {
      request.operation = operation;
      request.apiProtocol = 'v2';
    }
    if (version !== undefined && version !== MODEL_VERSION)
      throw new AppError('MODEL_NOT_FOUND', `model '${echo(name)}' has no version '${echo(version)}' (its only version is '${MODEL_VERSION}')`, { model: echo(name), versions: [MODEL_VERSION] });
    return { model, operation };
  };

  const metadata = (request: FastifyRequest<{ Params: { model: string; version?: string } }>) => {
    const { model, operation } = target(request, request.params.model, request.params.version);
    return {
      name: request.params.model,
      versions: [MODEL_VERSION],
      platform: PLATFORM,
      inputs: inputsOf(model, operation),
      outputs: outputsOf(model, operation),
      parameters: { operation, family: model.manifest.family, ...(operation === 'sample' ? { defaultTemperature: model.manifest.defaultTemperature, maxTemperature: model.maxTemperature } : {}) },
    };
  };
  const modelReady = (request: FastifyRequest<{ Params: { model: string; version?: string } }>, reply: FastifyReply) => {
    // An unknown model is a 404; a known one not ready now (loading, restarting) is 503 with ready: false.
    try {
      target(request, request.params.model, request.params.version);
      return { name: request.params.model, ready: true };
    } catch (err) {
      if (err instanceof AppError && err.statusCode === 503) {
        reply.code(503).header('retry-after', '1');
        return { name: request.params.model, ready: false };
      }
      throw err;
    }
  };

  for (const [path, params] of [['/models/:model', ModelParams], ['/models/:model/versions/:version', VersionParams]] as const) {
    app.get(path, { schema: { summary: 'v2 model metadata: input and output tensors with datatypes and shapes (−1: the batch).', tags: ['v2'], params, response: { 200: ModelMetadata, ...errors } } }, metadata);
    app.get(`${path}/ready`, { schema: { summary: 'v2 model readiness.', tags: ['v2'], params, response: { ...errors, 200: ModelReady, 503: ModelReady } } }, modelReady);
    app.post(`${path}/infer`, {
      schema: {
        summary: 'v2 inference: JSON, or a JSON header followed by binary tensors (Inference-Header-Content-Length); gzip or deflate bodies; any or no Content-Type.',
        tags: ['v2'],
        params,
        body: { content: { 'application/json': { schema: InferRequest }, 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } } },
        response: { 200: { description: 'JSON (application/json), or the JSON header followed by the binary outputs (application/octet-stream, Inference-Header-Content-Length).', content: { 'application/json': { schema: InferResponse }, 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } } }, ...errors },
      },
      // The body is validated by infer() (the JSON header, after the binary split): not by the route schema.
      validatorCompiler: ({ httpPart }) => (httpPart === 'body' ? () => true : (value: unknown) => typeof value === 'object'),
      handler: async (request, reply) => {
        const { model: name, version } = request.params as { model: string; version?: string };
        const { model, operation } = target(request, name, version);
        const parsed = await readInfer(request.body as Buffer, request.headers[HEADER_LENGTH], jsonLimits);
        if (parsed.header.model_name && parsed.header.model_name !== name)
          throw new InvalidInputError('model_name', `'${echo(parsed.header.model_name)}' differs from the model in the path ('${echo(name)}')`);
        // "" (some clients send these empty) names nothing: the path decides, as without /versions.
        if (parsed.header.model_version && parsed.header.model_version !== (version ?? MODEL_VERSION))
          throw new InvalidInputError('model_version', `'${echo(parsed.header.model_version)}' differs from the version served ('${echo(version ?? MODEL_VERSION)}')`);
        const wanted = requestedOutputs(parsed.header, model, operation);
        const params = readParameters(parsed.header.parameters ?? {}, operation);
        // An output asked for by name is computed: `complexity` (not a default score) needs no parameters.scores too.
        if (operation === 'likelihood' && params.scores === undefined && wanted) {
          const asked = [...wanted.keys()].filter((k): k is ScoreName => (model.scores as readonly string[]).includes(k));
          if (asked.some((k) => !defaultScores(model).includes(k))) params.scores = [...new Set([...defaultScores(model), ...asked])];
        }
        const ctx = loopContext(service, request, reply, params.solver);
        if (params.timeoutUs !== undefined) ctx.deadline = Math.min(ctx.deadline!, request.startedAt + params.timeoutUs / 1000);
        const { outputs, parameters } = await run(model, operation, parsed.inputs, params, ctx);
        return renderInfer(reply, { name, id: parsed.header.id, parameters, outputs, wanted }, params.binaryOutput);
      },
    });
  }

  // ---- infer: parse ----

  interface Params {
    solver?: SolverOptions;
    scores?: ScoreName[];
    dequantization?: Dequantization;
    draws?: number;
    seed?: number;
    batchTest?: boolean;
    output?: OutputForm;
    count?: number;
    temperature?: number;
    binaryOutput: boolean;
    /** Triton's per-request timeout (µs): a deadline earlier than REQUEST_TIMEOUT_MS, never later. */
    timeoutUs?: number;
  }

  function readParameters(p: Record<string, string | number | boolean>, operation: Operation): Params {
    const allowed = PARAMETERS[operation];
    for (const [key, value] of Object.entries(p)) {
      if (key === 'binary_data_output') {
        if (typeof value !== 'boolean') throw new InvalidInputError('parameters.binary_data_output', 'must be true or false');
        continue;
      }
      if (key === 'timeout') {
        if (!Number.isSafeInteger(value) || (value as number) < 1) throw new InvalidInputError('parameters.timeout', `must be a whole number of microseconds ≥ 1 (Triton's per-request timeout), got ${echo(JSON.stringify(value))}`);
        continue;
      }
      const type = allowed[key];
      const all = [...Object.keys(allowed), 'binary_data_output', 'timeout'];
      if (!type) throw new InvalidInputError(`parameters.${echo(key)}`, `is not a parameter of ${operation} (it takes ${all.join(', ')})`, { allowed: all });
      const ok = type === 'integer' ? Number.isSafeInteger(value) : type === 'number' ? typeof value === 'number' && Number.isFinite(value) : typeof value === type;
      if (!ok) throw new InvalidInputError(`parameters.${key}`, `must be ${type === 'integer' ? 'a whole number' : `a ${type}`}, got ${echo(JSON.stringify(value))}`);
    }
    const oneOf = <T extends string>(key: string, options: readonly T[]): T | undefined => {
      const v = p[key] as string | undefined;
      if (v !== undefined && !(options as readonly string[]).includes(v)) throw new InvalidInputError(`parameters.${key}`, `must be one of ${options.map((o) => `"${o}"`).join(', ')}, got '${echo(v)}'`, { allowed: options });
      return v as T | undefined;
    };
    let scores: ScoreName[] | undefined;
    if (p.scores !== undefined) {
      scores = String(p.scores).split(',').map((s) => s.trim()).filter(Boolean) as ScoreName[];
      for (const s of scores) if (!(SCORE_NAMES as readonly string[]).includes(s)) throw new InvalidInputError('parameters.scores', `'${echo(s)}' is not a score; known: ${SCORE_NAMES.join(', ')}`, { allowed: SCORE_NAMES });
    }
    const num = (key: string) => p[key] as number | undefined;
    const solver = p.atol === undefined && p.rtol === undefined ? undefined : { ...(p.atol !== undefined ? { atol: num('atol') } : {}), ...(p.rtol !== undefined ? { rtol: num('rtol') } : {}) };
    for (const [key, lo, hi] of [['atol', ...TOLERANCE_RANGE], ['rtol', ...TOLERANCE_RANGE], ['draws', 1, MAX_DEQUANTIZATION_DRAWS], ['seed', 0, MAX_SEED], ['temperature', 1e-9, 1e6]] as const) {
      const v = num(key);
      if (v !== undefined && !(v >= lo && v <= hi)) throw new InvalidInputError(`parameters.${key}`, `must lie in [${lo}, ${hi}], got ${v}`);
    }
    if (num('temperature') !== undefined && !(num('temperature')! > 0)) throw new InvalidInputError('parameters.temperature', 'must be > 0');
    return {
      ...(solver ? { solver: solver as SolverOptions } : {}),
      scores,
      dequantization: oneOf('dequantization', DEQUANTIZATIONS),
      draws: num('draws'),
      seed: num('seed'),
      batchTest: p.batchTest as boolean | undefined,
      output: oneOf('output', OUTPUT_FORMS),
      count: num('count'),
      temperature: num('temperature'),
      binaryOutput: p.binary_data_output === true,
      timeoutUs: p.timeout as number | undefined,
    };
  }

  /** The names (and binary flags) of the outputs to return: those requested, or every one the operation gives. */
  function requestedOutputs(header: InferRequest, model: FlowModel, operation: Operation): Map<string, boolean> | null {
    // None requested, or an empty list (Triton's reading): every output.
    if (!header.outputs || header.outputs.length === 0) return null;
    const known = outputsOf(model, operation).map((o) => o.name);
    const wanted = new Map<string, boolean>();
    header.outputs.forEach((o, i) => {
      if (!known.includes(o.name)) throw new InvalidInputError(`outputs[${i}].name`, `'${echo(o.name)}' is not an output of ${operation} for model ${model.name} (${known.join(', ')})`, { allowed: known });
      if (wanted.has(o.name)) throw new InvalidInputError(`outputs[${i}].name`, `'${o.name}' is requested twice`);
      for (const key of Object.keys(o.parameters ?? {})) if (key !== 'binary_data') throw new InvalidInputError(`outputs[${i}].parameters.${echo(key)}`, 'is not supported (outputs take binary_data only)');
      const binary = o.parameters?.binary_data;
      if (binary !== undefined && typeof binary !== 'boolean') throw new InvalidInputError(`outputs[${i}].parameters.binary_data`, 'must be true or false');
      wanted.set(o.name, binary as boolean | undefined as boolean);
    });
    return wanted;
  }

  // ---- infer: call ----

  async function run(model: FlowModel, operation: Operation, inputs: WireTensor[], p: Params, ctx: ReturnType<typeof loopContext>): Promise<{ outputs: OutputTensor[]; parameters: Record<string, string | number | boolean> }> {
    const max = config.maxItemsPerRequest;
    const expected = inputsOf(model, operation);
    const names = expected.map((e) => e.name);
    inputs.forEach((t, i) => {
      if (!names.includes(t.name)) throw new InvalidInputError(`inputs[${i}].name`, `'${echo(t.name)}' is not an input of ${operation} for model ${model.name}${names.length ? ` (${names.join(', ')})` : ' (it takes none: count, temperature and seed are parameters)'}`, { allowed: names });
    });
    if (operation !== 'sample' && inputs.length !== 1)
      throw new InvalidInputError('inputs', `${operation} takes exactly one input tensor, one of ${names.join(', ')}; got ${inputs.length}`, { allowed: names });
    const onlyFor = (ops: Operation[], keys: (keyof Params)[]) => {
      for (const k of keys) if (p[k] !== undefined && !ops.includes(operation)) throw new InvalidInputError(`parameters.${k}`, `is not a parameter of ${operation}`);
    };
    onlyFor(['likelihood'], ['scores', 'dequantization', 'draws', 'batchTest']);
    if (operation === 'sample') {
      const count = p.count ?? 1;
      const done = await service.sample(model, { count, temperature: p.temperature, seed: p.seed, output: p.output }, ctx);
      return { outputs: sampleOutputs(model, done, count), parameters: { temperature: done.temperature, seed: done.seed, output: done.output, redrawn: done.redrawn, passes: done.cost.passes } };
    }
    const t = inputs[0];
    const n = t.shape[0] ?? 0;
    const field = `inputs[0]`;
    checkCount(field, n, max, 'MAX_ITEMS_PER_REQUEST');
    const rowShape = t.shape.slice(1);
    const spec = expected.find((e) => e.name === t.name)!;
    if (operation === 'decode') {
      if (t.datatype !== 'FP32' && t.datatype !== 'FP64') throw new InvalidInputError(`${field}.datatype`, `latents are FP32 or FP64, got ${t.datatype}`);
      if (rowShape.reduce((a, b) => a * b, 1) !== model.dim || rowShape.length === 0) throw new InvalidInputError(`${field}.shape`, `must be [N, ${model.dim}], got [${t.shape.join(', ')}]`);
      const z = rowsFromFlat(`${field}.data`, t.values as ArrayLike<number>, n, model, null);
      const done = await service.decode(model, z, n, { output: p.output }, ctx);
      return { outputs: decodeOutputs(model, done, n), parameters: { output: done.output, passes: done.cost.passes } };
    }
    let x: DataRows;
    if (t.name === 'images') {
      if (t.datatype !== 'BYTES' || t.shape.length !== 1) throw new InvalidInputError(`${field}`, `images is BYTES of shape [N] (one encoded PNG, JPEG or WebP per element), got ${t.datatype} [${t.shape.join(', ')}]`);
      x = await rowsFromImages(`${field}.data`, t.values as Buffer[], model, { resize: false, maxPixels: config.maxImagePixels, maxRequestPixels: config.maxRequestPixels });
    } else {
      const dataShape = model.manifest.data.shape;
      const shapeOk = rowShape.join(',') === dataShape.join(',') || (rowShape.length === 1 && rowShape[0] === model.dim);
      if (!shapeOk) throw new InvalidInputError(`${field}.shape`, `must be [N, ${dataShape.join(', ')}]${dataShape.length > 1 ? ` or [N, ${model.dim}]` : ''}, got [${t.shape.join(', ')}]`, { expected: spec.shape });
      if (t.name === 'pixels') {
        if (t.datatype !== spec.datatype) throw new InvalidInputError(`${field}.datatype`, `pixels are ${spec.datatype}, got ${t.datatype}`);
        x = rowsFromPixels(`${field}.data`, t.values as ArrayLike<number>, n, model);
      } else {
        if (t.datatype !== 'FP32' && t.datatype !== 'FP64') throw new InvalidInputError(`${field}.datatype`, `x is FP32 or FP64 (values in data space), got ${t.datatype}`);
        x = rowsFromFlat(`${field}.data`, t.values as ArrayLike<number>, n, model, model.support);
      }
    }
    if (operation === 'encode') {
      const done = await service.encode(model, x, n, `${field}.data`, ctx);
      return { outputs: encodeOutputs(model, done, n), parameters: { passes: done.cost.passes } };
    }
    const answer = await service.likelihood(model, x, n, { field: `${field}.data`, scores: p.scores, dequantization: p.dequantization, draws: p.draws, seed: p.seed, batchTest: p.batchTest }, ctx);
    const bt = answer.batchTest;
    return {
      outputs: likelihoodOutputs(model, answer),
      parameters: {
        dequantization: answer.protocol.dequantization,
        ...(answer.protocol.draws !== undefined ? { draws: answer.protocol.draws, seed: answer.protocol.seed! } : {}),
        passes: answer.cost.passes,
        ...(bt ? { batchTestStatistic: bt.statistic, batchTestThreshold: bt.threshold, batchTestPValue: bt.pValue, batchTestIsOutOfDistribution: bt.isOutOfDistribution, batchTestBootstrapBatches: bt.bootstrapBatches } : {}),
      },
    };
  }

  // ---- infer: render ----

  function renderInfer(
    reply: FastifyReply,
    r: { name: string; id?: string; parameters: Record<string, string | number | boolean>; outputs: OutputTensor[]; wanted: Map<string, boolean> | null },
    binaryDefault = false,
  ) {
    const chosen = r.wanted ? r.outputs.filter((o) => r.wanted!.has(o.name)) : r.outputs;
    if (r.wanted) for (const name of r.wanted.keys()) if (!chosen.some((o) => o.name === name)) throw new InvalidInputError('outputs', `'${name}' is not computed for this request (a score left out of parameters.scores, or pixels of an output form other than "quantized")`);
    const binaries: Buffer[] = [];
    const outputs = chosen.map((o) => {
      const binary = r.wanted?.get(o.name) ?? binaryDefault;
      if (!binary) return { name: o.name, datatype: o.datatype, shape: o.shape, data: toJsonData(o.values, o.datatype) };
      const bytes = toBinary(o.values, o.datatype);
      binaries.push(bytes);
      return { name: o.name, datatype: o.datatype, shape: o.shape, parameters: { binary_data_size: bytes.length } };
    });
    const header = JSON.stringify({ model_name: r.name, model_version: MODEL_VERSION, ...(r.id !== undefined ? { id: r.id } : {}), parameters: r.parameters, outputs });
    if (binaries.length === 0) return reply.type('application/json').send(header);
    const head = Buffer.from(header);
    reply.header('inference-header-content-length', String(head.length)).type('application/octet-stream');
    return reply.send(Buffer.concat([head, ...binaries]));
  }
}

/** The body → its JSON header (validated) and the input tensors (JSON data or binary sections). */
async function readInfer(body: Buffer | undefined, headerLengthHeader: string | string[] | undefined, limits: { maxDepth: number; maxValues: number }): Promise<{ header: InferRequest; inputs: WireTensor[] }> {
  if (!body || body.length === 0) throw new ValidationError('body: must not be empty (send the inference request JSON)', { field: 'body', rule: 'required' });
  let headerLength = body.length;
  if (headerLengthHeader !== undefined) {
    const text = Array.isArray(headerLengthHeader) ? headerLengthHeader[0] : headerLengthHeader;
    headerLength = /^[0-9]{1,12}$/.test(text) ? Number(text) : NaN;
    if (!(headerLength >= 1 && headerLength <= body.length))
      throw new ValidationError(`Inference-Header-Content-Length: must be a whole number from 1 to the body length (${body.length}), got '${echo(text)}'`, { field: 'Inference-Header-Content-Length', rule: 'range' });
  }
  const json = await parseJsonPaced(body.subarray(0, headerLength), limits);
  if (!checkInferRequest.Check(json)) {
    const first = checkInferRequest.Errors(json).First()!;
    const field = first.path.replace(/^\//, '').replace(/\/(\d+)/g, '[$1]').replace(/\//g, '.') || 'body';
    throw new ValidationError(`${field}: ${first.message}`, { field, rule: 'schema' });
  }
  const header = json as InferRequest;
  const maxElements = Math.max(1, Math.floor(body.length)) * 8 + 1024;
  const sizes: number[] = [];
  const binaryIndex: number[] = [];
  const declared = header.inputs.map((t, i) => {
    const field = `inputs[${i}]`;
    const datatype = checkDeclared(t, field, maxElements);
    if (header.inputs.findIndex((o) => o.name === t.name) !== i) throw new InvalidInputError(`${field}.name`, `'${echo(t.name)}' is given twice`);
    for (const key of Object.keys(t.parameters ?? {})) if (key !== 'binary_data_size') throw new InvalidInputError(`${field}.parameters.${echo(key)}`, 'is not supported (inputs take binary_data_size only)');
    const size = t.parameters?.binary_data_size;
    if (size !== undefined) {
      if (!Number.isSafeInteger(size) || (size as number) < 0) throw new InvalidInputError(`${field}.parameters.binary_data_size`, 'must be a whole number of bytes ≥ 0');
      if (t.data !== undefined) throw new InvalidInputError(`${field}`, 'has both data and parameters.binary_data_size: send one');
      sizes.push(size as number);
      binaryIndex.push(i);
    } else if (t.data === undefined) throw new InvalidInputError(`${field}.data`, 'is required (or send the tensor as binary data with parameters.binary_data_size)');
    return datatype;
  });
  if (binaryIndex.length > 0 && headerLengthHeader === undefined)
    throw new ValidationError('Inference-Header-Content-Length: required when an input has parameters.binary_data_size (it gives the length of the JSON header)', { field: 'Inference-Header-Content-Length', rule: 'required' });
  const sections = splitBinary(body, headerLength, sizes);
  const inputs = header.inputs.map((t, i): WireTensor => {
    const k = binaryIndex.indexOf(i);
    const values = k >= 0 ? valuesFromBinary(sections[k], declared[i], t.shape, `inputs[${i}]`, maxElements) : valuesFromJson(t.data, declared[i], t.shape, `inputs[${i}]`);
    return { name: t.name, datatype: declared[i], shape: t.shape, values };
  });
  return { header, inputs };
}

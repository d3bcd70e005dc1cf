// A small Open Inference Protocol (KServe v2 REST) client for tests that puts requests on the wire
// exactly as Triton's Python HTTP client (tritonclient.http) does, and reads answers as its
// InferResult does. No published v2 client can be installed here (docs/open-inference-protocol.md),
// so this reproduces tritonclient/http/_utils.py (_get_inference_request, _get_error),
// _client.py (infer, the health and metadata calls), _infer_input.py, _requested_output.py and
// _infer_result.py:
//
// - infer POSTs carry no Content-Type; the body is the JSON header (compact, ASCII-only as
//   rapidjson writes it), then each binary input's bytes in input order;
// - Inference-Header-Content-Length is sent only when some input is binary, and gives the length of
//   the JSON header before any compression;
// - request compression compresses the whole body (gzip, or deflate meaning zlib's format) and sets
//   Content-Encoding; response compression only sets Accept-Encoding;
// - no requested outputs → parameters.binary_data_output = true; a requested output's binary_data
//   defaults to true; inputs are binary unless set with binary = false;
// - health and readiness calls only look at the status (200 = true); any other status is an error
//   whose message is the body's "error" member.
import { request as httpRequest } from 'node:http';
import { deflateSync, gunzipSync, gzipSync, inflateSync } from 'node:zlib';
import type { FastifyInstance } from 'fastify';

export type Datatype = 'BOOL' | 'UINT8' | 'UINT16' | 'UINT32' | 'UINT64' | 'INT8' | 'INT16' | 'INT32' | 'INT64' | 'FP16' | 'FP32' | 'FP64' | 'BYTES';
type Param = string | number | boolean;

/** What numpy's frombuffer gives per datatype (BOOL: one byte, 0 or 1). */
const TYPED = {
  BOOL: Uint8Array,
  UINT8: Uint8Array,
  UINT16: Uint16Array,
  UINT32: Uint32Array,
  INT8: Int8Array,
  INT16: Int16Array,
  INT32: Int32Array,
  FP32: Float32Array,
  FP64: Float64Array,
} as const;
type TypedName = keyof typeof TYPED;
export type NumericArray = InstanceType<(typeof TYPED)[TypedName]>;

/** A typed array of a datatype holding values (BOOL true/false as 1/0). */
function filled(Ctor: (typeof TYPED)[TypedName], values: ArrayLike<number | boolean>): NumericArray {
  const out = new Ctor(values.length);
  for (let i = 0; i < values.length; i++) out[i] = Number(values[i]);
  return out;
}

/** Little-endian bytes of values in a datatype (numpy's tobytes()); BYTES: a 4-byte length before each element. */
export function tensorBytes(values: ArrayLike<number> | ArrayLike<boolean> | Buffer[], datatype: Datatype): Buffer {
  if (datatype === 'BYTES') {
    return Buffer.concat(
      (values as Buffer[]).flatMap((b) => {
        const len = Buffer.alloc(4);
        len.writeUInt32LE(b.length);
        return [len, b];
      }),
    );
  }
  const Ctor = TYPED[datatype as TypedName];
  if (!Ctor) throw new Error(`v2-client: no binary writer for ${datatype}`);
  const typed = filled(Ctor, values as ArrayLike<number | boolean>);
  return Buffer.from(typed.buffer, typed.byteOffset, typed.byteLength);
}

/** Typed values from little-endian bytes (copied, so any offset works). */
export function fromBytes(bytes: Buffer, datatype: Datatype): NumericArray {
  const Ctor = TYPED[datatype as TypedName];
  if (!Ctor) throw new Error(`v2-client: no binary reader for ${datatype}`);
  const copy = new Uint8Array(bytes);
  return new Ctor(copy.buffer, 0, copy.byteLength / Ctor.BYTES_PER_ELEMENT);
}

/** tritonclient.http.InferInput. */
export class InferInput {
  private data: unknown[] | null = null;
  private raw: Buffer | null = null;
  private readonly parameters: Record<string, Param> = {};

  constructor(
    readonly name: string,
    readonly shape: number[],
    readonly datatype: Datatype,
  ) {}

  /** set_data_from_numpy(values, binary_data): flat row-major values; BYTES as Buffers (binary) or strings (JSON). */
  setData(values: ArrayLike<number> | ArrayLike<boolean> | Buffer[] | string[], binary = true): this {
    if (binary) {
      this.data = null;
      this.raw = tensorBytes(values as ArrayLike<number>, this.datatype);
      this.parameters.binary_data_size = this.raw.length;
    } else {
      delete this.parameters.binary_data_size;
      this.raw = null;
      this.data = Array.from(values as ArrayLike<unknown>, (v) => (this.datatype === 'BOOL' ? Boolean(v) : v));
    }
    return this;
  }

  binaryData(): Buffer | null {
    return this.raw;
  }

  /** _get_tensor(): the JSON object for this input. */
  tensor(): Record<string, unknown> {
    const t: Record<string, unknown> = { name: this.name, shape: this.shape, datatype: this.datatype };
    if (Object.keys(this.parameters).length > 0) t.parameters = { ...this.parameters };
    if (this.raw === null && this.data !== null) t.data = this.data;
    return t;
  }
}

/** tritonclient.http.InferRequestedOutput (binary_data defaults to true, as there). */
export class InferRequestedOutput {
  constructor(
    readonly name: string,
    readonly binaryData = true,
  ) {}

  tensor(): Record<string, unknown> {
    return { name: this.name, parameters: { binary_data: this.binaryData } };
  }
}

export interface InferOptions {
  modelVersion?: string;
  outputs?: InferRequestedOutput[];
  requestId?: string;
  /** Custom request parameters (the client refuses the reserved names, as tritonclient does). */
  parameters?: Record<string, Param>;
  requestCompression?: 'gzip' | 'deflate';
  responseCompression?: 'gzip' | 'deflate';
  headers?: Record<string, string>;
}

export interface WireRequest {
  method: 'GET' | 'POST';
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
}

export interface WireResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** rapidjson.dumps: compact, and every non-ASCII character escaped (ensure_ascii). */
export const asciiJson = (value: unknown): string => JSON.stringify(value).replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

const RESERVED = ['sequence_id', 'sequence_start', 'sequence_end', 'priority', 'binary_data_output'];
const quote = (s: string) => encodeURIComponent(s).replace(/%2F/g, '/');

/** _get_inference_request + infer(): the POST as tritonclient puts it on the wire. */
export function buildInferRequest(modelName: string, inputs: InferInput[], opts: InferOptions = {}): WireRequest & { jsonSize: number | null } {
  const request: Record<string, unknown> = {};
  const parameters: Record<string, Param> = {};
  if (opts.requestId) request.id = opts.requestId;
  request.inputs = inputs.map((i) => i.tensor());
  if (opts.outputs && opts.outputs.length > 0) request.outputs = opts.outputs.map((o) => o.tensor());
  else parameters.binary_data_output = true;
  for (const [key, value] of Object.entries(opts.parameters ?? {})) {
    if (RESERVED.includes(key)) throw new Error(`Parameter "${key}" is a reserved parameter and cannot be specified.`);
    parameters[key] = value;
  }
  if (Object.keys(parameters).length > 0) request.parameters = parameters;
  const json = asciiJson(request);
  const binaries = inputs.map((i) => i.binaryData()).filter((b): b is Buffer => b !== null);
  let body = Buffer.concat([Buffer.from(json), ...binaries]);
  const jsonSize = binaries.length > 0 ? json.length : null;

  const headers: Record<string, string> = { ...opts.headers };
  if (opts.requestCompression === 'gzip') {
    headers['Content-Encoding'] = 'gzip';
    body = gzipSync(body);
  } else if (opts.requestCompression === 'deflate') {
    headers['Content-Encoding'] = 'deflate';
    body = deflateSync(body); // zlib.compress: the zlib format, as Content-Encoding: deflate means
  }
  if (opts.responseCompression) headers['Accept-Encoding'] = opts.responseCompression;
  if (jsonSize !== null) headers['Inference-Header-Content-Length'] = String(jsonSize);
  const version = opts.modelVersion ?? '';
  const path = version !== '' ? `/v2/models/${quote(modelName)}/versions/${version}/infer` : `/v2/models/${quote(modelName)}/infer`;
  return { method: 'POST', path, headers, body, jsonSize };
}

/** tritonclient.utils.InferenceServerException. */
export class InferenceServerException extends Error {
  constructor(
    message: string,
    readonly status: string,
    /** The body's "error" member as sent (the protocol says: a string). */
    readonly error: unknown,
  ) {
    super(message);
  }
}

/** _get_error: null for 200, else the exception the Python client raises. */
export function errorOf(res: WireResponse): InferenceServerException | null {
  if (res.status === 200) return null;
  const text = res.body.toString('utf8');
  try {
    const parsed = text.length ? JSON.parse(text) : { error: 'client received an empty response from the server.' };
    return new InferenceServerException(String(parsed.error), String(res.status), parsed.error);
  } catch (e) {
    return new InferenceServerException(`an exception occurred in the client while decoding the response: ${e}\nresponse: ${text}`, String(res.status), undefined);
  }
}

function raiseIfError(res: WireResponse): void {
  const err = errorOf(res);
  if (err) throw err;
}

const header = (res: WireResponse, name: string): string | undefined => {
  const v = res.headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
};

interface OutputJson {
  name: string;
  datatype: Datatype;
  shape: number[];
  parameters?: Record<string, Param>;
  data?: unknown[];
}

/** tritonclient.http.InferResult. */
export class InferResult {
  readonly result: { model_name: string; model_version?: string; id?: string; parameters?: Record<string, Param>; outputs: OutputJson[] };
  /** The bytes after the JSON header (decompressed). */
  readonly buffer: Buffer;
  /** The JSON header's length (Inference-Header-Content-Length), or null when the body is all JSON. */
  readonly headerLength: number | null;
  private readonly offsets = new Map<string, number>();

  constructor(readonly response: WireResponse) {
    let body = response.body;
    const encoding = header(response, 'content-encoding');
    if (encoding === 'gzip') body = gunzipSync(body);
    else if (encoding === 'deflate') body = inflateSync(body);
    const length = header(response, 'inference-header-content-length');
    this.headerLength = length === undefined ? null : Number(length);
    if (this.headerLength === null) {
      this.result = JSON.parse(body.toString('utf8'));
      this.buffer = Buffer.alloc(0);
    } else {
      this.result = JSON.parse(body.subarray(0, this.headerLength).toString('utf8'));
      this.buffer = body.subarray(this.headerLength);
      let at = 0;
      for (const o of this.result.outputs) {
        const size = o.parameters?.binary_data_size;
        if (size !== undefined) {
          this.offsets.set(o.name, at);
          at += Number(size);
        }
      }
    }
  }

  getResponse() {
    return this.result;
  }

  getOutput(name: string): OutputJson | undefined {
    return this.result.outputs.find((o) => o.name === name);
  }

  /** The raw bytes of a binary output (null for a JSON output). */
  binary(name: string): Buffer | null {
    const o = this.getOutput(name);
    const size = o?.parameters?.binary_data_size;
    if (!o || size === undefined) return null;
    const at = this.offsets.get(name)!;
    return this.buffer.subarray(at, at + Number(size));
  }

  /** as_numpy(name), flat: typed values from binary data, or the JSON data (BOOL as 0/1). */
  asArray(name: string): NumericArray | null {
    const o = this.getOutput(name);
    if (!o) return null;
    const bytes = this.binary(name);
    if (bytes) return fromBytes(bytes, o.datatype);
    return filled(TYPED[o.datatype as TypedName], o.data as ArrayLike<number | boolean>);
  }
}

/** How requests reach the server: app.inject, or a real socket. */
export type Transport = (req: WireRequest) => Promise<WireResponse>;

/** app.inject: a Buffer payload gets no Content-Type from light-my-request. */
export const injectTransport =
  (app: FastifyInstance): Transport =>
  async (req) => {
    const res = await app.inject({ method: req.method, url: req.path, headers: req.headers, ...(req.body ? { payload: req.body } : {}) });
    return { status: res.statusCode, headers: res.headers as WireResponse['headers'], body: res.rawPayload };
  };

/** node:http over a real socket, sending only the given headers (plus Host, Connection and Content-Length, as geventhttpclient does). */
export const socketTransport =
  (base: string): Transport =>
  (req) =>
    new Promise((resolve, reject) => {
      const url = new URL(req.path, base);
      const headers = { ...req.headers, ...(req.body ? { 'Content-Length': String(req.body.length) } : {}) };
      const r = httpRequest(url, { method: req.method, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      });
      r.on('error', reject);
      r.end(req.body);
    });

/** tritonclient.http.InferenceServerClient, the calls tests need. */
export class V2Client {
  constructor(readonly send: Transport) {}

  private get(path: string, headers: Record<string, string> = {}) {
    return this.send({ method: 'GET', path, headers });
  }

  private modelPath(name: string, version = '') {
    return version !== '' ? `/v2/models/${quote(name)}/versions/${version}` : `/v2/models/${quote(name)}`;
  }

  async isServerLive(): Promise<boolean> {
    return (await this.get('/v2/health/live')).status === 200;
  }

  async isServerReady(): Promise<boolean> {
    return (await this.get('/v2/health/ready')).status === 200;
  }

  async isModelReady(name: string, version = ''): Promise<boolean> {
    return (await this.get(`${this.modelPath(name, version)}/ready`)).status === 200;
  }

  async getServerMetadata(): Promise<{ name: string; version: string; extensions: string[] }> {
    const res = await this.get('/v2');
    raiseIfError(res);
    return JSON.parse(res.body.toString('utf8'));
  }

  async getModelMetadata(name: string, version = ''): Promise<{ name: string; versions?: string[]; platform: string; inputs: { name: string; datatype: Datatype; shape: number[] }[]; outputs: { name: string; datatype: Datatype; shape: number[] }[]; parameters?: Record<string, Param> }> {
    const res = await this.get(this.modelPath(name, version));
    raiseIfError(res);
    return JSON.parse(res.body.toString('utf8'));
  }

  async infer(modelName: string, inputs: InferInput[], opts: InferOptions = {}): Promise<InferResult> {
    const res = await this.send(buildInferRequest(modelName, inputs, opts));
    raiseIfError(res);
    return new InferResult(res);
  }
}

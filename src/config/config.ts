// Service configuration: one TypeBox schema, its type derived with Static, read from env vars in
// SCREAMING_SNAKE (the schema key `maxBatchSize` is read from MAX_BATCH_SIZE), frozen, and passed
// to buildApp(config). Nothing else reads process.env.
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';

const Int = (def: number, min: number, max: number, description: string) =>
  Type.Integer({ default: def, minimum: min, maximum: max, description });

export const ConfigSchema = Type.Object({
  host: Type.String({ default: '0.0.0.0', description: 'Address to listen on.' }),
  port: Int(8080, 0, 65535, 'TCP port to listen on.'),
  modelDir: Type.String({ default: 'models', description: 'Folder holding one sub-folder per model package.' }),
  defaultModel: Type.String({ default: '', description: 'Model used when a request names none (default: glow-fashion if loaded, else the first loaded).' }),
  modelName: Type.String({
    default: '',
    description: "When MODEL_DIR is itself one package (flow.json at its root: what KServe's storage initializer makes of a storageUri naming one package), the name to serve it under (KServe passes --model_name); default: the name in its flow.json. Ignored, with a warning, for a folder of packages.",
  }),
  executionProvider: Type.Union([Type.Literal('auto'), Type.Literal('cuda'), Type.Literal('cpu')], {
    default: 'auto',
    description: 'auto uses CUDA when its provider libraries are installed and works (else CPU: info line when not installed, warning when installed but unusable); cuda fails a model whose CUDA session cannot be created.',
  }),
  cudaDeviceId: Int(0, 0, 64, 'CUDA device ordinal.'),
  workerThreads: Int(1, 1, 64, 'Inference workers (processes or threads, see INFERENCE_ISOLATION), each holding every model.'),
  intraOpThreads: Int(0, 0, 256, 'ONNX Runtime intra-op threads per session; 0 = the cores divided among WORKER_THREADS (onnxruntime-node\'s own default ran one thread on a 2-core VM).'),
  intraOpSpinning: Type.Boolean({ default: false, description: 'Let idle ONNX Runtime intra-op threads spin-wait for work (ORT default true); off leaves CPU to the HTTP thread.' }),
  bodyLimitBytes: Int(16 * 1024 * 1024, 1024, 1024 * 1024 * 1024, 'Largest request body of any content type (JSON, multipart), counted while it is read: 413 as soon as it is passed.'),
  maxItemsPerRequest: Int(256, 1, 100_000, 'Most inputs, images or latents in one request (400 above).'),
  maxSamplesPerRequest: Int(256, 1, 100_000, 'Largest `count` for /sample (400 above).'),
  maxImagePixels: Int(4096 * 4096, 1, 268_402_689, 'Largest decoded image (width × height); checked from the header before decoding.'),
  dynamicBatching: Type.Boolean({ default: true, description: 'Merge concurrent requests into one inference; false runs each request alone (for comparison).' }),
  maxBatchSize: Int(64, 1, 65_536, 'Most samples merged into one inference (dynamic batching).'),
  maxQueueDelayMs: Type.Number({ default: 0, minimum: 0, maximum: 10_000, description: 'Longest wait for more requests to fill a batch.' }),
  maxQueueSize: Int(1024, 1, 1_000_000, 'Most queued samples per model and direction; past it requests get 429.'),
  requestTimeoutMs: Int(30_000, 1, 3_600_000, 'Per-request deadline; late work is dropped from the queue and answered 504.'),
  inferenceIsolation: Type.Union([Type.Literal('process'), Type.Literal('thread')], {
    default: 'process',
    description: 'Where ONNX Runtime runs: child processes (a native crash or kill cannot take the server down) or worker threads (docs/reliability.md compares the two).',
  }),
  allowNoModels: Type.Boolean({ default: false, description: 'Keep running when no model package can be loaded (readiness reports why); by default such a start is refused.' }),
  // Connections (slow or idle clients; docs/reliability.md)
  headersTimeoutMs: Int(10_000, 100, 600_000, 'Most time to receive the request line and headers (408 and close after).'),
  readTimeoutMs: Int(30_000, 100, 3_600_000, 'Most time to receive a whole request, headers and body (408 and close after).'),
  idleTimeoutMs: Int(60_000, 100, 3_600_000, 'A connection with no traffic for this long is closed.'),
  keepAliveTimeoutMs: Int(5_000, 100, 600_000, 'An idle keep-alive connection is closed after this long (announced in the Keep-Alive header).'),
  maxConnections: Int(1024, 1, 1_000_000, 'Most open client connections; further connections are closed at once.'),
  // Request shape budgets (enforced while reading or before decoding)
  maxJsonDepth: Int(16, 2, 1024, 'Deepest nesting of arrays and objects in a JSON body.'),
  maxJsonValues: Int(262_144, 16, 100_000_000, 'Most values (numbers, strings, arrays, objects) in a JSON body: 256 rows of 1,024 values; raise it for larger models (each 1M values costs ~0.2 s of event-loop time to parse).'),
  maxRequestPixels: Int(16_777_216, 1, 1_073_741_824, 'Most decoded pixels (width × height summed over the images) in one request.'),
  // Shutdown on SIGTERM/SIGINT (docs/reliability.md, Shutdown)
  shutdownDelayMs: Int(5_000, 0, 600_000, 'After the signal, keep serving this long while /readyz answers 503, so load balancers stop routing here.'),
  shutdownTimeoutMs: Int(25_000, 1_000, 3_600_000, 'From the signal to exit at most (fits Kubernetes\' default 30 s grace); work still running then is answered 503.'),
  logLevel: Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)), { default: 'info', description: 'pino log level.' }),
  apiKey: Type.String({ default: '', description: 'When set, every route but /healthz, /readyz and /metrics requires Authorization: Bearer <key>.' }),
});

export type Config = Readonly<Static<typeof ConfigSchema>>;

export const envName = (key: string) => key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase();

/** Build the frozen config from env-like strings; throws a readable error naming the variable. */
export function loadConfig(env: Record<string, string | undefined> = {}, overrides: Partial<Static<typeof ConfigSchema>> = {}): Config {
  const raw: Record<string, unknown> = {};
  for (const key of Object.keys(ConfigSchema.properties)) {
    const value = env[envName(key)];
    if (value !== undefined && value !== '') raw[key] = value;
  }
  Object.assign(raw, overrides);
  const converted = Value.Convert(ConfigSchema, Value.Default(ConfigSchema, raw));
  const errors = [...Value.Errors(ConfigSchema, converted)];
  if (errors.length > 0) {
    const e = errors[0];
    const key = e.path.replace(/^\//, '');
    throw new Error(`invalid configuration: ${envName(key)}=${JSON.stringify(raw[key])}: ${e.message}`);
  }
  const config = converted as Static<typeof ConfigSchema>;
  const contradiction = contradictions(config)[0];
  if (contradiction) throw new Error(`invalid configuration: ${contradiction}`);
  return Object.freeze(config);
}

/** Settings that are each valid but cannot work together; each message names the variables. */
export function contradictions(c: Static<typeof ConfigSchema>): string[] {
  const out: string[] = [];
  const name = (k: keyof typeof c) => `${envName(k)}=${c[k]}`;
  const itemsPerRequest = Math.max(c.maxItemsPerRequest, c.maxSamplesPerRequest);
  if (c.maxQueueSize < itemsPerRequest)
    out.push(`${name('maxQueueSize')} is smaller than one allowed request (${name('maxItemsPerRequest')}, ${name('maxSamplesPerRequest')}): such a request could never be queued; raise MAX_QUEUE_SIZE or lower the per-request limits`);
  if (c.shutdownDelayMs >= c.shutdownTimeoutMs)
    out.push(`${name('shutdownDelayMs')} must be shorter than ${name('shutdownTimeoutMs')}: no time would be left to finish in-flight requests`);
  if (c.headersTimeoutMs > c.readTimeoutMs) out.push(`${name('headersTimeoutMs')} must not exceed ${name('readTimeoutMs')} (the headers are part of the request)`);
  if (c.maxImagePixels > c.maxRequestPixels) out.push(`${name('maxImagePixels')} must not exceed ${name('maxRequestPixels')}: one allowed image would overrun the request's decode budget`);
  if (c.defaultModel && !/^[a-z0-9][a-z0-9-]{0,63}$/.test(c.defaultModel)) out.push(`${name('defaultModel')} is not a model name (lower-case letters, digits and '-', at most 64)`);
  if (c.modelName && !/^[a-z0-9][a-z0-9-]{0,63}$/.test(c.modelName)) out.push(`${name('modelName')} is not a model name (lower-case letters, digits and '-', at most 64)`);
  return out;
}

/**
 * Command-line flags a model-serving platform passes to a runtime container (KServe's
 * ServingRuntime args: --model_name, --model_dir, --http_port, --grpc_port, --workers, …) → the
 * environment variables they mean here. Flags flowserve has no use for are returned as ignored, so
 * the server can say so and start anyway; none of them is an error. Accepts `--flag=value` and
 * `--flag value`.
 */
export const FLAG_TO_ENV: Record<string, string> = { http_port: 'PORT', model_dir: 'MODEL_DIR', model_name: 'MODEL_NAME', workers: 'WORKER_THREADS' };

export function envFromArgs(argv: readonly string[]): { env: Record<string, string>; ignored: string[] } {
  const env: Record<string, string> = {};
  const ignored: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const m = /^--?([A-Za-z][\w-]*)(?:=(.*))?$/.exec(arg);
    if (!m) {
      ignored.push(arg);
      continue;
    }
    const name = m[1].replace(/-/g, '_').toLowerCase();
    let value = m[2];
    if (value === undefined && i + 1 < argv.length && !argv[i + 1].startsWith('--')) value = argv[++i];
    const target = FLAG_TO_ENV[name];
    if (target && value !== undefined && value !== '') env[target] = value;
    else ignored.push(value === undefined ? `--${name}` : `--${name}=${value}`);
  }
  return { env, ignored };
}

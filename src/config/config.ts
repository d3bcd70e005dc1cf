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
  executionProvider: Type.Union([Type.Literal('auto'), Type.Literal('cuda'), Type.Literal('cpu')], {
    default: 'auto',
    description: 'auto tries CUDA then falls back to CPU with a warning; cuda fails a model whose CUDA session cannot be created.',
  }),
  cudaDeviceId: Int(0, 0, 64, 'CUDA device ordinal.'),
  workerThreads: Int(1, 1, 64, 'Inference worker threads (each holds every model).'),
  intraOpThreads: Int(0, 0, 256, 'ONNX Runtime intra-op threads per session (0 = ORT default: one per core).'),
  intraOpSpinning: Type.Boolean({ default: false, description: 'Let idle ONNX Runtime intra-op threads spin-wait for work (ORT default true); off leaves CPU to the HTTP thread.' }),
  bodyLimitBytes: Int(16 * 1024 * 1024, 1024, 1024 * 1024 * 1024, 'Largest request body accepted (413 above).'),
  maxItemsPerRequest: Int(256, 1, 100_000, 'Most inputs, images or latents in one request (400 above).'),
  maxSamplesPerRequest: Int(256, 1, 100_000, 'Largest `count` for /sample (400 above).'),
  maxImagePixels: Int(4096 * 4096, 1, 268_402_689, 'Largest decoded image (width × height); checked from the header before decoding.'),
  dynamicBatching: Type.Boolean({ default: true, description: 'Merge concurrent requests into one inference; false runs each request alone (for comparison).' }),
  maxBatchSize: Int(64, 1, 65_536, 'Most samples merged into one inference (dynamic batching).'),
  maxQueueDelayMs: Type.Number({ default: 0, minimum: 0, maximum: 10_000, description: 'Longest wait for more requests to fill a batch.' }),
  maxQueueSize: Int(1024, 1, 1_000_000, 'Most queued samples per model and direction; past it requests get 429.'),
  requestTimeoutMs: Int(30_000, 1, 3_600_000, 'Per-request deadline; late work is dropped from the queue and answered 504.'),
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
  return Object.freeze(converted as Static<typeof ConfigSchema>);
}

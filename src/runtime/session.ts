// The one way an inference runs: runSession() checks the feed names and shapes against the
// session's metadata before calling ORT, and when ORT fails it says which tensors it was given
// (transformers.js habit), so a shape bug reads as one line in the log.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { arch, platform } from 'node:os';
import { dirname, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { dimsToString, type TensorData } from '../tensor/tensor.js';

export interface IoMeta {
  name: string;
  /** Numbers are fixed, strings are symbolic (dynamic) dims. */
  shape: (number | string)[];
}

export type Provider = 'cuda' | 'cpu';

export interface SessionOptions {
  provider: 'auto' | 'cuda' | 'cpu';
  deviceId: number;
  intraOpThreads: number;
  /** session.intra_op.allow_spinning: spinning pool threads cut ORT's wake-up latency but burn the cores the event loop needs. */
  intraOpSpinning: boolean;
}

export interface LoadedSession {
  session: ort.InferenceSession;
  provider: Provider;
  inputs: IoMeta[];
  outputs: IoMeta[];
  /** Set when `auto` fell back to CPU: why CUDA was not used. */
  fallbackReason?: string;
}

/**
 * The fallback reason when the CUDA EP was never installed here: onnxruntime-node ships without it
 * (the .npmrc skips its download), so on a CPU machine this is the normal case, not a fault.
 */
export const CUDA_NOT_INSTALLED = 'CUDA execution provider libraries are not installed (see README, GPU)';

/** The CUDA EP's shared libraries, as onnxruntime-node's install script puts them next to its binding. */
export function cudaProviderFiles(): string[] {
  const os = platform();
  if (os !== 'linux' && os !== 'win32') return [];
  const pkgDir = dirname(dirname(createRequire(import.meta.url).resolve('onnxruntime-node')));
  const bin = join(pkgDir, 'bin', 'napi-v6', os, arch());
  const lib = (n: string) => (os === 'win32' ? `onnxruntime_providers_${n}.dll` : `libonnxruntime_providers_${n}.so`);
  return [join(bin, lib('cuda')), join(bin, lib('shared'))];
}

let cudaInstalled: boolean | undefined;
/**
 * Whether the CUDA EP can exist in this install, checked on disk: asking ORT instead makes it print
 * a red "Failed to load library" error on every CPU-only start, an alarm that needs no action.
 */
export function cudaProviderInstalled(): boolean {
  const files = cudaProviderFiles();
  cudaInstalled ??= files.length > 0 && files.every((f) => existsSync(f));
  return cudaInstalled;
}

const meta = (m: readonly ort.InferenceSession.ValueMetadata[]): IoMeta[] =>
  m.map((v) => ({ name: v.name, shape: v.isTensor ? [...v.shape] : [] }));

/** A graph as bytes, with the external-data files it names (all in memory: nothing is read from disk here). */
export interface GraphBytes {
  graph: Uint8Array;
  externalData?: { path: string; data: Uint8Array }[];
}

export async function createSession(source: GraphBytes, opts: SessionOptions): Promise<LoadedSession> {
  const base: ort.InferenceSession.SessionOptions = {
    graphOptimizationLevel: 'all',
    ...(source.externalData?.length ? { externalData: source.externalData } : {}),
    ...(opts.intraOpThreads > 0 ? { intraOpNumThreads: opts.intraOpThreads } : {}),
    extra: { session: { intra_op: { allow_spinning: opts.intraOpSpinning ? '1' : '0' } } },
  };
  const open = async (provider: Provider) => {
    const session = await ort.InferenceSession.create(source.graph, {
      ...base,
      executionProviders: provider === 'cuda' ? [{ name: 'cuda', deviceId: opts.deviceId }] : ['cpu'],
    });
    return { session, provider, inputs: meta(session.inputMetadata), outputs: meta(session.outputMetadata) };
  };
  if (opts.provider === 'cpu') return open('cpu');
  // `cuda` still asks ORT, so that an explicit request fails with ORT's own reason.
  if (opts.provider === 'auto' && !cudaProviderInstalled()) return { ...(await open('cpu')), fallbackReason: CUDA_NOT_INSTALLED };
  try {
    return await open('cuda');
  } catch (err) {
    if (opts.provider === 'cuda') throw err;
    return { ...(await open('cpu')), fallbackReason: err instanceof Error ? err.message : String(err) };
  }
}

export class SessionInputError extends Error {}

export function checkFeeds(inputs: readonly IoMeta[], feeds: Record<string, TensorData>): void {
  const expected = inputs.map((i) => i.name);
  const given = Object.keys(feeds);
  const missing = expected.filter((n) => !(n in feeds));
  const extra = given.filter((n) => !expected.includes(n));
  if (missing.length || extra.length)
    throw new SessionInputError(`feed names do not match the graph: missing [${missing.join(', ')}], unexpected [${extra.join(', ')}]`);
  for (const input of inputs) {
    const { dims, data } = feeds[input.name];
    const ok =
      dims.length === input.shape.length &&
      input.shape.every((d, i) => typeof d !== 'number' || d < 0 || d === dims[i]) &&
      data.length === dims.reduce((a, b) => a * b, 1);
    if (!ok) throw new SessionInputError(`input '${input.name}': got ${dimsToString(dims)} (${data.length} values), graph expects ${dimsToString(input.shape)}`);
  }
}

export async function runSession(loaded: LoadedSession, feeds: Record<string, TensorData>, label: string): Promise<Record<string, TensorData>> {
  checkFeeds(loaded.inputs, feeds);
  const ortFeeds: Record<string, ort.Tensor> = {};
  for (const [name, t] of Object.entries(feeds)) ortFeeds[name] = new ort.Tensor('float32', t.data, t.dims);
  let results: ort.InferenceSession.OnnxValueMapType;
  try {
    results = await loaded.session.run(ortFeeds);
  } catch (err) {
    const shapes = Object.entries(feeds).map(([n, t]) => `${n}${dimsToString(t.dims)}`).join(', ');
    throw new Error(`${label}: ORT run failed with inputs ${shapes}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  const out: Record<string, TensorData> = {};
  for (const o of loaded.outputs) {
    const t = results[o.name] as ort.Tensor;
    if (t.type !== 'float32') throw new Error(`${label}: output '${o.name}' is ${t.type}, expected float32`);
    out[o.name] = { dims: [...t.dims], data: t.data as Float32Array };
  }
  return out;
}

// One served flow: the TypeScript glue around its two graphs.
//   encode:  y = pre(x);  (parts, ld_graph) = forward(y, W…);  ε = pack(parts)
//            logDet = ld_pre + ld_graph + Σ spatial·Σ log|s|            (log|det ∂ε/∂x|)
//   decode:  y = inverse(unpack(ε), W⁻¹…);  x = pre⁻¹(y);  logDet = log|det ∂x/∂ε| (= −forward's)
//   log p(x) = Σ log N(εᵢ; 0, 1) + logDet;  sample: ε ~ N(0, T²·I), then decode.
import type { Manifest } from '../config/manifest-schema.js';
import { bitsPerDim, logProbability } from '../flow/density.js';
import { packLatents, product, unpackLatents } from '../flow/layout.js';
import { preprocessing } from '../flow/preprocess.js';
import { logStandardNormal, sampleStandardNormal } from '../flow/prior.js';
import { Rng } from '../flow/random.js';
import type { Bijection } from '../flow/bijection.js';
import type { Provider } from '../runtime/session.js';
import { toFloat32, type TensorData } from '../tensor/tensor.js';
import type { Batcher } from './batcher.js';
import type { LuLayer, ModelPackage } from './registry.js';

export interface Encoded {
  latents: Float64Array;
  logDet: Float64Array;
}

export interface Decoded {
  outputs: Float64Array;
  logDet: Float64Array;
}

export interface Likelihood {
  logLikelihood: number;
  bitsPerDim: number;
}

export class FlowModel {
  readonly name: string;
  readonly manifest: Manifest;
  readonly dim: number;
  readonly pre: Bijection;
  readonly lu: LuLayer[];
  readonly luLogDet: number;

  constructor(
    pkg: ModelPackage,
    readonly provider: Provider,
    private readonly forwardBatcher: Batcher,
    private readonly inverseBatcher: Batcher,
  ) {
    this.name = pkg.name;
    this.manifest = pkg.manifest;
    this.dim = product(pkg.manifest.data.shape);
    this.pre = preprocessing(pkg.manifest.preprocessing.transform, this.dim);
    this.lu = pkg.lu;
    this.luLogDet = pkg.lu.reduce((s, l) => s + l.logDet, 0);
  }

  /** The LU matrices as graph inputs (float32), for the forward or inverse graph. */
  static luFeeds(lu: readonly LuLayer[], direction: 'forward' | 'inverse'): Record<string, TensorData> {
    const feeds: Record<string, TensorData> = {};
    for (const l of lu) {
      const name = direction === 'forward' ? l.forwardInput : l.inverseInput;
      feeds[name] = { dims: [l.channels, l.channels], data: toFloat32(direction === 'forward' ? l.w : l.wInv) };
    }
    return feeds;
  }

  /** x: n flat rows in data space (already validated). */
  async encode(x: ArrayLike<number>, n: number, timeoutMs?: number): Promise<Encoded> {
    const { values: y, logDet: preLd } = this.pre.forward(x, n);
    const out = await this.forwardBatcher.submit({ x: { dims: [n, ...this.manifest.data.shape], data: toFloat32(y) } }, n, timeoutMs);
    const parts = this.manifest.latent.parts;
    const latents = packLatents(parts, parts.map((p) => out[p.name].data), n);
    const graphLd = out.logDet.data;
    const logDet = new Float64Array(n);
    for (let i = 0; i < n; i++) logDet[i] = preLd[i] + graphLd[i] + this.luLogDet;
    return { latents, logDet };
  }

  /** latents: n flat standard-normal rows. Outputs are in data space, unclamped. */
  async decode(latents: ArrayLike<number>, n: number, timeoutMs?: number): Promise<Decoded> {
    const parts = this.manifest.latent.parts;
    const split = unpackLatents(parts, latents, n);
    const feeds: Record<string, TensorData> = {};
    parts.forEach((p, k) => (feeds[p.name] = { dims: [n, ...p.shape], data: split[k] }));
    const out = await this.inverseBatcher.submit(feeds, n, timeoutMs);
    const { values: outputs, logDet: preLd } = this.pre.inverse(out.x.data, n);
    const graphLd = out.logDet.data;
    const logDet = new Float64Array(n);
    for (let i = 0; i < n; i++) logDet[i] = graphLd[i] + preLd[i] - this.luLogDet;
    return { outputs, logDet };
  }

  /** ε ~ N(0, T²·I) from the seeded stream, decoded; logLikelihood is the model density of each (unquantized) sample. */
  async sample(count: number, temperature: number, seed: number): Promise<Decoded & { logLikelihood: Float64Array }> {
    const eps = sampleStandardNormal(new Rng(seed), count, this.dim, temperature);
    const decoded = await this.decode(eps, count);
    const logLikelihood = logStandardNormal(eps, count, this.dim);
    for (let i = 0; i < count; i++) logLikelihood[i] -= decoded.logDet[i];
    return { ...decoded, logLikelihood };
  }

  async likelihood(x: ArrayLike<number>, n: number): Promise<Likelihood[]> {
    const { latents, logDet } = await this.encode(x, n);
    const logp = logProbability(latents, logDet, n, this.dim);
    return Array.from(logp, (lp) => ({ logLikelihood: lp, bitsPerDim: bitsPerDim(lp, this.dim, this.manifest.data.bitDepth) }));
  }
}

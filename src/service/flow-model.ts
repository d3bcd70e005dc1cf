// One served flow: preprocessing, the standard-normal prior and temperature around its family's
// program (src/service/programs/), which drives the package's graphs through their batchers.
//   encode:  y = pre(x);  (ε, ld) = program.forward(y);  logDet = ld_pre + ld       (log|det ∂ε/∂x|)
//   decode:  (y, ld) = program.inverse(ε);  x = pre⁻¹(y);  logDet = ld + ld_pre⁻¹   (log|det ∂x/∂ε|)
//   log p(x) = Σ log N(εᵢ; 0, 1) + logDet;  sample: ε ~ N(0, T²·I), then decode.
// Every call carries the request's deadline and cancellation signal (LoopContext) into the loop.
import type { Manifest } from '../config/manifest-schema.js';
import type { ScoreName } from '../flow/anomaly.js';
import { bitsPerDim, logProbability } from '../flow/density.js';
import { product } from '../flow/layout.js';
import { preprocessing, support, type Support } from '../flow/preprocess.js';
import { logStandardNormal, sampleStandardNormal } from '../flow/prior.js';
import { Rng } from '../flow/random.js';
import type { Bijection } from '../flow/bijection.js';
import type { Provider } from '../runtime/session.js';
import type { Batcher } from './batcher.js';
import type { Cost, FlowProgram, GraphRunner, LoopContext } from './programs/types.js';
import type { ModelPackage } from './registry.js';

export interface Encoded {
  latents: Float64Array;
  logDet: Float64Array;
  cost: Cost;
}

export interface Decoded {
  outputs: Float64Array;
  logDet: Float64Array;
  cost: Cost;
}

export interface Likelihood {
  logLikelihood: number;
  bitsPerDim: number;
}

const MAX_REDRAW_ROUNDS = 8;
/** The request schema's bound on temperature, for packages that carry no measured range. */
export const MAX_API_TEMPERATURE = 2;

function nonFiniteRows(values: Float64Array, perRow: Float64Array, n: number, d: number): number[] {
  const bad: number[] = [];
  for (let i = 0; i < n; i++) {
    let ok = Number.isFinite(perRow[i]);
    for (let j = i * d, end = j + d; ok && j < end; j++) ok = Number.isFinite(values[j]);
    if (!ok) bad.push(i);
  }
  return bad;
}

export class FlowModel {
  readonly name: string;
  readonly manifest: Manifest;
  readonly dim: number;
  readonly pre: Bijection;
  readonly scores: readonly ScoreName[];
  /** The data values the density is defined on (the preprocessing's support). */
  readonly support: Support;
  /** Largest temperature /sample accepts: the package's measured range, or the API's 2 when it has none. */
  readonly maxTemperature: number;

  constructor(
    pkg: ModelPackage,
    readonly provider: Provider,
    readonly program: FlowProgram,
    private readonly batchers: ReadonlyMap<string, Batcher>,
  ) {
    this.name = pkg.name;
    this.manifest = pkg.manifest;
    this.dim = product(pkg.manifest.data.shape);
    this.pre = preprocessing(pkg.manifest.preprocessing.transform, this.dim);
    this.scores = pkg.scores;
    this.support = support(pkg.manifest.preprocessing.transform);
    this.maxTemperature = pkg.manifest.sampling?.maxTemperature ?? MAX_API_TEMPERATURE;
  }

  /** Graph calls for one request: through the graph's batcher, with the request's deadline and signal. */
  private runner(ctx: LoopContext): GraphRunner {
    return (graph, feeds, rows) => this.batchers.get(graph)!.submit(feeds, rows, ctx);
  }

  /** x: n flat rows in data space (already validated). */
  async encode(x: ArrayLike<number>, n: number, ctx: LoopContext = {}): Promise<Encoded> {
    const { values: y, logDet: preLd } = this.pre.forward(x, n);
    const out = await this.program.forward(y, n, this.runner(ctx), ctx);
    for (let i = 0; i < n; i++) out.logDet[i] += preLd[i];
    return { latents: out.values, logDet: out.logDet, cost: out.cost };
  }

  /** latents: n flat standard-normal rows. Outputs are in data space, unclamped. */
  async decode(latents: ArrayLike<number>, n: number, ctx: LoopContext = {}): Promise<Decoded> {
    const out = await this.program.inverse(Float64Array.from(latents), n, this.runner(ctx), ctx);
    const { values: outputs, logDet: preLd } = this.pre.inverse(out.values, n);
    for (let i = 0; i < n; i++) out.logDet[i] += preLd[i];
    return { outputs, logDet: out.logDet, cost: out.cost };
  }

  /**
   * ε ~ N(0, T²·I) from the seeded stream, decoded; logLikelihood is the model density of each
   * (unquantized) sample. A draw whose inverse overflows float32 (possible far in the tails at high
   * T) is redrawn from the same stream, so the answer stays a function of the seed; `redrawn` counts them.
   */
  async sample(count: number, temperature: number, seed: number, ctx: LoopContext = {}): Promise<Decoded & { latents: Float64Array; logLikelihood: Float64Array; redrawn: number }> {
    const rng = new Rng(seed);
    const d = this.dim;
    const eps = sampleStandardNormal(rng, count, d, temperature);
    const decoded = await this.decode(eps, count, ctx);
    let redrawn = 0;
    for (let round = 0; round < MAX_REDRAW_ROUNDS; round++) {
      const bad = nonFiniteRows(decoded.outputs, decoded.logDet, count, d);
      if (bad.length === 0) break;
      redrawn += bad.length;
      const fresh = sampleStandardNormal(rng, bad.length, d, temperature);
      const again = await this.decode(fresh, bad.length, ctx);
      bad.forEach((row, k) => {
        eps.set(fresh.subarray(k * d, (k + 1) * d), row * d);
        decoded.outputs.set(again.outputs.subarray(k * d, (k + 1) * d), row * d);
        decoded.logDet[row] = again.logDet[k];
      });
    }
    if (nonFiniteRows(decoded.outputs, decoded.logDet, count, d).length > 0)
      throw new Error(`${this.name}: samples stay non-finite after ${MAX_REDRAW_ROUNDS} redraws at temperature ${temperature}`);
    const logLikelihood = logStandardNormal(eps, count, d);
    for (let i = 0; i < count; i++) logLikelihood[i] -= decoded.logDet[i];
    return { ...decoded, latents: eps, logLikelihood, redrawn };
  }

  async likelihood(x: ArrayLike<number>, n: number, ctx: LoopContext = {}): Promise<Likelihood[]> {
    return (await this.likelihoodWithCost(x, n, ctx)).results;
  }

  async likelihoodWithCost(x: ArrayLike<number>, n: number, ctx: LoopContext = {}): Promise<{ results: Likelihood[]; cost: Cost }> {
    const { latents, logDet, cost } = await this.encode(x, n, ctx);
    const logp = logProbability(latents, logDet, n, this.dim);
    return { cost, results: Array.from(logp, (lp) => ({ logLikelihood: lp, bitsPerDim: bitsPerDim(lp, this.dim, this.manifest.data.bitDepth) })) };
  }
}

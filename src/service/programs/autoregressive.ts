// Autoregressive flows (MAF, IAF): K layers, each a MADE conditioner graph c(x) → (shift, logScale)
// whose output i depends on inputs < i. Layer k reads its input u as v = u[perm] and, in the
// forward direction (data → latent):
//   MAF:  z = (v − shift(v))·exp(−logScale(v))          one pass;   logDet −= Σ logScale(v)
//   IAF:  zᵢ = (vᵢ − shiftᵢ(z))·exp(−logScaleᵢ(z))        D passes (pass i fixes zᵢ)
// and in the inverse direction (latent → data), layers K−1 … 0:
//   MAF:  vᵢ = zᵢ·exp(logScaleᵢ(v)) + shiftᵢ(v)          D passes;   logDet += Σ logScale
//   IAF:  v = z·exp(logScale(z)) + shift(z)              one pass
// then u[perm[i]] = vᵢ. Each pass is one batched graph call, merged with other requests' passes of
// the same layer whatever step they are at.
import type { Manifest } from '../../config/manifest-schema.js';
import { Value } from '@sinclair/typebox/value';
import { AutoregressiveProgram } from '../../config/manifest-schema.js';
import { toFloat32 } from '../../tensor/tensor.js';
import type { ModelPackage } from '../registry.js';
import { ProgramError, throwIfAborted, type FlowProgram, type GraphRunner, type LoopContext, type Transformed } from './types.js';

type Layer = { graph: string; permutation: number[] };

function layersOf(manifest: Manifest, d: number): Layer[] {
  const program = manifest.program;
  if (!program || !Value.Check(AutoregressiveProgram, program)) throw new ProgramError(`family ${manifest.family} needs program.kind "autoregressive" with its layers`);
  for (const [k, l] of program.layers.entries()) {
    const seen = new Set(l.permutation);
    if (l.permutation.length !== d || seen.size !== d || l.permutation.some((p) => p >= d)) throw new ProgramError(`program.layers[${k}].permutation is not a permutation of 0…${d - 1}`);
    if (!(l.graph in manifest.graphs)) throw new ProgramError(`program.layers[${k}].graph '${l.graph}' is not in graphs`);
  }
  return program.layers;
}

export function autoregressiveProgram(pkg: ModelPackage, kind: 'maf' | 'iaf'): FlowProgram {
  const d = pkg.manifest.latent.size;
  const layers = layersOf(pkg.manifest, d);
  const graphNames = [...new Set(layers.map((l) => l.graph))];

  /** One conditioner pass over n rows of x (n × d). */
  const condition = async (run: GraphRunner, graph: string, x: Float64Array, n: number) => {
    const out = await run(graph, { x: { dims: [n, d], data: toFloat32(x) } }, n);
    return { shift: out.shift.data, logScale: out.logScale.data };
  };
  const permute = (u: Float64Array, n: number, perm: number[]) => {
    const v = new Float64Array(n * d);
    for (let r = 0; r < n; r++) for (let i = 0; i < d; i++) v[r * d + i] = u[r * d + perm[i]];
    return v;
  };
  const unpermute = (v: Float64Array, n: number, perm: number[]) => {
    const u = new Float64Array(n * d);
    for (let r = 0; r < n; r++) for (let i = 0; i < d; i++) u[r * d + perm[i]] = v[r * d + i];
    return u;
  };

  /** The D-pass direction of one layer: fix position i at pass i (the conditioner reads `known`). */
  async function sequential(run: GraphRunner, ctx: LoopContext, graph: string, given: Float64Array, n: number, step: (given: number, shift: number, logScale: number) => number, sign: number, logDet: Float64Array) {
    const known = new Float64Array(n * d);
    for (let i = 0; i < d; i++) {
      throwIfAborted(ctx);
      const { shift, logScale } = await condition(run, graph, known, n);
      for (let r = 0; r < n; r++) {
        const j = r * d + i;
        known[j] = step(given[j], shift[j], logScale[j]);
        logDet[r] += sign * logScale[j];
      }
    }
    return known;
  }

  /** The one-pass direction of one layer. */
  async function parallel(run: GraphRunner, graph: string, input: Float64Array, conditionOn: Float64Array, n: number, step: (x: number, shift: number, logScale: number) => number, sign: number, logDet: Float64Array) {
    const { shift, logScale } = await condition(run, graph, conditionOn, n);
    const out = new Float64Array(n * d);
    for (let j = 0; j < n * d; j++) {
      out[j] = step(input[j], shift[j], logScale[j]);
      logDet[Math.floor(j / d)] += sign * logScale[j];
    }
    return out;
  }

  const toLatent = (v: number, shift: number, logScale: number) => (v - shift) * Math.exp(-logScale);
  const toData = (z: number, shift: number, logScale: number) => z * Math.exp(logScale) + shift;

  return {
    graphs: graphNames.map((name) => ({ name, inputs: ['x'], outputs: ['shift', 'logScale'] })),
    constFeeds: () => ({}),
    async forward(y, n, run, ctx): Promise<Transformed> {
      let u = y;
      const logDet = new Float64Array(n);
      let passes = 0;
      for (const layer of layers) {
        throwIfAborted(ctx);
        const v = permute(u, n, layer.permutation);
        if (kind === 'maf') {
          u = await parallel(run, layer.graph, v, v, n, toLatent, -1, logDet);
          passes += 1;
        } else {
          u = await sequential(run, ctx, layer.graph, v, n, toLatent, -1, logDet);
          passes += d;
        }
      }
      return { values: u, logDet, cost: { passes } };
    },
    async inverse(latents, n, run, ctx): Promise<Transformed> {
      let w = latents;
      const logDet = new Float64Array(n);
      let passes = 0;
      for (let k = layers.length - 1; k >= 0; k--) {
        throwIfAborted(ctx);
        const layer = layers[k];
        let v: Float64Array;
        if (kind === 'maf') {
          v = await sequential(run, ctx, layer.graph, w, n, toData, 1, logDet);
          passes += d;
        } else {
          v = await parallel(run, layer.graph, w, w, n, toData, 1, logDet);
          passes += 1;
        }
        w = unpermute(v, n, layer.permutation);
      }
      return { values: w, logDet, cost: { passes } };
    },
    cost: () => {
      const one = { kind: 'passes' as const, passes: layers.length, description: `${layers.length} conditioner passes, one per layer` };
      const many = { kind: 'passes' as const, passes: layers.length * d, description: `${layers.length * d} sequential conditioner passes (${d} per layer, one per dimension)` };
      return kind === 'maf' ? { forward: one, inverse: many } : { forward: many, inverse: one };
    },
  };
}

// Planar flows (Rezende & Mohamed 2015): x = z + u·tanh(wᵀz + b) per layer. The inverse direction
// (latent → data) and its logDet Σ log|1 + (1 − tanh²(wᵀz + b))·uᵀw| are one graph, `generate`.
// The forward direction (data → latent) has no closed form: per layer, from the last to the first,
// TypeScript solves the monotone scalar equation α + uᵀw·tanh(α + b) = wᵀx (uᵀw > −1) by bracketed
// Newton and sets z = x − u·tanh(α + b) (src/flow/planar.ts), reporting the iterations.
import { Value } from '@sinclair/typebox/value';
import { PlanarFileSchema, PlanarProgram } from '../../config/manifest-schema.js';
import { planarForward, type PlanarLayer } from '../../flow/planar.js';
import { toFloat32 } from '../../tensor/tensor.js';
import type { ModelPackage } from '../registry.js';
import { ProgramError, throwIfAborted, type FlowProgram } from './types.js';

function layersOf(pkg: ModelPackage): PlanarLayer[] {
  const { manifest } = pkg;
  const program = manifest.program;
  if (!program || !Value.Check(PlanarProgram, program)) throw new ProgramError('family planar needs program.kind "planar" with its layer file');
  const bytes = pkg.bytes.files.get(program.file);
  if (!bytes) throw new ProgramError(`program.file '${program.file}' is not in files`);
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    throw new ProgramError(`${program.file} is not valid JSON`);
  }
  if (!Value.Check(PlanarFileSchema, json)) throw new ProgramError(`${program.file} does not match its schema (layers of u, w, b)`);
  const d = manifest.latent.size;
  const layers = json.layers;
  if (layers.length !== program.layers) throw new ProgramError(`${program.file} has ${layers.length} layers, flow.json says ${program.layers}`);
  layers.forEach((l, k) => {
    if (l.u.length !== d || l.w.length !== d) throw new ProgramError(`${program.file} layer ${k}: u and w need ${d} values`);
    const uw = l.u.reduce((s, v, i) => s + v * l.w[i], 0);
    if (!(uw > -1)) throw new ProgramError(`${program.file} layer ${k}: uᵀw = ${uw} ≤ −1, the layer is not invertible`);
  });
  return layers;
}

export function planarProgram(pkg: ModelPackage): FlowProgram {
  const layers = layersOf(pkg);
  const d = pkg.manifest.latent.size;
  return {
    graphs: [{ name: 'generate', inputs: ['z'], outputs: ['x', 'logDet'] }],
    constFeeds: () => ({}),
    async forward(y, n, _run, ctx) {
      throwIfAborted(ctx);
      const { values, logDet, iterations } = planarForward(layers, y, n, d);
      return { values, logDet, cost: { passes: 0, iterations } };
    },
    async inverse(latents, n, run) {
      const out = await run('generate', { z: { dims: [n, d], data: toFloat32(latents) } }, n);
      return { values: Float64Array.from(out.x.data), logDet: Float64Array.from(out.logDet.data), cost: { passes: 1 } };
    },
    cost: () => ({
      forward: { kind: 'adaptive', description: `${layers.length} layers inverted in TypeScript, bracketed Newton per layer and row (no graph call)` },
      inverse: { kind: 'passes', passes: 1, description: 'one pass of the generate graph' },
    }),
  };
}

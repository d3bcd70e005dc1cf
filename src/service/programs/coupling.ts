// Coupling flows (NICE, RealNVP, Glow): one forward graph and one inverse graph, each a single pass.
//   forward: (parts, ld) = forward(y, W…);  ε = pack(parts);  logDet = ld + Σ spatial·Σ log|s|  (LU)
//   inverse: (y, ld) = inverse(unpack(ε), W⁻¹…);  logDet = ld − Σ spatial·Σ log|s|
import { packLatents, unpackLatents } from '../../flow/layout.js';
import { toFloat32, type TensorData } from '../../tensor/tensor.js';
import type { ModelPackage } from '../registry.js';
import type { FlowProgram, GraphSpec } from './types.js';

export function couplingProgram(pkg: ModelPackage): FlowProgram {
  const { manifest, lu } = pkg;
  const parts = manifest.latent.parts;
  const luLogDet = lu.reduce((s, l) => s + l.logDet, 0);
  const graphs: GraphSpec[] = [
    { name: 'forward', inputs: ['x', ...lu.map((l) => l.forwardInput)], outputs: [...parts.map((p) => p.name), 'logDet'] },
    { name: 'inverse', inputs: [...parts.map((p) => p.name), ...lu.map((l) => l.inverseInput)], outputs: ['x', 'logDet'] },
  ];
  return {
    graphs,
    constFeeds(graph) {
      // The LU matrices as graph inputs (float32), built once in TypeScript (src/flow/lu.ts).
      const feeds: Record<string, TensorData> = {};
      for (const l of lu) {
        const forward = graph === 'forward';
        feeds[forward ? l.forwardInput : l.inverseInput] = { dims: [l.channels, l.channels], data: toFloat32(forward ? l.w : l.wInv) };
      }
      return feeds;
    },
    async forward(y, n, run) {
      const out = await run('forward', { x: { dims: [n, ...manifest.data.shape], data: toFloat32(y) } }, n);
      const values = packLatents(parts, parts.map((p) => out[p.name].data), n);
      const logDet = Float64Array.from(out.logDet.data, (v) => v + luLogDet);
      return { values, logDet, cost: { passes: 1 } };
    },
    async inverse(latents, n, run) {
      const split = unpackLatents(parts, latents, n);
      const feeds: Record<string, TensorData> = {};
      parts.forEach((p, k) => (feeds[p.name] = { dims: [n, ...p.shape], data: split[k] }));
      const out = await run('inverse', feeds, n);
      return { values: Float64Array.from(out.x.data), logDet: Float64Array.from(out.logDet.data, (v) => v - luLogDet), cost: { passes: 1 } };
    },
    cost: () => ({
      forward: { kind: 'passes', passes: 1, description: 'one pass of the forward graph' },
      inverse: { kind: 'passes', passes: 1, description: 'one pass of the inverse graph' },
    }),
  };
}

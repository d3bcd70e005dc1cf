// Continuous flows (FFJORD, or a CNF trained by flow matching): dx/dt = f(x, t), with the graph
// `dynamics` computing f and its exact divergence tr ∂f/∂x per row. Forward (data → latent)
// integrates from t0 to t1, logDet = ∫ div dt; inverse from t1 back to t0, logDet = −∫ div dt,
// by an adaptive Dormand–Prince 5(4) with per-row step control (src/flow/ode.ts). Every stage
// evaluation is one graph call over the rows still integrating, each at its own time t (an input
// per row), merged with other requests' evaluations whatever step they are at.
import type { Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { OdeProgram } from '../../config/manifest-schema.js';
import { solveBatch } from '../../flow/ode.js';
import { toFloat32 } from '../../tensor/tensor.js';
import type { ModelPackage } from '../registry.js';
import { ProgramError, type FlowProgram, type GraphRunner, type LoopContext, type Transformed } from './types.js';

export function odeProgram(pkg: ModelPackage): FlowProgram {
  const declared = pkg.manifest.program;
  if (!declared || !Value.Check(OdeProgram, declared)) throw new ProgramError(`family ${pkg.manifest.family} needs program.kind "ode" with its dynamics graph and tolerances`);
  const program: Static<typeof OdeProgram> = declared;
  if (!(program.graph in pkg.manifest.graphs)) throw new ProgramError(`program.graph '${program.graph}' is not in graphs`);
  const d = pkg.manifest.latent.size;
  const graph = program.graph;

  async function integrate(x0: Float64Array, n: number, run: GraphRunner, ctx: LoopContext, from: number, to: number): Promise<Transformed> {
    let calls = 0;
    const f = async (x: Float64Array, t: Float64Array, m: number) => {
      calls++;
      const out = await run(graph, { x: { dims: [m, d], data: toFloat32(x) }, t: { dims: [m], data: toFloat32(t) } }, m);
      return { dx: out.dx.data, div: out.div.data };
    };
    const res = await solveBatch(f, x0, n, d, {
      t0: from,
      t1: to,
      atol: ctx.solver?.atol ?? program.atol,
      rtol: ctx.solver?.rtol ?? program.rtol,
      signal: ctx.signal,
      // the solver's deadline is wall-clock (Date.now()); the request's is performance.now()
      ...(ctx.deadline !== undefined ? { deadline: Date.now() + (ctx.deadline - performance.now()) } : {}),
    });
    return { values: res.x, logDet: res.integral, cost: { passes: calls, evaluations: res.nfe } };
  }

  return {
    graphs: [{ name: graph, inputs: ['x', 't'], outputs: ['dx', 'div'] }],
    constFeeds: () => ({}),
    forward: (y, n, run, ctx) => integrate(y, n, run, ctx, program.t0, program.t1),
    inverse: (latents, n, run, ctx) => integrate(latents, n, run, ctx, program.t1, program.t0),
    cost: () => ({
      forward: { kind: 'adaptive', description: `adaptive Dormand–Prince 5(4) from t = ${program.t0} to ${program.t1}, atol ${program.atol}, rtol ${program.rtol}: one dynamics evaluation per stage` },
      inverse: { kind: 'adaptive', description: `adaptive Dormand–Prince 5(4) from t = ${program.t1} back to ${program.t0}` },
    }),
  };
}

// W and W⁻¹ as graph inputs (what the service does) vs baked into the graph as initializers
// (scripts/lu_bake.py): median ORT run time at batch 1 and 64, same machine, same inputs.
//   /usr/bin/python3 scripts/lu_bake.py models/glow-fashion /tmp/glow-baked && npx tsx scripts/measure-lu-feed.ts
import * as ort from 'onnxruntime-node';
import { loadPackage } from '../src/service/registry.js';
import { FlowModel } from '../src/service/flow-model.js';

const PKG = process.argv[2] ?? 'models/glow-fashion';
const BAKED = process.argv[3] ?? '/tmp/glow-baked';
const pkg = await loadPackage(PKG, PKG.split('/').pop()!);
const m = pkg.manifest;
const dim = m.data.shape.reduce((a, b) => a * b, 1);

async function time(path: string, feeds: Record<string, ort.Tensor>): Promise<number> {
  const s = await ort.InferenceSession.create(path, { executionProviders: ['cpu'], graphOptimizationLevel: 'all', intraOpNumThreads: 1 });
  const mine = Object.fromEntries(Object.entries(feeds).filter(([k]) => s.inputNames.includes(k)));
  for (let i = 0; i < 5; i++) await s.run(mine);
  const ts: number[] = [];
  for (let i = 0; i < 40; i++) {
    const t = performance.now();
    await s.run(mine);
    ts.push(performance.now() - t);
  }
  await s.release();
  return ts.sort((a, b) => a - b)[20];
}

console.log('| graph | batch | W as inputs (ms) | W baked (ms) | difference |');
console.log('|---|---|---|---|---|');
for (const batch of [1, 64]) {
  for (const direction of ['forward', 'inverse'] as const) {
    const feeds: Record<string, ort.Tensor> = {};
    for (const [k, t] of Object.entries(FlowModel.luFeeds(pkg.lu, direction))) feeds[k] = new ort.Tensor('float32', t.data, t.dims);
    if (direction === 'forward') feeds.x = new ort.Tensor('float32', Float32Array.from({ length: batch * dim }, () => Math.random() - 0.5), [batch, ...m.data.shape]);
    else for (const p of m.latent.parts) feeds[p.name] = new ort.Tensor('float32', Float32Array.from({ length: batch * p.shape.reduce((a, b) => a * b, 1) }, () => 0.7 * (Math.random() - 0.5)), [batch, ...p.shape]);
    const graph = direction === 'forward' ? m.graphs.forward : m.graphs.inverse;
    const asInputs = await time(`${PKG}/${graph}`, feeds);
    const baked = await time(`${BAKED}/${direction}.onnx`, feeds);
    console.log(`| ${direction} | ${batch} | ${asInputs.toFixed(3)} | ${baked.toFixed(3)} | ${(((asInputs - baked) / baked) * 100).toFixed(1)}% |`);
  }
}

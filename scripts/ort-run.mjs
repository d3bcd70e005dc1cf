#!/usr/bin/env node
// Run ONNX graphs with onnxruntime-node (CPU) for the Python exporter's agreement checks.
//
//   node scripts/ort-run.mjs request.json output.json
//
// request.json: { "model": "path/to/forward.onnx", "feeds": { "x": { "dims": [N, ...], "data": [...] } } }
//           or: { "runs": [ { "model": ..., "feeds": ... }, ... ] }   (sessions are cached per path)
// output.json:  { "outputs": { "<name>": { "dims": [...], "data": [...] } } }   or { "runs": [ ... ] }
//
// Feeds are float32 unless "type" says otherwise ("float32" | "float64" | "int64"). Models are loaded by
// file path so that ONNX external data (weights.bin) resolves relative to the model file, exactly as the
// service loads them. Non-finite outputs are written as strings ("NaN", "Infinity", "-Infinity")
// because JSON has no literal for them.
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import ort from 'onnxruntime-node';

const ARRAYS = { float32: Float32Array, float64: Float64Array, int64: BigInt64Array };

function toTensor(name, feed) {
  const type = feed.type ?? 'float32';
  const Ctor = ARRAYS[type];
  if (!Ctor) throw new Error(`feed ${name}: unsupported type ${type}`);
  const data = type === 'int64' ? Ctor.from(feed.data, (v) => BigInt(v)) : Ctor.from(feed.data, Number);
  const expected = feed.dims.reduce((a, b) => a * b, 1);
  if (data.length !== expected) throw new Error(`feed ${name}: ${data.length} values for dims ${feed.dims}`);
  return new ort.Tensor(type, data, feed.dims);
}

function fromTensor(t) {
  const data = Array.from(t.data, (v) => {
    const n = Number(v);
    return Number.isFinite(n) ? n : String(n);
  });
  return { dims: Array.from(t.dims), type: t.type, data };
}

const sessions = new Map();
async function session(modelPath) {
  const abs = path.resolve(modelPath);
  if (!sessions.has(abs)) sessions.set(abs, await ort.InferenceSession.create(abs, { intraOpNumThreads: 1 }));
  return sessions.get(abs);
}

async function runOne(req) {
  const s = await session(req.model);
  const feeds = {};
  for (const [name, feed] of Object.entries(req.feeds)) feeds[name] = toTensor(name, feed);
  const result = await s.run(feeds);
  const outputs = {};
  for (const name of s.outputNames) outputs[name] = fromTensor(result[name]);
  return { inputNames: s.inputNames, outputNames: s.outputNames, outputs };
}

const [reqPath, outPath] = process.argv.slice(2);
if (!reqPath || !outPath) {
  console.error('usage: node scripts/ort-run.mjs request.json output.json');
  process.exit(2);
}
try {
  const req = JSON.parse(await readFile(reqPath, 'utf8'));
  let out;
  if (Array.isArray(req.runs)) {
    out = { runs: [] };
    for (const r of req.runs) out.runs.push(await runOne(r)); // sequential: deterministic, one session at a time
  } else {
    out = await runOne(req);
  }
  await writeFile(outPath, JSON.stringify(out));
} catch (err) {
  console.error(`ort-run: ${err?.stack ?? err}`);
  process.exit(1);
}

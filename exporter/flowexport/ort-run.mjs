#!/usr/bin/env node
// Run ONNX graphs with onnxruntime-node (CPU) for the Python exporter's agreement checks
// (flowexport/ort.py), so that they see the graphs exactly as the service runs them.
//
//   FLOWSERVE_ROOT=/path/to/flowserve node ort-run.mjs request.json output.json
//
// onnxruntime-node is loaded from $FLOWSERVE_ROOT/node_modules (this file ships inside the Python
// package, which may be installed anywhere); without FLOWSERVE_ROOT, from the usual resolution
// relative to this file.
//
// request.json: { "model": "path/to/forward.onnx", "feeds": { "x": { "dims": [N, ...], "data": [...] } } }
//           or: { "runs": [ { "model": ..., "feeds": ... }, ... ] }   (sessions are cached per path)
//           optional top-level "binary": true: outputs as base64 little-endian bytes ("b64") instead of "data"
// output.json:  { "outputs": { "<name>": { "dims": [...], "type": ..., "data": [...] | "b64": "..." } } }   or { "runs": [ ... ] }
//
// Feeds are float32 unless "type" says otherwise ("float32" | "float64" | "int64"), given as "data"
// (a JSON array) or "b64" (little-endian bytes: large batches cost a fraction of JSON's time). Models
// are loaded by file path so that ONNX external data (weights.bin) resolves relative to the model
// file, exactly as the service loads them. With "data", non-finite outputs are written as strings
// ("NaN", "Infinity", "-Infinity") because JSON has no literal for them.
import { readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';

const root = process.env.FLOWSERVE_ROOT;
const require = createRequire(root ? path.join(path.resolve(root), 'package.json') : import.meta.url);
let ort;
try {
  ort = require('onnxruntime-node');
} catch (err) {
  console.error(`ort-run: cannot load onnxruntime-node${root ? ` from FLOWSERVE_ROOT=${root}` : ''}: run npm ci in your flowserve checkout or set FLOWSERVE_ROOT (${err?.message ?? err})`);
  process.exit(3);
}

const ARRAYS = { float32: Float32Array, float64: Float64Array, int64: BigInt64Array };

function toTensor(name, feed) {
  const type = feed.type ?? 'float32';
  const Ctor = ARRAYS[type];
  if (!Ctor) throw new Error(`feed ${name}: unsupported type ${type}`);
  let data;
  if (typeof feed.b64 === 'string') {
    const bytes = Buffer.from(feed.b64, 'base64');
    // copy into a fresh, aligned buffer: Buffer.from may hand back a slice of a shared pool
    data = new Ctor(bytes.byteLength / Ctor.BYTES_PER_ELEMENT);
    new Uint8Array(data.buffer).set(bytes);
  } else {
    data = type === 'int64' ? Ctor.from(feed.data, (v) => BigInt(v)) : Ctor.from(feed.data, Number);
  }
  const expected = feed.dims.reduce((a, b) => a * b, 1);
  if (data.length !== expected) throw new Error(`feed ${name}: ${data.length} values for dims ${feed.dims}`);
  return new ort.Tensor(type, data, feed.dims);
}

function fromTensor(t, binary) {
  const out = { dims: Array.from(t.dims), type: t.type };
  if (binary) {
    out.b64 = Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).toString('base64');
    return out;
  }
  out.data = Array.from(t.data, (v) => {
    const n = Number(v);
    return Number.isFinite(n) ? n : String(n);
  });
  return out;
}

const sessions = new Map();
async function session(modelPath) {
  const abs = path.resolve(modelPath);
  if (!sessions.has(abs)) sessions.set(abs, await ort.InferenceSession.create(abs, { intraOpNumThreads: 1 }));
  return sessions.get(abs);
}

async function runOne(req, binary) {
  const s = await session(req.model);
  const feeds = {};
  for (const [name, feed] of Object.entries(req.feeds)) feeds[name] = toTensor(name, feed);
  const result = await s.run(feeds);
  const outputs = {};
  for (const name of s.outputNames) outputs[name] = fromTensor(result[name], binary);
  return { inputNames: s.inputNames, outputNames: s.outputNames, outputs };
}

const [reqPath, outPath] = process.argv.slice(2);
if (!reqPath || !outPath) {
  console.error('usage: node ort-run.mjs request.json output.json');
  process.exit(2);
}
try {
  const req = JSON.parse(await readFile(reqPath, 'utf8'));
  const binary = req.binary === true;
  let out;
  if (Array.isArray(req.runs)) {
    out = { runs: [] };
    for (const r of req.runs) out.runs.push(await runOne(r, binary)); // sequential: deterministic, one session at a time
  } else {
    out = await runOne(req, binary);
  }
  await writeFile(outPath, JSON.stringify(out));
} catch (err) {
  console.error(`ort-run: ${err?.stack ?? err}`);
  process.exit(1);
}

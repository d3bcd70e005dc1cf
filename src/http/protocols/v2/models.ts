// How flowserve's four operations appear as Open Inference Protocol models (docs/open-inference-protocol.md).
// Each loaded model M is four v2 models: `M` (and its alias `M.likelihood`), `M.encode`,
// `M.decode` and `M.sample`. Their input and output tensors, datatypes and shapes (−1 = the batch)
// come from the package's manifest, so GET /v2/models/{name} describes exactly what infer takes.
// Outputs are FP64 (the service computes in float64: v2 answers equal the native JSON ones bit for
// bit), pixels UINT8, flags BOOL.
import { AppError, echo } from '../../../errors.js';
import type { FlowModel } from '../../../service/flow-model.js';
import type { ScoreName } from '../../../flow/anomaly.js';
import { dataToPixels } from '../../../flow/quantize.js';
import { outputForms, type LikelihoodAnswer, type Outputs, type Sampled } from '../../../service/operations.js';
import type { Datatype, TensorValues } from '../../tensor-wire.js';

export const OPERATIONS = ['likelihood', 'encode', 'decode', 'sample'] as const;
export type Operation = (typeof OPERATIONS)[number];

/** The one version each v2 model has: flowserve serves one package per name. */
export const MODEL_VERSION = '1';

/** Triton's platform name for ONNX models. */
export const PLATFORM = 'onnxruntime_onnx';

export interface TensorMeta {
  name: string;
  datatype: Datatype;
  shape: number[];
}

/** `glow-fashion.encode` → the flowserve model and the operation (no suffix: likelihood). */
export function splitName(v2Name: string): { model: string; operation: Operation } {
  const dot = v2Name.lastIndexOf('.');
  if (dot < 0) return { model: v2Name, operation: 'likelihood' };
  const op = v2Name.slice(dot + 1);
  if (!(OPERATIONS as readonly string[]).includes(op))
    throw new AppError('MODEL_NOT_FOUND', `model '${echo(v2Name)}' is not served: after the '.' comes an operation (${OPERATIONS.join(', ')})`, { model: echo(v2Name), allowed: OPERATIONS });
  return { model: v2Name.slice(0, dot), operation: op as Operation };
}

const isImage = (m: FlowModel) => m.manifest.data.kind === 'image' && m.manifest.data.bitDepth !== null;
const pixelType = (m: FlowModel): Datatype => ((m.manifest.data.bitDepth ?? 8) <= 8 ? 'UINT8' : 'UINT16');
const rows = (shape: readonly number[]) => [-1, ...shape];

/** What a data input may be: values in data space, raw pixels, or encoded images. */
export function dataInputs(m: FlowModel): TensorMeta[] {
  const x: TensorMeta = { name: 'x', datatype: 'FP32', shape: rows(m.manifest.data.shape) };
  if (!isImage(m)) return [x];
  return [x, { name: 'pixels', datatype: pixelType(m), shape: rows(m.manifest.data.shape) }, { name: 'images', datatype: 'BYTES', shape: [-1] }];
}

export function inputsOf(m: FlowModel, op: Operation): TensorMeta[] {
  if (op === 'likelihood' || op === 'encode') return dataInputs(m);
  if (op === 'decode') return [{ name: 'latents', datatype: 'FP32', shape: [-1, m.dim] }];
  return [];
}

const perRow = (name: string, datatype: Datatype = 'FP64'): TensorMeta => ({ name, datatype, shape: [-1] });

export function outputsOf(m: FlowModel, op: Operation): TensorMeta[] {
  const shape = m.manifest.data.shape;
  const dataOut = [{ name: 'x', datatype: 'FP64' as Datatype, shape: rows(shape) }, ...(outputForms(m.manifest).includes('quantized') ? [{ name: 'pixels', datatype: pixelType(m), shape: rows(shape) }] : [])];
  switch (op) {
    case 'likelihood':
      return [
        perRow('logLikelihood'),
        perRow('bitsPerDim'),
        ...m.scores.map((s) => perRow(s)),
        ...(m.manifest.calibration ? [perRow('anomalyScore'), perRow('isAnomaly', 'BOOL')] : []),
      ];
    case 'encode':
      return [{ name: 'latents', datatype: 'FP64', shape: [-1, m.dim] }, perRow('logDet')];
    case 'decode':
      return [...dataOut, perRow('logLikelihood')];
    case 'sample':
      return [...dataOut, perRow('logLikelihood'), { name: 'latents', datatype: 'FP64', shape: [-1, m.dim] }];
  }
}

/** The request parameters each operation takes (besides binary_data_output), with their JSON types. */
export const PARAMETERS: Record<Operation, Record<string, 'string' | 'number' | 'integer' | 'boolean'>> = {
  likelihood: { scores: 'string', dequantization: 'string', draws: 'integer', seed: 'integer', batchTest: 'boolean', atol: 'number', rtol: 'number' },
  encode: { atol: 'number', rtol: 'number' },
  decode: { output: 'string', atol: 'number', rtol: 'number' },
  sample: { count: 'integer', temperature: 'number', seed: 'integer', output: 'string', atol: 'number', rtol: 'number' },
};

export interface OutputTensor {
  name: string;
  datatype: Datatype;
  shape: number[];
  values: TensorValues;
}

/** A data-space output (decode, sample) as `x`, and as `pixels` when it is quantized. */
function dataOutputs(m: FlowModel, done: Outputs, n: number): OutputTensor[] {
  const shape = [n, ...m.manifest.data.shape];
  const out: OutputTensor[] = [{ name: 'x', datatype: 'FP64', shape, values: done.outputs }];
  if (done.output === 'quantized') {
    // quantized outputs are bin centres (k + 0.5)/L: their bin is pixel k
    out.push({ name: 'pixels', datatype: pixelType(m), shape, values: dataToPixels(done.outputs, m.manifest.data.bitDepth!) });
  }
  return out;
}

export function likelihoodOutputs(m: FlowModel, answer: LikelihoodAnswer): OutputTensor[] {
  const n = answer.results.length;
  const col = (name: string, pick: (i: number) => number | null, datatype: Datatype = 'FP64'): OutputTensor | null => {
    const values = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const v = pick(i);
      if (v === null) return null; // not computed for this request (scores left it out)
      values[i] = v;
    }
    return { name, datatype, shape: [n], values: datatype === 'BOOL' ? Uint8Array.from(values) : values };
  };
  const r = answer.results;
  return [
    col('logLikelihood', (i) => r[i].logLikelihood),
    col('bitsPerDim', (i) => r[i].bitsPerDim),
    ...m.scores.map((s: ScoreName) => col(s, (i) => r[i].scores[s])),
    ...(m.manifest.calibration ? [col('anomalyScore', (i) => r[i].anomalyScore), col('isAnomaly', (i) => (r[i].isAnomaly === null ? null : r[i].isAnomaly ? 1 : 0), 'BOOL')] : []),
  ].filter((t): t is OutputTensor => t !== null);
}

export function encodeOutputs(m: FlowModel, done: { latents: Float64Array; logDet: Float64Array }, n: number): OutputTensor[] {
  return [
    { name: 'latents', datatype: 'FP64', shape: [n, m.dim], values: done.latents },
    { name: 'logDet', datatype: 'FP64', shape: [n], values: done.logDet },
  ];
}

export function decodeOutputs(m: FlowModel, done: Outputs, n: number): OutputTensor[] {
  return [...dataOutputs(m, done, n), { name: 'logLikelihood', datatype: 'FP64', shape: [n], values: done.logLikelihood }];
}

export function sampleOutputs(m: FlowModel, done: Sampled, n: number): OutputTensor[] {
  return [...decodeOutputs(m, done, n), { name: 'latents', datatype: 'FP64', shape: [n, m.dim], values: done.latents }];
}

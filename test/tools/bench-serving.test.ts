// Pure helpers of tools/bench-serving.ts: medians, percentiles, wrk's and /usr/bin/time's output,
// /proc parsing and the request bodies (fast: no server, no wrk).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  cpuPercent,
  float32Le,
  median,
  multipartBody,
  parseProcStatBusy,
  parseStat,
  parseTime,
  parseVmRssKb,
  parseWrk,
  percentile,
  pixelCentres,
  processTree,
  selected,
  summarize,
  v2BinaryBody,
  type RunResult,
} from '../../tools/bench-serving.js';

test('median: odd, even, empty, NaN ignored', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.ok(Number.isNaN(median([])));
  assert.equal(median([NaN, 5, 7, 6]), 6);
});

test('percentile: nearest rank', () => {
  const xs = Array.from({ length: 100 }, (_, i) => 100 - i); // 1..100, unsorted
  assert.equal(percentile(xs, 50), 50);
  assert.equal(percentile(xs, 99), 99);
  assert.equal(percentile(xs, 100), 100);
  assert.equal(percentile(xs, 0), 1);
  assert.equal(percentile([7], 99), 7);
  assert.ok(Number.isNaN(percentile([], 50)));
});

test('parseWrk: the done() hook JSON line among wrk output', () => {
  const out = [
    'Running 5s test @ http://127.0.0.1:8080',
    '  1 threads and 64 connections',
    'WRK_JSON {"requests":1234,"durationUs":5001234,"bytes":99,"errors":{"connect":0,"read":1,"write":0,"status":7,"timeout":2},"latencyMs":{"p50":12.500,"p90":20.000,"p99":31.250,"max":40.000,"mean":13.100}}',
    'Requests/sec: 246.7',
  ].join('\n');
  const w = parseWrk(out)!;
  assert.equal(w.requests, 1234);
  assert.equal(w.errors.status, 7);
  assert.equal(w.errors.timeout, 2);
  assert.equal(w.latencyMs.p99, 31.25);
  assert.equal(parseWrk('no json here'), null);
  assert.equal(parseWrk('WRK_JSON {broken'), null);
});

test('parseTime and cpuPercent: /usr/bin/time -f "WRKTIME %U %S %e %M"', () => {
  const t = parseTime('some wrk stderr\nWRKTIME 0.41 0.84 5.02 6144\n')!;
  assert.deepEqual(t, { userS: 0.41, sysS: 0.84, elapsedS: 5.02, maxRssKb: 6144 });
  assert.ok(Math.abs(cpuPercent(t) - 24.9) < 0.1);
  assert.equal(parseTime('Command exited with non-zero status 1'), null);
});

test('parseStat: process names with spaces and parentheses', () => {
  const fields = ['S', '42', '100', '100', '0', '-1', '4194304', '10', '0', '0', '0', '250', '75', '0', '0', '20', '0', '3'];
  const s = parseStat(`1234 (node (inference) x) ${fields.join(' ')}`);
  assert.deepEqual(s, { ppid: 42, utime: 250, stime: 75 });
});

test('parseVmRssKb', () => {
  assert.equal(parseVmRssKb('Name:\tnode\nVmHWM:\t  300 kB\nVmRSS:\t  123456 kB\n'), 123456);
  assert.equal(parseVmRssKb('Name:\tzombie\n'), 0);
});

test('processTree: descendants once each, root first', () => {
  const kids: Record<number, number[]> = { 1: [2, 3], 2: [4], 3: [], 4: [2] };
  const tree = processTree(1, (p) => kids[p] ?? []);
  assert.equal(tree[0], 1);
  assert.deepEqual([...tree].sort(), [1, 2, 3, 4]);
});

test('selected: comma list of regular expressions, empty selects all', () => {
  assert.ok(selected('glow-fashion/json/1x64', undefined));
  assert.ok(selected('glow-fashion/json/1x64', ''));
  assert.ok(selected('glow-fashion/json/1x64', 'png,json/1x'));
  assert.ok(!selected('glow-fashion/png-b64/64x4', 'json/1x,^peer/'));
  assert.ok(selected('peer/w1/glow-fashion/json/64x4', '^peer/'));
});

test('multipartBody: model field then one file part per PNG, closed by the final boundary', () => {
  const body = multipartBody('glow-fashion', [Buffer.from('PNG1'), Buffer.from('PNG2')], 'B0UND').toString('latin1');
  assert.ok(body.startsWith('--B0UND\r\nContent-Disposition: form-data; name="model"\r\n\r\nglow-fashion\r\n'));
  assert.equal(body.split('name="images"').length - 1, 2);
  assert.ok(body.includes('Content-Type: image/png\r\n\r\nPNG2\r\n'));
  assert.ok(body.endsWith('--B0UND--\r\n'));
});

test('float32Le and v2BinaryBody: JSON header, then the raw tensor', () => {
  const values = [0.5, 0.25, -1, 3];
  assert.deepEqual([...new Float32Array(new Uint8Array(float32Le(values)).buffer)], values);
  const { body, headerLength } = v2BinaryBody(1, [1, 2, 2], values);
  const header = JSON.parse(body.subarray(0, headerLength).toString());
  assert.deepEqual(header.inputs[0].shape, [1, 1, 2, 2]);
  assert.equal(header.inputs[0].datatype, 'FP32');
  assert.equal(header.inputs[0].parameters.binary_data_size, 16);
  assert.equal(header.parameters.binary_data_output, true);
  assert.equal(body.length, headerLength + 16);
  assert.equal(body.readFloatLE(headerLength + 8), -1);
});

test('pixelCentres: (k + 0.5)/256, images concatenated', () => {
  assert.deepEqual(pixelCentres([Uint8Array.from([0, 255]), Uint8Array.from([128])]), [0.5 / 256, 255.5 / 256, 128.5 / 256]);
});

test('summarize: medians, largest RSS, summed errors, ratio to raw', () => {
  const run = (sps: number, rss: number, non2xx: number): RunResult => ({
    samplesPerSec: sps, requests: 1, p50: sps / 100, p99: sps / 10, healthP50: 1, healthP99: 2, healthProbes: 10,
    peakRssMiB: rss, wrkCpuPct: 10, serverCpuPct: 190, mainUsPerSample: 100, otherCpuPct: rss / 100, non2xx, transportErrors: 0,
  });
  const s = summarize([run(1000, 300, 0), run(1200, 350, 1), run(1100, 320, 2)], 2000);
  assert.equal(s.samplesPerSec, 1100);
  assert.equal(s.ratioToRaw, 0.55);
  assert.equal(s.p99, 110);
  assert.equal(s.peakRssMiB, 350);
  assert.equal(s.non2xx, 3);
  assert.equal(s.otherCpuPct, 3.5);
});

test('parseProcStatBusy: all but idle and iowait, in seconds', () => {
  const text = 'cpu  100 5 50 1000 20 3 2 10 0 0\ncpu0 50 2 25 500 10 1 1 5 0 0\n';
  assert.equal(parseProcStatBusy(text, 100), (100 + 5 + 50 + 3 + 2 + 10) / 100);
});

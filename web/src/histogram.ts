// The calibration histogram: the model's in-distribution scores (card calibration.distribution,
// 101 quantiles on the raw scale of the default score), the threshold, and a marker per scored
// input. Drawn at the canvas' CSS size × devicePixelRatio so that text stays legible on phones.
import { rebinQuantiles } from './stats.js';

export interface Marker {
  value: number;
  label: string;
  anomalous: boolean;
}

export interface HistogramSpec {
  quantiles: number[] | null;
  threshold: number;
  markers: Marker[];
}

export const BINS = 40;
const PAD = { left: 14, right: 14, top: 30, bottom: 74 };

/** The axis: the 1–99 % quantiles (or the threshold and markers without a distribution), with the threshold always inside. */
export function axisRange(spec: HistogramSpec): [number, number] {
  const q = spec.quantiles;
  let lo: number;
  let hi: number;
  if (q && q.length >= 3) {
    const k = q.length - 1;
    lo = Math.min(q[Math.round(k * 0.01)], spec.threshold);
    hi = Math.max(q[Math.round(k * 0.99)], spec.threshold);
  } else {
    const vs = [spec.threshold, ...spec.markers.map((m) => m.value)].filter(Number.isFinite);
    lo = Math.min(...vs);
    hi = Math.max(...vs);
  }
  const span = hi - lo || Math.abs(hi) || 1;
  return [lo - span * 0.04, hi + span * 0.04];
}

function tickDigits(span: number): number {
  return Math.max(0, Math.min(4, 2 - Math.floor(Math.log10(span))));
}

export function drawHistogram(canvas: HTMLCanvasElement, spec: HistogramSpec): [number, number] {
  const cssW = canvas.clientWidth || 640;
  const cssH = 240;
  const dpr = window.devicePixelRatio || 1;
  canvas.width = Math.round(cssW * dpr);
  canvas.height = Math.round(cssH * dpr);
  canvas.style.height = `${cssH}px`;
  const ctx = canvas.getContext('2d')!;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, cssW, cssH);
  const [lo, hi] = axisRange(spec);
  const plotW = cssW - PAD.left - PAD.right;
  const plotH = cssH - PAD.top - PAD.bottom;
  const baseY = PAD.top + plotH;
  const xOf = (v: number) => PAD.left + ((v - lo) / (hi - lo)) * plotW;
  ctx.font = '12px system-ui, sans-serif';

  if (spec.quantiles && spec.quantiles.length >= 3) {
    const mass = rebinQuantiles(spec.quantiles, lo, hi, BINS);
    const top = Math.max(...mass) || 1;
    const w = plotW / BINS;
    mass.forEach((m, i) => {
      const h = (m / top) * plotH;
      const left = lo + ((hi - lo) * i) / BINS;
      // Bins beyond the threshold are the in-distribution inputs the threshold flags (false positives).
      ctx.fillStyle = left >= spec.threshold ? '#f4b4b4' : '#a9b8f0';
      ctx.fillRect(PAD.left + i * w + 0.5, baseY - h, Math.max(1, w - 1), h);
    });
  } else {
    ctx.fillStyle = '#5b6475';
    ctx.fillText('No calibration distribution in the model card: threshold only.', PAD.left, PAD.top + 14);
  }

  // Axis and ticks.
  ctx.strokeStyle = '#5b6475';
  ctx.lineWidth = 1;
  ctx.beginPath();
  ctx.moveTo(PAD.left, baseY + 0.5);
  ctx.lineTo(PAD.left + plotW, baseY + 0.5);
  ctx.stroke();
  ctx.fillStyle = '#3a4150';
  const digits = tickDigits(hi - lo);
  const ticks = cssW < 480 ? 3 : 5;
  for (let i = 0; i < ticks; i++) {
    const v = lo + ((hi - lo) * (i + 0.5)) / ticks;
    const x = xOf(v);
    ctx.beginPath();
    ctx.moveTo(x, baseY);
    ctx.lineTo(x, baseY + 4);
    ctx.stroke();
    ctx.textAlign = 'center';
    ctx.fillText(v.toFixed(digits), x, baseY + 16);
  }

  // Threshold.
  const tx = xOf(spec.threshold);
  ctx.strokeStyle = '#c62828';
  ctx.setLineDash([5, 4]);
  ctx.lineWidth = 2;
  ctx.beginPath();
  ctx.moveTo(tx, PAD.top - 6);
  ctx.lineTo(tx, baseY);
  ctx.stroke();
  ctx.setLineDash([]);
  ctx.fillStyle = '#c62828';
  ctx.textAlign = tx > cssW * 0.7 ? 'right' : 'left';
  ctx.fillText(`threshold ${spec.threshold.toFixed(3)}`, tx + (tx > cssW * 0.7 ? -6 : 6), PAD.top - 12);

  // One marker per scored input, clamped to the axis ends with an arrow when outside.
  spec.markers.forEach((m, i) => {
    const outLeft = m.value < lo;
    const outRight = m.value > hi;
    const x = outLeft ? PAD.left : outRight ? PAD.left + plotW : xOf(m.value);
    const y = baseY + 48 + (i % 2) * 15;
    const colour = m.anomalous ? '#c62828' : '#1b7f4d';
    if (!outLeft && !outRight) {
      ctx.strokeStyle = colour;
      ctx.globalAlpha = 0.55;
      ctx.lineWidth = 1.5;
      ctx.beginPath();
      ctx.moveTo(x, PAD.top);
      ctx.lineTo(x, baseY);
      ctx.stroke();
      ctx.globalAlpha = 1;
    }
    ctx.fillStyle = colour;
    ctx.beginPath();
    ctx.moveTo(x, baseY + 22);
    ctx.lineTo(x - 5, baseY + 31);
    ctx.lineTo(x + 5, baseY + 31);
    ctx.closePath();
    ctx.fill();
    ctx.textAlign = outLeft ? 'left' : outRight ? 'right' : 'center';
    ctx.font = 'bold 12px system-ui, sans-serif';
    ctx.fillText(outLeft ? `◀ ${m.label}` : outRight ? `${m.label} ▶` : m.label, x, y);
    ctx.font = '12px system-ui, sans-serif';
  });
  canvas.dataset.lo = String(lo);
  canvas.dataset.hi = String(hi);
  canvas.dataset.markers = String(spec.markers.length);
  return [lo, hi];
}

// Anomaly scores from log-likelihoods, normalized against in-distribution calibration statistics:
//   nll = −log p(x);  typicality = |nll − μ_nll| / σ_nll
//   normalized = clamp((s − threshold)/(max − min) + 0.5, 0, 1)   (anomalib), so threshold ↦ 0.5.
import type { ScoreStats } from '../config/manifest-schema.js';

export function typicality(nll: number, nllStats: Pick<ScoreStats, 'mean' | 'std'>): number {
  return Math.abs(nll - nllStats.mean) / (nllStats.std > 0 ? nllStats.std : 1);
}

export function normalizeScore(score: number, stats: Pick<ScoreStats, 'threshold' | 'min' | 'max'>): number {
  const span = stats.max - stats.min;
  const v = (score - stats.threshold) / (span > 0 ? span : 1) + 0.5;
  return Math.min(1, Math.max(0, v));
}

/** Every per-input score, in response order; the complexity scores differ only in the compressor. */
export const SCORE_NAMES = ['nll', 'typicality', 'complexity', 'complexityJpegLs'] as const;
export type ScoreName = (typeof SCORE_NAMES)[number];
/** Scores that need the input as an 8-bit image (a lossless image code length). */
export const IMAGE_SCORES: readonly ScoreName[] = ['complexity', 'complexityJpegLs'];

/** The scores a model can compute: image-code scores need 8-bit images, typicality NLL statistics. */
export function availableScores(data: { kind: string; bitDepth: number | null }, hasNllStats: boolean): ScoreName[] {
  const image = data.kind === 'image' && data.bitDepth === 8;
  return SCORE_NAMES.filter((s) => (s !== 'typicality' || hasNllStats) && (image || !IMAGE_SCORES.includes(s)));
}

// Input complexity (Serrà et al. 2020): S(x) = −log₂ P(x) − L(x), in bits, where −log₂ P(x) = D·bpd
// is the model's code length of the 8-bit image and L(x) its lossless-compressed length.
export function complexityScore(bitsPerDim: number, dim: number, compressedBits: number): number {
  return bitsPerDim * dim - compressedBits;
}

// JPEG-LS has no stored mode: on incompressible inputs it spends ~10.7 bits per 8-bit pixel, and
// S(x) would then call uniform noise typical. A two-part code, one flag bit and then the shorter of
// the JPEG-LS stream and the raw pixels, is still a lossless code and never expands beyond raw.
export function twoPartCodeBits(compressedBits: number, rawBits: number): number {
  return 1 + Math.min(compressedBits, rawBits);
}

/** Inverse CDF from evenly spaced quantiles q[0] = min … q[k] = max, linear in between. */
export function quantileFunction(q: readonly number[]): (u: number) => number {
  const k = q.length - 1;
  return (u) => {
    const pos = Math.min(Math.max(u, 0), 1) * k;
    const i = Math.min(Math.floor(pos), k - 1);
    return q[i] + (pos - i) * (q[i + 1] - q[i]);
  };
}

export interface BatchTypicality {
  batchSize: number;
  /** |mean NLL of the batch − in-distribution mean NLL|, nats. */
  statistic: number;
  /** The (1 − α) quantile of the statistic over bootstrap batches of in-distribution data. */
  threshold: number;
  pValue: number;
  isOutOfDistribution: boolean;
  bootstrapBatches: number;
}

// Typicality test (Nalisnick et al. 2019b): a batch is out of distribution when its mean NLL is far
// from the in-distribution entropy estimate Ĥ; the threshold comes from bootstrap batches of the
// same size drawn (seeded) from the held-out NLL distribution.
export function batchTypicality(nlls: readonly number[], entropy: number, nllQuantiles: readonly number[], alpha: number, draw: () => number, bootstrapBatches = 2000): BatchTypicality {
  const m = nlls.length;
  const statistic = Math.abs(nlls.reduce((a, b) => a + b, 0) / m - entropy);
  const inv = quantileFunction(nllQuantiles);
  const boot = new Float64Array(bootstrapBatches);
  for (let b = 0; b < bootstrapBatches; b++) {
    let s = 0;
    for (let i = 0; i < m; i++) s += inv(draw());
    boot[b] = Math.abs(s / m - entropy);
  }
  boot.sort();
  const threshold = boot[Math.min(bootstrapBatches - 1, Math.floor((1 - alpha) * bootstrapBatches))];
  let atLeast = 0;
  for (const v of boot) if (v >= statistic) atLeast++;
  const pValue = (1 + atLeast) / (bootstrapBatches + 1);
  return { batchSize: m, statistic, threshold, pValue, isOutOfDistribution: statistic > threshold, bootstrapBatches };
}

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

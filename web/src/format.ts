// How numbers are shown, in one place so that the documentation (docs/web-page.md) and the tests
// can rely on it: the text is toFixed(digits) of the API's value and the element's data-value
// holds the full-precision value (String(number) round-trips a double exactly).
import { h } from './dom.js';

export const DIGITS = {
  logLikelihood: 2, // nats
  bitsPerDim: 4,
  score: 3, // every entry of `scores`, the thresholds, anomalyScore
  batch: 3, // batchTest statistic, threshold, pValue
  coordinate: 3, // 2-D points
  temperature: 2,
} as const;

/** toFixed for finite numbers; "n/a" for null; Infinity and NaN spelled out. */
export function fixed(value: number | null | undefined, digits: number): string {
  if (value === null || value === undefined) return 'n/a';
  return Number.isFinite(value) ? value.toFixed(digits) : String(value);
}

/** A number as an element: formatted text, exact value in data-value (and a tooltip). */
export function numberEl(value: number, digits: number, field?: string, tag: 'span' | 'td' | 'dd' = 'span'): HTMLElement {
  const el = h(tag, { class: 'num', 'data-value': String(value), 'data-field': field, title: String(value) }, fixed(value, digits));
  return el;
}

/** 153152 → "153,152" (fixed separator, not the browser's locale). */
export const grouped = (n: number): string => String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ',');

export const percent = (p: number): string => `${+(p * 100).toFixed(2)} %`;

/** A response's `cost` in words: graph passes, ODE evaluations (NFE) or root-finding iterations per row. */
export function costText(cost: unknown): string {
  if (!cost || typeof cost !== 'object') return '';
  const c = cost as { passes?: number; evaluations?: number[]; iterations?: number[] };
  const span = (xs: number[]) => (xs.length ? (Math.min(...xs) === Math.max(...xs) ? String(xs[0]) : `${Math.min(...xs)}–${Math.max(...xs)}`) : '');
  const parts: string[] = [];
  if (c.evaluations?.length) parts.push(`${span(c.evaluations)} ODE evaluations per row`);
  if (c.iterations?.length) parts.push(`${span(c.iterations)} solver iterations per row`);
  if (c.passes !== undefined && !c.evaluations?.length) parts.push(`${c.passes} graph pass${c.passes === 1 ? '' : 'es'}`);
  return parts.length ? `cost: ${parts.join(', ')}` : '';
}

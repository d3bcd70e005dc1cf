// The metric names a PromQL query reads, and the series names flowserve's /metrics exposes, so the
// validator can refuse an autoscaling query on a metric that does not exist (a KEDA trigger on a
// missing series reads an empty vector: 0, and never scales).
import { createMetrics } from '../../src/service/metrics.js';

const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'offset', 'and', 'or', 'unless', 'atan2', 'inf', 'nan']);
const LABEL_LISTS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right']);

/**
 * Metric names in a PromQL expression: identifiers that are not functions, keywords, label names
 * (inside `{…}` or a `by (…)` list) or durations, plus `__name__="…"` matchers.
 */
export function metricNames(query: string): string[] {
  const names = new Set<string>();
  // __name__ matchers name metrics too
  for (const m of query.matchAll(/__name__\s*=\s*"([^"]*)"/g)) names.add(m[1]);
  // strip strings, label matchers, range and subquery brackets
  let q = query.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""');
  q = q.replace(/\{[^}]*\}/g, ' ').replace(/\[[^\]]*\]/g, ' ');
  // numbers and durations (`1e3`, `5m`) first, so their letters are not read as names
  const tokens = [...q.matchAll(/\d[\w.]*|[A-Za-z_:][A-Za-z0-9_:]*|\(|\)|[^\sA-Za-z0-9_:()]+/g)].map((m) => m[0]);
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (!/^[A-Za-z_:]/.test(t)) continue;
    const lower = t.toLowerCase();
    if (LABEL_LISTS.has(lower) && tokens[i + 1] === '(') {
      // skip the parenthesised label list
      let depth = 0;
      for (i = i + 1; i < tokens.length; i++) {
        if (tokens[i] === '(') depth++;
        else if (tokens[i] === ')' && --depth === 0) break;
      }
      continue;
    }
    if (KEYWORDS.has(lower)) continue;
    if (tokens[i + 1] === '(') continue; // a function or aggregation
    if (LABEL_LISTS.has(tokens[i + 1]?.toLowerCase() ?? '')) continue; // `sum by (…) (…)`
    names.add(t);
  }
  return [...names];
}

let exposed: Promise<Set<string>> | null = null;

/** Every series name flowserve's registry exposes (histograms as _bucket, _sum, _count). */
export function exposedSeries(): Promise<Set<string>> {
  exposed ??= (async () => {
    const { registry } = createMetrics();
    const out = new Set<string>();
    for (const m of await registry.getMetricsAsJSON()) {
      if (String(m.type) === 'histogram') for (const s of ['_bucket', '_sum', '_count']) out.add(m.name + s);
      else if (String(m.type) === 'summary') for (const s of ['', '_sum', '_count']) out.add(m.name + s);
      else out.add(m.name);
    }
    return out;
  })();
  return exposed;
}

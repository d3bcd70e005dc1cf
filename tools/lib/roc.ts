// Detection metrics with out-of-distribution as the positive class and higher score = more anomalous.

/** Scores must be comparable numbers: a NaN would break the sort (and the tie scan below). */
function checkScores(id: number[], ood: number[]): void {
  if (id.length === 0 || ood.length === 0) throw new Error('need at least one in-distribution and one OOD score');
  for (const s of [...id, ...ood]) if (typeof s !== 'number' || Number.isNaN(s)) throw new Error(`score ${s} is not a number`);
}

/** AUROC = P(score_ood > score_id) + ½ P(tie) (Mann–Whitney). */
export function auroc(id: number[], ood: number[]): number {
  checkScores(id, ood);
  const all = [...id.map((s) => ({ s, pos: 0 })), ...ood.map((s) => ({ s, pos: 1 }))].sort((a, b) => a.s - b.s);
  let rankSum = 0;
  for (let i = 0; i < all.length; ) {
    let j = i;
    while (j < all.length && all[j].s === all[i].s) j++;
    const avgRank = (i + j + 1) / 2; // ranks are 1-based
    for (let k = i; k < j; k++) if (all[k].pos) rankSum += avgRank;
    i = j;
  }
  return (rankSum - (ood.length * (ood.length + 1)) / 2) / (ood.length * id.length);
}

/** Average precision (area under the precision–recall curve). */
export function aupr(id: number[], ood: number[]): number {
  checkScores(id, ood);
  const all = [...id.map((s) => ({ s, pos: 0 })), ...ood.map((s) => ({ s, pos: 1 }))].sort((a, b) => b.s - a.s);
  let tp = 0, ap = 0;
  all.forEach((e, i) => {
    if (e.pos) {
      tp++;
      ap += tp / (i + 1);
    }
  });
  return ap / ood.length;
}

/** False-positive rate on in-distribution data at the threshold that flags 95% of OOD inputs. */
export function fprAt95Tpr(id: number[], ood: number[]): number {
  checkScores(id, ood);
  const sorted = [...ood].sort((a, b) => a - b);
  const threshold = sorted[Math.floor(0.05 * sorted.length)];
  return id.filter((s) => s >= threshold).length / id.length;
}

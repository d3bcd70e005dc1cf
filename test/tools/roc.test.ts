// The detection metrics behind npm run eval:ood (tools/lib/roc.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { aupr, auroc, fprAt95Tpr } from '../../tools/lib/roc.js';

test('AUROC: 1 when OOD scores are all higher, 0 when all lower, 0.5 for ties; Mann–Whitney in between', () => {
  assert.equal(auroc([1, 2, 3], [4, 5]), 1);
  assert.equal(auroc([4, 5], [1, 2, 3]), 0);
  assert.equal(auroc([1, 1], [1, 1]), 0.5);
  // pairs with ood > id: 2>1, 4>1, 4>3 → 3 of 6
  assert.equal(auroc([1, 3, 5], [2, 4]), 3 / 6);
  // 2>1, 4>1, 4>3, 3>1, and the tie 3 = 3 counts half → 4.5 of 6
  assert.equal(auroc([1, 3], [2, 4, 3]), 4.5 / 6);
});

test('AUPR and FPR at 95 % TPR on a perfect and a mixed ranking', () => {
  assert.equal(aupr([1, 2], [3, 4]), 1);
  assert.equal(fprAt95Tpr([1, 2], [3, 4]), 0);
  // ranking 4(ood) 3(id) 2(ood): precision 1 at the first hit, 2/3 at the second
  assert.ok(Math.abs(aupr([3], [4, 2]) - (1 + 2 / 3) / 2) < 1e-12);
  assert.equal(fprAt95Tpr([3], [4, 2]), 1);
});

test('BAD CALL - a NaN score is refused instead of hanging the tie scan', () => {
  assert.throws(() => auroc([1, NaN], [2]), /not a number/);
  assert.throws(() => aupr([1], []), /at least one/);
});

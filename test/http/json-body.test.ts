// The JSON body pre-scan (depth and value count in one pass) and the parse after it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseJsonBody, scanJsonShape } from '../../src/http/json-body.js';
import { AppError } from '../../src/errors.js';

const limits = { maxDepth: 4, maxValues: 10 };
const scan = (text: string, l = limits) => scanJsonShape(Buffer.from(text, 'utf8'), l);

/** The real number of values (keys not counted) of a JSON value. */
function countValues(v: unknown): number {
  if (Array.isArray(v)) return 1 + v.reduce((n: number, x) => n + countValues(x), 0);
  if (v !== null && typeof v === 'object') return 1 + Object.values(v).reduce((n: number, x) => n + countValues(x), 0);
  return 1;
}

function refusal(text: string, l = limits): string {
  try {
    parseJsonBody(Buffer.from(text, 'utf8'), l);
  } catch (err) {
    assert.ok(err instanceof AppError, String(err));
    assert.equal(err.statusCode, 400);
    return err.message;
  }
  assert.fail(`accepted: ${text.slice(0, 80)}`);
}

test('scan: depth counts arrays and objects inside each other; siblings do not add up', () => {
  assert.equal(scan('[[[[1]]]]'), null); // depth 4
  assert.deepEqual(scan('[[[[[1]]]]]'), { rule: 'depth', offset: 4 });
  assert.equal(scan('{"a":{"b":[{"c":1}]}}'), null);
  assert.equal(scan('{"a":{"b":[{"c":{}}]}}')?.rule, 'depth');
  assert.equal(scan('[[1],[2],[3]]', { maxDepth: 2, maxValues: 100 }), null);
});

test('scan: the value count is an upper bound that exceeds the truth only by the empty containers', () => {
  const l = { maxDepth: 64, maxValues: 1_000_000 };
  for (const text of ['1', '"x"', '[]', '[1,2,3]', '{"a":1,"b":[2,3],"c":{}}', '[[],[],[]]', '{"k":[{"x":null},{"y":true}]}']) {
    const value = JSON.parse(text);
    const empties = (text.match(/\[\]|\{\}/g) ?? []).length;
    const exact = countValues(value);
    // the smallest limit that passes is the scanner's count
    let smallest = 1;
    while (scanJsonShape(Buffer.from(text), { ...l, maxValues: smallest })) smallest++;
    assert.equal(smallest, exact + empties, text);
  }
  assert.deepEqual(scan('[1,2,3,4,5,6,7,8,9]'), null); // 10 values
  assert.equal(scan('[1,2,3,4,5,6,7,8,9,10]')?.rule, 'values');
});

test('BAD CALL - scan: brackets, commas and escaped quotes inside strings are not structure', () => {
  const l = { maxDepth: 2, maxValues: 4 };
  assert.equal(scan('["[[[[[[,,,,,,{{{{"]', l), null);
  assert.equal(scan('["a\\"[[[[[[,,,,,", "b"]', l), null, 'an escaped quote does not end the string');
  assert.equal(scan('["a\\\\", "[[[[,,,,"]', l), null, 'an escaped backslash does not escape the closing quote');
  assert.equal(scan('["a\\\\\\"[[[[", "]]]]"]', l), null, '\\\\\\" is a backslash then a quote, still inside');
  assert.equal(scan('["\\u0022[[[[[[[[", 1]', l), null, '\\u0022 is a quote as data, not the end');
  assert.equal(scan('["é[[[[🙂,,,,,,"]', l), null, 'multi-byte characters');
  assert.equal(scan('{"[[[[": "]]]]", "a": [[[1]]]}', l)?.rule, 'depth', 'structure after a tricky key still counts');
  assert.equal(scan('["\\\\"],[[[', { maxDepth: 2, maxValues: 100 })?.rule, 'depth', 'after an escaped backslash the string is over');
  // an unterminated string: nothing after it is structure, and JSON.parse refuses the text
  assert.equal(scan('["abc\\"]]]]]]', l), null);
  assert.match(refusal('["abc\\"]]]]]]', l), /^body: not valid JSON \(/);
});

test('BAD CALL - 8 M nested arrays are refused at the 17th bracket, with the rule named', () => {
  const deep = Buffer.alloc(16 * 1024 * 1024, '[');
  assert.deepEqual(scanJsonShape(deep, { maxDepth: 16, maxValues: 1_048_576 }), { rule: 'depth', offset: 16 });
  assert.equal(refusal('[[[[[1]]]]]'), 'body: nesting deeper than MAX_JSON_DEPTH=4 (arrays and objects inside each other)');
  assert.equal(refusal('[1,2,3,4,5,6,7,8,9,10]'), 'body: more than MAX_JSON_VALUES=10 values (numbers, strings, arrays, objects)');
});

test('BAD CALL - parse: empty, malformed, and prototype-poisoning bodies get distinct messages', () => {
  assert.equal(refusal(''), 'body: must not be empty');
  assert.match(refusal('{"a": [1, 2'), /^body: not valid JSON \(.+\)$/);
  assert.match(refusal('{"a": NaN}'), /^body: not valid JSON \(/);
  assert.equal(refusal('{"a": 1, "__proto__": {"x": 1}}'), 'body: the key "__proto__" is not allowed (prototype poisoning)');
  assert.equal(refusal('[{"b": {"\\u005f\\u005fproto__": 1}}]'), 'body: the key "__proto__" is not allowed (prototype poisoning)');
  assert.equal(refusal('{"constructor": {"prototype": {"x": 1}}}'), 'body: the key "constructor.prototype" is not allowed (prototype poisoning)');
  // a long malformed body is not quoted back at length
  assert.ok(refusal(`{"a": "${'x'.repeat(10_000)}`).length < 220);
});

test('parse: legal bodies, a BOM, and harmless look-alike keys pass unchanged', () => {
  const parse = (text: string) => parseJsonBody(Buffer.from(text, 'utf8'), { maxDepth: 16, maxValues: 1000 });
  assert.deepEqual(parse('{"model":"glow-fashion","inputs":[[0.1,0.2]]}'), { model: 'glow-fashion', inputs: [[0.1, 0.2]] });
  assert.deepEqual(parse('\ufeff[1]'), [1]);
  assert.deepEqual(parse('{"constructor": {"name": "x"}, "text": "__proto__"}'), { constructor: { name: 'x' }, text: '__proto__' });
  assert.equal(parse('"__proto__"'), '__proto__');
});

// Native tests (`npm test`, node's own test runner): the filter's logic on
// in-memory events, with the Rust label-filter's verdicts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { escape, parseConfig, verdict } from '../src/label-filter.js';

/** An event as herald lends it, reduced to what the filter reads. */
function pod(labels) {
  const object = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'n', labels } };
  return {
    getString(pointer) {
      const tokens = pointer.split('/').slice(1).map((t) => t.replaceAll('~1', '/').replaceAll('~0', '~'));
      let value = object;
      for (const t of tokens) value = value?.[t];
      return typeof value === 'string' ? value : undefined;
    },
  };
}

test('passes matching and drops others with the reason', () => {
  const labels = parseConfig('{"labels":{"app":"web"}}');
  assert.deepEqual(verdict(labels, pod({ app: 'web' })), { tag: 'pass' });
  assert.deepEqual(verdict(labels, pod({ app: 'db' })), { tag: 'drop', val: 'label app=db, want web' });
  assert.deepEqual(verdict(labels, pod({})), { tag: 'drop', val: 'label app missing, want web' });
});

test('labels are checked in key order, and keys with / are escaped', () => {
  const labels = parseConfig('{"labels":{"tier":"front","app.kubernetes.io/name":"web"}}');
  assert.deepEqual(verdict(labels, pod({ tier: 'back' })), {
    tag: 'drop',
    val: 'label app.kubernetes.io/name missing, want web',
  });
  assert.deepEqual(verdict(labels, pod({ tier: 'front', 'app.kubernetes.io/name': 'web' })), { tag: 'pass' });
  assert.equal(escape('a~b/c'), 'a~0b~1c');
});

test('a config mistake is an error that names it', () => {
  assert.throws(() => parseConfig('{"label":{"app":"web"}}'), /unknown field `label`/);
  assert.throws(() => parseConfig('{"labels":{}}'), /at least one label/);
  assert.throws(() => parseConfig('{}'), /missing field `labels`/);
  assert.throws(() => parseConfig('{"labels":{"app":1}}'), /labels.app: expected a string/);
});

// Native tests: `npm test` (node's test runner), on in-memory events.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ownerKind, parseConfig, verdict } from '../src/rules.js';

/** An in-memory stand-in for herald's event handle. */
function event(object) {
  const at = (pointer) => {
    let value = object;
    for (const raw of pointer.split('/').slice(1)) {
      value = value?.[raw.replaceAll('~1', '/').replaceAll('~0', '~')];
    }
    return value;
  };
  return {
    namespace: () => object.metadata?.namespace,
    name: () => object.metadata?.name,
    get: (pointer) => (at(pointer) === undefined ? undefined : JSON.stringify(at(pointer))),
    getString: (pointer) => (typeof at(pointer) === 'string' ? at(pointer) : undefined),
  };
}

const pod = (namespace) =>
  event({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'web-1', namespace, ownerReferences: [{ kind: 'ReplicaSet', name: 'web' }] },
  });

test('passes watched namespaces and drops the rest', () => {
  const rules = parseConfig('{"namespaces": ["shop"]}');
  assert.deepEqual(verdict(rules, pod('shop')), { tag: 'pass' });
  assert.deepEqual(verdict(rules, pod('dev')), { tag: 'drop', val: 'namespace dev is not watched' });
  const node = event({ kind: 'Node', metadata: { name: 'n' } });
  assert.deepEqual(verdict(rules, node), { tag: 'drop', val: 'cluster-scoped' });
  assert.equal(ownerKind(pod('shop')), 'ReplicaSet');
  assert.equal(ownerKind(node), undefined);
});

test('a config mistake is an init error', () => {
  assert.throws(() => parseConfig('{"namespace": ["shop"]}'), /unknown field `namespace`/);
  assert.throws(() => parseConfig('{"namespaces": []}'), /at least one/);
});

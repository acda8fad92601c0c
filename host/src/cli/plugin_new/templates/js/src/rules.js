// The plugin's rules, apart from the component's imports, so that node's
// test runner runs them natively (`npm test`). This one passes the events of
// the configured namespaces and drops the rest, saying why.
//
// Config: {"namespaces": ["shop", "payments"]}

/** Parses the config text; throws an Error that names the mistake. */
export function parseConfig(text) {
  const config = JSON.parse(text);
  if (config === null || typeof config !== 'object' || Array.isArray(config)) {
    throw new Error('the config must be a map with `namespaces`');
  }
  for (const field of Object.keys(config)) {
    if (field !== 'namespaces') {
      throw new Error(`unknown field \`${field}\`, expected \`namespaces\``);
    }
  }
  const namespaces = config.namespaces;
  if (!Array.isArray(namespaces) || namespaces.some((n) => typeof n !== 'string')) {
    throw new Error('namespaces: expected a list of names');
  }
  if (namespaces.length === 0) throw new Error('namespaces: name at least one');
  return { namespaces: new Set(namespaces) };
}

/**
 * The verdict for one event: `{tag: 'pass'}`, `{tag: 'drop', val: reason}`
 * or `{tag: 'route', val: [sink, ...]}`. `event` is herald's handle (or a
 * test's stand-in): `namespace()`, `name()`, `get(pointer)` (JSON text),
 * `getString(pointer)`, ... as in wit/herald.wit, in camelCase.
 */
export function verdict(rules, event) {
  // A string field through the host handle: no JSON parsing here.
  const namespace = event.namespace();
  if (namespace === undefined || namespace === null) return { tag: 'drop', val: 'cluster-scoped' };
  if (!rules.namespaces.has(namespace)) {
    return { tag: 'drop', val: `namespace ${namespace} is not watched` };
  }
  return { tag: 'pass' };
}

/** The kind of the object's first owner: a field read as JSON. */
export function ownerKind(event) {
  const owners = event.get('/metadata/ownerReferences');
  if (owners === undefined || owners === null) return undefined;
  const kind = JSON.parse(owners)[0]?.kind;
  return typeof kind === 'string' ? kind : undefined;
}

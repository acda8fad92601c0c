// The label filter's logic, without the component's imports, so that
// node's test runner can run it natively: the same config and the same
// verdicts as the Rust plugins/label-filter.

/** RFC 6901: one pointer token (`app.kubernetes.io/name` → `app.kubernetes.io~1name`). */
export function escape(token) {
  return token.replaceAll('~', '~0').replaceAll('/', '~1');
}

/**
 * Parses the config text (`{"labels": {"app": "web"}}`) into the sorted
 * list of `[key, value]` pairs every event must carry. Throws an Error whose
 * message says what is wrong, as the Rust plugin's serde errors do.
 */
export function parseConfig(text) {
  const config = JSON.parse(text);
  if (config === null || typeof config !== 'object' || Array.isArray(config)) {
    throw new Error('the config must be a map with `labels`');
  }
  for (const field of Object.keys(config)) {
    if (field !== 'labels') {
      throw new Error(`unknown field \`${field}\`, expected \`labels\``);
    }
  }
  const labels = config.labels;
  if (labels === undefined) throw new Error('missing field `labels`');
  if (labels === null || typeof labels !== 'object' || Array.isArray(labels)) {
    throw new Error('labels: expected a map of label to value');
  }
  const pairs = Object.entries(labels);
  for (const [key, value] of pairs) {
    if (typeof value !== 'string') throw new Error(`labels.${key}: expected a string`);
  }
  if (pairs.length === 0) throw new Error('labels: at least one label is required');
  // Sorted by key, as the Rust plugin's BTreeMap: the first label that
  // fails names the drop reason, so the order is part of the verdict.
  pairs.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return pairs;
}

/**
 * The verdict for one event (anything with `getString(pointer)`): `pass`,
 * or `drop` with the reason the Rust plugin gives.
 */
export function verdict(labels, event) {
  for (const [key, want] of labels) {
    const got = event.getString(`/metadata/labels/${escape(key)}`);
    if (got === undefined || got === null) {
      return { tag: 'drop', val: `label ${key} missing, want ${want}` };
    }
    if (got !== want) return { tag: 'drop', val: `label ${key}=${got}, want ${want}` };
  }
  return { tag: 'pass' };
}

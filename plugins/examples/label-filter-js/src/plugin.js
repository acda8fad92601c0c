// label-filter-js: the herald plugin component. It implements the world
// `plugin` of wit/herald.wit: `init` takes the config, `handle` a batch of
// events and returns one verdict per event.
//
// Built with every WASI feature of componentize-js disabled (see
// package.json), so the component imports nothing but the herald world and
// loads under herald's default policy. The price: an uncaught exception
// traps without a message, so both exports catch and report their errors
// themselves: `init` returns its error, `handle` says it through herald's
// `log` before failing.

import log from 'log';
import { parseConfig, verdict } from './label-filter.js';

// Handles passed to `handle` are owned by the plugin until dropped; herald
// counts a call that keeps one as failed, so each is disposed once read.
const dispose = Symbol.dispose || Symbol.for('dispose');

let labels = null;

export function init(config) {
  try {
    labels = parseConfig(config);
  } catch (e) {
    // A thrown string becomes init's `err(string)`.
    throw String(e && e.message ? e.message : e);
  }
}

export function handle(events) {
  const verdicts = [];
  for (const event of events) {
    try {
      verdicts.push(verdict(labels, event));
    } catch (e) {
      // Said first, since the trap that follows carries no message; then
      // the call fails and the plugin's `onError` policy decides.
      log('error', `label-filter-js: ${e && e.message ? e.message : e}`);
      throw e;
    } finally {
      event[dispose]();
    }
  }
  return verdicts;
}

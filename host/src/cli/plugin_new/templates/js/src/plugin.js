// The herald plugin component: the world `plugin` of wit/herald.wit.
// `init` gets the config as JSON text, `handle` a batch of events and
// returns one verdict per event.
//
// `npm run build` disables every WASI feature of componentize-js, so the
// component imports nothing but the herald world and loads under herald's
// default policy. The price: an uncaught exception traps without a message
// and `console.log` goes nowhere, so speak through `log` (herald's log,
// tagged with the plugin) and catch what you want to report.

import log from 'log';
import { ownerKind, parseConfig, verdict } from './rules.js';

// Events are lent for the call: dispose of each, or herald counts the call
// as failed.
const dispose = Symbol.dispose || Symbol.for('dispose');

let rules = null;

export function init(config) {
  try {
    rules = parseConfig(config);
  } catch (e) {
    // A thrown string is init's `err(string)`: herald reports it.
    throw String(e?.message ?? e);
  }
}

export function handle(events) {
  const verdicts = [];
  for (const event of events) {
    try {
      const owner = ownerKind(event);
      if (owner !== undefined) log('debug', `${event.name()} is owned by a ${owner}`);
      verdicts.push(verdict(rules, event));
    } catch (e) {
      // Said first, since the trap that follows carries no message; then
      // the plugin's `onError` policy decides the events' fate.
      log('error', String(e?.message ?? e));
      throw e;
    } finally {
      event[dispose]();
    }
  }
  return verdicts;
}

import { assertNoPoisoning, restoreGlobals } from '@fast-check/poisoning';

/**
 * Only the built-in constructors and their prototypes are watched: they are what a prototype key
 * would pollute. Other globals change legitimately during a test (vitest's own state, the lazily
 * created fetch globals of undici).
 */
const options = { ignoredRootRegex: /^(?!(Object|Array|Function|String|Number|Boolean|Symbol|Promise|Error|Map|Set|JSON)$)/ };

/** Fails when any built-in prototype gained, lost or changed a property since this module loaded. */
export const assertNoPrototypePollution = () => assertNoPoisoning(options);

/** Puts the built-ins back as they were, so one polluting test cannot fail the next ones. */
export const restoreBuiltIns = () => restoreGlobals(options);

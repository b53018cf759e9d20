// What the vector pages (tests/browser/*.html) share: named checks in groups, assertions, and
// the report. Results go to window.__results as {done, fatal?, violations, groups: {name:
// {passed, failed}}} and as JSON into <pre id="results">; then <body data-done> tells the test
// (browser_support.run_page) to read them. Each page fetches its vectors from vectors/, which
// the test server serves from tests/vectors/ (vectors/index.json lists them).

/** @typedef {{passed: string[], failed: {vector: string, error: string}[]}} Group */

/** @type {{done: boolean, fatal?: string, groups: Record<string, Group>, violations: string[]}} */
const results = { done: false, groups: {}, violations: [] };

document.addEventListener("securitypolicyviolation", (e) => {
  results.violations.push(`${e.effectiveDirective}: ${e.blockedURI}`);
});

export class AssertionError extends Error {
  name = "AssertionError";
}

/**
 * Run one named check of a group, recording its outcome.
 * @param {string} group
 * @param {string} vector
 * @param {() => void} fn
 */
export function check(group, vector, fn) {
  results.groups[group] ??= { passed: [], failed: [] };
  try {
    fn();
    results.groups[group].passed.push(vector);
  } catch (err) {
    const error = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    results.groups[group].failed.push({ vector, error });
  }
}

/**
 * Compare by JSON text: equal values with equal key order.
 * @param {unknown} actual
 * @param {unknown} expected
 */
export function same(actual, expected) {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new AssertionError(`got ${a}, expected ${e}`);
}

/** @param {unknown} condition @param {string} what */
export function ok(condition, what) {
  if (!condition) throw new AssertionError(what);
}

/**
 * @param {() => unknown} fn
 * @param {Function} errorClass
 */
export function raises(fn, errorClass) {
  try {
    fn();
  } catch (err) {
    if (err instanceof errorClass) return;
    throw new AssertionError(
      `raised ${err instanceof Error ? `${err.name}: ${err.message}` : err}, not ${errorClass.name}`,
    );
  }
  throw new AssertionError(`did not raise ${errorClass.name}`);
}

/** @param {string} hex */
export function fromHex(hex) {
  return new Uint8Array((hex.match(/../g) ?? []).map((h) => parseInt(h, 16)));
}

/** @param {Uint8Array} bytes */
export function toHex(bytes) {
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** @param {Uint8Array} a @param {Uint8Array} b */
export function sameBytes(a, b) {
  if (toHex(a) !== toHex(b)) throw new AssertionError(`got ${toHex(a)}, expected ${toHex(b)}`);
}

/** `vectors/NAME` as parsed JSON. @param {string} name */
export async function vector(name) {
  const response = await fetch(`vectors/${name}`);
  if (!response.ok) throw new Error(`vectors/${name}: HTTP ${response.status}`);
  return response.json();
}

/**
 * Wait for `ready` (at most 20 s), run `checks`, then report. Whatever stops the run is `fatal`.
 * @param {() => Promise<unknown>} ready
 * @param {() => Promise<void>} checks
 */
export async function runVectors(ready, checks) {
  const status = /** @type {HTMLElement} */ (document.getElementById("status"));
  try {
    const timeout = new Promise((_, reject) =>
      setTimeout(() => reject(new Error("libsodium did not load within 20 s")), 20_000),
    );
    await Promise.race([ready(), timeout]);
    await checks();
  } catch (err) {
    results.fatal = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  }
  results.done = true;
  status.textContent = results.fatal ? "fatal" : "done";
  /** @type {HTMLElement} */ (document.getElementById("results")).textContent = JSON.stringify(
    results,
    null,
    2,
  );
  Object.assign(window, { __results: results });
  document.body.dataset.done = "true"; // what the tests wait for
}

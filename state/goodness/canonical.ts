// JCS (RFC 8785) of the ledger's own records, fast. The general serialiser (the `canonicalize`
// package) takes 5-7 µs for a small record; the ledger serialises several records per
// transaction, so it would cost more than executing them. JSON.stringify writes strings and
// numbers exactly as JCS prescribes; it differs from JCS only in member order. The ledger
// builds its hot records with their members in JCS order, so a walk that confirms the order
// lets JSON.stringify (native, 3-5x faster) do the writing; any other value takes the general
// walk below, which sorts. Speed depends on how records are built; correctness does not.
// A property test checks both paths against the general serialiser.

function isSorted(keys: string[]): boolean {
  for (let i = 1; i < keys.length; i++) if (keys[i - 1]! > keys[i]!) return false;
  return true;
}

/** Whether JSON.stringify(value) is already its JCS: members in order, finite numbers only. */
function inJcsOrder(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return typeof value !== 'number' || Number.isFinite(value);
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      if (typeof item === 'object' ? item !== null && !inJcsOrder(item) : typeof item === 'number' && !Number.isFinite(item)) return false;
    }
    return true;
  }
  // Every name after '' is above it: only a non-empty previous name needs the comparison
  // (the first member, or one after a member named '').
  let previous = '';
  // for-in visits own members in the order JSON.stringify writes them (records have no prototype members).
  for (const key in value) {
    if (key <= previous && previous !== '') return false;
    previous = key;
    const item = (value as Record<string, unknown>)[key];
    // Primitives are checked here, without a call: records are mostly flat.
    if (typeof item === 'object' ? item !== null && !inJcsOrder(item) : typeof item === 'number' && !Number.isFinite(item)) return false;
  }
  return true;
}

export function canonicalJson(value: unknown): string {
  return inJcsOrder(value) ? JSON.stringify(value) : sortingJcs(value);
}

function sortingJcs(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError('a non-finite number has no JSON form');
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object': {
      if (value === null) return 'null';
      if (Array.isArray(value)) {
        let out = '[';
        for (let i = 0; i < value.length; i++) {
          if (i > 0) out += ',';
          const item: unknown = value[i];
          out += item === undefined || typeof item === 'function' ? 'null' : sortingJcs(item);
        }
        return out + ']';
      }
      const record = value as Record<string, unknown>;
      const keys = Object.keys(record);
      // Object.keys lists integer-like keys first, in numeric order: not JCS order.
      if (!isSorted(keys)) keys.sort();
      let out = '{';
      let first = true;
      for (const key of keys) {
        const item = record[key];
        if (item === undefined || typeof item === 'function') continue;
        if (!first) out += ',';
        first = false;
        out += JSON.stringify(key) + ':' + sortingJcs(item);
      }
      return out + '}';
    }
    default:
      throw new TypeError(`a ${typeof value} has no JSON form`);
  }
}

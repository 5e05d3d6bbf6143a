// Least-recently-used order kept in a Map, which iterates in insertion order: the first entry is the
// least recently used, the one to evict.

/** The value under `key` (undefined if none), moved to the most recently used end. */
export function lruGet<K, V>(map: Map<K, V>, key: K): V | undefined {
  const value = map.get(key);
  if (value !== undefined) {
    map.delete(key);
    map.set(key, value);
  }
  return value;
}

/**
 * The promise of `load()` for `key`, started once per key and shared by every caller; a failed load is forgotten,
 * so the next caller tries again (the file may have been rebuilt, the server may be back).
 */
export function loadOnce<K, V>(cache: Map<K, Promise<V>>, key: K, load: () => Promise<V>): Promise<V> {
  let loading = cache.get(key);
  if (!loading) {
    loading = load();
    cache.set(key, loading);
    const started = loading;
    // Only this attempt's entry goes: a newer one set after an eviction stays.
    started.catch(() => {
      if (cache.get(key) === started) cache.delete(key);
    });
  }
  return loading;
}

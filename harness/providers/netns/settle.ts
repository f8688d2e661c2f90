/**
 * Promise.all for concurrent creation: waits for every promise before throwing the first error, so nothing
 * is still being created (and recorded after the fact) when the caller's cleanup runs.
 */
export async function allSettled<T>(ps: readonly Promise<T>[]): Promise<T[]> {
  const rs = await Promise.allSettled(ps);
  const failed = rs.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  return rs.map((r) => (r as PromiseFulfilledResult<T>).value);
}

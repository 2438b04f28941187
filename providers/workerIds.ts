/** Worker ids as task links carry them. */
const WORKER_ID = /^[A-Za-z0-9][A-Za-z0-9._@:+-]{0,199}$/;

/** A provider worker id as links carry it: letters, digits and `._@:+-`, at most 200 characters. */
export function isValidProviderWorkerId(id: string): boolean {
  return WORKER_ID.test(id);
}

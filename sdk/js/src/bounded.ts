// Waits that end: what the vendor engines join and publish with.

/** Why a bounded wait stopped. */
export class Stop extends Error {
  constructor(readonly why: "aborted" | "timeout") {
    super(why);
  }
}

/** p, unless signal aborts or timeoutMs passes first (then it rejects with a Stop). */
export function bounded<T>(p: Promise<T>, signal: AbortSignal, timeoutMs: number): Promise<T> {
  if (signal.aborted) {
    p.catch(() => undefined);
    return Promise.reject(new Stop("aborted"));
  }
  return new Promise<T>((resolve, reject) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
    };
    const onAbort = (): void => {
      done();
      reject(new Stop("aborted"));
    };
    const timer = setTimeout(() => {
      done();
      reject(new Stop("timeout"));
    }, timeoutMs);
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(
      (v) => {
        done();
        resolve(v);
      },
      (err: unknown) => {
        done();
        reject(err);
      },
    );
  });
}

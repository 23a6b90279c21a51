import { sleep } from "./retry.js";

/**
 * Reports of moves to a standby, and of the media failures that caused them,
 * go out after the moves. When a provider drops every stream of a client at
 * once, the streams moving and the streams reporting share the process (and
 * the control plane, which a stream without a usable standby needs): a report
 * sent while other streams still move slows their moves and helps none. So a
 * report waits until no stream of its client is moving, then a random part of
 * reportSpreadMs (the reports of a mass failover come spread out), and waits
 * again if moves began meanwhile; never longer than reportHoldMaxMs after the
 * move, so that a client that keeps moving streams still reports. A client
 * with one stream reports as before: its own move has ended when its report
 * waits.
 */
export const reportSpreadMs = 1000;
export const reportHoldMaxMs = 5000;

/** @internal counts the streams of a client that are moving. */
export class MoveGate {
  #n = 0;
  #calm: Array<() => void> = [];

  /** Counts a move that begins; the returned function ends it, and may be called more than once. */
  enter(): () => void {
    this.#n++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      if (--this.#n === 0) {
        const calm = this.#calm;
        this.#calm = [];
        for (const f of calm) f();
      }
    };
  }

  /** Whether a stream is moving now. */
  get moving(): boolean {
    return this.#n > 0;
  }

  /** Resolves once no stream moves or at deadline (ms since the epoch): true, or false when signal aborts first. */
  waitCalm(deadline: number, signal: AbortSignal): Promise<boolean> {
    if (signal.aborted) return Promise.resolve(false);
    if (this.#n === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const finish = (ok: boolean): void => {
        clearTimeout(timer);
        signal.removeEventListener("abort", onAbort);
        const i = this.#calm.indexOf(onCalm);
        if (i >= 0) this.#calm.splice(i, 1);
        resolve(ok);
      };
      const onCalm = (): void => finish(true);
      const onAbort = (): void => finish(false);
      const timer = setTimeout(() => finish(true), Math.max(0, deadline - Date.now()));
      this.#calm.push(onCalm);
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** Waits until a report of a move made at movedAt (ms since the epoch) may go out; false when signal aborts first. */
  async holdReport(movedAt: number, signal: AbortSignal): Promise<boolean> {
    const deadline = movedAt + reportHoldMaxMs;
    for (;;) {
      if (!(await this.waitCalm(deadline, signal))) return false;
      if (!(await sleep(Math.random() * reportSpreadMs, signal))) return false;
      if (!this.moving || Date.now() >= deadline) return true;
    }
  }
}

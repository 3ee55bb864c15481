/**
 * The one error base of lib/: every failure kind is a subclass that says whether repeating the same call can
 * succeed (`retryable`), and whose `type` (its class name, unique across lib/) is what activities put on an
 * ApplicationFailure and what other processes match on (never `instanceof` across a process boundary).
 */
export abstract class WeftError extends Error {
  /** Whether the same call may succeed when repeated (busy database, lost connection), or never (bad input). */
  abstract readonly retryable: boolean;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
  /** The failure type string to match on across process boundaries. */
  get type(): string {
    return this.name;
  }
}

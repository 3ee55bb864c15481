/**
 * One error class per way a trace-server request can fail. Each carries the HTTP status the weave SDK
 * sees and whether repeating the same request can succeed (the SDK retries 429 and 5xx by itself).
 */
export abstract class WeaveServerError extends Error {
  abstract readonly retryable: boolean;
  abstract readonly status: number;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The request carries no token, or the wrong one. */
export class UnauthorizedError extends WeaveServerError {
  readonly retryable = false;
  readonly status = 401;
}

/** No endpoint at this method and path. */
export class RouteNotFoundError extends WeaveServerError {
  readonly retryable = false;
  readonly status = 404;
}

/** The body is not JSON (or not multipart form data where a file is expected). */
export class MalformedBodyError extends WeaveServerError {
  readonly retryable = false;
  readonly status = 400;
}

/** The body is JSON but does not have the fields the endpoint needs; `issues` lists them FastAPI-style. */
export class RequestValidationError extends WeaveServerError {
  readonly retryable = false;
  readonly status = 422;
  constructor(
    message: string,
    readonly issues: { loc: (string | number)[]; msg: string; type: string }[],
  ) {
    super(message);
  }
}

/** The body is over the server's size limit. */
export class PayloadTooLargeError extends WeaveServerError {
  readonly retryable = false;
  readonly status = 413;
}

/** The request asks for something weft's lineage store cannot represent (for example feedback on an object). */
export class UnsupportedRequestError extends WeaveServerError {
  readonly retryable = false;
  readonly status = 400;
}

/** The trace server was not configured correctly (no token, bad port); raised before it listens. */
export class ServeConfigurationError extends WeaveServerError {
  readonly retryable = false;
  readonly status = 500;
}

/** A web UI page's parameters cannot be answered (no refs to compare, results of two datasets): a 400 page says why. */
export class UiInputError extends WeaveServerError {
  readonly retryable = false;
  readonly status = 400;
}

/**
 * weft as a Weave trace server: the HTTP API the official `weave` SDK writes to, backed by the lineage store, and a
 * forwarder that mirrors calls to an external Weave trace server without ever taking the host process down. The
 * builders that shape pipeline calls as the SDK's Evaluation.evaluate writes them live in lib/evaluation.
 */
export { startWeaveServer, type WeaveServerOptions, type RunningWeaveServer } from './http-server';
export {
  WeaveTraceServer,
  toCallSchema,
  parseProjectId,
  type WeaveCallSchema,
  type WeaveObjectSchema,
} from './trace-server';
export { parseServeConfig, type ServeConfig } from './serve-config';
export * from './errors';
export {
  TraceForwarder,
  callUpsertItems,
  type TraceForwarderOptions,
  type TraceForwarderStats,
  type TraceLoss,
} from './trace-forwarder';

/**
 * The lineage store: the system of record for models, datasets, app versions, evaluations and traces,
 * with W&B Models (artifacts, Registry, runs) and W&B Weave (objects, tables, calls) semantics and refs.
 */
export { openLineageStore, LineageStore, type LineageStoreOptions } from './lineage-store';
export * from './errors';
export * from './refs';
export {
  bytesDigest,
  stringDigest,
  canonicalJson,
  objectDigest,
  rowDigest,
  tableDigest,
  sha256Hex,
  sha256OfFile,
} from './digest';
export { idempotencyKeyFor, InProcessIdempotency } from './idempotency';
export type { StoreDefaults, StoreLimits } from './store-context';
export type {
  PublishObjectInput,
  PublishedObject,
  ObjectVersion,
  ObjectSummary,
  GetObjectOptions,
  PublishDatasetInput,
  PublishedDataset,
  PatchDatasetInput,
} from './objects';
export type { TableCreateInput, TableCreateResult, TablePatchInput, TableRow } from './tables';
export type {
  ArtifactFileInput,
  ArtifactReferenceInput,
  LogArtifactInput,
  LoggedArtifact,
  ArtifactVersion,
  ArtifactCollectionSummary,
  ManifestEntry,
  DownloadResult,
} from './artifacts';
export type { AliasMove, AliasMoveResult, MoveAliasRequest } from './collections';
export type {
  Registry,
  CreateRegistryInput,
  LinkInput,
  LinkResult,
  LinkedVersion,
  RegistryCollectionSummary,
  PromoteRequest,
} from './registry';
export type { Run, RunState, CreateRunInput } from './runs';
export type {
  CallInput,
  CallRecord,
  CallQuery,
  CallSelection,
  FeedbackInput,
  Feedback,
  CallAttributeValue,
} from './calls';
export type { LineageGraph, LineageNode, LineageEdge, WalkOptions } from './lineage-graph';
export type { SqlDatabase, SqlExecutor, SqlTransaction, SqlDialect, SqlValue } from './sql/sql-database';
export { jsonArrayElements } from './sql/sql-database';

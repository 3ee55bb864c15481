/**
 * Publishing the pipeline's results into a W&B server (W&B cloud, dedicated, or another `weft serve`) through
 * W&B's own protocols, next to the local store that stays the system of record.
 */
export { selectWandbRemote, type WandbRemoteConfig, type WandbRemoteSelection } from './config';
export { WandbClient, type WandbClientOptions } from './client';
export {
  WandbAliasConflictError,
  WandbAuthError,
  WandbConfigError,
  WandbRequestError,
  WandbUnavailableError,
} from './errors';
export { PublicationJournal, serverKey, type Publication, type PublicationKind } from './journal';
export { WandbPublisher, untracked, type PublishCheckpoint, type PublishProgress, type RemoteRefs } from './publisher';
export { openWandbPublisher } from './open';
export { syncToWandb, type SyncEntry } from './sync';

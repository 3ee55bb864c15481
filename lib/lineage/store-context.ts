import crypto from 'node:crypto';
import type { BlobStore } from './blob-store';
import { validateName } from './refs';
import type { SqlDatabase } from './sql/sql-database';

/** Size limits that keep one value from bloating the database; artifacts carry big content as files. */
export interface StoreLimits {
  /** Largest object value, as canonical JSON bytes. Default 16 MiB. */
  maxValueBytes: number;
  /** Largest table row, as canonical JSON bytes. Default 1 MiB. */
  maxRowBytes: number;
  /** Call inputs and outputs larger than this (canonical JSON bytes) are stored as object refs. Default 64 KiB. */
  largeCallValueBytes: number;
}

export interface StoreDefaults {
  entity: string;
  project: string;
  org: string;
}

/** What every part of the store shares: the database, the blob folder, defaults and limits. */
export interface StoreContext {
  database: SqlDatabase;
  blobs: BlobStore;
  defaults: StoreDefaults;
  limits: StoreLimits;
}

/** Entity and project of an operation, validated, with the store's defaults filled in. */
export function resolveProject(
  context: StoreContext,
  entity?: string,
  project?: string,
): { entity: string; project: string; key: string } {
  const resolvedEntity = validateName('entity', entity ?? context.defaults.entity);
  const resolvedProject = validateName('project', project ?? context.defaults.project);
  return { entity: resolvedEntity, project: resolvedProject, key: `${resolvedEntity}/${resolvedProject}` };
}

export function timestamp(): string {
  return new Date().toISOString();
}

export function newId(): string {
  return crypto.randomUUID();
}

export function parseJson<T>(text: string | null | undefined): T {
  return (text === null || text === undefined ? null : JSON.parse(text)) as T;
}

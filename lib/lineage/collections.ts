import { AliasConflictError, InvalidNameError, InvalidValueError, NotFoundError } from './errors';
import { parseVersionIndex, validateName } from './refs';
import { newId, timestamp } from './store-context';
import type { SqlExecutor, SqlTransaction } from './sql/sql-database';

/**
 * Versions and aliases shared by artifact collections (sequences: what `log` appends to) and
 * registry collections (portfolios: what `link` appends to). `latest` is computed (the highest
 * version), so it moves by itself; custom aliases are rows moved by compare-and-set with a history.
 */

export type CollectionKind = 'sequence' | 'portfolio';

export interface CollectionRow {
  id: string;
  owner: string;
  project: string;
  name: string;
  kind: CollectionKind;
  artifact_type: string;
  description: string | null;
  created_at: string;
}

export interface AliasMove {
  alias: string;
  fromVersion: number | null;
  toVersion: number | null;
  actor: string | null;
  workflowId: string | null;
  movedAt: string;
}

export interface AliasMoveResult {
  alias: string;
  /** Where the alias pointed before this call (null: unassigned). */
  fromVersion: number | null;
  toVersion: number;
  /** False when the alias already pointed at the target: a retried move is a no-op success. */
  moved: boolean;
}

export interface MoveAliasRequest {
  alias: string;
  /** The version to point at: `vN` or N. */
  to: string | number;
  /**
   * Where the caller believes the alias points now (`vN`, N, or null for "unassigned"); anything else is a conflict.
   * `'any'` moves it from wherever it points, read under the alias lock (an alias a run owns, such as `candidate`).
   */
  expected: string | number | null | 'any';
  actor?: string;
  workflowId?: string;
}

export async function findCollection(
  executor: SqlExecutor,
  owner: string,
  project: string,
  name: string,
): Promise<CollectionRow | undefined> {
  const [row] = await executor.query<CollectionRow>(
    'SELECT id, owner, project, name, kind, artifact_type, description, created_at FROM collections WHERE owner = ? AND project = ? AND name = ?',
    [owner, project, name],
  );
  return row;
}

export async function createCollection(
  transaction: SqlTransaction,
  fields: {
    owner: string;
    project: string;
    name: string;
    kind: CollectionKind;
    artifactType: string;
    description?: string;
  },
): Promise<CollectionRow> {
  const row: CollectionRow = {
    id: newId(),
    owner: fields.owner,
    project: fields.project,
    name: fields.name,
    kind: fields.kind,
    artifact_type: fields.artifactType,
    description: fields.description ?? null,
    created_at: timestamp(),
  };
  await transaction.execute(
    'INSERT INTO collections (id, owner, project, name, kind, artifact_type, description, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    [row.id, row.owner, row.project, row.name, row.kind, row.artifact_type, row.description, row.created_at],
  );
  return row;
}

/** Parses `vN` or a non-negative integer into a version number. */
export function toVersionNumber(value: string | number, what: string): number {
  if (typeof value === 'number') {
    if (Number.isInteger(value) && value >= 0) return value;
  } else {
    const parsed = parseVersionIndex(value);
    if (parsed !== undefined) return parsed;
  }
  throw new InvalidValueError(
    `${what} must be a version like v0, v1, … (or its number), got ${JSON.stringify(value)}.`,
  );
}

/** Resolves `vN`, `latest` or a custom alias to a version number within a collection. */
export async function resolveVersionIndex(
  executor: SqlExecutor,
  collection: CollectionRow,
  selector: string,
  displayName: string,
): Promise<number> {
  const index = parseVersionIndex(selector);
  if (index !== undefined) {
    const [row] = await executor.query(
      'SELECT 1 AS present FROM collection_members WHERE collection_id = ? AND version_index = ?',
      [collection.id, index],
    );
    if (row) return index;
    const [latest] = await executor.query<{ latest: number | null }>(
      'SELECT MAX(version_index) AS latest FROM collection_members WHERE collection_id = ?',
      [collection.id],
    );
    throw new NotFoundError(
      `${displayName} has no version ${selector}; ${latest?.latest === null || latest === undefined ? 'it has no versions yet' : `versions are v0 … v${latest.latest}`}.`,
    );
  }
  if (selector === 'latest') {
    const [latest] = await executor.query<{ latest: number | null }>(
      'SELECT MAX(version_index) AS latest FROM collection_members WHERE collection_id = ?',
      [collection.id],
    );
    if (latest?.latest === null || latest === undefined)
      throw new NotFoundError(`${displayName} has no versions yet, so it has no latest.`);
    return Number(latest.latest);
  }
  const [alias] = await executor.query<{ version_index: number }>(
    'SELECT version_index FROM aliases WHERE collection_id = ? AND alias = ?',
    [collection.id, selector],
  );
  if (alias) return Number(alias.version_index);
  const known = await aliasesOf(executor, collection.id);
  throw new NotFoundError(
    `${displayName} has no alias "${selector}"; its aliases are ${['latest', ...known.map((row) => row.alias)].join(', ')}.`,
  );
}

export async function aliasesOf(
  executor: SqlExecutor,
  collectionId: string,
): Promise<{ alias: string; version_index: number }[]> {
  return executor.query<{ alias: string; version_index: number }>(
    'SELECT alias, version_index FROM aliases WHERE collection_id = ? ORDER BY alias',
    [collectionId],
  );
}

/** Aliases of one version, `latest` included when it is the newest. */
export async function aliasesOfVersion(
  executor: SqlExecutor,
  collectionId: string,
  versionIndex: number,
): Promise<string[]> {
  const rows = await executor.query<{ alias: string }>(
    'SELECT alias FROM aliases WHERE collection_id = ? AND version_index = ? ORDER BY alias',
    [collectionId, versionIndex],
  );
  const [latest] = await executor.query<{ latest: number | null }>(
    'SELECT MAX(version_index) AS latest FROM collection_members WHERE collection_id = ?',
    [collectionId],
  );
  const names = rows.map((row) => row.alias);
  return latest && latest.latest !== null && Number(latest.latest) === versionIndex ? ['latest', ...names] : names;
}

/** Compare-and-set alias move, recorded in alias_moves; a move to where the alias already points is a no-op success. */
export async function moveAlias(
  transaction: SqlTransaction,
  collection: CollectionRow,
  request: MoveAliasRequest,
  displayName: string,
): Promise<AliasMoveResult> {
  if (request.alias === 'latest') {
    throw new InvalidNameError(
      'The alias "latest" moves by itself to the newest version; choose another alias such as "production" or "staging".',
    );
  }
  const alias = validateName('alias', request.alias);
  const target = toVersionNumber(request.to, `The target of alias "${alias}"`);
  const expected =
    request.expected === null || request.expected === 'any'
      ? null
      : toVersionNumber(request.expected, `The expected current version of alias "${alias}"`);
  await transaction.lock(`alias:${collection.id}:${alias}`);
  const [member] = await transaction.query(
    'SELECT 1 AS present FROM collection_members WHERE collection_id = ? AND version_index = ?',
    [collection.id, target],
  );
  if (!member) {
    throw new NotFoundError(
      `Cannot point alias "${alias}" at v${target}: ${displayName} has no version v${target}. Log or link that version first.`,
    );
  }
  const [current] = await transaction.query<{ version_index: number }>(
    'SELECT version_index FROM aliases WHERE collection_id = ? AND alias = ?',
    [collection.id, alias],
  );
  const currentVersion = current ? Number(current.version_index) : null;
  if (currentVersion === target) return { alias, fromVersion: currentVersion, toVersion: target, moved: false };
  if (request.expected !== 'any' && currentVersion !== expected) {
    throw new AliasConflictError(
      `Alias "${alias}" of ${displayName} points at ${currentVersion === null ? 'nothing' : `v${currentVersion}`}, not ${expected === null ? 'nothing' : `v${expected}`} as expected; someone moved it. Re-read it and retry with expected=${currentVersion === null ? 'null' : `v${currentVersion}`} if the move still makes sense.`,
      currentVersion,
    );
  }
  const movedAt = timestamp();
  if (currentVersion === null) {
    await transaction.execute(
      'INSERT INTO aliases (collection_id, alias, version_index, updated_at) VALUES (?, ?, ?, ?)',
      [collection.id, alias, target, movedAt],
    );
  } else {
    await transaction.execute(
      'UPDATE aliases SET version_index = ?, updated_at = ? WHERE collection_id = ? AND alias = ?',
      [target, movedAt, collection.id, alias],
    );
  }
  // A per-alias sequence orders the history; timestamps alone tie within a millisecond.
  const [last] = await transaction.query<{ next_sequence: number }>(
    'SELECT COALESCE(MAX(sequence) + 1, 0) AS next_sequence FROM alias_moves WHERE collection_id = ? AND alias = ?',
    [collection.id, alias],
  );
  await transaction.execute(
    'INSERT INTO alias_moves (id, collection_id, alias, sequence, from_version, to_version, actor, workflow_id, moved_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
    [
      newId(),
      collection.id,
      alias,
      Number(last!.next_sequence),
      currentVersion,
      target,
      request.actor ?? null,
      request.workflowId ?? null,
      movedAt,
    ],
  );
  return { alias, fromVersion: currentVersion, toVersion: target, moved: true };
}

/** Every recorded move of a collection's aliases (or of one alias), oldest first. */
export async function aliasHistory(executor: SqlExecutor, collectionId: string, alias?: string): Promise<AliasMove[]> {
  const rows = await executor.query<{
    alias: string;
    from_version: number | null;
    to_version: number | null;
    actor: string | null;
    workflow_id: string | null;
    moved_at: string;
  }>(
    `SELECT alias, from_version, to_version, actor, workflow_id, moved_at FROM alias_moves WHERE collection_id = ?${alias === undefined ? '' : ' AND alias = ?'} ORDER BY alias, sequence`,
    alias === undefined ? [collectionId] : [collectionId, alias],
  );
  return rows.map((row) => ({
    alias: row.alias,
    fromVersion: row.from_version === null ? null : Number(row.from_version),
    toVersion: row.to_version === null ? null : Number(row.to_version),
    actor: row.actor,
    workflowId: row.workflow_id,
    movedAt: row.moved_at,
  }));
}

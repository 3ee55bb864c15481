import { InvalidNameError, InvalidRefError } from './errors';

/**
 * The ref forms of W&B Models and Weave, parsed into typed records and formatted back.
 * Parsing is pure; whether the thing exists is the store's question.
 */

export const ARTIFACT_SCHEME = 'wandb-artifact:///';
export const WEAVE_SCHEME = 'weave:///';
export const REGISTRY_PROJECT_PREFIX = 'wandb-registry-';

/** `wandb-artifact:///<entity>/<project>/<name>:<vN or alias>`; version absent when a ref names the whole collection. */
export interface ArtifactRef {
  kind: 'artifact';
  entity: string;
  project: string;
  name: string;
  version?: string;
}

/** `wandb-artifact:///<org>/wandb-registry-<Registry>/<Collection>:<vN or alias>`. */
export interface RegistryRef {
  kind: 'registry';
  org: string;
  registry: string;
  collection: string;
  version?: string;
}

/** `weave:///<entity>/<project>/object/<Name>:<digest>` (`latest` and `vN` are accepted for lookups). */
export interface ObjectRef {
  kind: 'object';
  entity: string;
  project: string;
  name: string;
  digest: string;
}

/** `weave:///<entity>/<project>/table/<digest>`: the rows of a Dataset, stored one by one. */
export interface TableRef {
  kind: 'table';
  entity: string;
  project: string;
  digest: string;
}

/** `weave:///<entity>/<project>/call/<id>`. */
export interface CallRef {
  kind: 'call';
  entity: string;
  project: string;
  id: string;
}

export type LineageRef = ArtifactRef | RegistryRef | ObjectRef | TableRef | CallRef;

const MAX_NAME_LENGTH = 128;
const MAX_REGISTRY_NAME_LENGTH = 64;
const VERSION_INDEX_PATTERN = /^v(0|[1-9][0-9]{0,8})$/;

type NameKind =
  | 'entity'
  | 'project'
  | 'org'
  | 'artifact name'
  | 'collection name'
  | 'object name'
  | 'alias'
  | 'registry name'
  | 'artifact type'
  | 'job type'
  | 'feedback type';

const SIMPLE_NAME_RULE = 'letters, digits, "-", "_" and "." (at most 128 characters, not starting with "." or "-")';
const REGISTRY_NAME_RULE =
  'letters, digits, spaces, "-" and "_" (at most 64 characters, starting and ending with a letter or digit)';
// W&B collection names carry model versions ("Finetuned Llama-3.2"): a "." is allowed inside, never "..".
const COLLECTION_NAME_RULE =
  'letters, digits, spaces, "-", "_" and "." (at most 64 characters, starting and ending with a letter or digit)';

function describeCharacter(character: string): string {
  return `U+${character.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
}

/** Checks a name and throws InvalidNameError saying what is wrong and what is allowed. */
export function validateName(kind: NameKind, value: unknown): string {
  // Registry and registry-collection names are display names in W&B ("RAG Models" / "RAG Model"): spaces allowed.
  const isRegistry = kind === 'registry name' || kind === 'collection name';
  const isCollection = kind === 'collection name';
  const rule = isCollection ? COLLECTION_NAME_RULE : isRegistry ? REGISTRY_NAME_RULE : SIMPLE_NAME_RULE;
  const limit = isRegistry ? MAX_REGISTRY_NAME_LENGTH : MAX_NAME_LENGTH;
  if (typeof value !== 'string') {
    throw new InvalidNameError(`The ${kind} must be a string, got ${typeof value}. Allowed: ${rule}.`);
  }
  if (value.length === 0) {
    throw new InvalidNameError(`The ${kind} is empty. Allowed: ${rule}.`);
  }
  if (value.length > limit) {
    throw new InvalidNameError(
      `The ${kind} "${value.slice(0, 32)}…" is ${value.length} characters long; the limit is ${limit}. Allowed: ${rule}.`,
    );
  }
  const control = /[\u0000-\u001f\u007f]/.exec(value);
  if (control) {
    throw new InvalidNameError(
      `The ${kind} ${JSON.stringify(value)} contains the control character ${describeCharacter(control[0])} at position ${control.index}. Allowed: ${rule}.`,
    );
  }
  if (value.includes('..')) {
    throw new InvalidNameError(`The ${kind} "${value}" contains "..", which could escape a folder. Allowed: ${rule}.`);
  }
  if (value.includes('/') || value.includes('\\')) {
    throw new InvalidNameError(`The ${kind} "${value}" contains a path separator. Allowed: ${rule}.`);
  }
  const pattern = isCollection
    ? /^[A-Za-z0-9](?:[A-Za-z0-9 _.-]*[A-Za-z0-9])?$/
    : isRegistry
      ? /^[A-Za-z0-9](?:[A-Za-z0-9 _-]*[A-Za-z0-9])?$/
      : /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;
  if (!pattern.test(value)) {
    const bad = isCollection
      ? /[^A-Za-z0-9 _.-]/.exec(value)
      : isRegistry
        ? /[^A-Za-z0-9 _-]/.exec(value)
        : (/[^A-Za-z0-9_.-]/.exec(value) ?? (/^[.-]/.test(value) ? [value[0]] : null));
    const detail = bad ? `the character "${bad[0]}"` : 'a leading or trailing space';
    throw new InvalidNameError(`The ${kind} "${value}" contains ${detail}. Allowed: ${rule}.`);
  }
  if (kind === 'alias' && VERSION_INDEX_PATTERN.test(value)) {
    throw new InvalidNameError(
      `The alias "${value}" looks like a version number; aliases name versions, they cannot be one. Use a word such as "production" or "staging".`,
    );
  }
  return value;
}

/** Parses `vN` into N, or returns undefined for an alias. */
export function parseVersionIndex(version: string): number | undefined {
  const match = VERSION_INDEX_PATTERN.exec(version);
  return match ? Number(match[1]) : undefined;
}

function validateVersion(version: string, whole: string): string {
  if (parseVersionIndex(version) !== undefined || version === 'latest') return version;
  if (/^v[0-9]+$/.test(version)) {
    throw new InvalidRefError(
      `The version "${version}" in ${JSON.stringify(whole)} has leading zeros or is too big; write v0, v1, v2, …`,
    );
  }
  try {
    return validateName('alias', version);
  } catch (error) {
    throw new InvalidRefError(`The ref ${JSON.stringify(whole)} has a bad version: ${(error as Error).message}`);
  }
}

function wrapName(kind: NameKind, value: string, whole: string): string {
  try {
    return validateName(kind, value);
  } catch (error) {
    throw new InvalidRefError(`The ref ${JSON.stringify(whole)} is invalid: ${(error as Error).message}`);
  }
}

const ARTIFACT_FORMS =
  'wandb-artifact:///<entity>/<project>/<name>:<vN or alias> or wandb-artifact:///<org>/wandb-registry-<Registry>/<Collection>:<vN or alias>';
const WEAVE_FORMS =
  'weave:///<entity>/<project>/object/<Name>:<digest>, weave:///<entity>/<project>/table/<digest> or weave:///<entity>/<project>/call/<id>';

function splitNameAndVersion(tail: string, whole: string): { name: string; version?: string } {
  const colon = tail.indexOf(':');
  if (colon === -1) return { name: tail };
  const version = tail.slice(colon + 1);
  if (version.length === 0) {
    throw new InvalidRefError(
      `The ref ${JSON.stringify(whole)} ends with ":" but names no version; write :v0, :latest or an alias.`,
    );
  }
  return { name: tail.slice(0, colon), version: validateVersion(version, whole) };
}

/** Parses any of the ref forms; throws InvalidRefError naming the accepted forms. */
export function parseRef(ref: unknown): LineageRef {
  if (typeof ref !== 'string' || ref.length === 0) {
    throw new InvalidRefError(`A ref must be a non-empty string such as ${ARTIFACT_FORMS} or ${WEAVE_FORMS}.`);
  }
  if (ref.length > 1024) {
    throw new InvalidRefError(
      `The ref "${ref.slice(0, 40)}…" is ${ref.length} characters long; refs are at most 1024.`,
    );
  }
  if (ref.startsWith(ARTIFACT_SCHEME)) return parseArtifactPath(ref.slice(ARTIFACT_SCHEME.length), ref);
  if (ref.startsWith(WEAVE_SCHEME)) return parseWeavePath(ref.slice(WEAVE_SCHEME.length), ref);
  throw new InvalidRefError(
    `The ref ${JSON.stringify(ref)} has an unknown scheme. Accepted: ${ARTIFACT_FORMS}; ${WEAVE_FORMS}.`,
  );
}

function parseArtifactPath(pathPart: string, whole: string): ArtifactRef | RegistryRef {
  const parts = pathPart.split('/');
  if (parts.length !== 3 || parts.some((part) => part.length === 0)) {
    throw new InvalidRefError(
      `The ref ${JSON.stringify(whole)} must have exactly three non-empty path parts. Accepted: ${ARTIFACT_FORMS}.`,
    );
  }
  const [owner, project, tail] = parts as [string, string, string];
  const { name, version } = splitNameAndVersion(tail, whole);
  if (project.startsWith(REGISTRY_PROJECT_PREFIX)) {
    const registry = wrapName('registry name', project.slice(REGISTRY_PROJECT_PREFIX.length), whole);
    return {
      kind: 'registry',
      org: wrapName('org', owner, whole),
      registry,
      collection: wrapName('collection name', name, whole),
      ...(version === undefined ? {} : { version }),
    };
  }
  return {
    kind: 'artifact',
    entity: wrapName('entity', owner, whole),
    project: wrapName('project', project, whole),
    name: wrapName('artifact name', name, whole),
    ...(version === undefined ? {} : { version }),
  };
}

const DIGEST_PATTERN = /^[A-Za-z0-9]{1,128}$/;
const CALL_ID_PATTERN = /^[A-Za-z0-9_-]{1,128}$/;

function parseWeavePath(pathPart: string, whole: string): ObjectRef | TableRef | CallRef {
  const parts = pathPart.split('/');
  if (parts.length !== 4 || parts.some((part) => part.length === 0)) {
    throw new InvalidRefError(
      `The ref ${JSON.stringify(whole)} must have four non-empty path parts. Accepted: ${WEAVE_FORMS}.`,
    );
  }
  const [entityPart, projectPart, kind, tail] = parts as [string, string, string, string];
  const entity = wrapName('entity', entityPart, whole);
  const project = wrapName('project', projectPart, whole);
  if (kind === 'object') {
    const colon = tail.indexOf(':');
    if (colon === -1) {
      throw new InvalidRefError(
        `The object ref ${JSON.stringify(whole)} has no ":<digest>"; write …/object/<Name>:<digest> or :latest.`,
      );
    }
    const digest = tail.slice(colon + 1);
    if (!(DIGEST_PATTERN.test(digest) || digest === 'latest' || parseVersionIndex(digest) !== undefined)) {
      throw new InvalidRefError(
        `The object ref ${JSON.stringify(whole)} has the digest "${digest}"; a digest is 1-128 letters and digits, or "latest", or vN.`,
      );
    }
    return { kind: 'object', entity, project, name: wrapName('object name', tail.slice(0, colon), whole), digest };
  }
  if (kind === 'table') {
    if (!DIGEST_PATTERN.test(tail)) {
      throw new InvalidRefError(
        `The table ref ${JSON.stringify(whole)} has a bad digest; a digest is 1-128 letters and digits.`,
      );
    }
    return { kind: 'table', entity, project, digest: tail };
  }
  if (kind === 'call') {
    if (!CALL_ID_PATTERN.test(tail)) {
      throw new InvalidRefError(
        `The call ref ${JSON.stringify(whole)} has a bad id; a call id is 1-128 letters, digits, "-" or "_".`,
      );
    }
    return { kind: 'call', entity, project, id: tail };
  }
  throw new InvalidRefError(
    `The ref ${JSON.stringify(whole)} names the kind "${kind}"; accepted kinds are object, table and call (${WEAVE_FORMS}).`,
  );
}

function withArticle(word: string): string {
  return /^[aeiou]/.test(word) ? `an ${word}` : `a ${word}`;
}

/** Parses a ref and checks its kind, so callers get one precise message instead of a type error later. */
export function parseRefOfKind<K extends LineageRef['kind']>(
  ref: unknown,
  ...kinds: K[]
): Extract<LineageRef, { kind: K }> {
  const parsed = parseRef(ref);
  if (!(kinds as string[]).includes(parsed.kind)) {
    throw new InvalidRefError(
      `The ref ${JSON.stringify(ref)} is ${withArticle(parsed.kind)} ref; expected ${withArticle(kinds.join(' or '))} ref here.`,
    );
  }
  return parsed as Extract<LineageRef, { kind: K }>;
}

/** Formats a parsed ref back into its string form. */
export function formatRef(ref: LineageRef): string {
  switch (ref.kind) {
    case 'artifact':
      return `${ARTIFACT_SCHEME}${ref.entity}/${ref.project}/${ref.name}${ref.version === undefined ? '' : `:${ref.version}`}`;
    case 'registry':
      return `${ARTIFACT_SCHEME}${ref.org}/${REGISTRY_PROJECT_PREFIX}${ref.registry}/${ref.collection}${ref.version === undefined ? '' : `:${ref.version}`}`;
    case 'object':
      return `${WEAVE_SCHEME}${ref.entity}/${ref.project}/object/${ref.name}:${ref.digest}`;
    case 'table':
      return `${WEAVE_SCHEME}${ref.entity}/${ref.project}/table/${ref.digest}`;
    case 'call':
      return `${WEAVE_SCHEME}${ref.entity}/${ref.project}/call/${ref.id}`;
  }
}

/** True when a string looks like a weave ref, so values that hold refs can be resolved on demand. */
export function isWeaveRefString(value: unknown): value is string {
  return typeof value === 'string' && value.startsWith(WEAVE_SCHEME);
}

/**
 * W&B's path form of a registry collection, `<Registry>/<Collection>` (`"RAG Models/RAG Model"`), split into its
 * names; a bare registry name has no collection. The names are validated where they are used.
 */
export function parseRegistryPath(text: string): { registry: string; collection?: string } {
  const slash = text.indexOf('/');
  if (slash < 0) return { registry: text };
  return { registry: text.slice(0, slash), collection: text.slice(slash + 1) };
}

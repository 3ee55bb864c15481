import {
  buildSchema,
  isScalarType,
  isSpecifiedScalarType,
  Kind,
  valueFromASTUntyped,
  type GraphQLSchema,
  type ValueNode,
} from 'graphql';

/**
 * The subset of W&B's GraphQL schema that wandb 0.31 (through wandb-core) and weave 0.54 send for the
 * seed's steps: login, runs, artifacts (write, read, download), registry links, aliases, and weave.init's
 * project check. Written for weft from the operations the SDKs send, not copied from W&B.
 *
 * Mutation inputs are opaque scalars named like W&B's input types (so the SDKs' variable declarations
 * validate) and are checked field by field in the resolvers, which say what is missing.
 */
const SDL = /* GraphQL */ `
  scalar JSONString
  scalar DateTime
  scalar Int64
  scalar UpsertModelInput
  scalar UpsertBucketInput
  scalar CreateRunFilesInput
  scalar CreateArtifactInput
  scalar CreateArtifactManifestInput
  scalar UpdateArtifactManifestInput
  scalar CreateArtifactFilesInput
  scalar CommitArtifactInput
  scalar CompleteMultipartUploadArtifactInput
  scalar UploadPartsInput
  scalar CompleteMultipartAction
  scalar ArtifactManifestType
  scalar UseArtifactInput
  scalar LinkArtifactInput
  scalar AddAliasesInput
  scalar DeleteAliasesInput
  scalar UpdateArtifactInput

  enum RampIDType {
    OrgName
    UserName
    EntityName
  }

  type Query {
    viewer: User
    serverInfo: ServerInfo
    project(name: String, entityName: String): Project
    model(name: String, entityName: String): Project
    entity(name: String!): Entity
    organization(name: String!): Organization
    artifact(id: ID!): Artifact
  }

  type Mutation {
    upsertModel(input: UpsertModelInput!): UpsertModelPayload
    upsertBucket(input: UpsertBucketInput!): UpsertBucketPayload
    createRunFiles(input: CreateRunFilesInput!): CreateRunFilesPayload
    createArtifact(input: CreateArtifactInput!): CreateArtifactPayload
    createArtifactManifest(input: CreateArtifactManifestInput!): CreateArtifactManifestPayload
    updateArtifactManifest(input: UpdateArtifactManifestInput!): CreateArtifactManifestPayload
    createArtifactFiles(input: CreateArtifactFilesInput!): CreateArtifactFilesPayload
    commitArtifact(input: CommitArtifactInput!): CommitArtifactPayload
    completeMultipartUploadArtifact(input: CompleteMultipartUploadArtifactInput!): CompleteMultipartPayload
    useArtifact(input: UseArtifactInput!): UseArtifactPayload
    linkArtifact(input: LinkArtifactInput!): LinkArtifactPayload
    addAliases(input: AddAliasesInput!): SuccessPayload
    deleteAliases(input: DeleteAliasesInput!): SuccessPayload
    updateArtifact(input: UpdateArtifactInput!): UpdateArtifactPayload
  }

  type User {
    id: ID!
    name: String
    entity: String!
    username: String
    email: String
    admin: Boolean
    flags: JSONString
    teams: EntityConnection
    defaultEntity: Entity
    organizations: [Organization!]!
  }
  type EntityConnection {
    edges: [EntityEdge!]!
  }
  type EntityEdge {
    node: Entity
  }
  type Entity {
    id: ID!
    name: String!
    organization: Organization
    user: User
    xxhashDigestsEnabled: Boolean
  }
  type Organization {
    id: ID!
    name: String!
    orgEntity: Entity
    coreWeaveOrganizationId: String
    featureFlags(rampIDType: RampIDType): [FeatureFlag!]!
  }
  type FeatureFlag {
    rampKey: String!
    isEnabled: Boolean!
  }
  type ServerInfo {
    features: [ServerFeature!]!
  }
  type ServerFeature {
    name: String!
    isEnabled: Boolean!
  }

  type Project {
    id: ID!
    internalId: ID!
    name: String!
    description: String
    readOnly: Boolean
    entity: Entity!
    artifact(name: String!): Artifact
    artifactCollection(name: String!): ArtifactCollection
    artifactCollectionMembership(name: String!): ArtifactCollectionMembership
    run(name: String!): Run
    bucket(name: String!, missingOk: Boolean): Run
  }
  type UpsertModelPayload {
    model: Project
    inserted: Boolean
  }

  type Run {
    id: ID!
    name: String!
    displayName: String
    description: String
    notes: String
    state: String
    config: JSONString
    summaryMetrics: JSONString
    sweepName: String
    tags: [String!]
    project: Project
    historyLineCount: Int
    logLineCount: Int
    eventsLineCount: Int
    historyTail: String
    eventsTail: String
    wandbConfig(keys: [String!]): JSONString
  }
  type UpsertBucketPayload {
    bucket: Run
    inserted: Boolean
  }
  type CreateRunFilesPayload {
    runID: ID!
    uploadHeaders: [String!]!
    files: [File!]!
  }

  type File {
    id: ID!
    name: String!
    displayName: String
    url: String
    directUrl: String
    uploadUrl: String
    uploadHeaders: [String!]
    storagePath: String
    sizeBytes: Int64
    md5: String
    digest: String
    mimetype: String
    uploadMultipartUrls: UploadMultipartUrls
    artifact: Artifact
  }
  type UploadMultipartUrls {
    uploadID: String!
    uploadUrlParts: [UploadUrlPart!]!
  }
  type UploadUrlPart {
    partNumber: Int64!
    uploadUrl: String!
  }
  type FileConnection {
    pageInfo: PageInfo!
    edges: [FileEdge!]!
  }
  type FileEdge {
    node: File
    cursor: String
  }
  type PageInfo {
    startCursor: String
    endCursor: String
    hasNextPage: Boolean!
    hasPreviousPage: Boolean!
  }

  type ArtifactType {
    id: ID
    name: String!
  }
  type Tag {
    id: ID!
    name: String!
  }
  type ArtifactAlias {
    id: ID
    alias: String!
    artifactCollection: ArtifactCollection
  }
  interface ArtifactCollection {
    id: ID!
    name: String!
    description: String
    project: Project
    artifactMembership(aliasName: String!): ArtifactCollectionMembership
  }
  type ArtifactSequence implements ArtifactCollection {
    id: ID!
    name: String!
    description: String
    project: Project
    artifactMembership(aliasName: String!): ArtifactCollectionMembership
    latestArtifact: Artifact
  }
  type ArtifactPortfolio implements ArtifactCollection {
    id: ID!
    name: String!
    description: String
    project: Project
    artifactMembership(aliasName: String!): ArtifactCollectionMembership
  }
  type ArtifactCollectionMembership {
    id: ID!
    versionIndex: Int
    createdAt: DateTime!
    aliases: [ArtifactAlias!]!
    artifactCollection: ArtifactCollection
    artifact: Artifact
    files(after: String, first: Int, names: [String!]): FileConnection!
  }
  type Artifact {
    id: ID!
    artifactSequence: ArtifactSequence!
    versionIndex: Int
    artifactType: ArtifactType!
    description: String
    metadata: JSONString
    ttlDurationSeconds: Int64!
    ttlIsInherited: Boolean!
    tags: [Tag!]!
    historyStep: Int64
    state: String!
    size: Int64!
    digest: String!
    digestAlgorithm: String
    commitHash: String
    fileCount: Int64!
    createdAt: DateTime!
    updatedAt: DateTime
    aliases: [ArtifactAlias!]!
    currentManifest: ArtifactManifest
  }
  type ArtifactManifest {
    id: ID!
    file: File!
  }

  type CreateArtifactPayload {
    artifact: Artifact!
  }
  type CreateArtifactManifestPayload {
    artifactManifest: ArtifactManifest!
  }
  type CreateArtifactFilesPayload {
    files: FileConnection!
  }
  type CommitArtifactPayload {
    artifact: Artifact!
  }
  type CompleteMultipartPayload {
    digest: String
  }
  type UseArtifactPayload {
    artifact: Artifact!
  }
  type LinkArtifactPayload {
    versionIndex: Int
    artifactMembership: ArtifactCollectionMembership
  }
  type SuccessPayload {
    success: Boolean!
  }
  type UpdateArtifactPayload {
    artifact: Artifact!
  }
`;

/** Opaque input scalars take a JSON object (a variable) or an object literal with variables inside. */
function opaqueScalar(name: string): {
  parseValue: (value: unknown) => unknown;
  parseLiteral: (node: ValueNode, variables?: Record<string, unknown> | null) => unknown;
} {
  return {
    parseValue: (value) => value,
    parseLiteral: (node, variables) => {
      if (name === 'Int64' && node.kind === Kind.INT) return Number(node.value);
      return valueFromASTUntyped(node, variables ?? undefined);
    },
  };
}

/** Builds the executable schema: SDL above, with the custom scalars passing JSON through unchanged. */
export function buildWandbSchema(): GraphQLSchema {
  const schema = buildSchema(SDL);
  for (const type of Object.values(schema.getTypeMap())) {
    if (!isScalarType(type) || isSpecifiedScalarType(type)) continue;
    Object.assign(type, opaqueScalar(type.name), { serialize: (value: unknown) => value });
  }
  return schema;
}

import { openLineageStore, StoreBusyError, StoreUnavailableError } from '../../lib/lineage';
import { createTestLocation, openTestStore } from './support/test-backends';

describe('transient store failures are retryable errors', () => {
  it('reports a SQLite file locked by another writer as StoreBusyError, and the retry succeeds once the lock is gone', async () => {
    const location = await createTestLocation('sqlite');
    const holder = await openTestStore(location);
    const impatient = await openTestStore(location, {
      sqlite: { busyTimeoutMilliseconds: 20, maxTransactionAttempts: 2 },
    });
    try {
      let release!: () => void;
      let locked!: () => void;
      const lockTaken = new Promise<void>((resolve) => (locked = resolve));
      const holding = holder.database.transaction(async (transaction) => {
        await transaction.execute(
          "INSERT INTO registries (org, name, artifact_types_json, created_at) VALUES ('o', 'held', '[]', 'now')",
        );
        locked();
        await new Promise<void>((resolve) => (release = resolve));
      });
      await lockTaken;
      const failure = await impatient.objects
        .publish({ name: 'Prompt', value: { template: 'x' } })
        .catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(StoreBusyError);
      expect((failure as StoreBusyError).retryable).toBe(true);
      expect((failure as StoreBusyError).message).toMatch(
        /stayed locked by other writers after 2 attempts; retry later/,
      );
      release();
      await holding;
      expect(await impatient.objects.publish({ name: 'Prompt', value: { template: 'x' } })).toMatchObject({
        version: 0,
        created: true,
      });
    } finally {
      await impatient.close();
      await holder.close();
      await location.dispose();
    }
  });

  it('reports an unreachable PostgreSQL server as StoreUnavailableError', async () => {
    const failure = await openLineageStore('postgres://weft:secret@127.0.0.1:1/nowhere', {
      blobDirectory: '/tmp/unused',
    }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(StoreUnavailableError);
    expect((failure as StoreUnavailableError).retryable).toBe(true);
    expect((failure as StoreUnavailableError).message).toMatch(
      /cannot be reached \(ECONNREFUSED.*check that the server runs/,
    );
    expect((failure as StoreUnavailableError).message).not.toContain('secret');
  });
});

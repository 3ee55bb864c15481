import { MIGRATIONS } from '../../lib/lineage/sql/migrations';
import { StoreConfigurationError } from '../../lib/lineage';
import { BACKENDS, createTestLocation, openTestStore } from './support/test-backends';

describe.each(BACKENDS)('schema migrations on %s', (backend) => {
  it('records each applied version once, and refuses a database newer than the code', async () => {
    const location = await createTestLocation(backend);
    try {
      const store = await openTestStore(location);
      await store.objects.publish({ name: 'Prompt', value: { template: 'kept' } });
      await store.close();

      const reopened = await openTestStore(location);
      const versions = await reopened.database.query<{ version: number }>(
        'SELECT version FROM schema_migrations ORDER BY version',
      );
      expect(versions.map((row) => Number(row.version))).toEqual(MIGRATIONS.map((migration) => migration.version));
      expect((await reopened.objects.latest('Prompt')).value).toEqual({ template: 'kept' });
      await reopened.database.execute(
        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, 'from the future', 'now')",
      );
      await reopened.close();

      const failure = await openTestStore(location).catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(StoreConfigurationError);
      expect((failure as Error).message).toMatch(/schema version 99 but this weft knows only up to \d+; upgrade weft/);
    } finally {
      await location.dispose();
    }
  });
});

import fs from 'node:fs';
import path from 'node:path';

/**
 * A failure's type is the class name of the error behind it (lib/common/errors.ts), so two error classes with one
 * name would be one type to every other process. This reads the tree the way a person would search it.
 */
describe('error types', () => {
  it('every error class under lib/, activities/, client/ and workers/ has a name no other one has', () => {
    const root = path.resolve(__dirname, '..', '..');
    const seen = new Map<string, string[]>();
    for (const folder of ['lib', 'activities', 'client', 'workers']) {
      for (const file of fs.readdirSync(path.join(root, folder), { recursive: true }) as string[]) {
        if (!file.endsWith('.ts')) continue;
        const relative = path.join(folder, file);
        const text = fs.readFileSync(path.join(root, relative), 'utf8');
        for (const match of text.matchAll(/\bclass\s+([A-Za-z0-9_]*Error)\b/g)) {
          seen.set(match[1]!, [...(seen.get(match[1]!) ?? []), relative]);
        }
      }
    }
    const repeated = [...seen.entries()].filter(([, files]) => files.length > 1);
    expect(repeated).toEqual([]);
    // The names that used to collide, now one each.
    expect(seen.get('AliasConflictError')).toEqual(['lib/lineage/errors.ts']);
    expect(seen.get('VectorAliasConflictError')).toEqual(['lib/vectors/errors.ts']);
    expect(seen.get('VectorDimensionMismatchError')).toEqual(['lib/vectors/errors.ts']);
  });
});

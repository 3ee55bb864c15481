import fs from 'node:fs';
import path from 'node:path';

/** A file to put in an artifact: its path inside the artifact and where it is on disk. */
export interface FolderFile {
  path: string;
  localPath: string;
}

/**
 * The files of a folder as artifact entries, their paths prefixed (`onnx/model.onnx`), in path order. `recursive`
 * (default true) walks sub-folders into `a/b` paths; `hidden` (default true) keeps names starting with ".".
 */
export function filesUnder(
  directory: string,
  options: { prefix?: string; recursive?: boolean; hidden?: boolean } = {},
): FolderFile[] {
  const { prefix = '', recursive = true, hidden = true } = options;
  const entries: FolderFile[] = [];
  const walk = (current: string) => {
    for (const entry of fs.readdirSync(current, { withFileTypes: true })) {
      if (!hidden && entry.name.startsWith('.')) continue;
      const full = path.join(current, entry.name);
      if (entry.isDirectory() && recursive) walk(full);
      else if (entry.isFile())
        entries.push({
          path: path.posix.join(prefix, path.relative(directory, full).split(path.sep).join('/')),
          localPath: full,
        });
    }
  };
  walk(directory);
  return entries.sort((left, right) => (left.path < right.path ? -1 : left.path > right.path ? 1 : 0));
}

// The real server as a child process: shared with the drills in tools/drills/.
import { after } from 'node:test';
import { rm } from 'node:fs/promises';
import { modelDirWith } from '../../tools/lib/server-process.js';

export * from '../../tools/lib/server-process.js';

/** modelDirWith() for one test file: every folder it made is removed after the file's tests. */
export function tempModelDirs(): (...names: string[]) => Promise<string> {
  const dirs: string[] = [];
  after(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));
  return async (...names) => {
    const dir = await modelDirWith(names);
    dirs.push(dir);
    return dir;
  };
}

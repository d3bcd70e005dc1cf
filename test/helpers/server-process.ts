// The real server as a child process: shared with the drills in scripts/drills/.
export * from '../../scripts/lib/server-process.js';

// Whether a process exists, by its pid: signal 0 checks without sending anything. Used to tell the files of a
// process that is gone (a kill -9) from those of one still running: local servers' pid files, spool folders.

/** True when a process with this pid exists (ours or not: EPERM means it exists and is someone else's). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

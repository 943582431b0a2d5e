/**
 * File operations for which "the file is not there" is an answer, not an error: sessions expire,
 * get reaped and destroyed by other workers at any moment, so ENOENT is normal; anything else
 * (EACCES, EIO…) still throws and becomes a 503.
 */
import type { Stats } from 'node:fs'
import { lstat, unlink } from './fd-calls'

/** lstat: a symlink is reported as itself, never as its target (callers treat it as foreign). */
export async function lstatOrNull (file: string): Promise<Stats | null> {
  try {
    return await lstat(file)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw err
  }
}

/** True when this call removed the file, false when it was already gone. unlink never follows a symlink. */
export async function unlinkIfPresent (file: string): Promise<boolean> {
  try {
    await unlink(file)
    return true
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    return false
  }
}

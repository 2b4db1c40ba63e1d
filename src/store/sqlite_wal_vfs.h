// An SQLite VFS shim that gathers the writes of a write-ahead log into one
// system call per commit. Internal to the store.
//
// SQLite writes each WAL frame as two writes (a 24-byte frame header, then
// the page), so a commit of 48 pages costs 96 pwrite(2) calls before its
// fsync. On a virtual machine each of those is a costly trip through the
// hypervisor: measured here, a commit's writes took ~200 µs of CPU as 96
// calls and ~12 µs as one (docs/performance.md). SQLite has no setting that
// coalesces them, and a VFS shim is its documented way to change how files
// are written, so this one is written by hand.
//
// What it does: for files SQLite opens as a WAL (SQLITE_OPEN_WAL), writes
// that continue or overwrite a gathered range are copied into a buffer, and
// the buffer goes to the file in one write before anything that could depend
// on it: xSync, xRead of a gathered range, xTruncate, xFileSize,
// xFileControl and xClose. Every other file, and every other method, passes
// straight to the default VFS.
//
// Why that is safe: a connection publishes new frames to other connections
// (the wal-index header) only after xSync of the WAL, and only when the
// connection syncs every commit, i.e. `synchronous = FULL`. So the shim may
// be used only by a connection with synchronous = FULL, and only on a file
// system with power-safe overwrite (SQLite otherwise pads the last frame and
// writes part of it after the sync; the shim then passes writes through).
// A gathered write that fails (disk full, I/O error) fails the xSync that
// flushes it, with the same code the write would have returned, so the
// commit fails as it would have without the shim.
#pragma once

namespace kura::store::sqlite {

// Registers the shim (once per process, not as the default VFS) and returns
// its name for sqlite3_open_v2. nullptr if it could not be registered.
const char* WalBatchingVfsName();

}  // namespace kura::store::sqlite

//! Synchronisation between processes: futex and eventfd notification, robust mutexes and
//! condition variables in shared memory.

//! System V IPC: message queues, semaphore sets and shared-memory segments.

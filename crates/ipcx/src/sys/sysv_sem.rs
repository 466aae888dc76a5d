//! Back end: filled in by its mechanism's change.

//! PLACEHOLDER: module `sweep` is written next.

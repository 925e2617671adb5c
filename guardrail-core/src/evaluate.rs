//! PLACEHOLDER: module `evaluate` is written next.

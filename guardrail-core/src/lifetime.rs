//! PLACEHOLDER: module `lifetime` is written next.

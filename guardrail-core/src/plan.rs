//! PLACEHOLDER: module `plan` is written next.

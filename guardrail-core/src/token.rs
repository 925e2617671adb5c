//! PLACEHOLDER: module `token` is written next.

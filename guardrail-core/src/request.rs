//! PLACEHOLDER: module `request` is written next.

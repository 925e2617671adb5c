//! PLACEHOLDER: module `lockout` is written next.

//! PLACEHOLDER: module `extension` is written next.

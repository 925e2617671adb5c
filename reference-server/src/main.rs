//! The Guardrail reference server.

fn main() {}

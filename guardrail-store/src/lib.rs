//! Storage for the Guardrail engine.

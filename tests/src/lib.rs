//! Cross-crate and interoperability tests live in `tests/tests/`.

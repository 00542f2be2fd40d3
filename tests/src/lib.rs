//! Support code for the cross-tool integration tests lives in `tests/common/`.

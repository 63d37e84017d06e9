//! Known-answer vectors (../shared/testdata copied into tests/vectors).

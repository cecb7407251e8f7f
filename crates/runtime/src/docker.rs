//! Docker target.

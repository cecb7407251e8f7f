//! Build pipeline: source → image.

//! TODO paged renderer

//! Code blocks, diffs and stack traces rendered to syntax-highlighted PNG images for chat.

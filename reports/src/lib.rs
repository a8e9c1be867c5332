//! Renderers of run results: JSON, JUnit XML, Markdown and HTML.
//!
//! Empty until the harness issue fills it.

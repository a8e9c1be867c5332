//! The certification cases: one normative rule each, written against drivers.
//!
//! Empty until the harness issue fills it; the contract and the reference components it will
//! be checked against live in `contract` and `reference-runtime`.

//! The HAProxy side: validated syntax, check rendering (and, later, the runtime driver).

pub mod check;
pub mod names;
pub mod syntax;

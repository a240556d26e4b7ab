//! Field errors, printed as Kubernetes' `field.Error` prints them.

use std::fmt;

use super::gofmt::go_quote;

/// Kinds of field errors, printed as Kubernetes' `field.Error` prints them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// `Required value`
    Required,
    /// `Invalid value: <value>`
    Invalid(String),
    /// `Forbidden`
    Forbidden,
    /// `Unsupported value: <value>`
    NotSupported(String),
    /// `Duplicate value: <value>`
    Duplicate(String),
    /// `Too long`
    TooLong,
    /// `Internal error`
    Internal,
}

/// One problem with a field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// The field path, e.g. `spec.strategy.steps[0].setWeight`.
    pub path: String,
    pub kind: ErrorKind,
    pub detail: String,
}

impl FieldError {
    pub fn required(path: impl Into<String>, detail: impl Into<String>) -> Self {
        FieldError {
            path: path.into(),
            kind: ErrorKind::Required,
            detail: detail.into(),
        }
    }
    /// An invalid value; `value` is printed as given (use [`go_quote`] for strings).
    pub fn invalid(
        path: impl Into<String>,
        value: impl fmt::Display,
        detail: impl Into<String>,
    ) -> Self {
        FieldError {
            path: path.into(),
            kind: ErrorKind::Invalid(value.to_string()),
            detail: detail.into(),
        }
    }
    pub fn forbidden(path: impl Into<String>, detail: impl Into<String>) -> Self {
        FieldError {
            path: path.into(),
            kind: ErrorKind::Forbidden,
            detail: detail.into(),
        }
    }
    /// An unsupported value (`value` printed as given); the detail lists the supported values
    /// as Kubernetes does.
    pub fn not_supported(
        path: impl Into<String>,
        value: impl fmt::Display,
        supported: &[&str],
    ) -> Self {
        let detail = if supported.is_empty() {
            String::new()
        } else {
            let quoted: Vec<String> = supported.iter().map(|s| go_quote(s)).collect();
            format!("supported values: {}", quoted.join(", "))
        };
        FieldError {
            path: path.into(),
            kind: ErrorKind::NotSupported(value.to_string()),
            detail,
        }
    }
    /// A duplicate value (`value` printed as given).
    pub fn duplicate(path: impl Into<String>, value: impl fmt::Display) -> Self {
        FieldError {
            path: path.into(),
            kind: ErrorKind::Duplicate(value.to_string()),
            detail: String::new(),
        }
    }
    pub fn internal(path: impl Into<String>, detail: impl Into<String>) -> Self {
        FieldError {
            path: path.into(),
            kind: ErrorKind::Internal,
            detail: detail.into(),
        }
    }
    pub fn too_long(path: impl Into<String>, max_bytes: usize) -> Self {
        FieldError {
            path: path.into(),
            kind: ErrorKind::TooLong,
            detail: format!("must have at most {max_bytes} bytes"),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ErrorKind::Required => write!(f, "{}: Required value", self.path)?,
            ErrorKind::Invalid(v) => write!(f, "{}: Invalid value: {v}", self.path)?,
            ErrorKind::Forbidden => write!(f, "{}: Forbidden", self.path)?,
            ErrorKind::NotSupported(v) => write!(f, "{}: Unsupported value: {v}", self.path)?,
            ErrorKind::Duplicate(v) => write!(f, "{}: Duplicate value: {v}", self.path)?,
            ErrorKind::TooLong => write!(f, "{}: Too long", self.path)?,
            ErrorKind::Internal => write!(f, "{}: Internal error", self.path)?,
        }
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        Ok(())
    }
}

impl std::error::Error for FieldError {}

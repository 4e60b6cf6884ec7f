//! Value modifiers (`Field|contains|all`).

use std::fmt;
use std::str::FromStr;

/// A Sigma value modifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Modifier {
    Contains,
    StartsWith,
    EndsWith,
    All,
    Exists,
    Cased,
    Neq,
    Windash,
    Re,
    /// `re|i`: case-insensitive regex.
    ReI,
    /// `re|m`: multi-line regex.
    ReM,
    /// `re|s`: dot matches newline.
    ReS,
    Base64,
    Base64Offset,
    Utf16Le,
    Utf16Be,
    Utf16,
    Wide,
    Lt,
    Lte,
    Gt,
    Gte,
    Minute,
    Hour,
    Day,
    Week,
    Month,
    Year,
    Cidr,
    Expand,
    FieldRef,
}

impl FromStr for Modifier {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "contains" => Modifier::Contains,
            "startswith" => Modifier::StartsWith,
            "endswith" => Modifier::EndsWith,
            "all" => Modifier::All,
            "exists" => Modifier::Exists,
            "cased" => Modifier::Cased,
            "neq" => Modifier::Neq,
            "windash" => Modifier::Windash,
            "re" => Modifier::Re,
            "i" => Modifier::ReI,
            "m" => Modifier::ReM,
            "s" => Modifier::ReS,
            "base64" => Modifier::Base64,
            "base64offset" => Modifier::Base64Offset,
            "utf16le" => Modifier::Utf16Le,
            "utf16be" => Modifier::Utf16Be,
            "utf16" => Modifier::Utf16,
            "wide" => Modifier::Wide,
            "lt" => Modifier::Lt,
            "lte" => Modifier::Lte,
            "gt" => Modifier::Gt,
            "gte" => Modifier::Gte,
            "minute" => Modifier::Minute,
            "hour" => Modifier::Hour,
            "day" => Modifier::Day,
            "week" => Modifier::Week,
            "month" => Modifier::Month,
            "year" => Modifier::Year,
            "cidr" => Modifier::Cidr,
            "expand" => Modifier::Expand,
            "fieldref" => Modifier::FieldRef,
            other => return Err(format!("unknown modifier '{other}'")),
        })
    }
}

impl fmt::Display for Modifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Modifier::Contains => "contains",
            Modifier::StartsWith => "startswith",
            Modifier::EndsWith => "endswith",
            Modifier::All => "all",
            Modifier::Exists => "exists",
            Modifier::Cased => "cased",
            Modifier::Neq => "neq",
            Modifier::Windash => "windash",
            Modifier::Re => "re",
            Modifier::ReI => "i",
            Modifier::ReM => "m",
            Modifier::ReS => "s",
            Modifier::Base64 => "base64",
            Modifier::Base64Offset => "base64offset",
            Modifier::Utf16Le => "utf16le",
            Modifier::Utf16Be => "utf16be",
            Modifier::Utf16 => "utf16",
            Modifier::Wide => "wide",
            Modifier::Lt => "lt",
            Modifier::Lte => "lte",
            Modifier::Gt => "gt",
            Modifier::Gte => "gte",
            Modifier::Minute => "minute",
            Modifier::Hour => "hour",
            Modifier::Day => "day",
            Modifier::Week => "week",
            Modifier::Month => "month",
            Modifier::Year => "year",
            Modifier::Cidr => "cidr",
            Modifier::Expand => "expand",
            Modifier::FieldRef => "fieldref",
        };
        f.write_str(s)
    }
}
